"""The core pipeline through Chalice's test client on a real moto server (issue 2's 'done when')."""
from __future__ import annotations

import threading
from urllib.parse import urlencode

from chalice.test import Client

import app as app_module
from chalicelib.service import decisions
from tests.integration.api_kit import (FORM, TAGS, approve, calls, client, deliver, get, push,
                                       run_to_success)
from tests.integration.helpers import (SERVICE, link_token, push_events, push_image, rollout,
                                       task_stopped)

__all__ = ["calls", "client"]  # fixtures, imported for pytest


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
    assert res.status_code == 409 and res.json_body["error"] == "migrations_since_target"
    assert [m["id"] for m in res.json_body["migrations"]] == [second["id"]]
    res = client.http.post(f"/services/{SERVICE}/rollback", headers={
        "Content-Type": "application/json"},
        body='{"to": "previous", "reason": "bad release", "force": true}')
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


def test_a_service_reports_its_dora_figures_over_a_window(stack, client):
    """GET /services/{name}: frequency, failure rate, approval wait and history from the ledger;
    ?days= outside 1-365 is a 400 that reads nothing."""
    first = run_to_success(stack, client)
    second = run_to_success(stack, client, ["2222222", "1.23.0-2222222"])
    assert (first["state"], second["state"]) == ("SUCCEEDED", "SUCCEEDED")
    got = client.http.get(f"/services/{SERVICE}?days=7").json_body
    dora = got["dora"]
    assert dora["days"] == 7 and dora["deployments"] == 2 and dora["changes"] == 2
    assert dora["change_failure_rate"] == 0 and dora["per_day"] == round(2 / 7, 3)
    assert dora["approval_wait_seconds"] is not None and len(dora["series"]) == 6
    assert [d["id"] for d in got["recent"][:2]] == [second["id"], first["id"]]
    for bad in ("0", "366", "abc"):
        answer = client.http.get(f"/services/{SERVICE}?days={bad}")
        assert answer.status_code == 400 and answer.json_body["error"] == "bad_parameter"
