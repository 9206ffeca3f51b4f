"""After approval: register, migrate, roll out, and follow ECS until the deployment ends.

Every ECS call is first *claimed* with a conditional write, then made, then its answer recorded
(re-reading on conflicts, so a concurrent tag merge or notifier write never loses it). A step
interrupted half-way leaves a state with a missing field (MIGRATING without a task, DEPLOYING
without an ECS deployment id); ``advance`` completes exactly that, whether it is called by the work
queue, a retry or the reconciler.
"""
from __future__ import annotations

import logging
from typing import Callable

from chalicelib.domain.model import Deployment, State, iso, parse_iso
from chalicelib.service.deps import Deps, finish, retrying
from chalicelib.service.events import (DeploymentChanged, TaskStopped, deployment_changed,
                                       task_stopped)
from chalicelib.service.ports import AwsError

log = logging.getLogger("slipway.pipeline")
STARTED_BY = "slipway/"


def advance(deps: Deps, dep_id: str) -> Deployment:
    """Do the next ECS step the deployment is waiting for, if any. Safe to call any number of times,
    from any number of places at once: each ECS call is claimed first (see ``_claim``)."""
    try:
        if deps.load(dep_id).state is State.APPROVED:
            _start(deps, dep_id)
        for step, needed, act in STEPS:
            if _claim(deps, dep_id, step, needed):
                try:
                    act(deps, deps.load(dep_id))
                except BaseException:
                    _unclaim(deps, dep_id, step)  # a redelivery may try again at once
                    raise
    except AwsError as exc:
        if exc.retryable:  # the queue redelivers; anything else fails the deployment
            raise
        finish(deps, dep_id, State.FAILED, f"ECS refused: {exc.message}")
    return deps.load(dep_id)


RUNNING = (State.MIGRATING, State.DEPLOYING)


def _start(deps: Deps, dep_id: str) -> None:
    """APPROVED → MIGRATING (or DEPLOYING when there is no migration, or for a rollback)."""
    def step() -> None:
        dep = deps.load(dep_id)
        if dep.state is not State.APPROVED:
            return
        svc = deps.service(dep.service)
        migrate = svc.migration is not None and dep.kind != "rollback"  # promotions migrate
        dep.transition(State.MIGRATING if migrate else State.DEPLOYING,
                       "running the migration" if migrate else "updating the service", deps.clock())
        deps.commit(dep)

    retrying(step)


def fresh_claim(deps: Deps, dep: Deployment) -> bool:
    """Is some worker inside an ECS call for this deployment right now?"""
    now = deps.clock()
    return any((now - parse_iso(at)).total_seconds() < deps.settings.claim_seconds
               for at in dep.claims.values())


def _claim(deps: Deps, dep_id: str, step: str, needed: Callable[[Deployment], bool]) -> bool:
    """Win the right to make one ECS call for this deployment, with a conditional write.

    Two workers (a redelivered message, the reconciler) may reach the same step at once; only the
    one whose claim lands calls ECS. A claim older than ``Settings.claim_seconds`` can be taken over, so a
    worker that died after claiming does not leave the deployment stuck.
    """
    def attempt() -> bool:
        dep = deps.load(dep_id)
        if not needed(dep):
            return False
        now = deps.clock()
        held = dep.claims.get(step)
        if held and (now - parse_iso(held)).total_seconds() < deps.settings.claim_seconds:
            return False
        dep.claims[step] = iso(now)
        deps.ledger.save(dep)
        return True

    return retrying(attempt)


def _unclaim(deps: Deps, dep_id: str, step: str) -> None:
    """Give a claim back after a failed ECS call (best effort: else it simply expires)."""
    def attempt() -> None:
        dep = deps.load(dep_id)
        if dep.claims.pop(step, None) is not None:
            deps.ledger.save(dep)

    try:
        retrying(attempt)
    except Exception:
        log.warning("could not release the %s claim of %s", step, dep_id, exc_info=True)


def _record(deps: Deps, dep_id: str, state: State, still_needed: Callable[[Deployment], bool],
            apply: Callable[[Deployment], tuple[str, ...]]) -> bool:
    """Save what ECS answered, re-reading on conflicts (other writers never make us lose it).
    False if the deployment left ``state`` meanwhile (the caller undoes what it can)."""
    def step() -> bool:
        dep = deps.load(dep_id)
        if dep.state is not state and not (state is State.MIGRATING and dep.state in RUNNING):
            log.warning("%s became %s during an ECS call; its answer is not recorded",
                        dep_id, dep.state.value)
            return False
        if still_needed(dep):
            deps.commit(dep, pointers=apply(dep))
        return True

    return retrying(step)


def _register(deps: Deps, dep: Deployment) -> None:
    arn = deps.ecs.register(dep.task_definition)
    _record(deps, dep.id, dep.state, lambda d: not d.task_definition_arn,
            lambda d: _registered(deps, d, arn))


def _registered(deps: Deps, dep: Deployment, arn: str) -> tuple[str, ...]:
    dep.task_definition_arn = arn
    dep.log(f"registered {arn}", deps.clock())
    return ()


def _run_migration(deps: Deps, dep: Deployment) -> None:
    svc = deps.service(dep.service)
    launch = {k: v for k, v in (dep.network or {}).items() if k != "circuit_breaker_rollback"}
    task_arn = deps.ecs.run_task(
        cluster=svc.cluster, task_definition=dep.task_definition_arn, container=svc.container,
        command=list(svc.migration.command), launch=launch,
        started_by=f"{STARTED_BY}{dep.id}"[:128], client_token=dep.id[:64],
    )

    def apply(d: Deployment) -> tuple[str, ...]:
        d.migration = {"task_arn": task_arn, "exit_code": None, "stop_code": None, "reason": None,
                       "started_at": iso(deps.clock()), "command": list(svc.migration.command)}
        d.log(f"migration task {task_arn.rsplit('/', 1)[-1]} started: "
              f"{' '.join(svc.migration.command)}", deps.clock())
        d.changes.append("MIGRATION_STARTED")
        return (f"task#{task_arn}",)

    if not _record(deps, dep.id, State.MIGRATING, lambda d: not (d.migration or {}).get("task_arn"),
                   apply):
        deps.ecs.stop_task(svc.cluster, task_arn, "Slipway: the deployment ended meanwhile")


def _update_service(deps: Deps, dep: Deployment) -> None:
    svc = deps.service(dep.service)
    ecs_id = deps.ecs.update_service(svc.cluster, svc.service, dep.task_definition_arn)

    def apply(d: Deployment) -> tuple[str, ...]:
        d.ecs_deployment_id = ecs_id
        d.log(f"service {svc.service} updated to {d.task_definition_arn.rsplit('/', 1)[-1]}"
              f" (ECS deployment {ecs_id})", deps.clock())
        d.changes.append("ROLLOUT_STARTED")
        return (f"ecsdep#{ecs_id}",) if ecs_id else ()

    _record(deps, dep.id, State.DEPLOYING, lambda d: not d.ecs_deployment_id, apply)


# -- the migration task stopped ------------------------------------------------------------------
def on_task_state_change(deps: Deps, event: object) -> str:
    return migration_stopped(deps, task_stopped(event))


def migration_stopped(deps: Deps, task: TaskStopped) -> str:
    return _migration_stopped(deps, task)


def _migration_stopped(deps: Deps, task: TaskStopped) -> str:
    if task.last_status != "STOPPED" or not task.started_by.startswith(STARTED_BY):
        return "ignored: not a stopped Slipway task"
    found = deps.ledger.find(f"task#{task.task_arn}")
    if found is None:
        return f"ignored: no deployment ran {task.task_arn}"

    def step() -> str:
        dep = deps.load(found.id)
        seen = f"{task.task_arn}#{task.version}"
        if dep.state is not State.MIGRATING or seen in dep.migration_events:
            return f"duplicate: {dep.id} is {dep.state.value}"
        ok, exit_code, reason = judge(dep, task)
        dep.migration = {**(dep.migration or {}), "task_arn": task.task_arn,
                         "exit_code": exit_code, "stop_code": task.stop_code, "reason": reason}
        dep.migration_events.append(seen)
        if not ok:
            dep.reason = f"migration failed: {reason}"
            dep.transition(State.FAILED, dep.reason, deps.clock())
        else:
            dep.transition(State.DEPLOYING, "migration exited 0; updating the service",
                           deps.clock())
        deps.commit(dep)  # a duplicate event finds the state moved on and stops above
        return f"{dep.id} {dep.state.value}"

    outcome = retrying(step)
    if outcome.endswith(State.DEPLOYING.value):
        advance(deps, found.id)
    return outcome


def judge(dep: Deployment, task: TaskStopped) -> tuple[bool, int | None, str]:
    """Success only if every essential container exited 0 (ECS sets no exit code if it never ran)."""
    essential = {c.get("name"): c.get("essential", True)
                 for c in (dep.task_definition or {}).get("containerDefinitions", [])}
    if task.stop_code == "TaskFailedToStart":
        why = "; ".join(f"{c.get('name')}: {c['reason']}" for c in task.containers if c.get("reason"))
        return False, None, f"task failed to start: {task.stopped_reason or why or 'no reason given'}"
    if task.stop_code != "EssentialContainerExited":
        # Stopped from outside (UserInitiated, SpotInterruption, …): a container that exits 0 on
        # SIGTERM has not necessarily finished migrating.
        codes = [c.get("exitCode") for c in task.containers]
        return False, next((c for c in codes if c), None), (
            f"the task was stopped ({task.stop_code or 'no stop code'}: "
            f"{task.stopped_reason or 'no reason given'}) before the migration finished")
    worst: int | None = 0
    problems = []
    for c in task.containers:
        if not essential.get(c.get("name"), True):
            continue
        code = c.get("exitCode")
        if code is None:
            problems.append(f"{c.get('name')} has no exit code ({c.get('reason') or 'never ran'})")
            worst = None
        elif code != 0:
            problems.append(f"{c.get('name')} exited {code}"
                            + (f" ({c['reason']})" if c.get("reason") else ""))
            worst = code if worst == 0 else worst
    if not task.containers:
        problems.append("the task reported no containers")
        worst = None
    if problems:
        stopped = f"; {task.stopped_reason}" if task.stopped_reason else ""
        return False, worst, "; ".join(problems) + stopped
    return True, 0, task.stopped_reason or "exited 0"


# -- the rollout changed ---------------------------------------------------------------------------
def on_deployment_state_change(deps: Deps, event: object, prune=None) -> str:
    return rollout_changed(deps, deployment_changed(event), prune)


def rollout_changed(deps: Deps, change: DeploymentChanged, prune=None) -> str:
    """Follow our own ECS deployment id only. A circuit breaker first fails *our* deployment
    (SERVICE_DEPLOYMENT_FAILED), then starts its rollback under a new id that is not ours: the
    rollback's own events are ignored, and a lost FAILED is found by the reconciler."""
    found = deps.ledger.find(f"ecsdep#{change.deployment_id}")
    if found is None:
        return f"ignored: {change.deployment_id} is not a Slipway rollout"
    name = change.event_name
    outcomes = {"SERVICE_DEPLOYMENT_COMPLETED": State.SUCCEEDED,
                "SERVICE_DEPLOYMENT_FAILED": (State.ROLLED_BACK if (found.network or {}).get(
                    "circuit_breaker_rollback") else State.FAILED)}

    def step() -> str:
        dep = deps.load(found.id)
        if dep.state is State.FAILED and name == "SERVICE_DEPLOYMENT_COMPLETED" and not any(
                t["note"].startswith("ECS completed the rollout after all") for t in dep.timeline):
            dep.log(f"ECS completed the rollout after all, after Slipway had given up on it "
                    f"({change.reason}); the service runs this revision", deps.clock())
            dep.changes.append("NOTE")
            deps.commit(dep)
            return f"{dep.id} late completion noted"
        if dep.state is not State.DEPLOYING:
            return f"duplicate: {dep.id} is {dep.state.value}"
        if name in outcomes:
            dep.reason = None if outcomes[name] is State.SUCCEEDED else \
                f"rollout failed: {change.reason}"
            dep.transition(outcomes[name], dep.reason or f"rollout completed: {change.reason}",
                           deps.clock())
        elif name == "SERVICE_DEPLOYMENT_IN_PROGRESS" and not any(
                t["note"].startswith("rollout in progress") for t in dep.timeline):
            dep.log(f"rollout in progress: {change.reason}", deps.clock())
        else:
            return f"{dep.id} unchanged ({name})"
        deps.commit(dep)
        return f"{dep.id} {dep.state.value}"

    outcome = retrying(step)
    if outcome == f"{found.id} {State.SUCCEEDED.value}" and prune is not None:
        prune(deps, deps.load(found.id))
    return outcome


#: The ECS steps, in order: (claim name, when it is needed, what does it).
STEPS = (
    ("register", lambda d: d.state in RUNNING and not d.task_definition_arn, _register),
    ("run_task", lambda d: d.state is State.MIGRATING and bool(d.task_definition_arn)
     and not (d.migration or {}).get("task_arn"), _run_migration),
    ("update_service", lambda d: d.state is State.DEPLOYING and bool(d.task_definition_arn)
     and not d.ecs_deployment_id, _update_service),
)


def work_message(deps: Deps, body: str) -> str:
    """One message of the work queue (see adapters/queue.py): tell people what the message says
    changed (a request that deferred it), then advance that deployment."""
    from chalicelib.service.events import BadEvent, work_message as parse

    parsed = parse(body)
    if parsed is None:
        raise BadEvent("work message has no deployment id")
    dep_id, notify = parsed
    if notify:
        deps.tell(deps.load(dep_id), notify)
    return advance(deps, dep_id).state.value
