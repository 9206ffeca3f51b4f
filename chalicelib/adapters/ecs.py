"""ECS and ECR, as Slipway needs them. No ClientError escapes: failures become AwsError."""
from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from chalicelib.adapters.errors import AwsError

_LAUNCH_KEYS = ("launchType", "capacityProviderStrategy", "platformVersion", "networkConfiguration")


def _call(fn, **kwargs) -> dict:
    try:
        return fn(**kwargs)
    except ClientError as exc:
        err = exc.response.get("Error", {})
        raise AwsError(f"{fn.__name__}: {err.get('Message') or err.get('Code')}",
                       code=err.get("Code")) from exc
    except BotoCoreError as exc:
        # No answer at all (connection, timeout) is worth another try; a request botocore refuses
        # to send (ParamValidationError, …) will be refused again.
        transient = isinstance(exc, (BotoConnectionError, HTTPClientError))
        raise AwsError(f"{fn.__name__}: {_without_values(str(exc))}",
                       code=None if transient else type(exc).__name__) from exc


def _without_values(message: str) -> str:
    """botocore's validation messages quote the offending value (an env value may be a secret)."""
    return re.sub(r", value: .*?(?=, (?:type|valid)[ :])", "", message, flags=re.S)


class Ecs:
    def __init__(self, ecs_client: Any, ecr_client: Any):
        self._ecs = ecs_client
        self._ecr = ecr_client

    # -- reading -------------------------------------------------------------------------------
    def describe_service(self, cluster: str, service: str) -> dict:
        got = _call(self._ecs.describe_services, cluster=cluster, services=[service])
        found = [s for s in got.get("services", []) if s.get("status") != "INACTIVE"]
        if not found:
            raise AwsError(f"service {service} not found in cluster {cluster}", code="NotFound")
        return found[0]

    @staticmethod
    def launch_settings(service: dict) -> dict:
        """What RunTask needs to start a task the way the service starts its own."""
        out = {k: service[k] for k in _LAUNCH_KEYS if service.get(k)}
        if "capacityProviderStrategy" in out:
            out.pop("launchType", None)
        return out

    def describe_task_definition(self, arn: str) -> dict:
        return _call(self._ecs.describe_task_definition, taskDefinition=arn)["taskDefinition"]

    def describe_task(self, cluster: str, task_arn: str) -> dict | None:
        got = _call(self._ecs.describe_tasks, cluster=cluster, tasks=[task_arn])
        return (got.get("tasks") or [None])[0]

    def image_info(self, repository: str, digest: str) -> tuple[list[str], str | None]:
        """Every tag of the image and when it was pushed (ISO), from one DescribeImages call."""
        got = _call(self._ecr.describe_images, repositoryName=repository,
                    imageIds=[{"imageDigest": digest}])
        details = got.get("imageDetails", [])
        tags = sorted({t for d in details for t in d.get("imageTags", [])})
        pushed = [d["imagePushedAt"] for d in details if d.get("imagePushedAt")]
        return tags, (pushed[0].isoformat() if pushed and hasattr(pushed[0], "isoformat")
                      else None)

    def task_definition_pages(self, family: str) -> Iterator[list[str]]:
        """ACTIVE revisions of ``family``, newest first, 100 a page (one call a page)."""
        kwargs: dict[str, Any] = {"familyPrefix": family, "status": "ACTIVE", "sort": "DESC",
                                  "maxResults": 100}
        while True:
            page = _call(self._ecs.list_task_definitions, **kwargs)
            yield [a for a in page.get("taskDefinitionArns", [])
                   if a.rsplit("/", 1)[-1].rsplit(":", 1)[0] == family]
            if not page.get("nextToken"):
                return
            kwargs["nextToken"] = page["nextToken"]

    # -- acting --------------------------------------------------------------------------------
    def check_registration(self, body: dict) -> None:
        """Refuse now, not after approval, a task definition RegisterTaskDefinition would refuse."""
        from botocore.exceptions import ParamValidationError
        from botocore.validate import validate_parameters

        model = self._ecs.meta.service_model.operation_model("RegisterTaskDefinition")
        try:
            validate_parameters(body, model.input_shape)
        except ParamValidationError as exc:
            raise AwsError(f"the task definition would be refused: {_without_values(str(exc))}",
                           code="InvalidTaskDefinition") from exc

    def register(self, body: dict) -> str:
        return _call(self._ecs.register_task_definition, **body)["taskDefinition"]["taskDefinitionArn"]

    def run_task(self, *, cluster: str, task_definition: str, container: str, command: list[str],
                 launch: dict, started_by: str, client_token: str) -> str:
        got = _call(self._ecs.run_task, cluster=cluster, taskDefinition=task_definition, count=1,
                    startedBy=started_by, clientToken=client_token,
                    overrides={"containerOverrides": [{"name": container, "command": command}]},
                    **launch)
        if got.get("failures") or not got.get("tasks"):
            why = "; ".join(f"{f.get('arn', '')} {f.get('reason')} {f.get('detail', '')}".strip()
                            for f in got.get("failures", [])) or "no task started"
            raise AwsError(f"RunTask failed: {why}", code="RunTaskFailed")
        return got["tasks"][0]["taskArn"]

    def tasks_started_by(self, cluster: str, started_by: str) -> list[str]:
        """Tasks started with ``startedBy`` (running first, then stopped ones ECS still lists):
        what an earlier attempt of a RunTask whose answer was lost started."""
        found: list[str] = []
        for status in ("RUNNING", "STOPPED"):
            got = _call(self._ecs.list_tasks, cluster=cluster, startedBy=started_by,
                        desiredStatus=status)
            found += [a for a in got.get("taskArns", []) if a not in found]
            if found:
                break
        return found

    def stop_task(self, cluster: str, task_arn: str, reason: str) -> None:
        _call(self._ecs.stop_task, cluster=cluster, task=task_arn, reason=reason[:255])

    def update_service(self, cluster: str, service: str, task_definition: str,
                       deployment_configuration: dict | None = None) -> str | None:
        """Point the service at ``task_definition``; return the new PRIMARY deployment's id.
        ``deployment_configuration`` (whole, as DescribeServices gave it, plus the alarms)."""
        extra = {"deploymentConfiguration": deployment_configuration} \
            if deployment_configuration else {}
        got = _call(self._ecs.update_service, cluster=cluster, service=service,
                    taskDefinition=task_definition, **extra)["service"]
        primary = [d for d in got.get("deployments", []) if d.get("status") == "PRIMARY"]
        return primary[0].get("id") if primary else None

    def deregister(self, arn: str) -> None:
        _call(self._ecs.deregister_task_definition, taskDefinition=arn)
