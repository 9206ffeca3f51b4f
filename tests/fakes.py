"""In-memory fakes of Slipway's ports (unit tests only): ECS/ECR, dispatcher, notifier.

FakeEcs behaves like ECS where Slipway depends on it: revisions increase, UpdateService returns a
new PRIMARY deployment id, RunTask returns a task ARN (once per clientToken, as AWS does).
"""
from __future__ import annotations

import copy
import itertools

from chalicelib.adapters.errors import AwsError

ACCOUNT_PREFIX = "arn:aws:ecs:us-east-1:123456789012"


class FakeEcs:
    def __init__(self) -> None:
        self.task_definitions: dict[str, dict] = {}
        self.active: set[str] = set()
        self.services: dict[tuple[str, str], dict] = {}
        self.tasks: dict[str, dict] = {}
        self.tokens: dict[str, str] = {}
        self.images: dict[tuple[str, str], list[str]] = {}
        self.pushed_at: dict[str, str] = {}
        self.calls: list[str] = []
        self._ids = itertools.count(1000)
        self.fail_run_task: str | None = None

    # -- setup -------------------------------------------------------------------------------
    def add_service(self, cluster: str, service: str, body: dict, rollback: bool = True) -> str:
        arn = self._register(body)
        self.services[(cluster, service)] = {
            "serviceName": service, "status": "ACTIVE", "taskDefinition": arn,
            "serviceArn": f"{ACCOUNT_PREFIX}:service/{cluster}/{service}",
            "launchType": "FARGATE", "platformVersion": "1.4.0",
            "networkConfiguration": {"awsvpcConfiguration": {
                "subnets": ["subnet-a", "subnet-b"], "securityGroups": ["sg-1"],
                "assignPublicIp": "DISABLED"}},
            "deploymentConfiguration": {"deploymentCircuitBreaker": {"enable": True,
                                                                     "rollback": rollback}},
            "deployments": [{"id": f"ecs-svc/{next(self._ids)}", "status": "PRIMARY",
                             "taskDefinition": arn, "rolloutState": "COMPLETED"}],
        }
        return arn

    def _register(self, body: dict) -> str:
        family = body["family"]
        revision = 1 + max([int(a.rsplit(":", 1)[1]) for a in self.task_definitions
                            if a.rsplit("/", 1)[1].rsplit(":", 1)[0] == family] or [0])
        arn = f"{ACCOUNT_PREFIX}:task-definition/{family}:{revision}"
        self.task_definitions[arn] = {**copy.deepcopy(body), "taskDefinitionArn": arn,
                                      "revision": revision, "status": "ACTIVE"}
        self.active.add(arn)
        return arn

    # -- the adapter's interface -------------------------------------------------------------
    def describe_service(self, cluster: str, service: str) -> dict:
        self.calls.append("DescribeServices")
        if (cluster, service) not in self.services:
            raise AwsError(f"service {service} not found", code="NotFound")
        return copy.deepcopy(self.services[(cluster, service)])

    @staticmethod
    def launch_settings(service: dict) -> dict:
        from chalicelib.adapters.ecs import Ecs

        return Ecs.launch_settings(service)

    def describe_task_definition(self, arn: str) -> dict:
        self.calls.append("DescribeTaskDefinition")
        return copy.deepcopy(self.task_definitions[arn])

    def image_info(self, repository: str, digest: str) -> tuple[list[str], str | None]:
        self.calls.append("DescribeImages")
        if (repository, digest) not in self.images:  # as ECR answers a digest it does not hold
            raise AwsError(f"DescribeImages: no image {digest} in {repository}",
                           code="ImageNotFoundException")
        if digest not in self.pushed_at:  # pushed when the test stored it, in that order
            self.pushed_at[digest] = f"2026-11-26T08:00:00.{len(self.pushed_at):06d}+00:00"
        return list(self.images.get((repository, digest), [])), self.pushed_at[digest]

    def check_registration(self, body: dict) -> None:
        if not isinstance(body.get("cpu", ""), str):
            raise AwsError("the task definition would be refused: cpu must be a string",
                           code="InvalidTaskDefinition")

    def register(self, body: dict) -> str:
        self.calls.append("RegisterTaskDefinition")
        return self._register(body)

    def run_task(self, *, cluster, task_definition, container, command, launch, started_by,
                 client_token) -> str:
        self.calls.append("RunTask")
        if self.fail_run_task:
            raise AwsError(self.fail_run_task, code="InvalidParameterException")
        if client_token in self.tokens:
            return self.tokens[client_token]
        arn = f"{ACCOUNT_PREFIX}:task/{cluster}/{next(self._ids):032x}"
        self.tokens[client_token] = arn
        self.tasks[arn] = {"taskArn": arn, "cluster": cluster, "taskDefinitionArn": task_definition,
                           "startedBy": started_by, "lastStatus": "RUNNING", "launch": launch,
                           "command": command, "container": container, "containers": []}
        return arn

    def tasks_started_by(self, cluster: str, started_by: str) -> list[str]:
        self.calls.append("ListTasks")
        return [a for a, t in self.tasks.items() if t["startedBy"] == started_by
                and t["cluster"] == cluster]

    def describe_task(self, cluster: str, task_arn: str) -> dict | None:
        self.calls.append("DescribeTasks")
        return copy.deepcopy(self.tasks.get(task_arn))

    def stop_task(self, cluster: str, task_arn: str, reason: str) -> None:
        self.calls.append("StopTask")
        self.tasks[task_arn].update(lastStatus="STOPPED", stopCode="UserInitiated",
                                    stoppedReason=reason)

    def update_service(self, cluster: str, service: str, task_definition: str,
                       deployment_configuration: dict | None = None) -> str:
        self.calls.append("UpdateService")
        svc = self.services[(cluster, service)]
        if deployment_configuration:
            svc["deploymentConfiguration"] = copy.deepcopy(deployment_configuration)
        new_id = f"ecs-svc/{next(self._ids)}"
        for d in svc["deployments"]:
            d["status"] = "ACTIVE"
        svc["deployments"].insert(0, {"id": new_id, "status": "PRIMARY",
                                      "taskDefinition": task_definition,
                                      "rolloutState": "IN_PROGRESS"})
        svc["taskDefinition"] = task_definition
        return new_id

    def task_definition_pages(self, family: str):
        arns = sorted((a for a in self.active if a.rsplit("/", 1)[1].rsplit(":", 1)[0] == family),
                      key=lambda a: int(a.rsplit(":", 1)[1]), reverse=True)
        for start in range(0, max(len(arns), 1), 100):
            self.calls.append("ListTaskDefinitions")
            yield arns[start:start + 100]

    def deregister(self, arn: str) -> None:
        self.calls.append("DeregisterTaskDefinition")
        if arn not in self.active:
            raise AwsError(f"{arn} is not ACTIVE", code="ClientException")
        self.active.discard(arn)

    # -- what ECS would do on its own ----------------------------------------------------------
    def finish_rollout(self, cluster: str, service: str, state: str = "COMPLETED") -> None:
        svc = self.services[(cluster, service)]
        svc["deployments"][0]["rolloutState"] = state
        if state == "COMPLETED":
            svc["deployments"] = svc["deployments"][:1]


class QueueDispatcher:
    """Collects work like the SQS queue does; ``drain`` runs it the way the worker Lambda does."""

    def __init__(self) -> None:
        self.queued: list[str] = []
        self.notify: list[tuple[str, list[str]]] = []

    def advance_later(self, dep_id: str, notify: list[str] | None = None) -> None:
        self.queued.append(dep_id)
        if notify:
            self.notify.append((dep_id, list(notify)))

    def drain(self, deps) -> None:
        from chalicelib.service.pipeline import advance

        while self.queued:
            dep_id = self.queued.pop(0)
            told = next((n for i, n in self.notify if i == dep_id), None)
            if told is not None:
                self.notify.remove((dep_id, told))
            advance(deps, dep_id, told)


class RecordingNotifier:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, tuple[str, ...]]] = []

    def changed(self, dep, changes) -> None:
        self.seen.append((dep.id, dep.state.value, tuple(changes)))


class FakeAlarms:
    """CloudWatch alarms by name: ``set(name, state, reason)``; ``states`` as DescribeAlarms."""

    def __init__(self) -> None:
        self.alarms: dict[str, dict] = {}
        self.calls = 0

    def set(self, name: str, state: str, reason: str = "") -> None:
        self.alarms[name] = {"state": state, "reason": reason}

    def states(self, names: list[str]) -> dict[str, dict]:
        self.calls += 1
        return {n: dict(self.alarms[n]) for n in names if n in self.alarms}


class FakeLogs:
    """Log streams by (group, stream); a missing stream answers as CloudWatch Logs does."""

    def __init__(self) -> None:
        self.streams: dict[tuple[str, str], list[str]] = {}

    def tail(self, group: str, stream: str, limit: int = 50):
        lines = self.streams.get((group, stream))
        if lines is None:
            return [], f"no logs: log stream {stream} not found in log group {group}"
        return lines[-limit:], None if lines else f"no logs: log stream {stream} is empty"
