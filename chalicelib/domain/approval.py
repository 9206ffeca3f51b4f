"""Approval policy: who may decide, when, and how many distinct people it takes.

Every channel (Slack button, signed link, API) calls ``decide`` with a *verified* identity
(``slack:U…``, ``github:login``, or the identity a link was issued to). The first decision that
completes the quorum, or any rejection, ends the approval; later ones get a 409.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Callable

from chalicelib.domain.model import Deployment, State, iso, parse_iso
from chalicelib.errors import BadRequest, Conflict, Forbidden

APPROVE, REJECT = "approve", "reject"
ANYONE = "*"  # approvers = ["*"]: anyone may approve (said out loud in the config)


def open_window(dep: Deployment, policy, now: datetime) -> None:
    """Set when approvals open (wait_minutes) and when the request expires (expires_hours)."""
    dep.not_before = iso(now + timedelta(minutes=policy.wait_minutes)) if policy.wait_minutes else None
    dep.expires_at = iso(now + timedelta(hours=policy.expires_hours))


def is_expired(dep: Deployment, now: datetime) -> bool:
    return bool(dep.expires_at) and now >= parse_iso(dep.expires_at)


def approvers_so_far(dep: Deployment) -> list[str]:
    return [a["by"] for a in dep.approvals if a["decision"] == APPROVE]


def authors_hold(dep: Deployment, policy) -> str | None:
    """Why nobody may approve yet under prevent_self_review (who wrote the change is not known:
    recorded as ``notifications["authors"]`` once GitHub said), or None."""
    notes = dep.notifications
    if not policy.prevent_self_review or dep.kind not in ("deploy", "promote") or \
            isinstance(notes.get("authors"), list):
        return None
    if not dep.commit:
        return "the image's tags name no commit, so nobody can tell who wrote it"
    return str(notes.get("authors_unknown") or
               "Slipway is still asking GitHub who wrote the commits")


def _alone(identity: str) -> frozenset[str]:
    return frozenset({identity})


def decide(dep: Deployment, policy, *, identity: str, via: str, decision: str, comment: str,
           now: datetime, authors: frozenset[str] = frozenset(),
           authors_unknown: str | None = None,
           person: Callable[[str], frozenset[str]] = _alone) -> str:
    """Apply one decision; return a sentence saying what happened. Raise if it may not happen.

    ``person(identity)`` gives every identity of the same human (services.toml ``[identities]``):
    an approver listed as ``github:octocat`` may click in Slack as their mapped ``slack:U…``, and
    one person approving through two channels still counts once towards the quorum.
    ``authors``: every identity of whoever wrote the change; ``authors_unknown``: why that cannot
    be told (then, with prevent_self_review, nobody may approve: fail closed). ``approvers``
    ``["*"]`` is anyone; no approvers at all is nobody.
    """
    if decision not in (APPROVE, REJECT):
        raise BadRequest("decision must be 'approve' or 'reject'", code="bad_decision")
    if dep.state is not State.PENDING_APPROVAL:
        raise Conflict(_already(dep), code=f"deployment_{dep.state.value.lower()}")
    if is_expired(dep, now):
        raise Conflict(f"this approval request expired at {dep.expires_at}", code="deployment_expired")
    me = person(identity)
    if ANYONE not in policy.approvers and not me & set(policy.approvers):
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
    if policy.prevent_self_review:
        _not_the_author(me, authors, authors_unknown)
    done = approvers_so_far(dep)
    people = {person(i) for i in done}
    if any(me & p for p in people):  # one person, however many aliases, counts once
        return f"You already approved; {len(people)} of {policy.quorum} approvals so far."
    dep.approvals.append(record)
    done.append(identity)
    if len(people) + 1 >= policy.quorum:
        dep.transition(State.APPROVED, f"approved by {', '.join(done)}", now)
        return f"Approved. {dep.service} {dep.version or dep.image_tag} is being deployed."
    dep.log(f"approval {len(people) + 1} of {policy.quorum} by {identity}", now)
    dep.changes.append("APPROVAL_RECORDED")
    return (f"Approval recorded: {len(people) + 1} of {policy.quorum}. "
            "Waiting for more approvers.")


def _not_the_author(me: frozenset[str], authors: frozenset[str], unknown: str | None) -> None:
    if unknown:
        raise Conflict(f"Approvals are on hold: {unknown}. Slipway asks GitHub again every few "
                       "minutes; nothing was changed.", code="authors_unknown")
    if not any(i.startswith("github:") for i in me):
        raise Forbidden("Slipway cannot tell whether you wrote this change: no [identities] "
                        "entry ties you to a GitHub login", code="self_review_unknown")
    if me & authors:
        raise Forbidden("you wrote or committed part of this change, so someone else must "
                        "approve it", code="self_review")


def _already(dep: Deployment) -> str:
    words = {
        State.APPROVED: "was already approved", State.REJECTED: "was rejected",
        State.EXPIRED: "expired", State.SUPERSEDED: "was superseded by a newer push",
    }
    said = words.get(dep.state, f"is already {dep.state.value.lower().replace('_', ' ')}")
    return f"This deployment {said}; nothing was changed."
