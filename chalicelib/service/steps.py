"""The ECS steps after approval — register, run the migration, update the service — each made once.

One conditional write on each side of every ECS call:
    claim   ``claims[step] = now`` and ``attempts[step].n += 1`` (folded into the write that makes
            the step needed: APPROVED → MIGRATING, the migration's success, the previous answer)
    call    the ECS call. A retry of RunTask first looks for the task an earlier attempt started
            (ListTasks by ``startedBy = slipway/<deployment id>``) and adopts it; the call itself
            carries the deployment id as ``clientToken``, so ECS starts no second task either.
    record  the answer, the claim dropped, and the next step claimed, in one write.
Whoever finds a claim fresher than ``Settings.claim_seconds`` (longer than any worker runs) keeps
off; an older one belongs to a worker that died, and the next ``advance`` (queue or reconciler)
takes it over as attempt n+1, which adopts what attempt n started. Whatever the timings, the step
FAILS only when ECS refuses it, or after ``GIVE_UP`` attempts, with a reason naming the step and
ECS's last error.
"""
from __future__ import annotations

import logging
from typing import Callable

from chalicelib.domain.model import Deployment, State, iso, parse_iso
from chalicelib.service import verify
from chalicelib.service.deps import Deps, updating
from chalicelib.service.notify import checks_deferred
from chalicelib.service.ports import AwsError

log = logging.getLogger("slipway.pipeline")
STARTED_BY = "slipway/"  # + the deployment id (26 characters): within startedBy's 36
GIVE_UP = 6  # attempts of one step (each after the previous one failed or its worker died)
RUNNING = (State.MIGRATING, State.DEPLOYING)
LABELS = {"register": "RegisterTaskDefinition (registering the task definition)",
          "run_task": "RunTask (starting the migration task)",
          "update_service": "UpdateService (starting the rollout)"}


def needed(dep: Deployment) -> str | None:
    """The ECS step the deployment waits for, if any."""
    if dep.state not in RUNNING:
        return None
    if not dep.task_definition_arn:
        return "register"
    if dep.state is State.MIGRATING and not (dep.migration or {}).get("task_arn"):
        return "run_task"
    if dep.state is State.DEPLOYING and not dep.ecs_deployment_id:
        return "update_service"
    return None


def fresh_claim(deps: Deps, dep: Deployment) -> bool:
    """Is some worker inside an ECS call for this deployment right now?"""
    now = deps.clock()
    return any((now - parse_iso(at)).total_seconds() < deps.settings.claim_seconds
               for at in dep.claims.values())


def claim_into(deps: Deps, dep: Deployment) -> str | None:
    """Claim the step ``dep`` needs, in memory (the caller's next write carries it); None when
    nothing is needed or a live worker holds it. Out of attempts: the deployment FAILS instead."""
    step = needed(dep)
    if step is None:
        return None
    now = deps.clock()
    held = dep.claims.get(step)
    if held and (now - parse_iso(held)).total_seconds() < deps.settings.claim_seconds:
        return None
    tried = dict(dep.attempts.get(step) or {"n": 0})
    if tried["n"] >= GIVE_UP:
        dep.claims.pop(step, None)
        dep.reason = (f"{LABELS[step]} did not succeed in {tried['n']} attempts; ECS's last "
                      f"error: {tried.get('error') or 'none (the worker stopped before ECS answered)'}")
        dep.transition(State.FAILED, dep.reason, now)
        return None
    dep.claims[step] = iso(now)
    dep.attempts[step] = {**tried, "n": tried["n"] + 1}
    return step


def advance(deps: Deps, dep_id: str, notify: list[str] | None = None) -> Deployment:
    """Do the next ECS steps the deployment is waiting for, if any. Safe to call any number of
    times, from any number of places at once: each ECS call is claimed first. ``notify``: changes
    a request handed over to tell people about first (from the same read)."""
    def claim(dep: Deployment) -> tuple[Deployment, str | None]:
        if dep.state is State.APPROVED:
            svc = deps.service(dep.service)
            migrate = svc.migration is not None and dep.kind != "rollback"  # promotions migrate
            dep.transition(State.MIGRATING if migrate else State.DEPLOYING,
                           "running the migration" if migrate else "updating the service",
                           deps.clock())
        step = claim_into(deps, dep)
        if step is not None or dep.changes:
            deps.commit(dep)
        return dep, step

    with checks_deferred(deps):  # the write after each telling answers its check
        dep = deps.load(dep_id)
        if notify:
            deps.tell(dep, list(notify))
        dep, step = updating(deps, dep, claim)
        return run_from(deps, dep, step)


def run_from(deps: Deps, dep: Deployment, step: str | None) -> Deployment:
    """Make the claimed ``step``'s ECS call, record it, and go on with the steps that follow."""
    while step is not None:
        try:
            dep, step = ACTS[step](deps, dep, step)
        except AwsError as exc:
            dep = _attempt_failed(deps, dep.id, step, exc)
            if exc.retryable and not dep.state.terminal:
                raise  # the queue redelivers; the reconciler is the safety net
            return dep
        except BaseException:
            _attempt_failed(deps, dep.id, step, None)
            raise
    return dep


def _attempt_failed(deps: Deps, dep_id: str, step: str, exc: AwsError | None) -> Deployment:
    """Give the claim back (a redelivery may try again at once) and keep ECS's error. ECS refused:
    FAILED now; throttled or unanswered: FAILED once GIVE_UP attempts were made."""
    def attempt(dep: Deployment) -> Deployment:
        dep.claims.pop(step, None)
        tried = dict(dep.attempts.get(step) or {"n": 1})
        if exc is not None:
            tried["error"] = exc.message[:300]
        dep.attempts[step] = tried
        if exc is not None and not dep.state.terminal:
            if not exc.retryable:
                dep.reason = f"{LABELS[step]} was refused by ECS: {exc.message[:300]}"
            elif tried["n"] >= GIVE_UP:
                dep.reason = (f"{LABELS[step]} did not succeed in {tried['n']} attempts; "
                              f"ECS's last error: {exc.message[:300]}")
            if dep.reason and (not exc.retryable or tried["n"] >= GIVE_UP):
                dep.transition(State.FAILED, dep.reason, deps.clock())
        deps.commit(dep)
        return dep

    try:
        return updating(deps, deps.load(dep_id), attempt)
    except Exception:
        log.warning("could not record the failed %s of %s", step, dep_id, exc_info=True)
        return deps.load(dep_id)


def _record(deps: Deps, dep: Deployment, step: str,
            apply: Callable[[Deployment], tuple[str, ...]]) -> tuple[Deployment, str | None, bool]:
    """Save what ECS answered and claim the next step, in one write, re-reading on conflicts (other
    writers never make us lose it). ``recorded`` is False when the deployment no longer needed it
    (it ended meanwhile, or the answer is already there)."""
    def attempt(d: Deployment) -> tuple[Deployment, str | None, bool]:
        if needed(d) != step:
            if d.state.terminal:
                log.warning("%s became %s during %s; its answer is not recorded", d.id,
                            d.state.value, step)
            return d, None, not d.state.terminal
        pointers = apply(d)
        d.claims.pop(step, None)
        follow = claim_into(deps, d)
        deps.commit(d, pointers=pointers)
        return d, follow, True

    return updating(deps, dep, attempt)


def _register(deps: Deps, dep: Deployment, step: str) -> tuple[Deployment, str | None]:
    arn = deps.ecs.register(dep.task_definition)

    def apply(d: Deployment) -> tuple[str, ...]:
        d.task_definition_arn = arn
        d.log(f"registered {arn}", deps.clock())
        return ()

    dep, follow, _ = _record(deps, dep, step, apply)
    return dep, follow


def _run_migration(deps: Deps, dep: Deployment, step: str) -> tuple[Deployment, str | None]:
    svc = deps.service(dep.service)
    started_by = f"{STARTED_BY}{dep.id}"
    adopted = None
    if (dep.attempts.get(step) or {}).get("n", 1) > 1:  # an earlier attempt may have started it
        adopted = next(iter(deps.ecs.tasks_started_by(svc.cluster, started_by)), None)
    launch = {k: v for k, v in (dep.network or {}).items()
              if k not in ("circuit_breaker_rollback", "deployment_configuration")}
    task_arn = adopted or deps.ecs.run_task(
        cluster=svc.cluster, task_definition=dep.task_definition_arn, container=svc.container,
        command=list(svc.migration.command), launch=launch, started_by=started_by,
        client_token=dep.id)

    def apply(d: Deployment) -> tuple[str, ...]:
        d.migration = {"task_arn": task_arn, "exit_code": None, "stop_code": None, "reason": None,
                       "started_at": iso(deps.clock()), "command": list(svc.migration.command)}
        how = "found running (started by an earlier attempt)" if adopted else "started"
        d.log(f"migration task {task_arn.rsplit('/', 1)[-1]} {how}: "
              f"{' '.join(svc.migration.command)}", deps.clock())
        d.changes.append("MIGRATION_STARTED")
        return (f"task#{task_arn}",)

    dep, follow, recorded = _record(deps, dep, step, apply)
    if not recorded:
        deps.ecs.stop_task(svc.cluster, task_arn, "Slipway: the deployment ended meanwhile")
    return dep, follow


def _update_service(deps: Deps, dep: Deployment, step: str) -> tuple[Deployment, str | None]:
    svc = deps.service(dep.service)
    ecs_id = deps.ecs.update_service(svc.cluster, svc.service, dep.task_definition_arn,
                                     **verify.rollout_options(deps, dep))

    def apply(d: Deployment) -> tuple[str, ...]:
        d.ecs_deployment_id, d.rollout_started_at = ecs_id, iso(deps.clock())
        d.log(f"service {svc.service} updated to {d.task_definition_arn.rsplit('/', 1)[-1]}"
              f" (ECS deployment {ecs_id})", deps.clock())
        d.changes.append("ROLLOUT_STARTED")
        return (f"ecsdep#{ecs_id}",) if ecs_id else ()

    dep, follow, _ = _record(deps, dep, step, apply)
    return dep, follow


ACTS = {"register": _register, "run_task": _run_migration, "update_service": _update_service}
