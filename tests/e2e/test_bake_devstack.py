"""On the devstack: ECS's deployment alarms, Slipway's bake, automatic rollback, migration logs.

better-chatbot-api bakes 5 minutes watching better-chatbot-api-5xx and -latency (services.toml);
it needs no approval, so a push alone deploys it. Every test leaves the alarms OK and no bake
running, so the next one starts from a free service.
"""
from __future__ import annotations

import json
import time
import urllib.request

import pytest

from tests.e2e.helpers import FINISHED, release

API = "better-chatbot-api"
ALARM_5XX, ALARM_LATENCY = "better-chatbot-api-5xx", "better-chatbot-api-latency"


@pytest.fixture(scope="module")
def devstack(tmp_path_factory):
    """A devstack of this module's own: the quiet bake moves the app's clock, which only moves
    forward, and other tests compare the app's times with ECR's real push times."""
    from tests.e2e.conftest import serve_kept

    yield from serve_kept(tmp_path_factory, "bakestack")


@pytest.fixture(autouse=True)
def quiet_alarms(devstack):
    yield
    for name in (ALARM_5XX, ALARM_LATENCY):
        devstack.post_json("/_devstack/alarms", {"name": name, "state": "OK"})


def wait_state(devstack, dep_id: str, states: set[str], timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    dep: dict = {}
    while time.monotonic() < deadline:
        dep = devstack.get_json(f"/deployments/{dep_id}")
        if dep["state"] in states:
            return dep
        time.sleep(0.2)
    raise AssertionError(f"{dep_id} is {dep.get('state')}, not {states}: {dep.get('timeline')}")


def push_api(devstack) -> dict:
    sha, version = release()
    digest = devstack.push(API, sha, version)
    return devstack.deployment_of(API, digest)


def baking(devstack) -> dict:
    """A new release of the API, rolled out by ECS and now in its bake."""
    return wait_state(devstack, push_api(devstack)["id"], {"VERIFYING"} | FINISHED)


def page_html(devstack, dep_id: str) -> str:
    """The deployment page, asked for as a browser asks (signed: an operator's IAM read)."""
    from devstack import sigv4

    url = f"{devstack.url}/deployments/{dep_id}"
    headers = sigv4.sign(devstack._http.keys(), "GET", url,
                         {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}, None)
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=30) as resp:
        assert resp.headers["Content-Type"].startswith("text/html")
        return resp.read().decode()


def set_alarm(devstack, name: str, state: str, reason: str = "") -> dict:
    status, got = devstack.post_json("/_devstack/alarms",
                                     {"name": name, "state": state, "reason": reason})
    assert status == 200, got
    return got


def rollbacks_of(devstack, dep: dict) -> list[dict]:
    found = devstack.get_json(f"/deployments?service={API}&limit=50")["deployments"]
    return [d for d in found if d["kind"] == "rollback" and d["reason"]
            and dep["id"] in d["reason"]]


def assert_rolled_back(devstack, dep: dict, alarm: str, words: str) -> None:
    """ROLLED_BACK naming the alarm, one rollback deployment, the service on the revision before."""
    dep = wait_state(devstack, dep["id"], FINISHED)
    assert dep["state"] == "ROLLED_BACK" and alarm in dep["reason"] and words in dep["reason"]
    deadline = time.monotonic() + 10  # created right after the original ended
    while not rollbacks_of(devstack, dep) and time.monotonic() < deadline:
        time.sleep(0.2)
    [rollback] = rollbacks_of(devstack, dep)
    rollback = devstack.wait_finished(rollback["id"])
    assert rollback["state"] == "SUCCEEDED" and rollback["migration"] is None
    running = devstack.service(name=API)["taskDefinition"]
    assert running == dep["previous_task_definition_arn"] == rollback["task_definition_arn"]


def test_an_alarm_during_the_ecs_rollout_rolls_back_through_ecs(devstack):
    """The alarm fires while ECS rolls out: ECS fails its deployment and rolls back itself;
    Slipway reports ROLLED_BACK with ECS's reason and starts no rollback of its own."""
    devstack.set_ecs(task_seconds=4)
    before = devstack.service(name=API)["taskDefinition"]
    dep = wait_state(devstack, push_api(devstack)["id"], {"DEPLOYING"} | FINISHED)
    deadline = time.monotonic() + 10
    while not dep.get("ecs_deployment_id") and time.monotonic() < deadline:
        dep = devstack.get_json(f"/deployments/{dep['id']}")
    got = set_alarm(devstack, ALARM_5XX, "ALARM", "42 5xx in one minute")
    assert got["ecs"] == [dep["ecs_deployment_id"]]
    dep = wait_state(devstack, dep["id"], FINISHED)
    assert dep["state"] == "ROLLED_BACK" and ALARM_5XX in dep["reason"]
    assert not rollbacks_of(devstack, dep)
    devstack.set_ecs(task_seconds=0.5)
    deadline = time.monotonic() + 10  # ECS's own rollback deployment completes
    while devstack.service(name=API)["deployments"][0]["rolloutState"] != "COMPLETED":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert devstack.service(name=API)["taskDefinition"] == before


def test_an_alarm_during_the_bake_rolls_back_automatically(devstack):
    """Rolled out, baking: the alarm's event starts one rollback to the revision before."""
    dep = baking(devstack)
    assert dep["state"] == "VERIFYING", dep["timeline"]
    assert dep["verify"]["alarms"] == [ALARM_5XX, ALARM_LATENCY]
    messages = json.dumps(devstack.get_json("/_devstack/slack/messages"))
    assert "Baking until" in messages and ALARM_LATENCY in messages
    got = set_alarm(devstack, ALARM_LATENCY, "ALARM", "p99 latency above 2 s")
    assert got["handlers"] and "on_alarm_state_change" in got["handlers"]
    assert_rolled_back(devstack, dep, ALARM_LATENCY, "p99 latency above 2 s")
    page = page_html(devstack, dep["id"])
    assert "Rolled back" in page or "rolled back" in page


def test_an_alarm_already_firing_when_the_bake_starts_counts_without_its_event(devstack):
    """ECS events withheld, the alarm set behind EventBridge's back (no event at all) as the rollout
    completes: the reconciler finds the rollout COMPLETED and the alarm (the bake's first look,
    or its next look if the reconciler got to COMPLETED first), and rolls back."""
    devstack.set_ecs(drop_events=True)
    dep = push_api(devstack)
    deadline = time.monotonic() + 15
    while devstack.service(name=API)["deployments"][0]["rolloutState"] != "COMPLETED" or \
            devstack.service(name=API)["taskDefinition"] == dep["previous_task_definition_arn"]:
        assert time.monotonic() < deadline, "ECS never completed the rollout"
        time.sleep(0.1)
    devstack.aws("cloudwatch").set_alarm_state(
        AlarmName=ALARM_5XX, StateValue="ALARM", StateReason="error rate 9 %")
    devstack.set_ecs(drop_events=False)
    assert_rolled_back(devstack, dep, ALARM_5XX, "error rate 9 %")
    dep = devstack.get_json(f"/deployments/{dep['id']}")
    assert dep["verify"]["alarm"]["via"] in ("already in ALARM when the bake began",
                                             "found in ALARM by the reconciler")


def test_a_quiet_bake_succeeds_once_the_clock_has_moved(devstack):
    """No alarm: the bake lasts bake_minutes of Slipway's clock; moved on, it ends SUCCEEDED."""
    dep = baking(devstack)
    assert dep["state"] == "VERIFYING", dep["timeline"]
    time.sleep(2)  # several reconciles: a bake is not cut short
    assert devstack.get_json(f"/deployments/{dep['id']}")["state"] == "VERIFYING"
    status, got = devstack.post_json("/_devstack/clock", {"advance_seconds": 6 * 60})
    if status == 404:
        pytest.skip("this devstack has no /_devstack/clock yet")
    assert status == 200, got
    dep = devstack.wait_finished(dep["id"])
    assert dep["state"] == "SUCCEEDED" and "no alarm in ALARM" in json.dumps(dep["timeline"])
    assert devstack.service(name=API)["taskDefinition"] == dep["task_definition_arn"]


def test_a_failed_migrations_last_lines_are_in_the_json_the_page_and_slack(devstack):
    """The migration prints, then exits 1: its last lines, redacted, are where people decide."""
    devstack.set_ecs(migration_exit_code=1, migration_log=[
        "Running migrations...", "connecting to postgres://chatbot:hunter2@db.internal/chatbot",
        "applying 0042_add_users.sql", 'ERROR: relation "users" already exists'])
    try:
        dep = devstack.deploy()
    finally:
        devstack.set_ecs(migration_log=[])
    assert dep["state"] == "FAILED"
    tail = dep["migration"]["log_tail"]
    assert tail[-1] == 'ERROR: relation "users" already exists' and len(tail) == 4
    assert "hunter2" not in json.dumps(dep) and "postgres://chatbot:***@db.internal" in tail[1]
    page = page_html(devstack, dep["id"])
    assert "relation &quot;users&quot; already exists" in page and "hunter2" not in page
    deadline = time.monotonic() + 10
    while "relation" not in json.dumps(devstack.get_json("/_devstack/slack/messages")):
        assert time.monotonic() < deadline, "the Slack thread never got the migration's output"
        time.sleep(0.2)
    slack = json.dumps(devstack.get_json("/_devstack/slack/messages"))
    assert "applying 0042_add_users.sql" in slack and "hunter2" not in slack
