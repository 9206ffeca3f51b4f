"""The bake (VERIFYING): Slipway's own watch after ECS reports a rollout COMPLETED. Pure decisions.

ECS watches the deployment alarms during the rollout and for a bake time it computes itself; the
bake here covers the time after it, for ``[service.verify] bake_minutes``. What a deployment
keeps in ``Deployment.verify``: ``alarms`` watched, ``bake_minutes``, ``started_at``, ``ends_at``,
and once an alarm fired ``alarm`` {name, reason, at, via} and ``rollback`` (the rollback's id).
"""
from __future__ import annotations

from datetime import datetime, timedelta

from chalicelib.domain.model import Deployment, iso, parse_iso

ALARM = "ALARM"


def begin(alarms: tuple[str, ...], bake_minutes: float, now: datetime) -> dict:
    """The bake a deployment enters when ECS says COMPLETED."""
    return {"alarms": list(alarms), "bake_minutes": bake_minutes, "started_at": iso(now),
            "ends_at": iso(now + timedelta(minutes=bake_minutes))}


def describe(verify: dict) -> str:
    """``baking until 10:35:00 UTC (5 min), watching alarms a, b``."""
    ends = parse_iso(verify["ends_at"]).strftime("%H:%M:%S UTC")
    alarms = ", ".join(verify.get("alarms") or []) or "no alarms"
    return f"baking until {ends} ({verify['bake_minutes']:g} min), watching alarms {alarms}"


def is_over(dep: Deployment, now: datetime) -> bool:
    return bool(dep.verify) and now >= parse_iso(dep.verify["ends_at"])


def firing(states: dict[str, dict], watched: list[str]) -> tuple[str, str] | None:
    """The first watched alarm in ALARM, with its reason text (states as DescribeAlarms gives)."""
    for name in watched:
        state = states.get(name) or {}
        if state.get("state") == ALARM:
            return name, state.get("reason") or "no reason given"
    return None


def rollback_reason(alarm: str, why: str, target: str, migrations: str) -> str:
    """Why the release was rolled back, and what a rollback cannot undo (``migrations``: the
    rollback guard's description of those that ran since the target, or "")."""
    reason = f"alarm {alarm} went to ALARM during the bake ({why}); rolled back to {target}"
    if migrations:
        reason += (f". Migrations ran since then ({migrations}): the database schema was NOT "
                   "rolled back")
    return reason
