"""Approval policy: who may decide, when, and how many distinct people it takes.

Every channel (Slack button, signed link, API) calls ``decide`` with a *verified* identity
(``slack:U…``, ``github:login``, or the identity a link was issued to). The first decision that
completes the quorum, or any rejection, ends the approval; later ones get a 409.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from chalicelib.domain.model import Deployment, State, iso, parse_iso
from chalicelib.errors import BadRequest, Conflict, Forbidden

APPROVE, REJECT = "approve", "reject"


def open_window(dep: Deployment, policy, now: datetime) -> None:
    """Set when approvals open (wait_minutes) and when the request expires (expires_hours)."""
    dep.not_before = iso(now + timedelta(minutes=policy.wait_minutes)) if policy.wait_minutes else None
    dep.expires_at = iso(now + timedelta(hours=policy.expires_hours))


def is_expired(dep: Deployment, now: datetime) -> bool:
    return bool(dep.expires_at) and now >= parse_iso(dep.expires_at)


def approvers_so_far(dep: Deployment) -> list[str]:
    return [a["by"] for a in dep.approvals if a["decision"] == APPROVE]


def decide(dep: Deployment, policy, *, identity: str, via: str, decision: str, comment: str,
           now: datetime, authors: frozenset[str] = frozenset()) -> str:
    """Apply one decision; return a sentence saying what happened. Raise if it may not happen."""
    if decision not in (APPROVE, REJECT):
        raise BadRequest("decision must be 'approve' or 'reject'", code="bad_decision")
    if dep.state is not State.PENDING_APPROVAL:
        raise Conflict(_already(dep), code=f"deployment_{dep.state.value.lower()}")
    if is_expired(dep, now):
        raise Conflict(f"this approval request expired at {dep.expires_at}", code="deployment_expired")
    if policy.approvers and identity not in policy.approvers:
        raise Forbidden(f"{identity} is not an approver of {dep.service}", code="not_an_approver")
    record = {"by": identity, "via": via, "decision": decision, "comment": comment or "",
              "at": iso(now)}
    if decision == REJECT:
        dep.approvals.append(record)
        why = f": {comment}" if comment else ""
        dep.reason = f"rejected by {identity}{why}"
        dep.transition(State.REJECTED, dep.reason, now)
        return f"Rejected. {dep.service} {dep.version or dep.image_tag} will not be deployed."
    if dep.not_before and now < parse_iso(dep.not_before):
        raise Conflict(f"approvals for this deployment open at {dep.not_before} "
                       f"(wait of {policy.wait_minutes:g} minutes)", code="too_early")
    if policy.prevent_self_review and identity in authors:
        raise Forbidden("you wrote this change, so someone else must approve it",
                        code="self_review")
    done = approvers_so_far(dep)
    if identity in done:
        return f"You already approved; {len(done)} of {policy.quorum} approvals so far."
    dep.approvals.append(record)
    done.append(identity)
    if len(done) >= policy.quorum:
        dep.transition(State.APPROVED, f"approved by {', '.join(done)}", now)
        return f"Approved. {dep.service} {dep.version or dep.image_tag} is being deployed."
    dep.log(f"approval {len(done)} of {policy.quorum} by {identity}", now)
    dep.changes.append("APPROVAL_RECORDED")
    return f"Approval recorded: {len(done)} of {policy.quorum}. Waiting for more approvers."


def _already(dep: Deployment) -> str:
    words = {
        State.APPROVED: "was already approved", State.REJECTED: "was rejected",
        State.EXPIRED: "expired", State.SUPERSEDED: "was superseded by a newer push",
    }
    said = words.get(dep.state, f"is already {dep.state.value.lower().replace('_', ' ')}")
    return f"This deployment {said}; nothing was changed."
