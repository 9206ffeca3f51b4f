"""The operator's parts of services.toml: ``[service.promote]`` and top-level ``[[freeze]]`` windows.

    [service.promote]
    from = "chatbot-staging"       # a SUCCEEDED deployment there proposes the same digest here;
                                   # this service is then deployed only by promotion and rollback

    [[freeze]]
    services = ["*"]               # names, or "*" for all
    start = 2026-12-23T00:00:00+01:00  # absolute (RFC 3339, a TOML datetime or a string) …
    end = "2027-01-02T08:00:00+01:00"
    days = ["Fri"]                 # … and/or weekly: days, from/to on the wall clock of timezone
    from = "16:00"; to = "08:00"   # `to` ≤ `from` runs past midnight
    timezone = "Europe/Berlin"     # IANA name (default UTC)
    reason = "weekend"
    break_glass = ["slack:U0123", "github:octocat"]   # who may approve anyway, with a reason

Called by ``chalicelib.config.load``; errors name the file, the table and the key. Overlapping and
inverted windows are accepted (an inverted absolute window is simply never active).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, Iterable

from chalicelib.domain.freeze import DAYS, UTC, Window, zone
from chalicelib.errors import ConfigError

_IDENTITY = re.compile(r"(slack:U[A-Z0-9]+|slack:W[A-Z0-9]+|github:[A-Za-z0-9-]+)")
_FREEZE_KEYS = {"services", "start", "end", "days", "from", "to", "timezone", "reason",
                "break_glass"}
_HHMM = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")


@dataclass(frozen=True)
class Promote:
    source: str  # `from`: the service whose SUCCEEDED deployments are proposed here


def promote(label: str, body: Any) -> Promote:
    label = f"{label}: [service.promote]"
    if not isinstance(body, dict):
        raise ConfigError(f"{label}: must be a table")
    unknown = sorted(set(body) - {"from"})
    if unknown:
        raise ConfigError(f"{label}: unknown key '{unknown[0]}' (known: from)")
    source = body.get("from")
    if not isinstance(source, str) or not source:
        raise ConfigError(f"{label}: key 'from' must name a service")
    return Promote(source)


def check_promotions(path: Path, services: Iterable[Any]) -> None:
    """Every ``from`` names another configured service, and promotions never go round in a circle."""
    by_name = {s.name: s for s in services}
    for svc in by_name.values():
        if svc.promote is None:
            continue
        label = f"{path}: service {svc.name!r}: [service.promote] key 'from'"
        if svc.promote.source == svc.name:
            raise ConfigError(f"{label}: a service cannot promote from itself")
        if svc.promote.source not in by_name:
            raise ConfigError(f"{label}: no service named {svc.promote.source!r} is configured")
        seen, step = {svc.name}, by_name[svc.promote.source]
        while step.promote is not None:
            if step.name in seen:
                raise ConfigError(f"{label}: promotions go round in a circle through "
                                  f"{step.name!r}")
            seen.add(step.name)
            step = by_name.get(step.promote.source)
            if step is None:
                break


def freezes(path: Path, tables: Any, names: set[str]) -> tuple[Window, ...]:
    if tables is None:
        return ()
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise ConfigError(f"{path}: 'freeze' must be [[freeze]] tables")
    return tuple(_window(f"{path}: [[freeze]] #{i + 1}", i + 1, t, names)
                 for i, t in enumerate(tables))


def _window(label: str, index: int, table: dict, names: set[str]) -> Window:
    unknown = sorted(set(table) - _FREEZE_KEYS)
    if unknown:
        raise ConfigError(f"{label}: unknown key '{unknown[0]}' "
                          f"(known: {', '.join(sorted(_FREEZE_KEYS))})")
    services = table.get("services")
    if not isinstance(services, list) or not services or \
            not all(isinstance(s, str) and s for s in services):
        raise ConfigError(f"{label}: key 'services' must list service names or \"*\"")
    strangers = sorted(set(services) - names - {"*"})
    if strangers:
        raise ConfigError(f"{label}: key 'services': no service named {strangers[0]!r}")
    tz_name = table.get("timezone", "UTC")
    from zoneinfo import ZoneInfoNotFoundError  # here: a file without freezes never loads zoneinfo

    try:
        if not isinstance(tz_name, str) or not tz_name:
            raise ValueError
        zone(tz_name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ConfigError(f"{label}: key 'timezone' is not an IANA time zone "
                          "(e.g. \"Europe/Berlin\")") from exc
    values: dict[str, Any] = {
        "start": _instant(label, table, "start", tz_name),
        "end": _instant(label, table, "end", tz_name),
        "start_time": _wall(label, table, "from"), "end_time": _wall(label, table, "to"),
        "days": _days(label, table),
    }
    if (values["start"] is None) != (values["end"] is None):
        raise ConfigError(f"{label}: give both 'start' and 'end' (or neither)")
    if values["start"] is None and not (values["days"] or values["start_time"] or values["end_time"]):
        raise ConfigError(f"{label}: say when: 'start'/'end', or weekly 'days'/'from'/'to'")
    reason = table.get("reason", "")
    if not isinstance(reason, str) or len(reason) > 200:
        raise ConfigError(f"{label}: key 'reason' must be a string of at most 200 characters")
    glass = table.get("break_glass", [])
    if not isinstance(glass, list) or not all(isinstance(g, str) and _IDENTITY.fullmatch(g)
                                              for g in glass):
        raise ConfigError(f"{label}: key 'break_glass' must list identities "
                          "('slack:U…' or 'github:login')")
    return Window(index=index, services=frozenset(services), reason=reason, timezone=tz_name,
                  break_glass=tuple(glass), **values)


def _instant(label: str, table: dict, key: str, tz_name: str) -> datetime | None:
    raw = table.get(key)
    if raw is None:
        return None
    value = raw
    if isinstance(raw, str):
        try:
            value = datetime.fromisoformat(raw)
        except ValueError as exc:
            raise ConfigError(f"{label}: key '{key}' is not an RFC 3339 date-time "
                              "(e.g. \"2026-12-24T00:00:00+01:00\")") from exc
    elif isinstance(raw, date) and not isinstance(raw, datetime):
        value = datetime.combine(raw, time(0))
    if not isinstance(value, datetime):
        raise ConfigError(f"{label}: key '{key}' is not an RFC 3339 date-time")
    if value.tzinfo is None:  # a local date-time: read on the window's own wall clock
        value = value.replace(tzinfo=zone(tz_name))
    return value.astimezone(UTC)


def _wall(label: str, table: dict, key: str) -> time | None:
    raw = table.get(key)
    if raw is None:
        return None
    if isinstance(raw, time) and raw.tzinfo is None:
        return raw
    match = _HHMM.fullmatch(raw) if isinstance(raw, str) else None
    if not match:
        raise ConfigError(f"{label}: key '{key}' must be a time \"HH:MM\" (00:00 to 23:59)")
    return time(int(match.group(1)), int(match.group(2)))


def _days(label: str, table: dict) -> frozenset[int]:
    raw = table.get("days", [])
    if not isinstance(raw, list) or not all(isinstance(d, str) for d in raw):
        raise ConfigError(f"{label}: key 'days' must list days such as \"Fri\"")
    out = set()
    for day in raw:
        names = [d for d in DAYS if day.strip().lower()[:3] == d.lower()]
        if not names or len(day.strip()) < 3:
            raise ConfigError(f"{label}: key 'days': {day!r} is not a day "
                              f"(use {', '.join(DAYS)})")
        out.add(DAYS.index(names[0]))
    return frozenset(out)
