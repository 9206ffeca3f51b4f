"""Drive the app like AWS would: push images to moto's ECR and deliver EventBridge events.

Moto emits no ECR/ECS events, its tasks always exit 0 and its UpdateService starts no new
deployment, so these helpers build the events AWS would send (shapes from tests/events/).
"""
from __future__ import annotations

import hashlib
import json
import re
import uuid
from urllib.parse import parse_qs, urlparse

from tests.conftest import fresh_id, load_event

SERVICE = "better-chatbot"


def push_image(stack, repository: str, tags: list[str]) -> str:
    """Store one image under several tags in moto's ECR; return its digest."""
    ecr = stack.client("ecr")
    manifest = json.dumps({"schemaVersion": 2, "mediaType":
                           "application/vnd.docker.distribution.manifest.v2+json",
                           "config": {"digest": "sha256:" + hashlib.sha256(
                               uuid.uuid4().bytes).hexdigest(), "size": 1,
                               "mediaType": "application/vnd.docker.container.image.v1+json"},
                           # moto derives the digest from the layer digests: make them unique
                           "layers": [{"mediaType":
                                       "application/vnd.docker.image.rootfs.diff.tar.gzip",
                                       "size": 1, "digest": "sha256:" + hashlib.sha256(
                                           uuid.uuid4().bytes).hexdigest()}]})
    digest = None
    for tag in tags:
        got = ecr.put_image(repositoryName=repository, imageManifest=manifest, imageTag=tag)
        digest = got["image"]["imageId"]["imageDigest"]
    return digest


def push_events(repository: str, digest: str, tags: list[str]) -> list[dict]:
    """One 'ECR Image Action' per tag, as AWS sends them."""
    out = []
    for tag in tags:
        event = fresh_id(load_event("ecr_push_sha"))
        event["detail"].update({"repository-name": repository, "image-digest": digest,
                                "image-tag": tag})
        out.append(event)
    return out


def task_stopped(dep: dict, exit_code: int | None = 0, stop_code="EssentialContainerExited",
                 version: int = 5, name: str = "task_stopped_ok") -> dict:
    event = fresh_id(load_event(name))
    arn = dep["migration"]["task_arn"]
    event["resources"] = [arn]
    event["detail"].update(taskArn=arn, startedBy=f"slipway/{dep['id']}", version=version,
                           stopCode=stop_code, taskDefinitionArn=dep["task_definition_arn"])
    for c in event["detail"]["containers"]:
        c["taskArn"] = arn
        if exit_code is None:
            c.pop("exitCode", None)
        else:
            c["exitCode"] = exit_code
    return event


def rollout(dep: dict, name: str = "deployment_completed") -> dict:
    event = fresh_id(load_event(name))
    event["detail"]["deploymentId"] = dep["ecs_deployment_id"]
    return event


def link_token(url: str) -> tuple[str, str]:
    """(deployment id, token) of an approval link."""
    parsed = urlparse(url)
    dep_id = re.search(r"/approvals/([^/?]+)", parsed.path).group(1)
    return dep_id, parse_qs(parsed.query)["token"][0]
