"""The demo's scenarios and the devstack's promises, end to end over HTTP and boto3.

GIVEN a devstack serving ecs/production, WHEN CI pushes and someone approves, THEN what a user
would notice: the deployment's state and timeline, what ECS runs, what Slack and GitHub received.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.e2e.helpers import Devstack, clocked, release

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.timeout(120)


def test_control_endpoints_describe_the_embedded_aws(devstack):
    """/_devstack/aws names a loopback endpoint where boto3 finds the provisioned services."""
    info = devstack.get_json("/_devstack/aws")
    assert info["endpoint_url"].startswith("http://127.0.0.1:")
    assert info["region"] == "us-east-1"
    secret = devstack.aws("secretsmanager").describe_secret(SecretId=info["secret_id"])
    assert secret["Name"] == info["secret_id"]
    service = devstack.service()
    breaker = service["deploymentConfiguration"]["deploymentCircuitBreaker"]
    assert service["launchType"] == "FARGATE" and breaker == {"enable": True, "rollback": True}


def test_happy_path_deploys_the_pushed_digest_and_prunes(devstack):
    """Push, approve through the Slack link, and the service runs the new image pinned by digest."""
    before = devstack.service()["taskDefinition"]
    dep = devstack.deploy()
    assert dep["state"] == "SUCCEEDED", dep["timeline"]
    running = devstack.service()
    assert running["taskDefinition"] == dep["task_definition_arn"] != before
    taskdef = devstack.aws("ecs").describe_task_definition(
        taskDefinition=running["taskDefinition"])["taskDefinition"]
    assert taskdef["containerDefinitions"][0]["image"].endswith("@" + dep["image_digest"])
    assert dep["migration"]["exit_code"] == 0
    assert any("pruned" in t["note"] for t in dep["timeline"]), dep["timeline"]
    assert len(dep["approvals"]) == 1 and dep["approvals"][0]["via"] == "link"
    github = [d for d in devstack.get_json("/_devstack/github/deployments")["deployments"]
              if d["ref"] == dep["commit"]]
    assert [d["statuses"][-1]["state"] for d in github] == ["success"]


def test_three_tags_of_one_push_make_one_deployment(devstack):
    """The three tags CI pushes share a digest, so one push is one deployment carrying all three."""
    sha, version = release()
    digest = devstack.push("better-chatbot", sha, version)
    deps = devstack.get_json("/deployments?service=better-chatbot&limit=50")["deployments"]
    mine = [d for d in deps if d["image_digest"] == digest]
    assert len(mine) == 1
    assert set(mine[0]["tags"]) == {sha, f"{version}-{sha}", "latest"}
    devstack.approve(devstack.approval_link(mine[0]["id"]))
    assert devstack.wait_finished(mine[0]["id"])["state"] == "SUCCEEDED"


def test_failed_migration_leaves_the_service_untouched(devstack):
    """A migration exiting 1 fails the deployment and ECS never gets an UpdateService."""
    devstack.set_ecs(migration_exit_code=1)
    before = devstack.service()
    dep = devstack.deploy()
    after = devstack.service()
    assert dep["state"] == "FAILED"
    assert dep["migration"]["exit_code"] == 1
    assert dep["migration"]["stop_code"] == "EssentialContainerExited"
    assert "exited 1" in dep["reason"]
    assert after["taskDefinition"] == before["taskDefinition"]
    assert [d["id"] for d in after["deployments"]] == [d["id"] for d in before["deployments"]]
    assert dep["ecs_deployment_id"] is None


def test_failed_rollout_is_rolled_back_by_the_circuit_breaker(devstack):
    """A rollout ECS cannot start ends ROLLED_BACK, with the service on its previous revision."""
    devstack.set_ecs(rollout="fail")
    before = devstack.service()["taskDefinition"]
    dep = devstack.deploy()
    assert dep["state"] == "ROLLED_BACK", dep["timeline"]
    assert "circuit breaker" in dep["reason"]
    assert dep["previous_task_definition_arn"] == before
    after = devstack.service()
    assert after["taskDefinition"] == before
    primary = next(d for d in after["deployments"] if d["status"] == "PRIMARY")
    assert primary["id"] != dep["ecs_deployment_id"] and primary["taskDefinition"] == before


def test_operator_rollback_returns_to_the_previous_version_without_migration(devstack):
    """After two good deployments, rolling back to "previous" runs the first one's revision again."""
    first, second = devstack.deploy(), devstack.deploy()
    assert (first["state"], second["state"]) == ("SUCCEEDED", "SUCCEEDED")
    status, dep = devstack.post_json("/services/better-chatbot/rollback",
                                     {"to": "previous", "reason": "e2e", "force": True})
    assert status == 202, dep
    assert dep["kind"] == "rollback" and dep["rollback_of"] == first["id"]
    done = devstack.wait_finished(dep["id"])
    assert done["state"] == "SUCCEEDED", done["timeline"]
    assert done["migration"] is None
    assert done["task_definition_arn"] == first["task_definition_arn"]
    assert devstack.service()["taskDefinition"] == first["task_definition_arn"]


def test_lost_ecs_events_are_recovered_by_the_reconciler(devstack):
    """With every ECS event withheld, the reconciler still carries the deployment to SUCCEEDED,
    and the terminal says where it stepped in, before the steps it took."""
    withheld = devstack.set_ecs(drop_events=True)["dropped_events"]
    since = devstack.mark()
    dep = devstack.deploy()
    assert dep["state"] == "SUCCEEDED", dep["timeline"]
    assert dep["migration"]["exit_code"] == 0
    assert devstack.service()["taskDefinition"] == dep["task_definition_arn"]
    # the migration task's RUNNING + STOPPED and the rollout's IN_PROGRESS + COMPLETED
    assert devstack.get_json("/_devstack/ecs")["dropped_events"] - withheld >= 4
    out = devstack.wait_for_output(f"{dep['id'][-8:]}  => SUCCEEDED", since, timeout=15)
    mine = [rest for _, rest in clocked(out) if dep["id"][-8:] in rest]
    task = index(mine, f"reconciler: recovered lost task event for {dep['id']} → DEPLOYING")
    rollout = index(mine, f"reconciler: recovered lost rollout event for {dep['id']} → SUCCEEDED")
    assert task < index(mine, "migration exited 0") < rollout < index(mine, "rollout completed")


def test_event_driven_steps_print_no_reconciler_line(devstack):
    """When ECS's events arrive, the timeline shows no recovery: the safety net had nothing to do."""
    since = devstack.mark()
    dep = devstack.deploy()
    assert dep["state"] == "SUCCEEDED", dep["timeline"]
    out = devstack.wait_for_output(f"{dep['id'][-8:]}  => SUCCEEDED", since, timeout=15)
    assert f"recovered lost task event for {dep['id']}" not in out
    assert f"recovered lost rollout event for {dep['id']}" not in out


def test_lost_events_of_a_failed_rollout_still_end_rolled_back(devstack):
    """When the FAILED event is lost and ECS has already rolled back, the reconciler notices."""
    devstack.set_ecs(rollout="fail", drop_events=True)
    before = devstack.service(name="better-chatbot-worker")["taskDefinition"]
    sha, version = release()
    digest = devstack.push("better-chatbot-worker", sha, version)
    dep = devstack.wait_finished(devstack.deployment_of("better-chatbot-worker", digest)["id"])
    assert dep["state"] == "ROLLED_BACK", dep["timeline"]
    assert devstack.service(name="better-chatbot-worker")["taskDefinition"] == before


def test_service_without_approval_deploys_on_push(devstack):
    """better-chatbot-worker needs no approval: a push alone deploys it, with no approval link."""
    sha, version = release()
    digest = devstack.push("better-chatbot-worker", sha, version)
    dep = devstack.deployment_of("better-chatbot-worker", digest)
    done = devstack.wait_finished(dep["id"])
    assert done["state"] == "SUCCEEDED", done["timeline"]
    assert done["migration"] is None
    running = devstack.service(name="better-chatbot-worker")
    assert running["taskDefinition"] == done["task_definition_arn"]
    slack = devstack.get_json("/_devstack/slack/messages")
    assert f"/approvals/{dep['id']}?token=" not in str(slack)


def test_events_endpoint_routes_by_the_apps_own_patterns(devstack):
    """POST /_devstack/events reaches exactly the handlers whose EventBridge rules match."""
    ecr_delete = {"version": "0", "id": "5d6a0f5e-1b0c-4a40-9a3c-0d9a8bb1c1d1",
                  "detail-type": "ECR Image Action", "source": "aws.ecr",
                  "account": "123456789012", "time": "2025-06-03T10:15:42Z",
                  "region": "us-east-1", "resources": [],
                  "detail": {"result": "SUCCESS", "repository-name": "better-chatbot",
                             "image-digest": "sha256:" + "0" * 64, "action-type": "DELETE"}}
    status, got = devstack.post_json("/_devstack/events", ecr_delete)
    assert status == 200 and got["handlers"] == []
    rollout = {**ecr_delete, "detail-type": "ECS Deployment State Change", "source": "aws.ecs",
               "detail": {"eventType": "INFO", "eventName": "SERVICE_DEPLOYMENT_COMPLETED",
                          "deploymentId": "ecs-svc/1234567890123456789", "reason": "done"}}
    status, got = devstack.post_json("/_devstack/events", rollout)
    assert status == 200 and got["handlers"] == ["on_deployment_state_change"]
    assert "not a Slipway rollout" in str(got["results"])


def index(lines: list[str], text: str) -> int:
    """Where the first line containing ``text`` is (fails, showing the lines, if none does)."""
    found = [i for i, line in enumerate(lines) if text in line]
    assert found, f"no line with {text!r} in:\n" + "\n".join(lines)
    return found[0]


def test_events_endpoint_fills_in_the_envelope_eventbridge_always_sets(devstack):
    """An event with only source, detail-type and detail is delivered as EventBridge would deliver
    it (version, id, account, time, region, resources filled in): handled, no error anywhere."""
    since = devstack.mark()
    status, got = devstack.post_json("/_devstack/events", {
        "source": "aws.ecs", "detail-type": "ECS Deployment State Change",
        "detail": {"eventType": "INFO", "eventName": "SERVICE_DEPLOYMENT_COMPLETED",
                   "deploymentId": "ecs-svc/9876543210987654321", "reason": "done"}})
    assert status == 200, got
    assert got["handlers"] == ["on_deployment_state_change"]
    [outcome] = got["results"]["on_deployment_state_change"]
    assert outcome["ok"] is True and "not a Slipway rollout" in outcome["result"]
    [event] = got["events"]
    assert uuid.UUID(event["id"])
    status, got = devstack.post_json("/_devstack/events", {
        "source": "aws.ecr", "detail-type": "ECR Image Action",
        "detail": {"result": "SUCCESS", "repository-name": "not-a-slipway-repository",
                   "image-digest": "sha256:" + "1" * 64, "action-type": "PUSH",
                   "image-tag": "abc1234"}})
    assert status == 200, got
    assert got["results"]["on_image_pushed"] == [
        {"ok": True, "result": ["ignored: repository not-a-slipway-repository is not configured"]}]
    time.sleep(0.5)
    out = devstack.terminal(since)
    assert "Traceback" not in out and "KeyError" not in out, out


@pytest.mark.parametrize("body, complaint", [
    (b"", "the body is empty"),
    (b"{not json", "the body is not JSON"),
    (b"[]", "the list is empty"),
    (b"42", "must be a JSON object"),
    (b'[{"source": "aws.ecs", "detail-type": "X", "detail": {}}, "oops"]', "must be a JSON object"),
    (b'{"detail-type": "ECR Image Action", "detail": {}}', "'source'"),
    (b'{"source": "aws.ecr", "detail": {}}', "'detail-type'"),
    (b'{"source": "aws.ecr", "detail-type": "ECR Image Action"}', "'detail'"),
    (b'{"source": "aws.ecr", "detail-type": "ECR Image Action", "detail": []}', "'detail'"),
    (b'{"source": "aws.ecs", "detail-type": "X", "detail": {}, "resources": 5}', "'resources'"),
])
def test_events_endpoint_refuses_what_eventbridge_would_not_deliver(devstack, body, complaint):
    """Not an object, or no source / detail-type / detail: a clean 400 naming what is wrong."""
    status, got = devstack.post_raw("/_devstack/events", body)
    assert status == 400, got
    assert set(got) == {"error", "message"} and got["error"] == "bad_request"
    assert complaint in got["message"], got["message"]


def test_a_handler_that_keeps_failing_is_a_502_and_its_traceback_stays_off_the_terminal(devstack):
    """The handler raises on every attempt (ECR throttles it for good): the endpoint says so
    with 502, the terminal gets one line, and the traceback goes to the log file."""
    since = devstack.mark()
    devstack.fault("ecr", "DescribeImages", "throttle", times=None)
    try:
        status, got = devstack.post_json("/_devstack/events", {
            "source": "aws.ecr", "detail-type": "ECR Image Action",
            "detail": {"result": "SUCCESS", "repository-name": "better-chatbot",
                       "image-digest": "sha256:" + "2" * 64, "action-type": "PUSH",
                       "image-tag": "2222222"}})
    finally:
        devstack.clear_faults()
    assert status == 502, got
    assert got["error"] == "handler_failed" and "on_image_pushed" in got["message"]
    [outcome] = got["results"]["on_image_pushed"]
    assert outcome["ok"] is False and outcome["attempts"] == 3
    out = devstack.wait_for_output("on_image_pushed failed", since)
    assert "Traceback" not in out, out
    log_file = Path(re.search(r"details in (\S+\.log)", got["message"]).group(1))
    assert "Traceback" in log_file.read_text() and "on_image_pushed failed" in log_file.read_text()


def test_terminal_prints_in_event_order_with_each_approval_link_before_later_states(devstack):
    """Two pushes in a row: the first one's approval link comes before its SUPERSEDED line, and
    every timestamped line (down to "=> SUCCEEDED" after the pruning note) is in time order."""
    since = devstack.mark()
    digests = [devstack.push("better-chatbot", *release()) for _ in range(2)]
    first, second = (devstack.deployment_of("better-chatbot", d) for d in digests)
    assert devstack.wait_finished(first["id"])["state"] == "SUPERSEDED"
    devstack.approve(devstack.approval_link(second["id"]))
    assert devstack.wait_finished(second["id"])["state"] == "SUCCEEDED"
    out = devstack.wait_for_output(f"{second['id'][-8:]}  => SUCCEEDED", since, timeout=15)
    lines = clocked(out)
    mine = [rest for _, rest in lines if first["id"][-8:] in rest]
    assert (index(mine, "PENDING_APPROVAL") < index(mine, "approval link")
            < index(mine, "SUPERSEDED ") < index(mine, "=> SUPERSEDED")), mine
    theirs = [rest for _, rest in lines if second["id"][-8:] in rest]
    assert index(theirs, "pruned") < index(theirs, "=> SUCCEEDED"), theirs
    clocks = [clock for clock, _ in lines]
    assert clocks == sorted(clocks), "\n".join(f"{c}  {r}" for c, r in lines)


def test_devstack_output_names_no_file_missing_from_the_repository(devstack):
    """The banner and GET /_devstack point only at files a reader of this repository has."""
    banner = devstack.terminal().split("Ctrl-C stops everything.")[0]
    index_page = json.dumps(devstack.get_json("/_devstack"))
    named = set(re.findall(r"[\w./-]+\.md\b", banner + index_page))
    assert all((ROOT / name).is_file() for name in named), named


def _start_serve(log: Path) -> tuple[subprocess.Popen, Devstack]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("SLACK_API_URL", "GITHUB_API_URL", "AWS_ENDPOINT_URL")}
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "devstack", "serve", "--port", "0"],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        found = re.search(r"Slipway devstack: (http://\S+)", log.read_text(errors="replace"))
        if found:
            stack = Devstack(found.group(1), terminal=log)
            stack.wait_healthy(60)
            return proc, stack
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"serve did not start:\n{log.read_text(errors='replace')[-3000:]}")


def test_ctrl_c_stops_serve_and_frees_its_ports(tmp_path):
    """make local, then Ctrl-C (SIGINT): exit 0, "stopped", and its ports are free again."""
    import socket

    proc, stack = _start_serve(tmp_path / "serve.log")
    try:
        aws_port = int(stack.get_json("/_devstack/aws")["endpoint_url"].rsplit(":", 1)[1])
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0, stack.terminal()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = stack.terminal()
    assert "devstack: stopped" in out and "Traceback" not in out, out
    for port in (stack.port, aws_port):
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still answers"


@pytest.mark.timeout(240)
def test_every_demo_scenario_ends_as_it_should(tmp_path):
    """make demo SCENARIO=…: each scenario exits 0, its timeline in time order, no traceback."""
    scenarios = ("happy", "migration-fails", "rollout-fails", "rollback", "chaos")
    runs = {s: subprocess.Popen([sys.executable, "-m", "devstack", "demo", "--scenario", s,
                                 "--task-seconds", "1"], cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True) for s in scenarios}
    for scenario, proc in runs.items():
        out, _ = proc.communicate(timeout=200)
        assert proc.returncode == 0, out
        assert f"✔ {scenario}:" in out and "Traceback" not in out, out
        clocks = [clock for clock, _ in clocked(out)]
        assert clocks and clocks == sorted(clocks), out
