"""Find approval links in what the Slack stand-in received (the demo, ``serve`` and tests use it).

Slipway's Slack notifier DMs each ``slack:U…`` approver a personal, signed, single-use link
``…/approvals/<id>?token=…``; a person (or the demo) finds it in Slack, here the stand-in.
"""
from __future__ import annotations

import json
import re


def _pattern(dep_id: str | None) -> re.Pattern:
    return re.compile(r"https?://[^\s\"'<>|\\]+/approvals/" + (re.escape(dep_id) if dep_id
                      else r"[A-Za-z0-9_-]+") + r"\?token=[A-Za-z0-9._~%-]+")


def approval_links(messages: list[dict], dep_id: str | None = None) -> list[str]:
    """Every approval link in the stand-in's messages (text, blocks, updates, replies), in order."""
    found: list[str] = []
    for link in _pattern(dep_id).findall(json.dumps(messages)):
        if link not in found:
            found.append(link)
    return found


def approval_links_at(messages: list[dict]) -> list[tuple[str, str, str]]:
    """``(received_at, deployment id, link)`` for every approval link, when Slack first had it: a
    message's links date from its post (or its update), a thread reply's from the reply."""
    found: dict[str, tuple[str, str, str]] = {}
    pattern = _pattern(None)
    for message in messages:
        replies = message.get("replies") or []
        history = message.get("history") or [message]
        posted = message.get("received_at") or ""
        parts = [(posted, json.dumps(history[0])),
                 (message.get("updated_at") or posted,
                  json.dumps({k: v for k, v in message.items() if k != "replies"}))]
        parts += [(reply.get("received_at") or "", json.dumps(reply)) for reply in replies]
        for at, text in parts:
            for link in pattern.findall(text):
                if link not in found:
                    dep_id = link.split("/approvals/", 1)[1].split("?", 1)[0]
                    found[link] = (at, dep_id, link)
    return sorted(found.values(), key=lambda item: item[0])
