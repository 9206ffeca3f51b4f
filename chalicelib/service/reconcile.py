"""The safety net, run on a schedule: expire stale approvals, and finish work whose ECS event was
late or lost by asking ECS directly and advancing exactly as the missing event would have.
"""
from __future__ import annotations

import logging
from datetime import datetime

from chalicelib.domain.approval import is_expired
from chalicelib.domain.model import Deployment, State, parse_iso
from chalicelib.errors import SlipwayError
from chalicelib.service import intake, pipeline, promote, prune, steps, verify
from chalicelib.service.deps import Deps, finish
from chalicelib.service.events import DeploymentChanged, task_from_detail
from chalicelib.service.notify import resync_pending
from chalicelib.service.ports import AwsError

log = logging.getLogger("slipway.reconcile")


def reconcile(deps: Deps) -> dict[str, str]:
    """Look at every unfinished deployment once; return what was done to which (for logs/tests).
    One read of every service's head item decides which deployments need a look at all (the head
    keeps each unfinished one's state, since when, expiry and approval time): when nothing is
    stale, expiring, outranked, baking or owed, that read is the whole run."""
    done: dict[str, str] = {}
    now = deps.clock()
    heads = deps.ledger.heads([svc.name for svc in deps.config.services])  # one read for all
    wanted = {i for name, h in heads.items() for i in h.open if _worth_a_look(deps, name, h, i, now)}
    wanted |= {i for h in heads.values() for i in h.notify}  # notifications to re-sync
    read = {d.id: d for d in deps.ledger.get_many(wanted)} if wanted else {}
    open_ = {i for h in heads.values() for i in h.open}
    unfinished = [d for i, d in sorted(read.items()) if i in open_ and not d.state.terminal]
    for dep in unfinished:
        try:
            outcome = _one(deps, dep, now, heads)
        except (SlipwayError, AwsError) as exc:
            outcome = f"error: {getattr(exc, 'message', exc)}"
            log.warning("reconcile %s: %s", dep.id, outcome)
        except Exception:  # one broken deployment must not stop the others, resync or pruning
            outcome = "error: unexpected (logged)"
            log.exception("reconcile %s failed", dep.id)
        if outcome:
            done[dep.id] = outcome
    done.update(_free_stale_locks(deps, heads))
    _measure_locks(deps, heads)
    try:
        done.update(promote.catch_up(deps))  # promotions a dead Lambda never proposed
    except (SlipwayError, AwsError) as exc:
        log.warning("promotion catch-up failed: %s", getattr(exc, "message", exc))
    done.update(resync_pending(deps, heads, {i: d for i, d in read.items()
                                             if not done.get(i)}))  # Slack/GitHub, failed earlier
    done.update(verify.resume(deps, heads))  # an automatic rollback a dead worker never created
    try:
        removed = prune.resume_all(deps, heads)
        if removed:
            done["prune"] = f"deregistered {removed}"
    except AwsError as exc:
        log.warning("resuming pruning failed: %s", exc.message)
    return done


def _worth_a_look(deps: Deps, service: str, head, dep_id: str, now: datetime) -> bool:
    """Could ``_one`` do anything to this unfinished deployment? Decided from its head marks;
    a deployment whose marks were written before the head kept them is always read."""
    info = head.info.get(dep_id)
    svc = deps.config.service(service)
    if not info or svc is None:
        return info is None and svc is not None
    state = info.get("state")
    if state == State.PENDING_APPROVAL.value:
        newest = head.newest if info.get("kind") != "rollback" else None
        return bool(newest and newest.get("id") != dep_id) or not svc.approval.required or \
            bool(info.get("expires") and now >= parse_iso(info["expires"]))
    if state == State.VERIFYING.value:
        return True
    since = info.get("since")
    return not since or (now - parse_iso(since)).total_seconds() >= deps.settings.stale_seconds


def _measure_locks(deps: Deps, heads: dict) -> None:
    """How long each held service has been held, since its holder's approval (the stack's
    lock-held alarm reads this metric); from the head items this run already read."""
    for name, head in heads.items():
        approved = (head.info.get(head.lock) or {}).get("approved") if head.lock else None
        if approved:
            held = (deps.clock() - parse_iso(approved)).total_seconds()
            deps.gauge("LockHeldSeconds", name, held)


def _free_stale_locks(deps: Deps, heads: dict) -> dict[str, str]:
    """A service held by a finished (or vanished) deployment is freed: nothing can be stuck behind
    a lock whose holder crashed between its last write and the release. The head item says it
    without another read: a holder no longer among its service's unfinished deployments."""
    freed = {}
    for name, head in heads.items():
        if head.lock and head.lock not in head.open:
            deps.ledger.release_lock(name, head.lock)
            freed[f"lock:{name}"] = f"freed (held by finished {head.lock})"
    return freed


def _stale(dep: Deployment, now: datetime, seconds: float) -> bool:
    since = parse_iso(dep.state_since or dep.updated_at or dep.created_at)
    return (now - since).total_seconds() >= seconds


def _one(deps: Deps, dep: Deployment, now: datetime, heads: dict) -> str | None:
    svc = deps.config.service(dep.service)
    if svc is None:
        return None
    if dep.state is State.PENDING_APPROVAL:
        newest = heads[dep.service].newest if dep.kind != "rollback" else None
        if intake.outranked(deps, dep, newest):
            finish(deps, dep.id, State.SUPERSEDED, f"superseded by {newest.get('id')} "
                   f"({newest.get('image_tag')}), pushed later", only_from=State.PENDING_APPROVAL)
            return "superseded"
        if is_expired(dep, now):
            return _expire(deps, dep)
        if not svc.approval.required:
            intake.auto_approve(deps, dep.id)
            return "auto-approval retried"
        return None
    if dep.state is State.VERIFYING:
        return verify.check(deps, dep)  # alarms on every run; SUCCEEDED once the bake is over
    if not _stale(dep, now, deps.settings.stale_seconds):
        return None
    if steps.needed(dep) or dep.state is State.APPROVED:
        # A step whose worker died or whose message was lost: advance takes the claim over once
        # it is older than any worker runs, adopts what the dead worker started, and gives up
        # after steps.GIVE_UP attempts (never after a time: see steps.py).
        before = dep.attempts
        after = pipeline.advance(deps, dep.id)
        return "advanced" if after.attempts != before or after.state is not dep.state else None
    if dep.state is State.MIGRATING:
        return _check_migration(deps, dep, svc, now)
    if dep.state is State.DEPLOYING:
        return _check_rollout(deps, dep, svc)
    return None


def _expire(deps: Deps, dep: Deployment) -> str:
    finish(deps, dep.id, State.EXPIRED, f"nobody approved before {dep.expires_at}",
           only_from=State.PENDING_APPROVAL)
    return "expired"


def _check_migration(deps: Deps, dep: Deployment, svc, now: datetime) -> str:
    task = deps.ecs.describe_task(svc.cluster, dep.migration["task_arn"])
    if task is None:
        finish(deps, dep.id, State.FAILED, "the migration task vanished (ECS no longer knows it)")
        return "failed: task vanished"
    if task.get("lastStatus") == "STOPPED":
        result = pipeline.migration_stopped(deps, task_from_detail(task))
        return f"recovered lost task event: {result}"
    started = dep.migration.get("started_at") or dep.state_since
    limit = svc.migration.timeout_minutes * 60 if svc.migration else None
    if limit and started and (now - parse_iso(started)).total_seconds() > limit:
        deps.ecs.stop_task(svc.cluster, dep.migration["task_arn"],
                           f"Slipway: migration exceeded {svc.migration.timeout_minutes:g} minutes")
        finish(deps, dep.id, State.FAILED, f"migration timed out after "
               f"{svc.migration.timeout_minutes:g} minutes; task stopped")
        return "failed: migration timed out"
    return None


def _check_rollout(deps: Deps, dep: Deployment, svc) -> str | None:
    service = deps.ecs.describe_service(svc.cluster, svc.service)
    ours = [d for d in service.get("deployments", []) if d.get("id") == dep.ecs_deployment_id]
    running = service.get("taskDefinition")
    if not ours and running == dep.task_definition_arn and not pipeline.fresh_claim(deps, dep):
        # Our ECS deployment is gone and the service runs our revision: it completed (ECS drops
        # finished deployments; the COMPLETED event was lost or went to another id).
        ours = [{"rolloutState": "COMPLETED", "rolloutStateReason": (
            f"the service runs {running.rsplit('/', 1)[-1]} (found by the reconciler)")}]
    if not ours and running and running != dep.task_definition_arn:
        # ECS drops a failed deployment once its circuit-breaker rollback completes: the FAILED event
        # was the only trace. Gone, and the service runs something else: it did not stick.
        ours = [{"rolloutState": "FAILED", "rolloutStateReason": (
            f"ECS deployment {dep.ecs_deployment_id} is gone and the service runs "
            f"{running.rsplit('/', 1)[-1]} (found by the reconciler)")}]
    if not ours:
        return None
    state = ours[0].get("rolloutState")
    reason = ours[0].get("rolloutStateReason") or "found by the reconciler"
    events = {"COMPLETED": "SERVICE_DEPLOYMENT_COMPLETED", "FAILED": "SERVICE_DEPLOYMENT_FAILED"}
    if state not in events:
        # From the rollout's start, not DEPLOYING's: an UpdateService that succeeds on a late
        # attempt (after throttles) starts a rollout that has all its time still ahead of it.
        since = parse_iso(dep.rollout_started_at or dep.state_since or dep.updated_at
                          or dep.created_at)
        if (deps.clock() - since).total_seconds() > svc.rollout_timeout_minutes * 60:
            finish(deps, dep.id, State.FAILED, f"the rollout did not settle within "
                   f"{svc.rollout_timeout_minutes:g} minutes (ECS says {state}); the service "
                   "was left as ECS has it")
            return "failed: rollout timed out"
        return None
    change = DeploymentChanged(events[state], dep.ecs_deployment_id, reason, service.get("serviceArn"))
    result = pipeline.rollout_changed(deps, change, prune=prune.after_success)
    return f"recovered lost rollout event: {result}"
