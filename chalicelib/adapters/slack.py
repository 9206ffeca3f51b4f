"""Slack adapter: post, update and thread deployment messages over Slack's Web API.

Five calls do not justify a client library on every cold start (slack_sdk costs ~120 ms to
import, asyncio included): plain HTTPS JSON with the ``urllib3`` that botocore already ships.

Every failure (Slack's ``ok: false``, an HTTP error, a refused connection, a
timeout) becomes one ``NotificationError``. Calls time out quickly and are not
retried here: a Slack outage must never hang a Lambda, and the reconciler
re-syncs messages later. The bot token is never logged nor put in an error.

``respond`` POSTs only to ``https://`` URLs on Slack's own hosts (``RESPONSE_HOSTS``), plus the
prefixes a stage lists in ``SLACK_RESPONSE_URLS`` (the devstack's stand-in): a ``response_url``
comes inside a request, and a signed request is still no reason to POST anywhere it says (L4).
"""
from __future__ import annotations

import json
from typing import Any, Sequence
from urllib.parse import urlsplit

import urllib3

from chalicelib.adapters.errors import NotificationError

DEFAULT_API_URL = "https://slack.com/api/"
DEFAULT_TIMEOUT = 3
#: Where Slack's response_urls live (commercial and GovSlack).
RESPONSE_HOSTS = frozenset({"hooks.slack.com", "hooks.slack-gov.com"})

# What can go wrong on the way: refused connections, timeouts, broken answers.
_TRANSPORT_ERRORS = (urllib3.exceptions.HTTPError, OSError)


class _Refused(Exception):
    """Slack answered, but not ``ok`` (its error code, the HTTP status)."""

    def __init__(self, error: str, status: int | None):
        super().__init__(error)
        self.error, self.status = error, status


class SlackClient:
    """The few Slack Web API calls Slipway makes, with errors translated."""

    def __init__(self, token: str, base_url: str = DEFAULT_API_URL, timeout: float = DEFAULT_TIMEOUT,
                 response_urls: Sequence[str] = ()):
        # Method names are joined onto base_url: without the trailing slash the last path
        # segment (".../api") would be dropped.
        self._base_url = base_url if base_url.endswith("/") else base_url + "/"
        self._token = token
        self._timeout = timeout
        self._response_urls = tuple(response_urls)
        self._http = urllib3.PoolManager(timeout=urllib3.Timeout(total=timeout), retries=False)

    def __repr__(self) -> str:
        return f"SlackClient(base_url={self._base_url!r})"

    def post_message(self, channel: str, text: str, blocks: Sequence[dict] | None) -> tuple[str, str]:
        """Post a message; return (channel id, ts), the key ``chat.update`` needs."""
        data = self._call("chat.postMessage", {
            "channel": channel, "text": text, "blocks": _blocks(blocks),
            "unfurl_links": False, "unfurl_media": False})
        return str(data.get("channel") or channel), str(data["ts"])

    def update_message(self, channel: str, ts: str, text: str, blocks: Sequence[dict] | None) -> None:
        """Replace the text and blocks of a message this bot posted."""
        self._call("chat.update", {"channel": channel, "ts": ts, "text": text,
                                   "blocks": _blocks(blocks)})

    def post_thread(self, channel: str, thread_ts: str, text: str) -> None:
        """Reply in the thread under a message (details: migration or rollout reasons)."""
        self._call("chat.postMessage", {"channel": channel, "thread_ts": thread_ts, "text": text,
                                        "unfurl_links": False, "unfurl_media": False})

    def post_ephemeral(self, channel: str, user: str, text: str) -> None:
        """Show a message only to one user (e.g. "you may not approve this")."""
        self._call("chat.postEphemeral", {"channel": channel, "user": user, "text": text})

    def may_respond(self, response_url: Any) -> bool:
        """Would ``respond`` POST to this URL?"""
        return response_url_allowed(response_url, self._response_urls)

    def respond(self, response_url: str, text: str, replace_original: bool = False) -> None:
        """Answer an interaction through its ``response_url`` (needs no token); only Slack's."""
        if not self.may_respond(response_url):
            raise NotificationError("slack response_url refused: not an https URL on Slack's hosts")
        body = {"text": text, "replace_original": replace_original}
        if not replace_original:
            body["response_type"] = "ephemeral"
        try:
            resp = self._post(response_url, body, {})
        except _TRANSPORT_ERRORS as exc:
            raise NotificationError(self._scrub(f"slack response_url failed: {_describe(exc)}")) from exc
        if resp.status != 200:
            raise NotificationError(
                self._scrub(f"slack response_url failed: HTTP {resp.status} "
                            f"{resp.data[:200].decode('utf-8', 'replace')}"),
                status=resp.status,
            )

    def _call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """Run one Web API call and translate every failure into NotificationError."""
        try:
            resp = self._post(self._base_url + method,
                              {k: v for k, v in params.items() if v is not None},
                              {"Authorization": f"Bearer {self._token}"})
            data = _json(resp.data)
            if resp.status != 200 or not data.get("ok"):
                raise _Refused(str(data.get("error") or "unknown_error")[:200], resp.status)
        except _Refused as exc:
            raise NotificationError(
                self._scrub(f"slack {method} failed: {exc.error} (HTTP {exc.status})"),
                status=exc.status, error=exc.error,
            ) from None
        except _TRANSPORT_ERRORS as exc:
            raise NotificationError(self._scrub(f"slack {method} failed: {_describe(exc)}")) from exc
        return data

    def _post(self, url: str, body: dict[str, Any], headers: dict[str, str]):
        return self._http.request(
            "POST", url, body=json.dumps(body).encode(),
            headers={"Content-Type": "application/json; charset=utf-8", **headers})

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
    """A list, or None to send text only."""
    return list(blocks) if blocks else None


def _json(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw or b"{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _describe(exc: BaseException) -> str:
    """A short, token-free description of a transport error."""
    return f"{type(exc).__name__}: {str(exc)[:200]}"
