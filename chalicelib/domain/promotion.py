"""Promotion rules: which deployment may be proposed to the next service, and what it carries.

A promotion proposes the very digest a SUCCEEDED deployment of the source service ran (no rebuild,
no new push) to a service whose ``[service.promote] from`` names that source. Newest wins as for
pushes: an image pushed before one the target already waits for, runs or ran is never proposed.
Pure: deployments in, decisions out.
"""
from __future__ import annotations

from typing import Iterable

from chalicelib.domain.model import Deployment, State, push_order
from chalicelib.errors import BadRequest, Conflict

#: Target deployments that outrank an older image (waiting, in ECS's hands, or live).
_STANDING = frozenset({State.PENDING_APPROVAL, State.APPROVED, State.MIGRATING, State.DEPLOYING,
                       State.SUCCEEDED})


def check_source(source: Deployment, target: str, expected: str) -> None:
    """Raise unless ``source`` is a SUCCEEDED release of ``expected`` (the target's source)."""
    if source.service != expected:
        raise BadRequest(f"{source.id} is a deployment of {source.service}; {target} promotes "
                         f"from {expected}", code="wrong_source")
    if source.kind == "rollback":
        raise Conflict(f"{source.id} is a rollback; promote the deployment it returned to "
                       f"({source.rollback_of}) instead", code="not_promotable")
    if source.state is not State.SUCCEEDED or not source.image_digest:
        raise Conflict(f"{source.id} is {source.state.value}; only a SUCCEEDED deployment of "
                       f"{expected} can be promoted", code="not_promotable")


def origin(source: Deployment) -> dict:
    """What the promoted deployment keeps of its source (the approval card shows it)."""
    approved_by = list(dict.fromkeys(a["by"] for a in source.approvals
                                     if a.get("decision") == "approve"))
    return {"deployment": source.id, "service": source.service, "state": source.state.value,
            "finished_at": source.finished_at, "version": source.version or source.image_tag,
            "approved_by": approved_by}


def outranked_by(candidate: Deployment, recent: Iterable[Deployment]) -> Deployment | None:
    """The newest deployment of the target whose image was pushed after ``candidate``'s, if any."""
    newer = [d for d in recent if d.id != candidate.id and d.kind != "rollback"
             and d.state in _STANDING and push_order(d) > push_order(candidate)]
    return max(newer, key=push_order) if newer else None


def summary(dep: Deployment) -> str:
    """"promote 1.22.0-abc123d from web-staging (SUCCEEDED 14:02Z, approved by …)" for timelines."""
    source = dep.promoted_from or {}
    when = (source.get("finished_at") or "")[11:16]
    by = ", ".join(source.get("approved_by") or []) or "policy"
    return (f"promote {dep.image_tag or dep.version or dep.image_digest[:19]} from "
            f"{source.get('service')} ({source.get('state', 'SUCCEEDED')} {when} UTC, "
            f"approved by {by})")
