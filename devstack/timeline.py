"""Readable output: deployment timelines as they grow, Slack messages as plain text.

``Follower`` polls the app's own ``GET /deployments`` (as any user could) and yields each timeline
entry once, oldest first, then a closing line with the duration when a deployment finishes.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Iterator

from devstack.client import Client

FINISHED = {"SUCCEEDED", "FAILED", "REJECTED", "EXPIRED", "SUPERSEDED", "ROLLED_BACK"}


def settled(dep: dict, quiet_seconds: float = 2.0) -> bool:
    """Finished, and done writing: a success adds its pruning note shortly after SUCCEEDED."""
    if dep.get("state") not in FINISHED:
        return False
    if dep["state"] != "SUCCEEDED" or any("prun" in t["note"] for t in dep.get("timeline", [])):
        return True
    finished = datetime.fromisoformat((dep.get("finished_at") or "").replace("Z", "+00:00")
                                      or "1970-01-01T00:00:00+00:00")
    return (datetime.now(timezone.utc) - finished).total_seconds() > quiet_seconds


def clock(at: str | None) -> str:
    """``2026-11-26T10:55:21.080368Z`` → ``10:55:21.080`` (local time)."""
    if not at:
        return " " * 12
    moment = datetime.fromisoformat(at.replace("Z", "+00:00")).astimezone()
    return moment.strftime("%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def entry_line(entry: dict, prefix: str = "") -> str:
    return f"  {clock(entry.get('at'))}  {prefix}{entry.get('state', ''):<17} {entry.get('note', '')}"


def finish_line(dep: dict, prefix: str = "") -> str:
    took = dep.get("duration_seconds")
    took = f" in {took:.1f} s" if isinstance(took, (int, float)) else ""
    why = f": {dep['reason']}" if dep.get("reason") and dep["state"] != "SUCCEEDED" else ""
    return f"  {clock(dep.get('finished_at'))}  {prefix}{'=> ' + dep['state']}{took}{why}"


class Follower:
    """New timeline lines of every deployment (or of one), each printed once."""

    def __init__(self, client: Client, dep_id: str | None = None, label: bool = True):
        self._client, self._dep_id, self._label = client, dep_id, label
        self._seen: dict[str, int] = {}
        self._closed: set[str] = set()
        self.latest: dict[str, dict] = {}

    def poll(self) -> Iterator[str]:
        for dep in self._fetch():
            self.latest[dep["id"]] = dep
            prefix = f"{dep['service']} {dep['id'][-8:]}  " if self._label else ""
            timeline = dep.get("timeline") or []
            for entry in timeline[self._seen.get(dep["id"], 0):]:
                yield entry_line(entry, prefix)
            self._seen[dep["id"]] = len(timeline)
            if settled(dep) and dep["id"] not in self._closed:
                self._closed.add(dep["id"])
                yield finish_line(dep, prefix)

    def _fetch(self) -> list[dict]:
        if self._dep_id:
            got = self._client.get(f"/deployments/{self._dep_id}")
            return [got.json()] if got.status == 200 else []
        got = self._client.get("/deployments?limit=20")
        return list(reversed(got.json().get("deployments", []))) if got.status == 200 else []


def slack_text(message: dict) -> str:
    """A Slack message (text + Block Kit) as indented plain text."""
    lines: list[str] = []
    for block in message.get("blocks") or []:
        kind = block.get("type")
        if kind in ("header", "section") and block.get("text"):
            lines.append(_mrkdwn(block["text"].get("text", "")))
        for field in block.get("fields") or []:
            lines.append(_mrkdwn(field.get("text", "")).replace("\n", ": ", 1))
        if kind == "context":
            lines.append(" · ".join(_mrkdwn(e.get("text", "")) for e in block.get("elements", [])))
        if kind == "actions":
            buttons = [f"[{e.get('text', {}).get('text', '?')}]" + (f" {e['url']}" if e.get("url")
                                                                   else "")
                       for e in block.get("elements", [])]
            lines.append("  ".join(buttons))
    if not lines:
        lines = [_mrkdwn(message.get("text") or "")]
    where = message.get("channel_name") or message.get("channel", "")
    body = "\n".join(f"    │ {line}" for text in lines for line in text.splitlines())
    return f"  Slack {where}:\n{body}"


def _mrkdwn(text: str) -> str:
    text = re.sub(r"<([^|>]+)\|([^>]+)>", r"\2", text)  # <url|label> → label
    text = re.sub(r"<!date\^\d+\^[^|]*\|([^>]+)>", r"\1", text)
    text = re.sub(r"<@([A-Z0-9]+)>", r"@\1", text)
    return text.replace("*", "").replace("```", "")
