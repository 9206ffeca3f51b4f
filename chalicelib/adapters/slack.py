"""Slack adapter: post, update and thread deployment messages through slack_sdk.

slack_sdk (the charter's library for Slack) is imported inside the methods that talk to Slack,
never at module import: it costs ~130 ms (its ``WebClient`` pulls in asyncio), which a handler
that never posts to Slack (an ECR push for a service without a channel, a stopped task, the
reads) must not pay on its cold start.

Every failure (Slack's ``ok: false``, an HTTP error, a refused connection, a
timeout) becomes one ``NotificationError``. Calls time out quickly and are not
retried here: a Slack outage must never hang a Lambda, and the reconciler
re-syncs messages later. The bot token is never logged nor put in an error.

``respond`` POSTs only to ``https://`` URLs on Slack's own hosts (``RESPONSE_HOSTS``), plus the
prefixes a stage lists in ``SLACK_RESPONSE_URLS`` (the devstack's stand-in): a ``response_url``
comes inside a request, and a signed request is still no reason to POST anywhere it says (L4).
"""
from __future__ import annotations

from http.client import HTTPException
from typing import Any, Sequence
from urllib.parse import urlsplit

from chalicelib.adapters.errors import NotificationError

DEFAULT_API_URL = "https://slack.com/api/"
DEFAULT_TIMEOUT = 3
#: Where Slack's response_urls live (commercial and GovSlack).
RESPONSE_HOSTS = frozenset({"hooks.slack.com", "hooks.slack-gov.com"})


def _transport_errors() -> tuple[type[BaseException], ...]:
    """What can go wrong under slack_sdk's urllib transport: URLError, socket timeouts and
    refused connections are OSErrors; a truncated answer is an HTTPException."""
    from slack_sdk.errors import SlackClientError

    return (SlackClientError, OSError, HTTPException)


class SlackClient:
    """The few Slack Web API calls Slipway makes, with errors translated."""

    def __init__(self, token: str, base_url: str = DEFAULT_API_URL, timeout: float = DEFAULT_TIMEOUT,
                 response_urls: Sequence[str] = ()):
        # slack_sdk joins method names onto base_url: without the trailing slash
        # the last path segment (".../api") would be dropped.
        self._base_url = base_url if base_url.endswith("/") else base_url + "/"
        self._token = token
        self._timeout = timeout
        self._response_urls = tuple(response_urls)
        self._web = None  # slack_sdk's WebClient, built (and imported) on the first call

    def __repr__(self) -> str:
        return f"SlackClient(base_url={self._base_url!r})"

    @property
    def _client(self):
        if self._web is None:
            from slack_sdk.web import WebClient

            self._web = WebClient(token=self._token, base_url=self._base_url,
                                  timeout=self._timeout, retry_handlers=[])
        return self._web

    def post_message(self, channel: str, text: str, blocks: Sequence[dict] | None) -> tuple[str, str]:
        """Post a message; return (channel id, ts), the key ``chat.update`` needs."""
        data = self._call(
            "chat.postMessage",
            lambda: self._client.chat_postMessage(
                channel=channel, text=text, blocks=_blocks(blocks),
                unfurl_links=False, unfurl_media=False,
            ),
        )
        return str(data.get("channel") or channel), str(data["ts"])

    def update_message(self, channel: str, ts: str, text: str, blocks: Sequence[dict] | None) -> None:
        """Replace the text and blocks of a message this bot posted."""
        self._call(
            "chat.update",
            lambda: self._client.chat_update(channel=channel, ts=ts, text=text, blocks=_blocks(blocks)),
        )

    def post_thread(self, channel: str, thread_ts: str, text: str) -> None:
        """Reply in the thread under a message (details: migration or rollout reasons)."""
        self._call(
            "chat.postMessage",
            lambda: self._client.chat_postMessage(
                channel=channel, thread_ts=thread_ts, text=text,
                unfurl_links=False, unfurl_media=False,
            ),
        )

    def post_ephemeral(self, channel: str, user: str, text: str) -> None:
        """Show a message only to one user (e.g. "you may not approve this")."""
        self._call(
            "chat.postEphemeral",
            lambda: self._client.chat_postEphemeral(channel=channel, user=user, text=text),
        )

    def may_respond(self, response_url: Any) -> bool:
        """Would ``respond`` POST to this URL?"""
        return response_url_allowed(response_url, self._response_urls)

    def respond(self, response_url: str, text: str, replace_original: bool = False) -> None:
        """Answer an interaction through its ``response_url`` (needs no token); only Slack's."""
        if not self.may_respond(response_url):
            raise NotificationError("slack response_url refused: not an https URL on Slack's hosts")
        from slack_sdk.webhook import WebhookClient

        hook = WebhookClient(url=response_url, timeout=self._timeout, retry_handlers=[])
        try:
            resp = hook.send(
                text=text,
                replace_original=replace_original,
                response_type=None if replace_original else "ephemeral",
            )
        except _transport_errors() as exc:
            raise NotificationError(self._scrub(f"slack response_url failed: {_describe(exc)}")) from exc
        if resp.status_code != 200:
            raise NotificationError(
                self._scrub(f"slack response_url failed: HTTP {resp.status_code} {str(resp.body)[:200]}"),
                status=resp.status_code,
            )

    def _call(self, method: str, send) -> dict[str, Any]:
        """Run one Web API call and translate every failure into NotificationError."""
        from slack_sdk.errors import SlackApiError

        try:
            response = send()
        except SlackApiError as exc:
            status = getattr(exc.response, "status_code", None)
            error = _api_error(exc)
            raise NotificationError(
                self._scrub(f"slack {method} failed: {error} (HTTP {status})"), status=status, error=error
            ) from exc
        except _transport_errors() as exc:
            raise NotificationError(self._scrub(f"slack {method} failed: {_describe(exc)}")) from exc
        return dict(response.data) if isinstance(response.data, dict) else {}

    def _scrub(self, message: str) -> str:
        """Belt and braces: never let the token reach a message or a log line."""
        return message.replace(self._token, "***") if self._token else message


def response_url_allowed(url: Any, extra: Sequence[str] = ()) -> bool:
    """Is ``url`` Slack's (``https://hooks.slack.com/…``) or under one of the ``extra`` prefixes?"""
    if not isinstance(url, str) or len(url) > 2048:
        return False
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return False
    if parts.username is not None or parts.password is not None:
        return False
    if parts.scheme == "https" and host in RESPONSE_HOSTS and parts.port in (None, 443):
        return True
    for prefix in extra:
        allowed = urlsplit(prefix)
        if (parts.scheme, parts.netloc) == (allowed.scheme, allowed.netloc) and \
                parts.path.startswith(allowed.path or "/"):
            return True
    return False


def _blocks(blocks: Sequence[dict] | None) -> list[dict] | None:
    """slack_sdk wants a list (or None to send text only)."""
    return list(blocks) if blocks else None


def _api_error(exc) -> str:
    """Slack's short error code (``invalid_auth``, ``channel_not_found``…) of a SlackApiError."""
    data = getattr(exc.response, "data", None)
    if isinstance(data, dict) and data.get("error"):
        return str(data["error"])[:200]
    return "unknown_error"


def _describe(exc: BaseException) -> str:
    """A short, token-free description of a transport error."""
    return f"{type(exc).__name__}: {str(exc)[:200]}"
