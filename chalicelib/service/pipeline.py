"""Follow ECS after approval: the migration task's end and the rollout's, until the deployment ends.

The ECS calls themselves (claimed, made once, recorded) are in ``steps``; a step interrupted
half-way leaves a state with a missing field (MIGRATING without a task, DEPLOYING without an ECS
deployment id) that ``advance`` completes, whether the work queue, a retry or the reconciler calls it.
Each handler reads the deployment once and writes once; it reads again only when another writer
got there first.
"""
from __future__ import annotations

import logging

from chalicelib.domain.model import Deployment, State
from chalicelib.domain.prune import owed as prune_owed
from chalicelib.service import migration_logs, verify
from chalicelib.service.deps import Deps, updating
from chalicelib.service.notify import checks_deferred
from chalicelib.service.steps import (RUNNING, STARTED_BY, advance, claim_into, fresh_claim,
                                      run_from)
from chalicelib.service.events import (DeploymentChanged, TaskStopped, deployment_changed,
                                       task_stopped)

log = logging.getLogger("slipway.pipeline")
__all__ = ["advance", "fresh_claim", "STARTED_BY", "RUNNING"]


# -- the migration task stopped ------------------------------------------------------------------
def on_task_state_change(deps: Deps, event: object) -> str:
    return migration_stopped(deps, task_stopped(event))


def migration_stopped(deps: Deps, task: TaskStopped) -> str:
    return _migration_stopped(deps, task)


def _migration_stopped(deps: Deps, task: TaskStopped) -> str:
    """Judge the migration by its STOPPED event. The deployment is found by the task's
    ``startedBy`` (``slipway/<deployment id>``), so the event of a task whose start was never
    recorded (the worker died after RunTask) is matched and the task adopted, not dropped."""
    if task.last_status != "STOPPED" or not task.started_by.startswith(STARTED_BY):
        return "ignored: not a stopped Slipway task"
    dep = deps.ledger.get(task.started_by[len(STARTED_BY):]) or \
        deps.ledger.find(f"task#{task.task_arn}")
    if dep is None:
        return f"ignored: no deployment ran {task.task_arn}"
    follow: list[str | None] = [None]
    output = migration_logs.read(deps, dep, task.task_arn) \
        if dep.state is State.MIGRATING else {}  # its last lines, read once before the write

    def step(dep: Deployment) -> tuple[Deployment, str]:
        known = (dep.migration or {}).get("task_arn")
        if known and known != task.task_arn:
            return dep, f"ignored: {task.task_arn} is not the migration task of {dep.id}"
        seen = f"{task.task_arn}#{task.version}"
        if dep.state is not State.MIGRATING or seen in dep.migration_events:
            return dep, f"duplicate: {dep.id} is {dep.state.value}"
        ok, exit_code, reason = judge(dep, task)
        if not known:
            svc = deps.config.service(dep.service)
            if svc and svc.migration:
                dep.migration = {**(dep.migration or {}), "command": list(svc.migration.command)}
            dep.claims.pop("run_task", None)
            dep.log(f"migration task {task.task_arn.rsplit('/', 1)[-1]} adopted from its "
                    "STOPPED event (its start was never recorded)", deps.clock())
        dep.migration = {**(dep.migration or {}), "task_arn": task.task_arn,
                         "exit_code": exit_code, "stop_code": task.stop_code, "reason": reason,
                         **output}
        dep.migration_events.append(seen)
        if not ok:
            dep.reason = f"migration failed: {reason}"
            dep.transition(State.FAILED, dep.reason, deps.clock())
        else:
            dep.transition(State.DEPLOYING, "migration exited 0; updating the service",
                           deps.clock())
        follow[0] = claim_into(deps, dep)  # UpdateService, claimed in the same write
        deps.commit(dep, pointers=() if known else (f"task#{task.task_arn}",))
        return dep, f"{dep.id} {dep.state.value}"

    with checks_deferred(deps):  # UpdateService's record answers the DEPLOYING telling
        dep, outcome = updating(deps, dep, step)
        if follow[0] is not None and outcome.endswith(State.DEPLOYING.value):
            run_from(deps, dep, follow[0])
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
    rollback's own events are ignored, and a lost FAILED is found by the reconciler.
    SERVICE_DEPLOYMENT_IN_PROGRESS changes nothing Slipway keeps (DEPLOYING already says the
    rollout runs): it is acknowledged without a ledger call."""
    if change.event_name == "SERVICE_DEPLOYMENT_IN_PROGRESS":
        return f"ignored: {change.deployment_id} in progress (nothing to record)"
    # One read: the pointer keeps the deployment as UpdateService's record wrote it; the write
    # below is conditional on that version (a stale copy costs a failed write and a read).
    found = deps.ledger.snapshot(f"ecsdep#{change.deployment_id}")
    if found is None or found.ecs_deployment_id != change.deployment_id:
        return f"ignored: {change.deployment_id} is not a Slipway rollout"
    name = change.event_name
    outcomes = {"SERVICE_DEPLOYMENT_COMPLETED": State.SUCCEEDED,
                "SERVICE_DEPLOYMENT_FAILED": (State.ROLLED_BACK if (found.network or {}).get(
                    "circuit_breaker_rollback") or verify.ecs_rolls_back(deps, found)
                    else State.FAILED)}

    def step(dep: Deployment) -> str:
        if dep.state is State.FAILED and name == "SERVICE_DEPLOYMENT_COMPLETED" and not any(
                t["note"].startswith("ECS completed the rollout after all") for t in dep.timeline):
            dep.log(f"ECS completed the rollout after all, after Slipway had given up on it "
                    f"({change.reason}); the service runs this revision", deps.clock())
            dep.changes.append("NOTE")
            deps.commit(dep)
            return f"{dep.id} late completion noted"
        if dep.state is not State.DEPLOYING:
            return f"duplicate: {dep.id} is {dep.state.value}"
        owed = None
        if outcomes.get(name) is State.SUCCEEDED and verify.bakes(deps, dep):
            verify.enter(deps, dep, change.reason)  # VERIFYING: the bake decides, not ECS
        elif name in outcomes:
            dep.reason = None if outcomes[name] is State.SUCCEEDED else \
                f"rollout failed: {change.reason}"
            dep.transition(outcomes[name], dep.reason or f"rollout completed: {change.reason}",
                           deps.clock())
            if dep.state is State.SUCCEEDED:  # recorded as owed in this very write (row 8)
                svc = deps.config.service(dep.service)
                owed = prune_owed(dep.task_definition_arn, dep.tags,
                                  svc.prune.only_tags if svc else None) if prune else None
        else:
            return f"{dep.id} unchanged ({name})"
        deps.commit(dep, prune=owed)
        latest[0] = dep
        return f"{dep.id} {dep.state.value}"

    latest = [found]
    outcome = updating(deps, found, step)
    if outcome == f"{found.id} {State.VERIFYING.value}":
        return verify.first_look(deps, found.id)
    done = outcome == f"{found.id} {State.SUCCEEDED.value}"
    if prune is not None and (done or (name == "SERVICE_DEPLOYMENT_COMPLETED" and outcome ==
                                       f"duplicate: {found.id} is {State.SUCCEEDED.value}")):
        if done:
            prune(deps, latest[0])  # as just written
        else:  # a retry of the event resumes pruning still owed
            prune(deps, deps.load(found.id), owed_only=True)
    return outcome


def work_message(deps: Deps, body: str) -> str:
    """One message of the work queue (see adapters/queue.py): tell people what the message says
    changed (a request that deferred it), then advance that deployment."""
    from chalicelib.service.events import BadEvent, work_message as parse

    parsed = parse(body)
    if parsed is None:
        raise BadEvent("work message has no deployment id")
    dep_id, notify = parsed
    return advance(deps, dep_id, notify).state.value
