"""The public JSON shape of a deployment (DESIGN.md 'Deployment JSON') plus display extras."""
from __future__ import annotations

from chalicelib.config import ServiceConfig
from chalicelib.domain import approval, redact
from chalicelib.domain.model import Deployment, State

CONTRACT_KEYS = (
    "id", "service", "kind", "state", "repository", "image_tag", "image_digest", "image", "version",
    "commit", "task_definition_arn", "previous_task_definition_arn", "migration",
    "ecs_deployment_id", "approvals", "created_at", "updated_at", "finished_at", "reason",
    "timeline",
)


def deployment_json(dep: Deployment, svc: ServiceConfig | None = None) -> dict:
    out = {k: getattr(dep, k) for k in CONTRACT_KEYS}
    out["state"] = dep.state.value
    # Notes and reasons quote commands (the migration's): secret-looking parts are *** (M2).
    out["timeline"] = [{**t, "note": redact.scrub(str(t.get("note") or ""))}
                       for t in dep.timeline]
    out["reason"] = redact.scrub(dep.reason) if dep.reason else dep.reason
    if out["migration"]:
        out["migration"] = {k: dep.migration.get(k) for k in ("task_arn", "exit_code", "stop_code",
                                                               "reason", "log_note")}
        out["migration"]["log_tail"] = list(dep.migration.get("log_tail") or [])
    out.update(
        tags=list(dep.tags), diff=list(dep.diff), expires_at=dep.expires_at,
        not_before=dep.not_before, duration_seconds=dep.duration_seconds(),
        approval_wait_seconds=dep.approval_wait_seconds(),
        rollback_of=dep.rollback_of, verify=dep.verify,
        forced=dep.forced, promoted_from=dep.promoted_from,
    )
    if svc is not None:
        out.update(
            migration_command=redact.scrub_args(list(svc.migration.command)) if svc.migration and
            dep.kind != "rollback" else None,
            approvers=list(svc.approval.approvers), quorum=svc.approval.quorum,
            approval_hold=approval.authors_hold(dep, svc.approval)
            if dep.state is State.PENDING_APPROVAL else None,
            github_repository=svc.notify.github_repository,
        )
    return out
