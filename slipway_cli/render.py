"""What a person reads: tables of services and deployments, one deployment, the timeline.

Pure functions of the API's JSON to text. Colour only when the output is a terminal, and never
when ``NO_COLOR`` is set (https://no-color.org) or ``TERM=dumb``.
"""
from __future__ import annotations

import os
import re
from typing import IO, Any

FINISHED = {"SUCCEEDED", "FAILED", "REJECTED", "EXPIRED", "SUPERSEDED", "ROLLED_BACK"}
_COLOURS = {"SUCCEEDED": "32", "FAILED": "31", "ROLLED_BACK": "31", "REJECTED": "31",
            "EXPIRED": "33", "SUPERSEDED": "2", "PENDING_APPROVAL": "33", "APPROVED": "36",
            "MIGRATING": "36", "DEPLOYING": "36", "VERIFYING": "36"}
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class Style:
    """Colours for one output stream."""

    def __init__(self, stream: IO[str]):
        isatty = getattr(stream, "isatty", lambda: False)
        self.on = bool(isatty()) and not os.environ.get("NO_COLOR") \
            and os.environ.get("TERM") != "dumb"

    def state(self, state: str | None) -> str:
        text = state or "-"
        code = _COLOURS.get(text)
        return f"\x1b[{code}m{text}\x1b[0m" if self.on and code else text

    def dim(self, text: str) -> str:
        return f"\x1b[2m{text}\x1b[0m" if self.on else text


def plain(text: str) -> str:
    """The text without colour codes."""
    return _ANSI.sub("", text)


def table(headers: list[str], rows: list[list[str]]) -> str:
    """Columns padded to the widest cell (colour codes take no width)."""
    widths = [max([len(plain(str(c))) for c in column]) for column in zip(headers, *rows)]
    lines = []
    for row in [headers, *rows]:
        cells = [str(c) + " " * (w - len(plain(str(c)))) for c, w in zip(row, widths)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def when(stamp: str | None) -> str:
    """``2026-11-28T19:10:39.451657Z`` → ``2026-11-28 19:10:39Z``."""
    if not stamp:
        return "-"
    found = re.match(r"(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)", stamp)
    return f"{found.group(1)} {found.group(2)}Z" if found else stamp


def seconds(value: float | None) -> str:
    if value is None:
        return "-"
    minutes, secs = divmod(round(value), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{value:.1f}s" if value < 10 else f"{secs}s"


def revision(arn: str | None) -> str:
    """``arn:…:task-definition/web:7`` → ``web:7``."""
    return arn.rsplit("/", 1)[-1] if arn else "-"


def release(dep: dict | None) -> str:
    if not dep:
        return "-"
    return dep.get("image_tag") or dep.get("version") or dep.get("commit") or dep.get("id", "-")


def services(items: list[dict], style: Style) -> str:
    rows = []
    for svc in items:
        stats = svc.get("stats") or {}
        rate = stats.get("success_rate")
        pending = svc.get("pending_approval")
        rows.append([
            svc.get("name", "-"),
            revision(svc.get("running_task_definition")) if not svc.get("ecs_error") else "ECS error",
            release(svc.get("last_good_deployment")),
            f"{release(pending)} ({pending['id']})" if pending else "-",
            svc.get("busy_with") or "-",
            f"{rate:.0%} of {stats.get('deployments', 0)}" if rate is not None else "-",
            seconds(stats.get("median_duration_seconds")),
        ])
    return table(["SERVICE", "RUNNING", "LAST GOOD", "AWAITING APPROVAL", "BUSY WITH",
                  "SUCCESS", "MEDIAN"], rows)


def deployments(items: list[dict], style: Style) -> str:
    if not items:
        return "no deployments"
    rows = [[d.get("id", "-"), d.get("service", "-"), d.get("kind", "-"),
             style.state(d.get("state")), release(d), when(d.get("created_at")),
             seconds(d.get("duration_seconds"))] for d in items]
    return table(["ID", "SERVICE", "KIND", "STATE", "RELEASE", "CREATED", "DURATION"], rows)


def timeline_line(entry: dict, style: Style) -> str:
    return f"  {when(entry.get('at'))}  {style.state(entry.get('state')):<16}  {entry.get('note', '')}"


def ordered(timeline: list[dict]) -> list[dict]:
    return sorted(timeline or [], key=lambda e: e.get("at") or "")


def deployment(dep: dict, style: Style) -> str:
    """One deployment: what, where it stands, who approved, the migration, the timeline."""
    lines = [f"{dep.get('id')}  {dep.get('service')}  {dep.get('kind')}  "
             f"{style.state(dep.get('state'))}"]
    facts = [("release", release(dep)), ("commit", dep.get("commit")),
             ("author", dep.get("author")), ("image", dep.get("image")),
             ("task definition", dep.get("task_definition_arn") and revision(dep["task_definition_arn"])),
             ("previous", dep.get("previous_task_definition_arn")
              and revision(dep["previous_task_definition_arn"])),
             ("rollback of", dep.get("rollback_of")), ("promoted from", origin_note(dep)),
             ("forced", forced_note(dep)), ("reason", dep.get("reason")),
             ("created", when(dep.get("created_at"))), ("finished", when(dep.get("finished_at"))
                                                        if dep.get("finished_at") else None),
             ("duration", seconds(dep.get("duration_seconds"))
              if dep.get("duration_seconds") is not None else None),
             ("approval wait", seconds(dep.get("approval_wait_seconds"))
              if dep.get("approval_wait_seconds") is not None else None)]
    lines += [f"  {name + ':':<17}{value}" for name, value in facts if value]
    for approval in dep.get("approvals") or []:
        comment = f" — {approval['comment']}" if approval.get("comment") else ""
        lines.append(f"  {'approval:':<17}{approval.get('decision')} by {approval.get('by')} "
                     f"via {approval.get('via')} at {when(approval.get('at'))}{comment}")
    migration = dep.get("migration")
    if migration:
        lines.append(f"  {'migration:':<17}exit {migration.get('exit_code')}"
                     + (f" ({migration['reason']})" if migration.get("reason") else ""))
        lines += [f"    | {line}" for line in migration.get("log_tail") or []]
    lines.append("  timeline:")
    lines += [timeline_line(e, style) for e in ordered(dep.get("timeline") or [])]
    return "\n".join(lines)


def origin_note(dep: dict) -> str | None:
    source = dep.get("promoted_from")
    if not source:
        return None
    return (f"{source.get('service')} {source.get('deployment')} ({source.get('version')}, "
            f"{source.get('state')} {when(source.get('finished_at'))})")


def forced_note(dep: dict) -> str | None:
    forced = dep.get("forced")
    if not forced:
        return None
    past = ", ".join(m.get("id", "?") for m in forced.get("migrations") or []) or "not known"
    return f"by {forced.get('by')} past migrations of {past}: {forced.get('reason')}"


def refusal_details(body: Any) -> list[str]:
    """Lines for what a refusal lists besides its message (e.g. migrations since the target)."""
    if not isinstance(body, dict):
        return []
    lines = []
    if body.get("error") == "migrations_since_target":
        lines.append("  to roll back anyway: the same command with --force (its --reason is recorded)")
    for item in body.get("migrations") or []:
        command = " ".join(item.get("command") or [])
        lines.append(f"  migration since the target: {item.get('id')} {item.get('version') or ''}"
                     f" `{command}` at {when(item.get('at'))}")
    return lines
