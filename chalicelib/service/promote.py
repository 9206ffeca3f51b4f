"""Promotion: a SUCCEEDED deployment of one service proposes the very same digest to the next.

    propose(deps, "web", source_id)   POST /services/web/promote: 201, or 409 saying what to do
    Trigger(deps)                     a Notifier: the source's SUCCEEDED proposes at once
    catch_up(deps)                    the reconciler: proposals a dead Lambda never made

A promotion is planned exactly as a push would be (``intake._plan``: the target's own task
definition or template, diff, launch settings, approval window), then waits for the target's own
approval policy. Each source deployment is proposed to a target once (ledger key
``promote#<target>#<source id>``); after that proposal ended without success, an explicit request
may propose it again. The digest must exist in the target's repository (DescribeImages): a target
may share its source's repository or receive the image by ECR replication.
"""
from __future__ import annotations

import logging

from chalicelib.config import ServiceConfig
from chalicelib.domain import promotion
from chalicelib.domain.model import Deployment, State
from chalicelib.errors import Conflict, NotFound, SlipwayError
from chalicelib.service import intake
from chalicelib.service.deps import Deps
from chalicelib.service.events import ImagePushed
from chalicelib.service.ports import AwsError

log = logging.getLogger("slipway.promote")
_RETRIES = 5  # explicit re-proposals of one source deployment to one target


def propose(deps: Deps, target: str, source_id: str, *, explicit: bool = True) -> Deployment:
    """Propose ``source_id``'s digest to ``target``; return the new deployment (PENDING_APPROVAL,
    or already approved when the target needs no approval)."""
    svc = deps.service(target)
    if svc.promote is None:
        raise Conflict(f"{svc.name} has no [service.promote]: pushes to {svc.repository} deploy "
                       "it", code="not_promoted")
    if not isinstance(source_id, str) or not source_id:
        raise NotFound("no deployment given", code="unknown_deployment")
    source = deps.load(source_id)
    promotion.check_source(source, svc.name, svc.promote.source)
    key = _free_key(deps, svc, source, explicit)
    _require_image(deps, svc, source)
    dep = _plan(deps, svc, source)
    recent = deps.ledger.list(service=svc.name, limit=20)
    newer = promotion.outranked_by(dep, recent)
    if explicit and newer is not None:
        raise Conflict(f"{svc.name} already has {newer.id} ({newer.image_tag}, "
                       f"{newer.state.value}), built from a newer image; roll back instead to "
                       "return to an older release", code="older_than_current")
    # newest wins, exactly as for pushes: decided on the head item, one transaction
    stored, created, older = intake.create_newest_wins(deps, dep, key)
    if not created:
        if explicit:
            raise _already(stored)
        return stored
    intake.tell_superseded(deps, older)
    deps.tell(stored, ["CREATED"] + ([stored.state.value] if stored.state.terminal else []))
    if not svc.approval.required and stored.state is State.PENDING_APPROVAL:
        intake.auto_approve(deps, stored.id)
        stored = deps.load(stored.id)
    return stored


def _free_key(deps: Deps, svc: ServiceConfig, source: Deployment, explicit: bool) -> str:
    """The ledger key of this proposal: one per (target, source); an explicit request may
    propose again once every earlier proposal has ended without success."""
    key = f"promote#{svc.name}#{source.id}"
    for _ in range(_RETRIES):
        earlier = deps.ledger.find(key)
        if earlier is None:
            return key
        if not explicit or not earlier.state.terminal or earlier.state is State.SUCCEEDED:
            raise _already(earlier)
        key = f"promote#{svc.name}#{source.id}#after#{earlier.id}"
    raise Conflict(f"{source.id} was proposed to {svc.name} {_RETRIES} times already; push a new "
                   "build instead", code="already_proposed")


def _already(dep: Deployment) -> Conflict:
    return Conflict(f"this release was already proposed to {dep.service} as {dep.id} "
                    f"({dep.state.value})", code="already_proposed")


def _require_image(deps: Deps, svc: ServiceConfig, source: Deployment) -> None:
    """The digest must be in the target's repository: fail closed when ECR cannot say."""
    try:
        deps.ecs.image_info(svc.repository, source.image_digest)
    except AwsError as exc:
        if exc.retryable:
            raise
        if exc.code in ("ImageNotFoundException", "RepositoryNotFoundException"):
            raise Conflict(
                f"image {source.image_digest} ({source.image_tag}) is not in the ECR repository "
                f"{svc.repository}: push that digest there, or replicate {source.repository} "
                "into it (ECR replication), then promote again", code="image_not_in_repository"
            ) from exc
        raise Conflict(f"ECR could not confirm that {svc.repository} holds "
                       f"{source.image_digest}: {exc.message}", code="image_unknown") from exc


def _plan(deps: Deps, svc: ServiceConfig, source: Deployment) -> Deployment:
    """Plan it as a push of the digest into the target's repository would be."""
    host = source.image.split("/", 1)[0]  # <account>.dkr.ecr.<region>.amazonaws.com
    parts = host.split(".")
    account, region = parts[0], (parts[3] if len(parts) > 3 else "")
    push = ImagePushed(event_id=f"promote-{source.id}", account=account, region=region,
                       repository=svc.repository, digest=source.image_digest,
                       tag=source.image_tag, action="PUSH", result="SUCCESS")
    dep = intake._plan(deps, svc, push)
    dep.kind = "promote"
    dep.version = dep.version or source.version
    dep.commit = dep.commit or source.commit
    dep.promoted_from = promotion.origin(source)
    # Who wrote it (prevent_self_review) is asked of GitHub for this service's own range: the
    # commits since *its* last success, which may be more than the source's.
    dep.timeline = []
    dep.log(promotion.summary(dep) + ("; waiting for approval" if svc.approval.required else ""),
            deps.clock())
    return dep


# -- automatic proposals ---------------------------------------------------------------------------
def targets_of(deps: Deps, source: str) -> list[ServiceConfig]:
    return [s for s in deps.config.services if s.promote and s.promote.source == source]


def after_success(deps: Deps, dep: Deployment) -> list[str]:
    """Propose a SUCCEEDED deployment to every service promoted from its service."""
    if dep.state is not State.SUCCEEDED or dep.kind == "rollback":
        return []
    out = []
    for svc in targets_of(deps, dep.service):
        try:
            made = propose(deps, svc.name, dep.id, explicit=False)
            out.append(f"proposed {dep.id} to {svc.name} as {made.id}")
        except (SlipwayError, AwsError) as exc:  # the reconciler tries again (replication lag)
            log.warning("promotion of %s to %s not proposed: %s", dep.id, svc.name,
                        getattr(exc, "message", exc))
            out.append(f"not proposed to {svc.name}: {getattr(exc, 'message', exc)}")
    return out


class Trigger:
    """A Notifier that proposes promotions the moment a source deployment SUCCEEDS."""

    def __init__(self, deps: Deps):
        self._deps = deps

    def changed(self, dep: Deployment, changes: list[str]) -> None:
        if State.SUCCEEDED.value in changes and targets_of(self._deps, dep.service):
            after_success(self._deps, dep)


def catch_up(deps: Deps) -> dict[str, str]:
    """Propose the newest success of each source not yet proposed (a Lambda that died between
    the SUCCEEDED write and the proposal, or an image ECR replication had not copied yet)."""
    done: dict[str, str] = {}
    for svc in deps.config.services:
        if svc.promote is None:
            continue
        newest = deps.ledger.list(service=svc.promote.source, state=State.SUCCEEDED.value,
                                  limit=1)
        if not newest or newest[0].kind == "rollback" or \
                deps.ledger.find(f"promote#{svc.name}#{newest[0].id}") is not None:
            continue
        try:
            made = propose(deps, svc.name, newest[0].id, explicit=False)
            done[f"promote:{svc.name}"] = f"proposed {newest[0].id} as {made.id}"
        except (SlipwayError, AwsError) as exc:
            done[f"promote:{svc.name}"] = f"not proposed: {getattr(exc, 'message', exc)}"
    return done
