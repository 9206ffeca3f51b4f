"""CLOUDWATCH EMULATION: alarms that emit their EventBridge events, and the awslogs driver.

moto stores alarms and log events but emits no "CloudWatch Alarm State Change" and runs no
containers, so:

* ``provision_alarms`` creates every alarm ``[service.verify]`` names (state OK), as the
  operator's own stack would have them.
* ``AlarmControl.set`` (``POST /_devstack/alarms {"name", "state", "reason"}``) sets the alarm in
  moto (SetAlarmState, so DescribeAlarms agrees), emits the state-change event with AWS's shape
  (``alarmName``, ``state`` and ``previousState`` with ``value``/``reason``/``timestamp``), and
  tells the ECS emulator, which fails an in-progress deployment watching that alarm, as ECS does.
* ``write_task_log`` writes a migration's configured output (``migration_log``) to the stream the
  awslogs driver would use: group ``awslogs-group``, stream ``<awslogs-stream-prefix>/<container>/<task id>``.
"""
from __future__ import annotations

import json
import logging
import time
import uuid
import weakref
from datetime import datetime, timezone
from typing import Any, Callable

from chalicelib import config as config_mod

log = logging.getLogger("devstack.cloudwatch")
STATES = ("OK", "ALARM", "INSUFFICIENT_DATA")
_CLIENTS: "weakref.WeakKeyDictionary[Any, dict]" = weakref.WeakKeyDictionary()


def _client(aws, name: str):
    """boto3 clients are slow to build (the emulator writes logs on its clock): one per stack."""
    mine = _CLIENTS.setdefault(aws, {})
    if name not in mine:
        mine[name] = aws.client(name)
    return mine[name]


def alarm_names(config_file) -> list[str]:
    cfg = config_mod.load(config_file)
    return sorted({a for s in cfg.services if s.verify for a in s.verify.alarms})


def provision_alarms(aws, config_file) -> list[str]:
    """Create the alarms the config names, each in OK (a 5xx count on the service's target group)."""
    cw = aws.client("cloudwatch")
    names = alarm_names(config_file)
    for name in names:
        cw.put_metric_alarm(
            AlarmName=name, Namespace="AWS/ApplicationELB", MetricName="HTTPCode_Target_5XX_Count",
            Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=5.0,
            ComparisonOperator="GreaterThanThreshold", AlarmDescription=f"devstack alarm {name}")
        cw.set_alarm_state(AlarmName=name, StateValue="OK", StateReason="provisioned by the devstack")
    return names


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "+0000")


class AlarmControl:
    """Sets alarms and emits their events (``emit``), telling ECS (``on_alarm(name, state)``)."""

    def __init__(self, aws, account: str, region: str, emit: Callable[[dict], Any],
                 on_alarm: Callable[[str, str, str], Any]):
        self._aws, self._account, self._region = aws, account, region
        self._emit, self._on_alarm = emit, on_alarm

    def set(self, data: Any) -> tuple[int, dict]:
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            return 400, {"error": "bad_request", "message": 'send {"name": "<alarm name>", '
                         '"state": "OK" | "ALARM" | "INSUFFICIENT_DATA", "reason": "..."}'}
        name, state = data["name"], data.get("state")
        reason = data.get("reason") or f"set by the devstack to {state}"
        if state not in STATES or not isinstance(reason, str):
            return 400, {"error": "bad_request",
                         "message": f"'state' must be one of {', '.join(STATES)}; 'reason' a string"}
        cw = self._aws.client("cloudwatch")
        found = cw.describe_alarms(AlarmNames=[name]).get("MetricAlarms", [])
        if not found:
            return 404, {"error": "unknown_alarm", "message": f"no CloudWatch alarm {name!r} in "
                         "the devstack (provisioning creates those [service.verify] names)"}
        before = found[0]
        cw.set_alarm_state(AlarmName=name, StateValue=state, StateReason=reason[:1023])
        event = self._event(before, state, reason)
        ecs = self._on_alarm(name, state, reason)  # ECS reacts to its deployment alarms first
        changed = before.get("StateValue") != state  # CloudWatch emits changes only
        handlers = self._emit(event) if changed else {}
        return 200, {"name": name, "state": state, "previous": before.get("StateValue"),
                     "event": event["id"] if changed else None, "handlers": handlers, "ecs": ecs}

    def _event(self, before: dict, state: str, reason: str) -> dict:
        name = before["AlarmName"]
        arn = before.get("AlarmArn") or f"arn:aws:cloudwatch:{self._region}:{self._account}:alarm:{name}"
        return {
            "version": "0", "id": str(uuid.uuid4()),
            "detail-type": "CloudWatch Alarm State Change", "source": "aws.cloudwatch",
            "account": self._account, "time": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": self._region, "resources": [arn],
            "detail": {
                "alarmName": name,
                "configuration": {"description": before.get("AlarmDescription", ""), "metrics": []},
                "previousState": {"value": before.get("StateValue"),
                                  "reason": before.get("StateReason", ""), "timestamp": _now()},
                "state": {"value": state, "reason": reason, "timestamp": _now()},
            },
        }


def alarm_state(name: str) -> str | None:
    """An alarm's state, read from moto's in-process backend (the ECS emulator's view)."""
    from moto.backends import get_backend
    from moto.core import DEFAULT_ACCOUNT_ID

    from devstack.aws import REGION

    alarm = get_backend("cloudwatch")[DEFAULT_ACCOUNT_ID][REGION].alarms.get(name)
    return alarm.state_value if alarm is not None else None


def watched(service: Any) -> list[str]:
    """The deployment alarms ECS watches during this service's rollouts (enable on)."""
    alarms = (getattr(service, "deployment_configuration", None) or {}).get("alarms") or {}
    return list(alarms.get("alarmNames") or []) if alarms.get("enable") else []


class DeploymentAlarms:
    """The ECS emulator's part of ECS deployment alarms: an alarm set to ALARM fails every
    in-progress rollout watching it (``_fail`` is the emulator's circuit-breaker path)."""

    def alarm_changed(self, name: str, state: str, _reason: str = "") -> list[str]:
        """An alarm changed: fail every in-progress rollout that watches it (ALARM only)."""
        if state != "ALARM":
            return []
        failed = []
        for service in list(self._backend.services.values()):
            with self._lock:
                ours = [d for d in service.deployments if d.get("status") == "PRIMARY"
                        and d.get("rolloutState") == "IN_PROGRESS"]
                older = [d for d in service.deployments if d.get("status") != "PRIMARY"]
            if ours and older and name in watched(service):
                self._alarm_failure(service, ours[0]["id"], older[0], name, self.settings)
                failed.append(ours[0]["id"])
        return failed

    def _alarm_failure(self, service: Any, dep_id: str, previous: dict, name: str,
                       settings: EcsSettings) -> None:
        alarms = (getattr(service, "deployment_configuration", None) or {}).get("alarms") or {}
        self._fail(service, dep_id, previous, settings,
                   f"ECS deployment {dep_id} failed: alarm(s) detected: {name}.",
                   bool(alarms.get("rollback")), "ECS deployment alarms")


def write_migration_log(aws, task: Any, lines: tuple[str, ...]) -> list[str]:
    """The ECS emulator's hook when a Slipway task stops: each overridden (migration) container's
    output goes to its awslogs stream. Never raises (a log write must not stop the task)."""
    try:
        return _write_migration_log(aws, task, lines)
    except Exception:
        log.exception("could not write the log of %s", task.task_arn)
        return []


def _write_migration_log(aws, task: Any, lines: tuple[str, ...]) -> list[str]:
    names = [o.get("name") for o in (task.overrides or {}).get("containerOverrides", [])]
    if not names:
        return []
    body = _client(aws, "ecs").describe_task_definition(
        taskDefinition=task.task_definition_arn)["taskDefinition"]
    streams = [write_task_log(aws, body, name, task.task_arn, list(lines)) for name in names]
    return [s for s in streams if s]


def write_task_log(aws, task_definition: dict, container: str, task_arn: str,
                   lines: list[str]) -> str | None:
    """Write ``lines`` where the awslogs driver would put ``container``'s output; the stream name,
    or None when the container does not log with awslogs (then nothing is written, as in ECS)."""
    spec = next((c for c in task_definition.get("containerDefinitions", [])
                 if c.get("name") == container), {})
    logging_cfg = spec.get("logConfiguration") or {}
    options = logging_cfg.get("options") or {}
    if logging_cfg.get("logDriver") != "awslogs" or not options.get("awslogs-group"):
        return None
    group, prefix = options["awslogs-group"], options.get("awslogs-stream-prefix")
    stream = f"{prefix}/{container}/{task_arn.rsplit('/', 1)[-1]}" if prefix else \
        task_arn.rsplit("/", 1)[-1]
    logs = _client(aws, "logs")
    try:
        logs.create_log_group(logGroupName=group)
    except logs.exceptions.ResourceAlreadyExistsException:
        pass
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    if lines:
        start = int(time.time() * 1000)
        logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=[
            {"timestamp": start + i, "message": str(line)} for i, line in enumerate(lines)])
    return stream


def register(server, stack) -> None:
    """``POST /_devstack/alarms``; ``GET /_devstack/alarms`` lists the alarms and their states."""
    def post(body: bytes):
        try:
            data = json.loads(body or b"null")
        except ValueError:
            data = None
        return stack.alarm_control.set(data)

    def get(_: bytes):
        found = stack.aws.client("cloudwatch").describe_alarms().get("MetricAlarms", [])
        return 200, {"alarms": [{"name": a["AlarmName"], "state": a.get("StateValue"),
                                 "reason": a.get("StateReason")} for a in found]}

    server.route("POST", "/_devstack/alarms", post)
    server.route("GET", "/_devstack/alarms", get)
