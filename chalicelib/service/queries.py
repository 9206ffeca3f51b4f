"""Read-only views for the API: deployments, services with their live state, and track record."""
from __future__ import annotations

from statistics import median

from chalicelib.config import ServiceConfig
from chalicelib.domain.model import State
from chalicelib.service.ports import AwsError
from chalicelib.service.views import deployment_json
from chalicelib.errors import BadRequest
from chalicelib.service import dora
from chalicelib.service.deps import Deps

FINISHED = {State.SUCCEEDED, State.FAILED, State.ROLLED_BACK}


def list_deployments(deps: Deps, service: str | None, state: str | None, limit: int) -> list[dict]:
    if service:
        deps.service(service)
    if state and state not in State.__members__:
        raise BadRequest(f"unknown state {state!r}; one of {', '.join(State.__members__)}",
                         code="bad_parameter")
    return [deployment_json(d, deps.config.service(d.service))
            for d in deps.ledger.list(service=service, state=state, limit=limit)]


def get_deployment(deps: Deps, dep_id: str) -> dict:
    dep = deps.load(dep_id)
    return deployment_json(dep, deps.config.service(dep.service))


def service_status(deps: Deps, svc: ServiceConfig, days: float = 30) -> dict:
    history = deps.ledger.list(service=svc.name, limit=dora.HISTORY)  # the one ledger read
    recent = history[:50]
    try:
        live = deps.ecs.describe_service(svc.cluster, svc.service)
        running, ecs_error = live.get("taskDefinition"), None
    except AwsError as exc:
        running, ecs_error = None, exc.message
    good = next((d for d in recent if d.state is State.SUCCEEDED), None)
    pending = next((d for d in recent if d.state is State.PENDING_APPROVAL), None)
    finished = [d for d in recent if d.state in FINISHED and d.kind != "rollback"]
    ok = [d for d in finished if d.state is State.SUCCEEDED]
    durations = [d.duration_seconds() for d in ok if d.duration_seconds() is not None]
    return {
        "name": svc.name, "repository": svc.repository, "cluster": svc.cluster,
        "service": svc.service, "container": svc.container,
        "running_task_definition": running, "ecs_error": ecs_error,
        "busy_with": deps.ledger.lock_holder(svc.name),
        "last_good_deployment": deployment_json(good, svc) if good else None,
        "pending_approval": deployment_json(pending, svc) if pending else None,
        "approval": {"required": svc.approval.required, "approvers": list(svc.approval.approvers),
                     "quorum": svc.approval.quorum},
        "stats": {"deployments": len(finished), "succeeded": len(ok),
                  "success_rate": round(len(ok) / len(finished), 3) if finished else None,
                  "median_duration_seconds": median(durations) if durations else None},
        "dora": dora.figures(deps, svc.name, days, history),
        "recent": [_summary(d) for d in recent[:20]],
    }


def _summary(dep) -> dict:
    """One line of the service's history (the service page's timeline)."""
    return {"id": dep.id, "kind": dep.kind, "state": dep.state.value, "version": dep.version,
            "image_tag": dep.image_tag, "created_at": dep.created_at,
            "finished_at": dep.finished_at, "duration_seconds": dep.duration_seconds(),
            "approval_wait_seconds": dep.approval_wait_seconds(), "reason": dep.reason}
