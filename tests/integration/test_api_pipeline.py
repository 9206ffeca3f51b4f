"""The core pipeline through Chalice's test client on a real moto server (issue 2's 'done when')."""
from __future__ import annotations

import threading
from urllib.parse import urlencode

import pytest
from chalice.test import Client

import app as app_module
from chalicelib.service import decisions
from tests.conftest import load_event
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


def test_three_tags_and_a_redelivery_make_one_deployment(stack, client):
    """One push under three tags, one event delivered twice: one deployment awaiting approval."""
    dep = push(stack, client)
    all_deps = client.http.get("/deployments").json_body["deployments"]
    assert len(all_deps) == 1
    assert dep["state"] == "PENDING_APPROVAL"
    assert dep["image_tag"] == "1.22.0-abc123d" and dep["version"] == "1.22.0"
    assert dep["commit"] == "abc123d" and set(dep["tags"]) == set(TAGS)
    assert dep["image"].endswith(f"/better-chatbot@{dep['image_digest']}")
    assert any(c["path"] == "container[app].image" for c in dep["diff"])


def test_latest_alone_or_an_unconfigured_repository_starts_nothing(stack, client):
    """`latest` never deploys and pushes to unknown repositories are ignored."""
    digest = push_image(stack, SERVICE, ["latest"])
    out = deliver(client, "on_image_pushed", push_events(SERVICE, digest, ["latest"])[0])
    assert "does not start" in out["result"][0]
    other = push_events("billing-api", digest, ["abc123d"])[0]
    assert "not configured" in deliver(client, "on_image_pushed", other)["result"][0]
    assert client.http.get("/deployments").json_body["deployments"] == []


def test_approving_registers_a_pinned_revision_and_migrates_on_the_service_network(
        stack, client, calls):
    """The link approval registers repo@digest and runs `pnpm db:migrate` like the service runs."""
    dep = push(stack, client)
    page = approve(stack, client, dep)
    assert page.status_code == 200 and b"Approved" in page.body
    assert stack.drain() == 1
    dep = get(client, dep["id"])
    assert dep["state"] == "MIGRATING"
    registered = stack.client("ecs").describe_task_definition(
        taskDefinition=dep["task_definition_arn"])["taskDefinition"]
    app = next(c for c in registered["containerDefinitions"] if c["name"] == "app")
    assert app["image"] == dep["image"] and "@sha256:" in app["image"]
    run = next(p for name, p in calls if name == "RunTask")
    service = stack.services[SERVICE]
    assert run["networkConfiguration"]["awsvpcConfiguration"]["subnets"] == service["subnets"]
    assert run["networkConfiguration"]["awsvpcConfiguration"]["securityGroups"] == \
        [service["security_group"]]
    assert run["launchType"] == "FARGATE"
    assert run["overrides"]["containerOverrides"] == [{"name": "app",
                                                       "command": ["pnpm", "db:migrate"]}]
    assert run["startedBy"] == f"slipway/{dep['id']}" and run["clientToken"]
    assert dep["approvals"][0]["by"] == "slack:U0APPROVER1"
    assert dep["approvals"][0]["via"] == "link"


def test_success_updates_the_service_then_prunes_to_keep_and_keeps_the_previous_good_one(
        stack, client, calls):
    """Exit 0 → UpdateService; COMPLETED → SUCCEEDED, old revisions pruned, rollback target kept."""
    ecs = stack.client("ecs")
    first = run_to_success(stack, client, ["1111111", "1.0.0-1111111"])
    assert first["state"] == "SUCCEEDED"
    template = stack.deps().config.service(SERVICE).template
    for _ in range(8):  # older revisions of the family, as a long-lived service has
        ecs.register_task_definition(**{k: v for k, v in template.items()})
    second = run_to_success(stack, client, ["2222222", "1.1.0-2222222"])
    assert second["state"] == "SUCCEEDED"
    assert ecs.describe_services(cluster="production-cluster", services=[SERVICE])[
        "services"][0]["taskDefinition"] == second["task_definition_arn"]
    active = ecs.list_task_definitions(familyPrefix=SERVICE, status="ACTIVE")["taskDefinitionArns"]
    # keep = 5 in ecs/production/services.toml, plus the previous good revision (a rollback target)
    assert len(active) == 6
    assert first["task_definition_arn"] in active and second["task_definition_arn"] in active
    assert stack.services[SERVICE]["first_revision"] not in active
    assert any("pruned" in t["note"] for t in get(client, second["id"])["timeline"])
    assert [n for n, _ in calls].count("UpdateService") == 2


def test_migration_exit_1_fails_and_leaves_the_service_alone(stack, client, calls):
    """A failing migration ends the deployment FAILED, and UpdateService is never called."""
    dep = push(stack, client)
    approve(stack, client, dep)
    stack.drain()
    dep = get(client, dep["id"])
    deliver(client, "on_task_state_change", task_stopped(dep, exit_code=1,
                                                         name="task_stopped_exit1"))
    dep = get(client, dep["id"])
    assert dep["state"] == "FAILED"
    assert dep["migration"]["exit_code"] == 1 and "exited 1" in dep["reason"]
    assert "UpdateService" not in [n for n, _ in calls]
    service = stack.client("ecs").describe_services(cluster="production-cluster",
                                                    services=[SERVICE])["services"][0]
    assert service["taskDefinition"] == stack.services[SERVICE]["first_revision"]


def test_task_that_failed_to_start_or_has_no_exit_code_fails(stack, client):
    """TaskFailedToStart and a missing exit code are failures, with the reason kept."""
    dep = push(stack, client)
    approve(stack, client, dep)
    stack.drain()
    dep = get(client, dep["id"])
    event = task_stopped(dep, exit_code=None, stop_code="TaskFailedToStart",
                         name="task_failed_to_start")
    deliver(client, "on_task_state_change", event)
    dep = get(client, dep["id"])
    assert dep["state"] == "FAILED" and "failed to start" in dep["reason"]
    assert "CannotPullContainerError" in dep["reason"]


def test_duplicate_task_events_act_once(stack, client, calls):
    """The same STOPPED event twice updates the service once."""
    dep = push(stack, client)
    approve(stack, client, dep)
    stack.drain()
    dep = get(client, dep["id"])
    event = task_stopped(dep)
    deliver(client, "on_task_state_change", event)
    again = deliver(client, "on_task_state_change", event)
    assert "duplicate" in again["result"]
    assert [n for n, _ in calls].count("UpdateService") == 1


def test_two_approvals_at_once_start_one_migration(stack, client, calls):
    """Two approvers clicking at the same moment: one wins, one gets 409, one task runs."""
    dep = push(stack, client)
    deps = stack.deps()
    model = deps.load(dep["id"])
    urls = [decisions.link_for(deps, model, "slack:U0APPROVER1"),
            decisions.link_for(deps, model, "github:octocat")]
    statuses = []
    barrier = threading.Barrier(2)

    def click(url):
        dep_id, token = link_token(url)
        barrier.wait()
        with Client(app_module.app, stage_name="test") as c:
            statuses.append(c.http.post(f"/approvals/{dep_id}", headers=FORM, body=urlencode(
                {"token": token, "decision": "approve"})).status_code)

    threads = [threading.Thread(target=click, args=(u,)) for u in urls]
    [t.start() for t in threads]
    [t.join() for t in threads]
    stack.drain()
    assert sorted(statuses) == [200, 409]
    assert [n for n, _ in calls].count("RunTask") == 1
    assert len(get(client, dep["id"])["approvals"]) == 1


def test_rollback_returns_to_the_last_good_revision_without_migrating(stack, client, calls):
    """`previous` means the last SUCCEEDED deployment before the current one; no migration runs."""
    first = run_to_success(stack, client, ["1111111", "1.0.0-1111111"])
    second = run_to_success(stack, client, ["2222222", "1.1.0-2222222"])
    before = [n for n, _ in calls].count("RunTask")
    res = client.http.post(f"/services/{SERVICE}/rollback", headers={
        "Content-Type": "application/json"}, body='{"to": "previous", "reason": "bad release"}')
    assert res.status_code == 202
    rb = res.json_body
    assert rb["kind"] == "rollback" and rb["task_definition_arn"] == first["task_definition_arn"]
    assert rb["previous_task_definition_arn"] == second["task_definition_arn"]
    stack.drain()
    rb = get(client, rb["id"])
    assert rb["state"] == "DEPLOYING"
    deliver(client, "on_deployment_state_change", rollout(rb))
    rb = get(client, rb["id"])
    assert rb["state"] == "SUCCEEDED" and rb["migration"] is None
    assert [n for n, _ in calls].count("RunTask") == before
    service = stack.client("ecs").describe_services(cluster="production-cluster",
                                                    services=[SERVICE])["services"][0]
    assert service["taskDefinition"] == first["task_definition_arn"]


def test_rollback_is_refused_while_a_deployment_is_migrating(stack, client):
    """While ECS works on a deployment, a rollback answers 409 and creates nothing."""
    run_to_success(stack, client, ["1111111", "1.0.0-1111111"])
    run_to_success(stack, client, ["2222222", "1.1.0-2222222"])
    dep = push(stack, client, ["3333333", "1.2.0-3333333"], redeliver=False)
    approve(stack, client, dep)
    stack.drain()
    res = client.http.post(f"/services/{SERVICE}/rollback", headers={
        "Content-Type": "application/json"}, body='{"to": "previous"}')
    assert res.status_code == 409 and res.json_body["error"] == "service_locked"
    assert len(client.http.get("/deployments").json_body["deployments"]) == 3


def _bad(name: str, **detail) -> dict:
    event = load_event(name)
    event["detail"].update(detail)
    return event


@pytest.mark.parametrize("name,event", [
    ("on_image_pushed", _bad("ecr_push_sha", **{"image-digest": "sha256:nope"})),
    ("on_image_pushed", _bad("ecr_push_sha", **{"repository-name": None})),
    ("on_image_pushed", dict(load_event("ecr_push_sha"), detail="not an object")),
    ("on_task_state_change", _bad("task_stopped_ok", containers="nope")),
    ("on_task_state_change", _bad("task_stopped_ok", taskArn=None)),
    ("on_deployment_state_change", _bad("deployment_completed", eventName=3)),
    ("on_deployment_state_change", _bad("deployment_completed", deploymentId=None)),
])
def test_malformed_events_write_nothing(stack, client, name, event):
    """Events that cannot be understood are dropped with a clear error and leave no trace."""
    before = stack.client("dynamodb").scan(TableName="slipway-test")["Count"]
    out = deliver(client, name, event)
    assert out["ok"] is False and out["error"] == "bad_event"
    assert stack.client("dynamodb").scan(TableName="slipway-test")["Count"] == before


def test_a_malformed_work_message_is_dropped(stack, client):
    """A work-queue message that names no deployment is dropped, not retried forever."""
    out = client.lambda_.invoke("work", {"Records": [{
        "body": "{not json", "messageId": "1", "receiptHandle": "r", "attributes": {},
        "messageAttributes": {}, "eventSource": "aws:sqs"}]}).payload
    assert out is None
    assert stack.client("dynamodb").scan(TableName="slipway-test")["Count"] == 0


def test_a_push_for_a_service_missing_in_ecs_is_refused_clearly(stack, client):
    """If the configured ECS service does not exist, the push is dropped with ECS's reason."""
    ecs = stack.client("ecs")
    ecs.update_service(cluster="production-cluster", service=SERVICE, desiredCount=0)
    ecs.delete_service(cluster="production-cluster", service=SERVICE)
    digest = push_image(stack, SERVICE, ["abc123d"])
    out = deliver(client, "on_image_pushed", push_events(SERVICE, digest, ["abc123d"])[0])
    assert out["ok"] is False and out["error"] == "aws_refused"
    assert "better-chatbot" in out["message"]
    assert client.http.get("/deployments").json_body["deployments"] == []


def test_api_errors_are_json_with_the_right_status(stack, client):
    """Unknown ids are 404, bad parameters 400, each with a code and a message."""
    res = client.http.get("/deployments/d-nope")
    assert res.status_code == 404 and res.json_body["error"] == "unknown_deployment"
    res = client.http.get("/deployments?limit=abc")
    assert res.status_code == 400 and res.json_body["error"] == "bad_parameter"
    res = client.http.get("/deployments?state=DONE")
    assert res.status_code == 400 and "PENDING_APPROVAL" in res.json_body["message"]
    res = client.http.get("/services/nope")
    assert res.status_code == 404 and res.json_body["error"] == "unknown_service"
    res = client.http.post(f"/services/{SERVICE}/rollback", headers={
        "Content-Type": "application/json"}, body="{not json")
    assert res.status_code == 400 and res.json_body["error"] == "bad_json"
    assert client.http.get("/health").json_body == {"ok": True}


def test_approval_page_shows_what_ships_and_changes_nothing(stack, client):
    """GET on a link (as an unfurler would) renders the page; the deployment stays pending."""
    dep = push(stack, client)
    url = decisions.link_for(stack.deps(), stack.deps().load(dep["id"]), "slack:U0APPROVER1")
    path = url.split("127.0.0.1:9", 1)[1]
    for _ in range(3):
        page = client.http.get(path, headers={"User-Agent": "Slackbot-LinkExpanding 1.0"})
        assert page.status_code == 200
    html = page.body.decode()
    assert "1.22.0" in html and "pnpm db:migrate" in html and "container[app].image" in html
    assert get(client, dep["id"])["state"] == "PENDING_APPROVAL"
    forged = path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB")
    assert client.http.get(forged).status_code == 401


def test_a_link_works_once(stack, client):
    """The second POST with the same link is a 409 and changes nothing."""
    dep = push(stack, client)
    url = decisions.link_for(stack.deps(), stack.deps().load(dep["id"]), "slack:U0APPROVER1")
    dep_id, token = link_token(url)
    body = urlencode({"token": token, "decision": "reject", "comment": "<b>not now</b>"})
    first = client.http.post(f"/approvals/{dep_id}", headers=FORM, body=body)
    second = client.http.post(f"/approvals/{dep_id}", headers=FORM, body=body)
    assert first.status_code == 200 and second.status_code == 409
    assert b"<b>not now" not in first.body  # comments are escaped in pages
    dep = get(client, dep_id)
    assert dep["state"] == "REJECTED" and dep["approvals"][0]["comment"] == "<b>not now</b>"


def test_an_exact_redelivery_is_answered_from_the_idempotency_store(stack, client, calls):
    """The same event id twice: the second answer is the first one, and ECS is not asked again."""
    digest = push_image(stack, SERVICE, ["abc123d"])
    event = push_events(SERVICE, digest, ["abc123d"])[0]
    first = deliver(client, "on_image_pushed", event)
    asked = len(calls)
    second = deliver(client, "on_image_pushed", event)
    assert first == second and first["result"][0].startswith("created")
    assert len(calls) == asked
    stored = stack.client("dynamodb").scan(TableName="slipway-idem-test")["Items"]
    assert len(stored) == 1 and stored[0]["status"]["S"] == "COMPLETED"
