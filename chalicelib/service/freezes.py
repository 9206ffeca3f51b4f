"""Freeze windows at work: may this deployment be approved now, and may this person break glass?

Every approval path (Slack, signed link, auto-approval) asks ``check`` first. Rollbacks are never
frozen. Breaking glass needs a reason and an identity listed in the window's ``break_glass``; the
approval then carries ``break_glass`` (the reason), and the timeline and Slack thread say so.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from chalicelib.domain import freeze
from chalicelib.domain.model import Deployment, iso
from chalicelib.errors import Conflict, Forbidden
from chalicelib.service.deps import Deps

REASON_LIMIT = 500


@dataclass(frozen=True)
class Hold:
    window: freeze.Window
    until: datetime | None

    def view(self, service: str, person, identity: str | None) -> dict:
        """What a page shows: the window, until when, and whether this person may break glass."""
        return {"window": self.window.name, "until": iso(self.until),
                "message": freeze.frozen_message(service, self.window, self.until, person,
                                                 identity),
                "may_break_glass": bool(identity) and freeze.may_break_glass(
                    self.window, person(identity))}


def holding(deps: Deps, dep: Deployment) -> Hold | None:
    """The freeze holding ``dep`` right now (on Slipway's clock), if any."""
    if dep.kind == "rollback" or not deps.config.freezes:
        return None
    now = deps.clock()
    window = freeze.active_window(deps.config.freezes, dep.service, now)
    if window is None:
        return None
    return Hold(window, freeze.frozen_until(deps.config.freezes, dep.service, now))


def check(deps: Deps, dep: Deployment, identity: str, break_glass: str = "") -> Hold | None:
    """None when approving is not frozen; the hold when ``identity`` breaks glass; else raise
    Conflict ``frozen`` (no reason given) or Forbidden ``not_break_glass`` (not listed)."""
    hold = holding(deps, dep)
    if hold is None:
        return None
    reason = (break_glass or "").strip()
    person = deps.config.same_person
    if not reason:
        raise Conflict(freeze.frozen_message(dep.service, hold.window, hold.until, person,
                                             identity), code="frozen")
    if not freeze.may_break_glass(hold.window, person(identity)):
        raise Forbidden(f"{identity} may not break glass in {hold.window.name}; only "
                        f"{', '.join(hold.window.break_glass) or 'nobody'} may",
                        code="not_break_glass")
    return hold


def record_break_glass(deps: Deps, dep: Deployment, identity: str, reason: str,
                       hold: Hold) -> None:
    """Mark this person's new approval as breaking glass, and announce it (timeline, thread)."""
    reason = reason.strip()[:REASON_LIMIT]
    for record in reversed(dep.approvals):
        if record.get("by") == identity and record.get("decision") == "approve":
            record["break_glass"] = reason
            break
    dep.log(f"BREAK GLASS by {identity} during {freeze.describe(hold.window, hold.until)}: "
            f"{reason}", deps.clock())
    dep.changes.append("BREAK_GLASS")
