"""Which notifiers run, and the clients and secrets they are built from.

    build(deps)            -> [GitHubNotifier?, SlackNotifier?] from services.toml's [service.notify]

A notifier is ``changed(dep, changes)``. It never raises and never blocks a deployment: the ledger is
written before anyone is told, and a Slack or GitHub failure is logged and recorded under
``dep.notifications["pending"][<channel>]`` so the reconciler (or the next change) re-syncs it.

The bookkeeping they share (``dep.notifications``, pending channels, the reconciler's re-sync) is
service logic: ``chalicelib.service.notify``.

GitHub runs first: the commit author must be in the ledger before anyone sees an Approve button.
"""
from __future__ import annotations

import os

from chalicelib.service.deps import Deps
from chalicelib.service.ports import NotificationError


def build(deps: Deps) -> list:
    """The notifiers the configuration asks for; no secret is read and no client built until used."""
    from chalicelib.adapters import github
    from chalicelib.adapters.github_notifier import GitHubNotifier
    from chalicelib.adapters.slack_notifier import SlackNotifier

    out: list = []
    services = deps.config.services
    if any(s.notify.github_repository for s in services):
        url = os.environ.get("GITHUB_API_URL") or github.DEFAULT_API_URL
        out.append(GitHubNotifier(deps, lambda: github.GitHubClient(_secret(deps, "github_token"),
                                                                    api_url=url)))
    if any(s.notify.slack_channel for s in services):
        out.append(SlackNotifier(deps, lambda: slack_client(deps)))
    return out


def slack_client(deps: Deps):
    """A Slack client with the bot token from the secret, ``SLACK_API_URL`` and the extra
    response_url prefixes of ``SLACK_RESPONSE_URLS`` (comma-separated; read when called)."""
    from chalicelib.adapters.slack import DEFAULT_API_URL, SlackClient

    url = os.environ.get("SLACK_API_URL") or DEFAULT_API_URL
    extra = [u.strip() for u in os.environ.get("SLACK_RESPONSE_URLS", "").split(",") if u.strip()]
    return SlackClient(_secret(deps, "slack_bot_token"), base_url=url, response_urls=extra)


def _secret(deps: Deps, name: str) -> str:
    try:
        value = deps.secrets().get(name)
    except Exception as exc:  # Secrets Manager down or denied: the notifier retries later
        raise NotificationError(f"could not read the secret for {name}: {type(exc).__name__}") \
            from exc
    if not value:
        raise NotificationError(f"the secret has no {name}")
    return value
