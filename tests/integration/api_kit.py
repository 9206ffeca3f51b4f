"""Shared by the API tests: the Chalice test client, a record of ECS calls, and the pipeline
driven step by step (push, approve by link, migration stopped, rollout completed)."""
from __future__ import annotations

from urllib.parse import urlencode

import pytest
from chalice.test import Client

import app as app_module
from chalicelib.service import decisions
from tests.integration.helpers import (SERVICE, link_token, push_events, push_image, rollout,
                                       task_stopped)

TAGS = ["abc123d", "1.22.0-abc123d", "latest"]
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def client(stack):
    with Client(app_module.app, stage_name="test") as c:
        yield c


@pytest.fixture
def calls(stack):
    """What Slipway asked ECS to do, read off botocore's event hooks (the real request params)."""
    seen: list[tuple[str, dict]] = []
    ecs = stack.deps().ecs._ecs

    def record(params, model, **_):
        seen.append((model.name, dict(params)))

    ecs.meta.events.register("provide-client-params.ecs.*", record)
    yield seen
    ecs.meta.events.unregister("provide-client-params.ecs.*", record)


def deliver(client, name: str, event: dict) -> dict:
    return client.lambda_.invoke(name, event).payload


def push(stack, client, tags=TAGS, redeliver=True) -> dict:
    digest = push_image(stack, SERVICE, tags)
    events = push_events(SERVICE, digest, tags)
    for event in events:
        deliver(client, "on_image_pushed", event)
    if redeliver:
        deliver(client, "on_image_pushed", events[1])  # EventBridge delivers at least once
    found = client.http.get(f"/deployments?service={SERVICE}").json_body["deployments"]
    return next(d for d in found if d["image_digest"] == digest)


def approve(stack, client, dep: dict, identity: str = "slack:U0APPROVER1"):
    url = decisions.link_for(stack.deps(), stack.deps().load(dep["id"]), identity)
    dep_id, token = link_token(url)
    return client.http.post(f"/approvals/{dep_id}", headers=FORM,
                            body=urlencode({"token": token, "decision": "approve"}))


def get(client, dep_id: str) -> dict:
    return client.http.get(f"/deployments/{dep_id}").json_body


def run_to_success(stack, client, tags=TAGS) -> dict:
    dep = push(stack, client, tags, redeliver=False)
    assert approve(stack, client, dep).status_code == 200
    stack.drain()
    dep = get(client, dep["id"])
    deliver(client, "on_task_state_change", task_stopped(dep, exit_code=0))
    dep = get(client, dep["id"])
    stack.finish_rollout_in_moto("production-cluster", SERVICE)
    deliver(client, "on_deployment_state_change", rollout(dep))
    return get(client, dep["id"])
