"""After approval: register, migrate, roll out, and follow ECS until the deployment ends.

Every step first *claims* the next state with a conditional write, then calls ECS, then records the
result. A step interrupted half-way leaves a state with a missing field (MIGRATING without a task,
DEPLOYING without an ECS deployment id); ``advance`` completes exactly that, whether it is called by
the worker queue, a retry or the reconciler.
"""
from __future__ import annotations

import logging

from chalicelib.adapters.errors import AwsError
from chalicelib.domain.model import Deployment, State
from chalicelib.errors import ConcurrentUpdate
from chalicelib.service.deps import Deps, finish
from chalicelib.service.events import (DeploymentChanged, TaskStopped, deployment_changed,
                                       task_stopped)

log = logging.getLogger("slipway.pipeline")
STARTED_BY = "slipway/"


def advance(deps: Deps, dep_id: str) -> Deployment:
    """Do the next ECS step the deployment is waiting for, if any. Safe to call any number of times."""
    dep = deps.load(dep_id)
    try:
        if dep.state is State.APPROVED:
            svc = deps.service(dep.service)
            migrate = svc.migration is not None and dep.kind == "deploy"
            dep.transition(State.MIGRATING if migrate else State.DEPLOYING,
                           "running the migration" if migrate else "updating the service",
                           deps.clock())
            deps.commit(dep)  # the claim: a concurrent advance loses here
        if dep.state in (State.MIGRATING, State.DEPLOYING) and not dep.task_definition_arn:
            dep.task_definition_arn = deps.ecs.register(dep.task_definition)
            dep.log(f"registered {dep.task_definition_arn}", deps.clock())
            deps.commit(dep)
        if dep.state is State.MIGRATING and not (dep.migration or {}).get("task_arn"):
            _run_migration(deps, dep)
        if dep.state is State.DEPLOYING and not dep.ecs_deployment_id:
            _update_service(deps, dep)
    except ConcurrentUpdate:
        log.info("%s: another worker is on it", dep_id)
    except AwsError as exc:
        if exc.retryable:  # the queue redelivers; anything else fails the deployment
            raise
        finish(deps, dep_id, State.FAILED, f"ECS refused: {exc.message}")
    return deps.load(dep_id)


def _run_migration(deps: Deps, dep: Deployment) -> None:
    svc = deps.service(dep.service)
    launch = {k: v for k, v in (dep.network or {}).items() if k != "circuit_breaker_rollback"}
    task_arn = deps.ecs.run_task(
        cluster=svc.cluster, task_definition=dep.task_definition_arn, container=svc.container,
        command=list(svc.migration.command), launch=launch,
        started_by=f"{STARTED_BY}{dep.id}"[:128], client_token=dep.id[:64],
    )
    dep.migration = {"task_arn": task_arn, "exit_code": None, "stop_code": None, "reason": None,
                     "started_at": deps.clock().isoformat()}
    dep.log(f"migration task {task_arn.rsplit('/', 1)[-1]} started: "
            f"{' '.join(svc.migration.command)}", deps.clock())
    dep.changes.append("MIGRATION_STARTED")
    deps.commit(dep, pointers=(f"task#{task_arn}",))


def _update_service(deps: Deps, dep: Deployment) -> None:
    svc = deps.service(dep.service)
    ecs_id = deps.ecs.update_service(svc.cluster, svc.service, dep.task_definition_arn)
    dep.ecs_deployment_id = ecs_id
    dep.log(f"service {svc.service} updated to {dep.task_definition_arn.rsplit('/', 1)[-1]}"
            f" (ECS deployment {ecs_id})", deps.clock())
    dep.changes.append("ROLLOUT_STARTED")
    deps.commit(dep, pointers=(f"ecsdep#{ecs_id}",) if ecs_id else ())


# -- the migration task stopped ------------------------------------------------------------------
def on_task_state_change(deps: Deps, event: object) -> str:
    return migration_stopped(deps, task_stopped(event))


def migration_stopped(deps: Deps, task: TaskStopped) -> str:
    try:
        return _migration_stopped(deps, task)
    except ConcurrentUpdate:
        return "duplicate: another invocation handled this task"


def _migration_stopped(deps: Deps, task: TaskStopped) -> str:
    if task.last_status != "STOPPED" or not task.started_by.startswith(STARTED_BY):
        return "ignored: not a stopped Slipway task"
    dep = deps.ledger.find(f"task#{task.task_arn}")
    if dep is None:
        return f"ignored: no deployment ran {task.task_arn}"
    seen = f"{task.task_arn}#{task.version}"
    if dep.state is not State.MIGRATING or seen in dep.migration_events:
        return f"duplicate: {dep.id} is {dep.state.value}"
    ok, exit_code, reason = judge(dep, task)
    dep.migration = {**(dep.migration or {}), "task_arn": task.task_arn, "exit_code": exit_code,
                     "stop_code": task.stop_code, "reason": reason}
    dep.migration_events.append(seen)
    now = deps.clock()
    if not ok:
        dep.reason = f"migration failed: {reason}"
        dep.transition(State.FAILED, dep.reason, now)
        deps.commit(dep)
        return f"{dep.id} FAILED"
    dep.transition(State.DEPLOYING, "migration exited 0; updating the service", now)
    deps.commit(dep)  # claim before touching the service: a duplicate event loses here
    advance(deps, dep.id)
    return f"{dep.id} DEPLOYING"


def judge(dep: Deployment, task: TaskStopped) -> tuple[bool, int | None, str]:
    """Success only if every essential container exited 0 (ECS sets no exit code if it never ran)."""
    essential = {c.get("name"): c.get("essential", True)
                 for c in (dep.task_definition or {}).get("containerDefinitions", [])}
    if task.stop_code == "TaskFailedToStart":
        why = "; ".join(f"{c.get('name')}: {c['reason']}" for c in task.containers if c.get("reason"))
        return False, None, f"task failed to start: {task.stopped_reason or why or 'no reason given'}"
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
    try:
        return _rollout_changed(deps, change, prune)
    except ConcurrentUpdate:
        return "duplicate: another invocation handled this rollout event"


def _rollout_changed(deps: Deps, change: DeploymentChanged, prune=None) -> str:
    dep = deps.ledger.find(f"ecsdep#{change.deployment_id}")
    if dep is None and "rolling back" in change.reason and change.service_arn:
        dep = _deploying_on(deps, change.service_arn)
        if dep is not None:
            finish(deps, dep.id, State.ROLLED_BACK, f"ECS circuit breaker rolled back: {change.reason}")
            return f"{dep.id} ROLLED_BACK"
    if dep is None:
        return f"ignored: {change.deployment_id} is not a Slipway rollout"
    if dep.state is not State.DEPLOYING:
        return f"duplicate: {dep.id} is {dep.state.value}"
    name = change.event_name
    if name == "SERVICE_DEPLOYMENT_COMPLETED":
        dep.transition(State.SUCCEEDED, f"rollout completed: {change.reason}".strip(": "),
                       deps.clock())
        deps.commit(dep)
        if prune is not None:
            prune(deps, dep)
        return f"{dep.id} SUCCEEDED"
    if name == "SERVICE_DEPLOYMENT_FAILED":
        rolled = (dep.network or {}).get("circuit_breaker_rollback")
        finish(deps, dep.id, State.ROLLED_BACK if rolled else State.FAILED,
               f"rollout failed: {change.reason}")
        return f"{dep.id} {'ROLLED_BACK' if rolled else 'FAILED'}"
    if name == "SERVICE_DEPLOYMENT_IN_PROGRESS":
        if not any(t["note"].startswith("rollout in progress") for t in dep.timeline):
            dep.log(f"rollout in progress: {change.reason}", deps.clock())
            deps.commit(dep)
        return f"{dep.id} in progress"
    return f"ignored: {name}"


def _deploying_on(deps: Deps, service_arn: str) -> Deployment | None:
    """The deployment ECS is rolling out on ``…:service/<cluster>/<service>``, if it is ours."""
    parts = service_arn.rsplit("/", 2)
    for svc in deps.config.services:
        if len(parts) == 3 and parts[1:] == [svc.cluster, svc.service] or parts[-1] == svc.service:
            holder = deps.ledger.lock_holder(svc.name)
            dep = deps.ledger.get(holder) if holder else None
            if dep is not None and dep.state is State.DEPLOYING:
                return dep
    return None


def work_message(deps: Deps, body: str) -> str:
    """One message of the work queue (see adapters/queue.py): tell people what the message says
    changed (a request that deferred it), then advance that deployment."""
    from chalicelib.adapters.queue import parse_message
    from chalicelib.service.events import BadEvent

    parsed = parse_message(body)
    if parsed is None:
        raise BadEvent("work message has no deployment id")
    dep_id, notify = parsed
    if notify:
        deps.tell(deps.load(dep_id), notify)
    return advance(deps, dep_id).state.value
