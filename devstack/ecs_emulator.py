"""ECS EMULATION: what moto 5.2 lacks, filled in explicitly on its in-process backend.

Everything here is a stand-in for behaviour of real ECS that moto does not model:

* Tasks started by Slipway (``startedBy`` ``slipway/…``) stay RUNNING (moto advances a task one
  state per DescribeTasks), then after ``task_seconds`` stop with ``migration_exit_code`` on every
  container, ``stopCode`` EssentialContainerExited and "Essential container in task exited", as ECS
  does. An "ECS Task State Change" event is emitted for RUNNING and STOPPED, its ``detail`` taken
  from DescribeTasks itself (so the two can never disagree) with an increasing ``version``.
* StopTask stops with ``stopCode`` UserInitiated and emits the event too.
* UpdateService creates a new PRIMARY deployment (``ecs-svc/<19 digits>``, the old one ACTIVE) and
  returns it, then emits SERVICE_DEPLOYMENT_IN_PROGRESS and, after ``task_seconds``,
  SERVICE_DEPLOYMENT_COMPLETED (rolloutState COMPLETED, older deployments gone). With
  ``rollout: "fail"``: SERVICE_DEPLOYMENT_FAILED, then the circuit breaker's rollback, a new
  deployment of the previous task definition, which completes in turn.
* Deployment alarms (enable on) fail a rollout as ECS does (``devstack.cloudwatch``), and a
  stopping task's ``migration_log`` lines go where the awslogs driver would put them.
* ``drop_events`` withholds the ECS events (counted in ``dropped``): only the reconciler, which
  asks DescribeTasks/DescribeServices, can then finish the deployment.

* RunTask's ``clientToken`` and ListTasks' default ``desiredStatus`` behave as in AWS
  (``devstack.ecs_idempotency``).

Settings are read when a task starts or a service is updated: they apply to what happens next.
"""
from __future__ import annotations

import copy
import logging
import random
import threading
import uuid
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from typing import Any, Callable

from devstack.ecs_idempotency import RunTaskTokens
from devstack.cloudwatch import DeploymentAlarms, watched
from devstack.scheduler import Scheduler

log = logging.getLogger("devstack.ecs")
STARTED_BY = "slipway/"
FAILED_REASON = "ECS deployment circuit breaker: task failed to start."


class SettingsError(ValueError):
    """A ``POST /_devstack/ecs`` body the emulator cannot use (answered with 400)."""


@dataclass(frozen=True)
class EcsSettings:
    migration_exit_code: int = 0
    rollout: str = "complete"  # or "fail"
    drop_events: bool = False
    task_seconds: float = 3.0
    migration_log: tuple[str, ...] = ()

    def merged(self, data: Any) -> "EcsSettings":
        """These settings with ``data``'s keys applied; raises SettingsError for bad input."""
        if not isinstance(data, dict):
            raise SettingsError("the body must be a JSON object")
        unknown = set(data) - set(asdict(self))
        if unknown:
            raise SettingsError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        checks = {"migration_exit_code": lambda v: isinstance(v, int) and not isinstance(v, bool),
                  "rollout": lambda v: v in ("complete", "fail"),
                  "drop_events": lambda v: isinstance(v, bool),
                  "task_seconds": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
                  and 0 <= v <= 3600,
                  "migration_log": lambda v: isinstance(v, list) and len(v) <= 10_000
                  and all(isinstance(line, str) for line in v)}
        bad = [k for k, v in data.items() if not checks[k](v)]
        if bad:
            raise SettingsError(f"invalid value for {', '.join(sorted(bad))} (migration_exit_code: "
                                "int, rollout: complete|fail, drop_events: bool, task_seconds: 0-3600, "
                                "migration_log: list of strings)")
        if "migration_log" in data:
            data = {**data, "migration_log": tuple(data["migration_log"])}
        return replace(self, **data)


def now() -> datetime:
    return datetime.now(timezone.utc)


def iso(at: datetime) -> str:
    return at.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def deployment_id() -> str:
    return f"ecs-svc/{random.randrange(10**18, 10**19)}"


class EcsEmulator(DeploymentAlarms):
    """Patch one moto ECS backend (one account and region) in place; see the module docstring.

    ``emit(event)`` receives each EventBridge event (never called on a moto request thread);
    ``describe_task(cluster, arn)`` returns DescribeTasks' Task as a client sees it.
    """

    def __init__(self, backend: Any, emit: Callable[[dict], None],
                 describe_task: Callable[[str, str], dict], settings: EcsSettings = EcsSettings(),
                 alarm_state: Callable[[str], str | None] = lambda name: None,
                 write_log: Callable[[Any, tuple[str, ...]], Any] = lambda task, lines: None):
        self._backend = backend
        self._emit_fn = emit
        self._describe_task = describe_task
        self._alarm_state, self._write_log = alarm_state, write_log
        self._settings = settings
        self._lock = threading.RLock()
        self._scheduler = Scheduler("devstack-ecs")
        self.dropped: dict[str, int] = {}
        self._originals: dict[str, Callable] = {}
        self._tokens = RunTaskTokens(backend, self._lock)

    # -- control ------------------------------------------------------------------------------
    @property
    def settings(self) -> EcsSettings:
        with self._lock:
            return self._settings

    def configure(self, data: Any) -> EcsSettings:
        with self._lock:
            self._settings = self._settings.merged(data)
            return self._settings

    def status(self) -> dict:
        with self._lock:
            return {**asdict(self._settings), "dropped_events": sum(self.dropped.values()),
                    "dropped_by_type": dict(self.dropped)}

    def install(self) -> "EcsEmulator":
        """Patch the backend's methods (instance attributes shadow the class's) and start the clock."""
        from moto.moto_api import state_manager

        # Tasks keep the state the emulator gives them instead of advancing on every DescribeTasks.
        state_manager.set_transition("ecs::task", {"progression": "manual", "times": 10**12})
        for name in ("run_task", "update_service", "stop_task"):
            self._originals[name] = getattr(self._backend, name)
            setattr(self._backend, name, getattr(self, f"_{name}"))
        self._tokens.install()
        self._scheduler.start()
        return self

    def uninstall(self) -> None:
        from moto.moto_api import state_manager

        self._scheduler.stop()
        self._tokens.uninstall()
        for name in self._originals:
            self._backend.__dict__.pop(name, None)
        state_manager.unset_transition("ecs::task")

    def settle(self) -> None:
        """Make every service's current deployment a finished one (as after a long-ago rollout)."""
        with self._lock:
            for service in self._backend.services.values():
                for dep in service.deployments:
                    if dep.get("status") == "PRIMARY":
                        dep.update(id=deployment_id(), rolloutState="COMPLETED",
                                   runningCount=service.desired_count, pendingCount=0)
                        dep["rolloutStateReason"] = f"ECS deployment {dep['id']} completed."
                service.deployments = [d for d in service.deployments if d.get("status") == "PRIMARY"]
                service.running_count, service.pending_count = service.desired_count, 0

    # -- tasks --------------------------------------------------------------------------------
    def _run_task(self, *args: Any, **kwargs: Any) -> list:
        tasks = self._originals["run_task"](*args, **kwargs)
        settings = self.settings
        for task in tasks:
            if not (task.started_by or "").startswith(STARTED_BY):
                continue
            with self._lock:
                self._start(task)
            self._scheduler.call_later(0, lambda t=task, s=settings: self._announce(t, s))
            self._scheduler.call_later(settings.task_seconds,
                                       lambda t=task, s=settings: self._exit(t, s))
        return tasks

    def _start(self, task: Any) -> None:
        at = now()
        taskdef = self._backend.describe_task_definition(task.task_definition_arn)
        task_id = task.task_arn.rsplit("/", 1)[-1]
        prefix = task.task_arn.split(":task/")[0] + ":container/" + task.cluster_name
        task.containers = [{
            "containerArn": f"{prefix}/{task_id}/{uuid.uuid4()}", "taskArn": task.task_arn,
            "name": c.get("name"), "image": c.get("image"), "lastStatus": "RUNNING",
            "cpu": str(c.get("cpu", 0)), "memory": str(c.get("memory", "")) or None,
            "essential": c.get("essential", True), "networkInterfaces": [],
        } for c in taskdef.container_definitions]
        task.version = 1
        task.created_at = task.pull_started_at = task.pull_stopped_at = task.started_at = at
        task.connectivity, task.connectivity_at = "CONNECTED", at
        task.cpu, task.memory = taskdef.cpu, taskdef.memory
        task.platform_version, task.platform_family = "1.4.0", "Linux"
        task.availability_zone = f"{task.region_name}a"
        task.stopped_reason = None
        task.last_status = task.desired_status = "RUNNING"

    def _exit(self, task: Any, settings: EcsSettings) -> None:
        if task.last_status != "STOPPED":  # awslogs ships the output before ECS says STOPPED
            self._write_log(task, settings.migration_log)
        with self._lock:
            if task.last_status == "STOPPED":  # StopTask got there first
                return
            at = now()
            task.containers = [{**c, "lastStatus": "STOPPED",
                                "exitCode": settings.migration_exit_code} for c in task.containers]
            task.stop_code, task.stopped_reason = "EssentialContainerExited", \
                "Essential container in task exited"
            task.stopping_at = task.execution_stopped_at = task.stopped_at = at
            task.last_status = task.desired_status = "STOPPED"
            task.version += 1
        self._announce(task, settings)

    def _stop_task(self, cluster_str: str, task_str: str, reason: str) -> Any:
        task_id = task_str.rsplit("/", 1)[-1]
        known = [t for tasks in self._backend.tasks.values() for arn, t in tasks.items()
                 if arn.endswith(task_id)]
        if known and known[0].last_status == "STOPPED":  # ECS leaves a stopped task as it was
            return known[0]
        task = self._originals["stop_task"](cluster_str, task_str, reason)
        with self._lock:
            at = now()
            task.stop_code = "UserInitiated"
            if all(isinstance(c, dict) for c in task.containers):
                task.containers = [{**c, "lastStatus": "STOPPED", "exitCode": 143}  # SIGTERM
                                   for c in task.containers]
            task.stopping_at = task.execution_stopped_at = task.stopped_at = at
            task.version = getattr(task, "version", 1) + 1
        settings = self.settings
        self._scheduler.call_later(0, lambda: self._announce(task, settings))
        return task

    def _announce(self, task: Any, settings: EcsSettings) -> None:
        detail = _jsonable(self._describe_task(task.cluster_arn, task.task_arn))
        detail.setdefault("updatedAt", iso(now()))
        self._emit(self._event("ECS Task State Change", [task.task_arn], detail), settings)

    # -- services -----------------------------------------------------------------------------
    def _update_service(self, props: dict) -> Any:
        deploys = bool(props.get("task_definition") or props.get("force_new_deployment"))
        service = self._originals["update_service"](dict(props))
        if not deploys or service.deployment_controller.get("type") != "ECS":
            return service
        settings = self.settings
        with self._lock:
            previous = next((d for d in service.deployments if d.get("status") == "PRIMARY"), None)
            arn = self._backend.describe_task_definition(service.task_definition).arn
            service.task_definition = arn
            new = self._deployment(service, arn)
            service.deployments = [new] + [{**d, "status": "ACTIVE"} for d in service.deployments]
        self._scheduler.call_later(0, lambda: self._rollout_event(
            service, new["id"], "SERVICE_DEPLOYMENT_IN_PROGRESS", new["rolloutStateReason"], settings))
        finish = self._fail if settings.rollout == "fail" else self._complete
        self._scheduler.call_later(settings.task_seconds,
                                   lambda: finish(service, new["id"], previous, settings))
        return service

    def _deployment(self, service: Any, task_definition: str, reason: str | None = None) -> dict:
        dep_id, at = deployment_id(), now()
        return {
            "id": dep_id, "status": "PRIMARY", "taskDefinition": task_definition,
            "desiredCount": service.desired_count, "pendingCount": service.desired_count,
            "runningCount": 0, "failedTasks": 0, "createdAt": at, "updatedAt": at,
            "launchType": service.launch_type, "platformVersion": service.platform_version,
            "platformFamily": "Linux", "networkConfiguration": service.network_configuration or None,
            "rolloutState": "IN_PROGRESS",
            "rolloutStateReason": reason or f"ECS deployment {dep_id} in progress.",
        }

    def _complete(self, service: Any, dep_id: str, previous: Any, settings: EcsSettings) -> None:
        firing = [n for n in watched(service) if self._alarm_state(n) == "ALARM"]
        if firing and previous is not None:  # ECS watched the alarms all along: it fails instead
            return self._alarm_failure(service, dep_id, previous, firing[0], settings)
        with self._lock:
            dep = next((d for d in service.deployments if d["id"] == dep_id), None)
            if dep is None or dep["rolloutState"] != "IN_PROGRESS" or dep["status"] != "PRIMARY":
                return  # superseded by a newer UpdateService
            reason = f"ECS deployment {dep_id} completed."
            done = {**dep, "rolloutState": "COMPLETED", "rolloutStateReason": reason,
                    "runningCount": dep["desiredCount"], "pendingCount": 0, "updatedAt": now()}
            service.deployments = [done]
            service.running_count, service.pending_count = dep["desiredCount"], 0
        self._rollout_event(service, dep_id, "SERVICE_DEPLOYMENT_COMPLETED", reason, settings)

    def _fail(self, service: Any, dep_id: str, previous: dict | None, settings: EcsSettings,
              why: str = FAILED_REASON, rollback_on: bool | None = None,
              by: str = "ECS deployment circuit breaker") -> None:
        with self._lock:
            dep = next((d for d in service.deployments if d["id"] == dep_id), None)
            if dep is None or dep["rolloutState"] != "IN_PROGRESS" or dep["status"] != "PRIMARY":
                return
            failed = {**dep, "rolloutState": "FAILED", "rolloutStateReason": why,
                      "failedTasks": max(dep["desiredCount"], 1), "updatedAt": now()}
            breaker = (getattr(service, "deployment_configuration", None) or {}).get(
                "deploymentCircuitBreaker") or {}
            rollback = None
            if (breaker.get("rollback") if rollback_on is None else rollback_on) \
                    and previous is not None:
                reason = f"{by}: rolling back to deploymentId {previous['id']}."
                rollback = self._deployment(service, previous["taskDefinition"], reason)
                service.task_definition = previous["taskDefinition"]
                failed["status"] = "ACTIVE"
                service.deployments = [rollback, failed]
            else:
                service.deployments = [failed if d["id"] == dep_id else d
                                       for d in service.deployments]
        self._rollout_event(service, dep_id, "SERVICE_DEPLOYMENT_FAILED", why, settings)
        if rollback is not None:
            self._rollout_event(service, rollback["id"], "SERVICE_DEPLOYMENT_IN_PROGRESS",
                                rollback["rolloutStateReason"], settings)
            self._scheduler.call_later(settings.task_seconds, lambda: self._complete(
                service, rollback["id"], None, settings))

    def _rollout_event(self, service: Any, dep_id: str, name: str, reason: str,
                       settings: EcsSettings) -> None:
        detail = {"eventType": "ERROR" if name.endswith("FAILED") else "INFO", "eventName": name,
                  "deploymentId": dep_id, "updatedAt": iso(now()), "reason": reason}
        self._emit(self._event("ECS Deployment State Change", [service.arn], detail), settings)

    # -- events -------------------------------------------------------------------------------
    def _event(self, detail_type: str, resources: list[str], detail: dict) -> dict:
        return {"version": "0", "id": str(uuid.uuid4()), "detail-type": detail_type,
                "source": "aws.ecs", "account": self._backend.account_id,
                "time": iso(now()).split(".")[0] + "Z", "region": self._backend.region_name,
                "resources": resources, "detail": detail}

    def _emit(self, event: dict, settings: EcsSettings) -> None:
        if settings.drop_events:
            with self._lock:
                kind = event["detail-type"]
                self.dropped[kind] = self.dropped.get(kind, 0) + 1
            log.info("withheld %s (drop_events)", event["detail-type"])
            return
        self._emit_fn(copy.deepcopy(event))


def _jsonable(value: Any) -> Any:
    """boto3's datetimes become ISO strings, as EventBridge sends them."""
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value
