"""Find approval links in what the Slack stand-in received (the demo, ``serve`` and tests use it).

Slipway's Slack notifier DMs each ``slack:U…`` approver a personal, signed, single-use link
``…/approvals/<id>?token=…``; a person (or the demo) finds it in Slack, here the stand-in.
"""
from __future__ import annotations

import json
import re


def approval_links(messages: list[dict], dep_id: str | None = None) -> list[str]:
    """Every approval link in the stand-in's messages (text, blocks, updates, replies), in order."""
    pattern = re.compile(r"https?://[^\s\"'<>|\\]+/approvals/" + (re.escape(dep_id) if dep_id
                         else r"[A-Za-z0-9_-]+") + r"\?token=[A-Za-z0-9._~%-]+")
    found: list[str] = []
    for link in pattern.findall(json.dumps(messages)):
        if link not in found:
            found.append(link)
    return found
