"""An image was pushed: create (at most) one deployment per (service, digest) and ask for approval."""
from __future__ import annotations

import copy
import logging

from chalicelib.config import ServiceConfig
from chalicelib.domain import approval, taskdef
from chalicelib.domain.model import Deployment, Head, State, iso, new_id, push_order
from chalicelib.domain.tags import describe, may_deploy
from chalicelib.errors import Conflict
from chalicelib.service import freezes
from chalicelib.service.deps import Deps, retrying
from chalicelib.service.events import ImagePushed, image_pushed
from chalicelib.service.ports import NOT_SENT, AwsError

log = logging.getLogger("slipway.intake")
SUPERSEDED_UNTOLD = "superseded; not told yet"
GONE = frozenset({"ImageNotFoundException", "RepositoryNotFoundException"})


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
    seen, head = deps.ledger.seen_and_head(key, svc.name)  # one read: dedupe key and head
    if seen is not None:
        return _merge_tag(deps, seen, push.tag)
    if not may_deploy(push.tag, svc.deploy_tags):
        return f"ignored: tag {push.tag!r} does not start deployments of {svc.name}"
    planned = _plan(deps, svc, push)
    if planned is None:
        return f"ignored: {push.digest} is no longer in {push.repository}"
    stored, created, older = create_newest_wins(deps, planned, key, head)
    if not created:
        return _merge_tag(deps, (stored.id, stored.tags), push.tag)
    tell_superseded(deps, older)
    deps.tell(stored, ["CREATED"] + ([stored.state.value] if stored.state.terminal else []))
    if not svc.approval.required and stored.state is State.PENDING_APPROVAL:
        auto_approve(deps, stored.id)
    return f"created {stored.id}"


def tell_superseded(deps: Deps, older: list[Deployment]) -> None:
    """Tell people about the pending deployments a newer image superseded (in the same write)."""
    for done in older:
        changes, done.changes = done.changes, []
        deps.tell(done, changes)


def create_newest_wins(deps: Deps, planned: Deployment, key: str,
                       head: Head | None = None) -> tuple[Deployment, bool, list[Deployment]]:
    """Only the newest *pushed* image goes on (``push_order``: ECR's push time, then the version,
    then the digest; never arrival). Decided against the service's head item and written in ONE
    transaction conditional on it: the new deployment, and every older pending one it supersedes.
    An older build heard of last is created SUPERSEDED. Nothing can be left half-done: a failed
    write changes nothing and the event is retried; a lost answer is recognised by the id.
    ``head``: the head as the caller read it (the first decision uses it; a retry reads again)."""
    svc = deps.service(planned.service)
    read = [head] if head is not None else []

    def step() -> tuple[Deployment, bool, list[Deployment]]:
        dep = copy.deepcopy(planned)
        head = read.pop() if read else deps.ledger.head(dep.service)
        dep.base = head.deployed  # the self-review's base commit, without asking the ledger again
        now = deps.clock()
        newest = head.newest
        older: list[Deployment] = []
        if outranked(deps, dep, newest):
            dep.reason = (f"superseded by {newest.get('id')} ({newest.get('image_tag')}), "
                          "pushed later")
            dep.transition(State.SUPERSEDED, dep.reason, now)
        else:
            for other_id in sorted(head.open):
                other = deps.ledger.get(other_id)
                if other is None or other.kind == "rollback" \
                        or other.state is not State.PENDING_APPROVAL:
                    continue  # approved or running: it finishes, then this one waits its turn
                other.reason = f"superseded by {dep.id} ({dep.image_tag})"
                other.transition(State.SUPERSEDED, other.reason, now)
                pending = other.notifications.setdefault("pending", {})
                for channel in _channels(deps, svc):  # write-ahead: re-synced if we die now
                    pending.setdefault(channel, SUPERSEDED_UNTOLD)
                older.append(other)
        stored, created = deps.ledger.create(dep, key, expect_head=head.version, also=older)
        return stored, created, older if created else []

    return retrying(step)


def outranked(deps: Deps, dep: Deployment, newest: dict | None) -> bool:
    """Is the service's newest push (its head) newer than ``dep`` and still in the running:
    waiting, being deployed or deployed? A newer image that was rejected, expired or failed does
    not keep an older one from being proposed (it never ran)."""
    if not newest or newest.get("id") == dep.id or push_order(newest) <= push_order(dep):
        return False
    holder = deps.ledger.get(newest["id"])
    return holder is not None and (holder.state is State.PENDING_APPROVAL or holder.busy
                                   or holder.state is State.SUCCEEDED)


def _channels(deps: Deps, svc: ServiceConfig) -> list[str]:
    return getattr(deps.notifier, "channels", lambda _: [])(svc)


def _plan(deps: Deps, svc: ServiceConfig, push: ImagePushed) -> Deployment | None:
    """Read the service once and decide exactly what will be registered, so approvers see it.
    None when the image is gone from ECR (deleted since the push)."""
    now = deps.clock()
    try:
        tags, pushed_at = deps.ecs.image_info(push.repository, push.digest)
    except AwsError as exc:
        if exc.code in GONE:
            return None
        raise  # throttled: the event is retried (never ordered by when it arrived)
    if not pushed_at:
        raise AwsError(f"ECR did not say when {push.digest} was pushed; retrying", code=None)
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
                 "circuit_breaker_rollback": bool(breaker.get("rollback")),
                 "deployment_configuration": service.get("deploymentConfiguration") or {}},
        previous_task_definition_arn=current_arn,
    )
    # Write-ahead: every channel that must hear of it is pending until it has (a Lambda that dies
    # before Slack answers leaves a trace the reconciler re-syncs from).
    channels = _channels(deps, svc)
    if channels:
        dep.notifications["pending"] = {c: NOT_SENT for c in channels}
    approval.open_window(dep, svc.approval, now)
    dep.log(f"image pushed as {', '.join(tags)}; waiting for approval"
            if svc.approval.required else f"image pushed as {', '.join(tags)}", now)
    return dep


def _merge_tag(deps: Deps, seen: tuple[str, list[str]], tag: str | None) -> str:
    """A second tag (or a redelivery) of an image we already know: record the tag, nothing else."""
    dep_id, tags = seen
    if not tag or tag in tags:
        return f"duplicate of {dep_id}"

    def step() -> str:
        fresh = deps.load(dep_id)
        if tag in fresh.tags:
            return f"duplicate of {dep_id}"
        fresh.tags = sorted({*fresh.tags, tag})
        best, info = describe(fresh.tags)
        fresh.image_tag = best
        fresh.version = fresh.version or info.version
        fresh.commit = fresh.commit or info.commit
        fresh.changes.append("TAGGED")
        deps.commit(fresh, pointers=(f"key#{fresh.service}#{fresh.image_digest}",))
        return f"tag {tag} added to {dep_id}"

    return retrying(step)


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
