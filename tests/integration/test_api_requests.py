"""Bad and repeated input at the API and event edges: clear errors, nothing changed."""
from __future__ import annotations

from urllib.parse import urlencode

import pytest

from chalicelib.service import decisions
from tests.conftest import load_event
from tests.integration.api_kit import FORM, calls, client, deliver, get, push
from tests.integration.helpers import SERVICE, link_token, push_events, push_image

__all__ = ["calls", "client"]  # fixtures, imported for pytest


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
    for unknown in ("d-nope", "d-20261126T101010-" + "0" * 3000):  # DynamoDB keys stop at 2 KB
        res = client.http.get(f"/deployments/{unknown}")
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


def test_an_exact_redelivery_is_recognised_from_the_ledger_alone(stack, client, calls):
    """The same event twice: the second is a duplicate of the first deployment, ECS and ECR are
    not asked again, and it costs one ledger read (the dedupe key, read with the service's head
    item), nothing written."""
    digest = push_image(stack, SERVICE, ["abc123d"])
    event = push_events(SERVICE, digest, ["abc123d"])[0]
    first = deliver(client, "on_image_pushed", event)
    asked = len(calls)
    dynamodb = []
    db = stack.deps().ledger._db
    hook = lambda model, **_: dynamodb.append(model.name)  # noqa: E731
    db.meta.events.register("before-call.dynamodb.*", hook)
    try:
        second = deliver(client, "on_image_pushed", event)
    finally:
        db.meta.events.unregister("before-call.dynamodb.*", hook)
    dep_id = first["result"][0].split()[-1]
    assert first["result"][0].startswith("created") and second["result"] == [f"duplicate of {dep_id}"]
    assert len(calls) == asked and dynamodb == ["BatchGetItem"]


@pytest.mark.parametrize("body,message", [
    ("{}", "'to' is required"), ('{"too": "previous"}', "unknown field(s) too"),
    ('{"to": "previous", "reason": "' + "x" * 501 + '"}', "at most 500"),
    ('["previous"]', "must be a JSON object"),
])
def test_a_rollback_must_say_where_to(stack, client, body, message):
    """An empty, misspelt or oversized rollback request is a 400 and rolls nothing back."""
    res = client.http.post(f"/services/{SERVICE}/rollback", body=body,
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert res.status_code == 400 and message in res.json_body["message"]
    assert client.http.get("/deployments").json_body["deployments"] == []


@pytest.mark.parametrize("path,body,headers", [
    ("/approvals/d-20261126T101010-00000000", b"a&" * 5_000_000, FORM),  # 10 MB of fields
    ("/approvals/d-20261126T101010-00000000", b"token=x." + "é".encode() + b"&decision=approve",
     FORM),
    ("/services/better-chatbot/rollback", b"[" * 100_000, {"Content-Type": "application/json"}),
    ("/slack/interactions", b"payload=%7B%7D", {**FORM, "X-Slack-Signature": "v0=é",
                                                "X-Slack-Request-Timestamp": "9999999999"}),
])
def test_hostile_bodies_are_refused_without_a_500(stack, client, path, body, headers):
    """Huge forms, non-ASCII tokens or signatures and absurdly nested JSON: 4xx, nothing written."""
    res = client.http.post(path, headers=headers, body=body)
    assert 400 <= res.status_code < 500
    assert stack.client("dynamodb").scan(TableName="slipway-test")["Count"] == 0


def test_wrong_methods_and_content_types_answer_in_the_contract_shape(stack, client):
    """Chalice's own 405 and 415 come back as {"error", "message"} (HTML under /approvals)."""
    res = client.http.put("/deployments/d-20261126T101010-00000000")
    assert res.status_code == 405 and set(res.json_body) == {"error", "message"}
    res = client.http.post("/slack/interactions", headers={"Content-Type": "application/json"},
                           body=b"{}")
    assert res.status_code == 415 and res.json_body["error"] == "unsupported_media_type"
    res = client.http.post("/approvals/d-20261126T101010-00000000", body=b"{}",
                           headers={"Content-Type": "application/json"})
    assert res.status_code == 415 and res.body.startswith(b"<!doctype html>")
