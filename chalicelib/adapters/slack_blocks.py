"""Slack Block Kit primitives: escaping, fitting text to Slack's limits, and the small blocks
``slack_message`` builds its messages from. Pure functions, no network.

Every string from outside goes through ``escape_mrkdwn`` (or ``fit``), so ``<!channel>`` in a tag
shows as text and pings nobody; ``who`` mentions only identities Slipway produced (``slack:U…``).
"""
from __future__ import annotations

import re
from typing import Any, Iterable

SECTION_LIMIT = 3000  # Slack: section text
FIELD_LIMIT = 2000  # Slack: each section field
HEADER_LIMIT = 150  # Slack: header plain_text

_SLACK_USER = re.compile(r"^slack:([UW][A-Z0-9]{2,20})$")


def escape_mrkdwn(value: Any) -> str:
    """Escape ``&``, ``<`` and ``>`` as Slack requires (None becomes "")."""
    if value is None:
        return ""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def button(label: str, action_id: str, **extra: Any) -> dict:
    return {"type": "button", "text": {"type": "plain_text", "text": label}, "action_id": action_id, **extra}


def who(identity: Any) -> str:
    """``slack:U…`` (an identity Slipway produced) as a mention, anything else as text."""
    match = _SLACK_USER.match(str(identity or ""))
    return f"<@{match.group(1)}>" if match else escape_mrkdwn(identity or "unknown")


def code(value: Any) -> str:
    return f"`{unfence(escape_mrkdwn(value))}`"


def unfence(text: str) -> str:
    """Backticks in data would close our code span or block: show a look-alike instead."""
    return text.replace("`", "ˋ")


def joined(items: Iterable[Any], limit: int, render) -> str:
    """Render items joined by ", ", ending "… N more" so the result fits ``limit``."""
    items = [item for item in items if item is not None]
    out: list[str] = []
    for index, item in enumerate(items):
        candidate = ", ".join(out + [render(item)])
        if len(candidate) + len(f" … {len(items)} more") > limit:
            return ", ".join(out) + f" … {len(items) - index} more"
        out.append(render(item))
    return ", ".join(out)


def fit(value: Any, limit: int) -> str:
    """Escape ``value`` and cut it so the escaped text fits ``limit``."""
    out, size = [], 0
    for char in "" if value is None else str(value):
        piece = escape_mrkdwn(char)
        if size + len(piece) > limit - 1:
            return "".join(out) + "…"
        out.append(piece)
        size += len(piece)
    return "".join(out)


def section(text: str) -> dict:
    return {"type": "section", "text": mrkdwn(text)}


def mrkdwn(text: str) -> dict:
    return {"type": "mrkdwn", "text": text}
