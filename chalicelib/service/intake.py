"""An image was pushed: create (at most) one deployment per (service, digest) and ask for approval."""
from __future__ import annotations

import logging

from chalicelib.config import ServiceConfig
from chalicelib.domain import approval, taskdef
from chalicelib.domain.model import Deployment, State, iso, new_id, push_order
from chalicelib.domain.tags import describe, may_deploy
from chalicelib.errors import Conflict
from chalicelib.service import freezes
from chalicelib.service.deps import Deps, finish, retrying
from chalicelib.service.events import ImagePushed, image_pushed
from chalicelib.service.ports import NOT_SENT, AwsError

log = logging.getLogger("slipway.intake")


def on_image_pushed(deps: Deps, event: object) -> list[str]:
    """Handle one 'ECR Image Action'; return what happened per service (for logs and tests)."""
    push = image_pushed(event)
    if push.action != "PUSH" or push.result != "SUCCESS":
        return [f"ignored: {push.action} {push.result}"]
    services = deps.config.for_repository(push.repository)
    if not services:
        return [f"ignored: repository {push.repository} is not configured"]
    # A service with [service.promote] is deployed only by promotion (and rollback), never a push.
    return [_for_service(deps, svc, push) if svc.promote is None else
            f"ignored: {svc.name} is deployed by promotion only" for svc in services]


def _for_service(deps: Deps, svc: ServiceConfig, push: ImagePushed) -> str:
    key = f"key#{svc.name}#{push.digest}"
    existing = deps.ledger.find(key)
    if existing is not None:
        return _merge_tag(deps, existing, push.tag)
    if not may_deploy(push.tag, svc.deploy_tags):
        return f"ignored: tag {push.tag!r} does not start deployments of {svc.name}"
    dep = _plan(deps, svc, push)
    stored, created = deps.ledger.create(dep, key)
    if not created:
        return _merge_tag(deps, stored, push.tag)
    _supersede_older(deps, stored)  # before anyone is asked to approve an image already outdone
    stored = deps.load(stored.id)
    deps.tell(stored, ["CREATED"] + ([stored.state.value] if stored.state.terminal else []))
    if not svc.approval.required and stored.state is State.PENDING_APPROVAL:
        auto_approve(deps, stored.id)
    return f"created {stored.id}"


def _plan(deps: Deps, svc: ServiceConfig, push: ImagePushed) -> Deployment:
    """Read the service once and decide exactly what will be registered, so approvers see it."""
    now = deps.clock()
    try:
        tags, pushed_at = deps.ecs.image_info(push.repository, push.digest)
    except AwsError as exc:  # the event's own tag is enough to go on with
        log.warning("could not list tags of %s: %s", push.digest, exc.message)
        tags, pushed_at = [], None
    tags = sorted(set(tags) | ({push.tag} if push.tag else set()))
    best, info = describe(tags)
    service = deps.ecs.describe_service(svc.cluster, svc.service)
    current_arn = service.get("taskDefinition")
    current = deps.ecs.describe_task_definition(current_arn) if current_arn else None
    image = f"{push.repository_uri}@{push.digest}"
    base = svc.template or current
    if base is None:
        raise AwsError(f"{svc.service} has no task definition to clone and no template")
    body = taskdef.pin_image(base, svc.container, image)
    deps.ecs.check_registration(body)
    breaker = (service.get("deploymentConfiguration") or {}).get("deploymentCircuitBreaker") or {}
    dep = Deployment(
        id=new_id(now), service=svc.name, kind="deploy", state=State.PENDING_APPROVAL,
        created_at=iso(now), repository=push.repository, image_tag=best, tags=tags,
        image_digest=push.digest, image=image, pushed_at=pushed_at, version=info.version,
        commit=info.commit,
        task_definition=body, diff=taskdef.diff(current, body),
        network={**deps.ecs.launch_settings(service),
                 "circuit_breaker_rollback": bool(breaker.get("rollback"))},
        previous_task_definition_arn=current_arn,
    )
    # Write-ahead: every channel that must hear of it is pending until it has (a Lambda that dies
    # before Slack answers leaves a trace the reconciler re-syncs from).
    channels = getattr(deps.notifier, "channels", lambda _: [])(svc)
    if channels:
        dep.notifications["pending"] = {c: NOT_SENT for c in channels}
    approval.open_window(dep, svc.approval, now)
    dep.log(f"image pushed as {', '.join(tags)}; waiting for approval"
            if svc.approval.required else f"image pushed as {', '.join(tags)}", now)
    return dep


def _merge_tag(deps: Deps, dep: Deployment, tag: str | None) -> str:
    """A second tag (or a redelivery) of an image we already know: record the tag, nothing else."""
    if not tag or tag in dep.tags:
        return f"duplicate of {dep.id}"

    def step() -> str:
        fresh = deps.load(dep.id)
        if tag in fresh.tags:
            return f"duplicate of {dep.id}"
        fresh.tags = sorted({*fresh.tags, tag})
        best, info = describe(fresh.tags)
        fresh.image_tag = best
        fresh.version = fresh.version or info.version
        fresh.commit = fresh.commit or info.commit
        fresh.changes.append("TAGGED")
        deps.commit(fresh)
        return f"tag {tag} added to {dep.id}"

    return retrying(step)


def _supersede_older(deps: Deps, dep: Deployment) -> None:
    """Only the newest *pushed* image goes on. ECR events arrive unordered and late (retries), so an
    older build heard of last is superseded itself: by a newer one waiting, approved or deployed."""
    recent = [d for d in deps.ledger.list(service=dep.service, limit=20)
              if d.id != dep.id and d.kind != "rollback"
              and (d.state is State.PENDING_APPROVAL or d.busy or d.state is State.SUCCEEDED)]
    newer = [d for d in recent if push_order(d) > push_order(dep)]
    if newer:
        newest = max(newer, key=push_order)
        finish(deps, dep.id, State.SUPERSEDED, f"superseded by {newest.id} ({newest.image_tag}), "
               "pushed later", only_from=State.PENDING_APPROVAL)
        return
    for older in recent:
        if older.state is State.PENDING_APPROVAL:
            finish(deps, older.id, State.SUPERSEDED, f"superseded by {dep.id} ({dep.image_tag})",
                   only_from=State.PENDING_APPROVAL)


def auto_approve(deps: Deps, dep_id: str) -> None:
    """A service without an approval gate goes straight on (unless ECS is busy with another)."""
    def step() -> None:
        dep = deps.load(dep_id)
        if dep.state is not State.PENDING_APPROVAL:
            return
        if freezes.holding(deps, dep) is not None:  # waits for the window to end (reconciler)
            log.info("auto-approval of %s waits: frozen", dep_id)
            return
        dep.approvals.append({"by": "slipway", "via": "api", "decision": "approve",
                              "comment": "approval not required", "at": iso(deps.clock())})
        dep.transition(State.APPROVED, "approval not required for this service", deps.clock())
        deps.commit(dep)
        deps.kick(dep.id)

    try:
        retrying(step)
    except Conflict as exc:  # service busy: the reconciler tries again
        log.info("auto-approval of %s deferred: %s", dep_id, exc.message)
