"""Readable output: deployment timelines as they grow, Slack messages as plain text.

``Follower`` polls the app's own ``GET /deployments`` (as any user could) and yields each timeline
entry once, then a closing line with the duration when a deployment finishes. ``Narrator`` merges
lines from several sources (timelines, approval links, the reconciler's recoveries) and prints them
in the order their events happened, holding each back briefly so a late-seen event still goes first.
"""
from __future__ import annotations

import heapq
import itertools
import re
from datetime import datetime, timezone
from typing import Callable, Iterable, Iterator, NamedTuple

from devstack.client import Client

FINISHED = {"SUCCEEDED", "FAILED", "REJECTED", "EXPIRED", "SUPERSEDED", "ROLLED_BACK"}


class Line(NamedTuple):
    """One line of output and when its event happened (ISO 8601, UTC)."""

    at: str
    text: str


def moment(at: str | None) -> datetime:
    """An ISO timestamp as an aware datetime; a missing or unreadable one is now."""
    try:
        when = datetime.fromisoformat((at or "").replace("Z", "+00:00"))
    except ValueError:
        return datetime.now(timezone.utc)
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def settled(dep: dict, quiet_seconds: float = 2.0,
            now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> bool:
    """Finished, and done writing: a success adds its pruning note shortly after SUCCEEDED."""
    if dep.get("state") not in FINISHED:
        return False
    if dep["state"] != "SUCCEEDED" or any("prun" in t["note"] for t in dep.get("timeline", [])):
        return True
    finished = datetime.fromisoformat((dep.get("finished_at") or "").replace("Z", "+00:00")
                                      or "1970-01-01T00:00:00+00:00")
    return (now() - finished).total_seconds() > quiet_seconds


def clock(at: str | None) -> str:
    """``2026-11-26T10:55:21.080368Z`` → ``10:55:21.080`` (local time)."""
    if not at:
        return " " * 12
    local = datetime.fromisoformat(at.replace("Z", "+00:00")).astimezone()
    return local.strftime("%H:%M:%S.") + f"{local.microsecond // 1000:03d}"


def entry_line(entry: dict, prefix: str = "") -> str:
    return f"  {clock(entry.get('at'))}  {prefix}{entry.get('state', ''):<17} {entry.get('note', '')}"


def last_write(dep: dict) -> str | None:
    """When a deployment last changed: its finish, or a later timeline note (pruning)."""
    times = [t for t in [dep.get("finished_at"), *(e.get("at") for e in dep.get("timeline") or [])]
             if t]
    return max(times, key=moment) if times else None


def finish_line(dep: dict, prefix: str = "") -> str:
    """The closing line, stamped with the deployment's last write (it is printed once settled)."""
    took = dep.get("duration_seconds")
    took = f" in {took:.1f} s" if isinstance(took, (int, float)) else ""
    why = f": {dep['reason']}" if dep.get("reason") and dep["state"] != "SUCCEEDED" else ""
    return f"  {clock(last_write(dep))}  {prefix}{'=> ' + dep['state']}{took}{why}"


def label(dep_id: str, service: str | None = None) -> str:
    """The column that tells deployments apart: ``better-chatbot 0ca07d2a  ``."""
    return f"{service + ' ' if service else ''}{dep_id[-8:]}  "


class Follower:
    """New timeline lines of every deployment (or of one), each printed once."""

    def __init__(self, client: Client, dep_id: str | None = None, label: bool = True):
        self._client, self._dep_id, self._label = client, dep_id, label
        self._seen: dict[str, int] = {}
        self._closed: set[str] = set()
        self.latest: dict[str, dict] = {}

    def poll(self) -> Iterator[str]:
        """The new lines' text, oldest event first."""
        for line in sorted(self.lines(), key=lambda line: moment(line.at)):
            yield line.text

    def lines(self) -> Iterator[Line]:
        """The new lines with their event times (per deployment, in timeline order)."""
        for dep in self._fetch():
            self.latest[dep["id"]] = dep
            prefix = label(dep["id"], dep["service"]) if self._label else ""
            timeline = dep.get("timeline") or []
            for entry in timeline[self._seen.get(dep["id"], 0):]:
                yield Line(entry.get("at") or "", entry_line(entry, prefix))
            self._seen[dep["id"]] = len(timeline)
            if settled(dep) and dep["id"] not in self._closed:
                self._closed.add(dep["id"])
                yield Line(last_write(dep) or "", finish_line(dep, prefix))

    def _fetch(self) -> list[dict]:
        if self._dep_id:
            got = self._client.get(f"/deployments/{self._dep_id}")
            return [got.json()] if got.status == 200 else []
        got = self._client.get("/deployments?limit=20")
        return list(reversed(got.json().get("deployments", []))) if got.status == 200 else []


class Narrator:
    """Lines from several sources in event-time order. Each poll reads every source, then releases
    the lines older than ``grace`` seconds: a source that sees an event late (the next poll) still
    gets its line in before the lines of what happened after it. ``holds`` say from when a source
    may still add lines (the reconciler, mid-run): nothing from then on is released yet."""

    def __init__(self, *sources: Callable[[], Iterable[Line]], grace: float = 1.0,
                 holds: Iterable[Callable[[], str | None]] = (),
                 now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)):
        self._sources, self._grace, self._holds = sources, grace, tuple(holds)
        self._now = now  # the clock the lines' times are on (the devstack's app clock)
        self._held: list[tuple[datetime, int, str]] = []
        self._order = itertools.count()

    def poll(self) -> list[str]:
        horizon = self._now().timestamp() - self._grace
        for hold in self._holds:  # before reading: what a source adds later dates from its hold
            since = hold()
            if since:
                horizon = min(horizon, moment(since).timestamp() - 0.001)
        self._read()
        out = []
        while self._held and self._held[0][0].timestamp() <= horizon:
            out.append(heapq.heappop(self._held)[2])
        return out

    def flush(self) -> list[str]:
        """Everything held, in order (at the end)."""
        self._read()
        return [heapq.heappop(self._held)[2] for _ in range(len(self._held))]

    def _read(self) -> None:
        for source in self._sources:
            for line in source():
                heapq.heappush(self._held, (moment(line.at), next(self._order), line.text))


def link_lines(messages: Callable[[], list[dict]], follower: Follower | None = None
               ) -> Callable[[], Iterator[Line]]:
    """A Narrator source: each approval link the Slack stand-in received, once, when it got it."""
    from devstack.links import approval_links_at

    shown: set[str] = set()

    def read() -> Iterator[Line]:
        for at, dep_id, link in approval_links_at(messages()):
            if link in shown:
                continue
            shown.add(link)
            dep = follower.latest.get(dep_id, {}) if follower else {}
            yield Line(at, f"  {clock(at)}  {label(dep_id, dep.get('service'))}"
                           f"approval link (from the Slack stand-in): {link}")
    return read


def recovery_lines(recovered: Callable[[int], list[dict]], follower: Follower | None = None,
                   dep_id: str | None = None, labelled: bool = True) -> Callable[[], Iterator[Line]]:
    """A Narrator source: each time the reconciler made up for a lost event (of ``dep_id``)."""
    count = 0

    def read() -> Iterator[Line]:
        nonlocal count
        got = recovered(count)
        count += len(got)
        for note in got:
            if dep_id and note["deployment"] != dep_id:
                continue
            dep = follower.latest.get(note["deployment"], {}) if follower else {}
            prefix = label(note["deployment"], dep.get("service")) if labelled else ""
            yield Line(note["at"], f"  {clock(note['at'])}  {prefix}{note['text']}")
    return read


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
