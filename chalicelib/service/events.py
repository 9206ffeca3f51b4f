"""Parse EventBridge events into small frozen messages. Lenient with extra fields, strict with
what we need: anything else raises BadEvent (logged and counted, never a crash or a partial write).
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from chalicelib.errors import BadRequest


class BadEvent(BadRequest):
    """An event Slipway cannot understand; it is dropped with a log line and a metric."""

    code = "bad_event"


def _detail(event: object, source: str, detail_type: str) -> dict:
    if not isinstance(event, dict):
        raise BadEvent("event is not a JSON object")
    if event.get("source") != source or event.get("detail-type") != detail_type:
        raise BadEvent(f"not an {detail_type!r} event from {source}")
    detail = event.get("detail")
    if not isinstance(detail, dict):
        raise BadEvent("event has no detail object")
    return detail


def _text(detail: dict, key: str, *, required: bool = True) -> str | None:
    value = detail.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise BadEvent(f"detail.{key} is missing or not a string")
    return value


@dataclass(frozen=True)
class ImagePushed:
    event_id: str
    account: str
    region: str
    repository: str
    digest: str
    tag: str | None
    action: str
    result: str

    @property
    def repository_uri(self) -> str:
        return f"{self.account}.dkr.ecr.{self.region}.amazonaws.com/{self.repository}"


def image_pushed(event: object) -> ImagePushed:
    d = _detail(event, "aws.ecr", "ECR Image Action")
    digest = _text(d, "image-digest")
    if not digest.startswith("sha256:") or len(digest) != 71:
        raise BadEvent("detail.image-digest is not a sha256 digest")
    return ImagePushed(
        event_id=str(event.get("id", "")), account=str(event.get("account", "")),
        region=str(event.get("region", "")), repository=_text(d, "repository-name"),
        digest=digest, tag=_text(d, "image-tag", required=False),
        action=_text(d, "action-type"), result=_text(d, "result"),
    )


@dataclass(frozen=True)
class TaskStopped:
    task_arn: str
    cluster_arn: str
    started_by: str
    version: int
    last_status: str
    stop_code: str | None
    stopped_reason: str | None
    containers: tuple[dict, ...]


def task_stopped(event: object) -> TaskStopped:
    d = _detail(event, "aws.ecs", "ECS Task State Change")
    return task_from_detail(d)


def task_from_detail(d: dict) -> TaskStopped:
    """Works on an event's detail and on DescribeTasks' Task alike (the reconciler uses both)."""
    containers = d.get("containers")
    if not isinstance(containers, list) or not all(isinstance(c, dict) for c in containers):
        raise BadEvent("detail.containers is missing or not a list")
    version = d.get("version", 0)
    if not isinstance(version, int):
        raise BadEvent("detail.version is not a number")
    return TaskStopped(
        task_arn=_text(d, "taskArn"), cluster_arn=str(d.get("clusterArn", "")),
        started_by=str(d.get("startedBy") or ""), version=version,
        last_status=_text(d, "lastStatus"), stop_code=d.get("stopCode"),
        stopped_reason=d.get("stoppedReason"), containers=tuple(containers),
    )


@dataclass(frozen=True)
class DeploymentChanged:
    event_name: str
    deployment_id: str
    reason: str
    service_arn: str | None


def deployment_changed(event: object) -> DeploymentChanged:
    d = _detail(event, "aws.ecs", "ECS Deployment State Change")
    resources = event.get("resources")
    resources = resources if isinstance(resources, list) else []
    return DeploymentChanged(
        event_name=_text(d, "eventName"), deployment_id=_text(d, "deploymentId"),
        reason=str(d.get("reason") or ""),
        service_arn=resources[0] if resources and isinstance(resources[0], str) else None,
    )


def work_message(body: str) -> tuple[str, list[str]] | None:
    """(deployment id, changes to notify) of a work-queue message (``Dispatcher.advance_later``),
    or None if it is not one of ours."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    dep_id = data.get("deployment") if isinstance(data, dict) else None
    if not isinstance(dep_id, str) or not dep_id:
        return None
    notify = data.get("notify") or []
    if not isinstance(notify, list) or not all(isinstance(n, str) for n in notify):
        return None
    return dep_id, notify


@dataclass(frozen=True)
class AlarmChanged:
    alarm: str
    state: str
    reason: str
    previous: str | None


def alarm_changed(event: object) -> AlarmChanged:
    d = _detail(event, "aws.cloudwatch", "CloudWatch Alarm State Change")
    state = d.get("state")
    if not isinstance(state, dict):
        raise BadEvent("detail.state is missing or not an object")
    previous = d.get("previousState")
    return AlarmChanged(
        alarm=_text(d, "alarmName"), state=_text(state, "value"),
        reason=str(state.get("reason") or ""),
        previous=previous.get("value") if isinstance(previous, dict) else None,
    )
