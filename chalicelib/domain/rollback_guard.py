"""The rollback guard: rolling code back past a schema migration is how outages get worse.

``migrations_since(target, history)`` lists every deployment of the service whose migration task
started after the rollback target began its own work (a failed migration counts: it may have
changed the schema half-way). The service layer refuses the rollback (409
``migrations_since_target``) while that list is non-empty, unless the operator forces it with a
reason; ``forced_record`` is what the ledger keeps of that decision. Pure: plain data in and out.
"""
from __future__ import annotations

from datetime import datetime
from typing import Iterable

from chalicelib.domain.model import Deployment, parse_iso


def migrations_since(target: Deployment, history: Iterable[Deployment],
                     command: tuple[str, ...] | None = None) -> list[dict]:
    """Oldest first: ``{id, version, command, at, state, exit_code}`` per deployment that ran a
    migration after ``target`` started (``command`` fills in records that did not keep theirs)."""
    since = parse_iso(target.approved_at() or target.created_at)
    out: list[tuple[datetime, dict]] = []
    for dep in history:
        migration = dep.migration or {}
        if dep.id == target.id or dep.service != target.service or not migration.get("task_arn"):
            continue
        started = migration.get("started_at") or dep.approved_at() or dep.created_at
        if parse_iso(started) <= since:
            continue
        ran = migration.get("command") or (list(command) if command else None)
        out.append((parse_iso(started), {
            "id": dep.id, "version": dep.version or dep.image_tag, "command": ran, "at": started,
            "state": dep.state.value, "exit_code": migration.get("exit_code")}))
    return [entry for _, entry in sorted(out, key=lambda pair: pair[0])]


def describe(migrations: list[dict]) -> str:
    """"d-… (1.23.0: pnpm db:migrate at 2026-…Z), …" for messages and the timeline."""
    parts = []
    for m in migrations:
        command = " ".join(m["command"]) if m.get("command") else "its migration"
        parts.append(f"{m['id']} ({m.get('version') or '?'}: {command} at {m['at']})")
    return ", ".join(parts)


def forced_record(by: str, reason: str, migrations: list[dict], at: str) -> dict:
    """What the ledger keeps of a rollback forced past migrations."""
    return {"by": by, "reason": reason, "at": at, "migrations": migrations}
