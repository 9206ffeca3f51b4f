"""Issue 7's table, row by row, on the devstack: what was injected, and what must happen.

GIVEN the session's devstack, WHEN the fault of one row is injected into the app's own AWS calls
(through /_devstack/faults) or the events arrive as the row says, THEN the right-hand column of the
table holds, judged through the HTTP API and boto3 as a user would see it. (Rows 4 and 5 are
cells of the fault matrix; row 9 is the HTTP fuzz.)
"""
from __future__ import annotations

import json
import time
import urllib.parse

import pytest

from devstack.events import push_image
from tests.e2e import fault_kit as kit
from tests.e2e.helpers import release

pytestmark = pytest.mark.timeout(180)
SERVICE = kit.SERVICE
WRITES = ("PutItem", "UpdateItem", "TransactWriteItems")


def waiting(devstack, digest: str) -> tuple[dict, str]:
    dep = devstack.deployment_of(SERVICE, digest, timeout=20)
    return dep, devstack.approval_link(dep["id"], timeout=20)


def decide(devstack, link: str, decision: str = "approve") -> int:
    token = urllib.parse.parse_qs(urllib.parse.urlsplit(link).query)["token"][0]
    return devstack.call("POST", urllib.parse.urlsplit(link).path,
                         form={"token": token, "decision": decision, "comment": ""})[0]


def state(devstack, dep_id: str) -> dict:
    return devstack.get_json(f"/deployments/{dep_id}")


def eventually(fn, timeout: float = 20, nudge=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = fn()
        if got:
            return got
        if nudge:
            nudge()
        time.sleep(0.3)
    return fn()


def stored(devstack, version: str) -> tuple[str, list[dict]]:
    """An image in ECR (with CI's three tags) whose events are held back; its digest and events."""
    sha = release()[0]
    # GitHub must know who wrote it (self-review fails closed), as the devstack's own pushes ensure.
    status, got = devstack.post_json("/_devstack/github/commits", {
        "repository": "acme/better-chatbot",
        "commits": [{"sha": sha.ljust(40, "0"), "author": "ci-bot", "committer": "ci-bot",
                     "parents": []}]})
    assert status == 200, got
    info = devstack.get_json("/_devstack/aws")
    return push_image(devstack.aws("ecr"), SERVICE, [sha, f"{version}-{sha}", "latest"],
                      "123456789012", info["region"])


def deliver(devstack, events: list[dict]) -> None:
    status, got = devstack.post_json("/_devstack/events", events)
    assert status in (200, 502), got


def test_row_1_a_supersede_write_that_fails_once_still_supersedes(devstack):
    """The newer push's writes fail once each: the older deployment still ends SUPERSEDED, the
    newer one deploys, and the older link can no longer approve."""
    older, older_link = waiting(devstack, devstack.push(SERVICE, *release()))
    for op in WRITES:
        devstack.fault("dynamodb", op, "internal", times=1)
    newer, newer_link = waiting(devstack, devstack.push(SERVICE, *release()))
    devstack.clear_faults()
    reconcile = lambda: devstack.post_json("/_devstack/reconcile", {})  # noqa: E731
    assert eventually(lambda: state(devstack, older["id"])["state"] == "SUPERSEDED",
                      nudge=reconcile), state(devstack, older["id"])["timeline"]
    assert decide(devstack, older_link) == 409
    assert decide(devstack, newer_link) == 200
    done = devstack.wait_finished(newer["id"])
    assert done["state"] == "SUCCEEDED", done["timeline"]
    assert kit.running_image(devstack).endswith("@" + newer["image_digest"])


def test_row_2_out_of_order_events_and_a_throttled_describe_images_keep_ecr_order(devstack):
    """The newer build's events arrive first and the older one's read of ECR is throttled once:
    the newer waits for approval, the older is SUPERSEDED (order is ECR's, never arrival's)."""
    old_digest, old_events = stored(devstack, f"1.{release()[1].split('.')[1]}.0")
    time.sleep(1.1)  # ECR's push times are whole seconds: these two differ
    new_digest, new_events = stored(devstack, f"1.{release()[1].split('.')[1]}.0")
    deliver(devstack, new_events)
    devstack.fault("ecr", "DescribeImages", "throttle", times=1)
    deliver(devstack, old_events)
    devstack.clear_faults()
    deliver(devstack, old_events)  # EventBridge delivers at least once: here, once more
    newer, newer_link = waiting(devstack, new_digest)
    older = [d for d in devstack.get_json(f"/deployments?service={SERVICE}&limit=50")[
        "deployments"] if d["image_digest"] == old_digest]
    assert all(d["state"] == "SUPERSEDED" for d in older), older
    assert state(devstack, newer["id"])["state"] == "PENDING_APPROVAL"
    assert decide(devstack, newer_link) == 200
    assert devstack.wait_finished(newer["id"])["state"] == "SUCCEEDED"


def test_row_3_pushes_in_the_same_second_are_ordered_by_version_not_arrival(devstack):
    """Two builds pushed within one second (equal imagePushedAt), the higher version's events
    first: the higher version still wins, whatever arrived last."""
    ecr = devstack.aws("ecr")
    for _ in range(5):
        minor = int(release()[1].split(".")[1])
        low = stored(devstack, f"1.{minor}.0")
        high = stored(devstack, f"1.{minor}.1")
        times = [ecr.describe_images(repositoryName=SERVICE, imageIds=[{"imageDigest": d}])[
            "imageDetails"][0]["imagePushedAt"] for d, _ in (low, high)]
        if times[0] == times[1]:
            break
    else:
        pytest.fail("could not push twice within one second")
    deliver(devstack, high[1])
    deliver(devstack, low[1])
    winner, link = waiting(devstack, high[0])
    losers = [d for d in devstack.get_json(f"/deployments?service={SERVICE}&limit=50")[
        "deployments"] if d["image_digest"] == low[0]]
    assert all(d["state"] == "SUPERSEDED" for d in losers), losers
    assert decide(devstack, link) == 200
    assert devstack.wait_finished(winner["id"])["state"] == "SUCCEEDED"


@pytest.mark.parametrize("operation, code", [("RunTask", "InvalidParameterException"),
                                             ("UpdateService", "AccessDeniedException")])
def test_row_6_a_refused_step_fails_with_a_reason_naming_it_everywhere(devstack, operation, code):
    """ECS refuses the step for good: FAILED, the reason names the step and ECS's error, in the
    ledger and in what Slack received; nothing is left locked."""
    dep, link = waiting(devstack, devstack.push(SERVICE, *release()))
    devstack.fault("ecs", operation, code, times=None)
    assert decide(devstack, link) == 200
    done = devstack.wait_finished(dep["id"], timeout=40)
    devstack.clear_faults()
    assert done["state"] == "FAILED", done["timeline"]
    reason = done["reason"] or ""
    assert code in reason and any(w in reason.lower() for w in kit.STEP_WORDS[operation]), reason
    # Slack is told after the ledger write (by the worker, or the reconciler's resync).
    reconcile = lambda: devstack.post_json("/_devstack/reconcile", {})  # noqa: E731
    assert eventually(lambda: code in json.dumps(devstack.get_json("/_devstack/slack/messages")),
                      nudge=reconcile), f"Slack was never told of {code}"
    assert devstack.get_json(f"/services/{SERVICE}")["busy_with"] is None


def test_row_7_a_throttled_approval_write_is_a_503_and_changes_nothing(devstack):
    """Every ledger write throttled: approving answers 503 with Retry-After and nothing changes;
    once DynamoDB answers again the same link approves; a second click is a 409 (a conflict)."""
    dep, link = waiting(devstack, devstack.push(SERVICE, *release()))
    for op in WRITES:
        devstack.fault("dynamodb", op, "throttle", times=None)
    token = urllib.parse.parse_qs(urllib.parse.urlsplit(link).query)["token"][0]
    got = devstack._http.request("POST", urllib.parse.urlsplit(link).path,
                                 form={"token": token, "decision": "approve", "comment": ""})
    devstack.clear_faults()
    assert got.status == 503, got.text[:300]
    assert {k.lower() for k in got.headers} >= {"retry-after"}
    assert state(devstack, dep["id"])["state"] == "PENDING_APPROVAL"
    assert decide(devstack, link) == 200
    assert decide(devstack, link) == 409
    assert devstack.wait_finished(dep["id"])["state"] == "SUCCEEDED"



def surplus_revisions(devstack, count: int) -> list[str]:
    """``count`` more ACTIVE revisions of the service's family (older builds, registered as CI's
    earlier deployments would have left them), so a success has something to prune."""
    ecs = devstack.aws("ecs")
    arn = devstack.service()["taskDefinition"]
    taskdef = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
    keys = ("family", "containerDefinitions", "networkMode", "requiresCompatibilities", "cpu",
            "memory", "executionRoleArn", "taskRoleArn")
    body = {k: taskdef[k] for k in keys if taskdef.get(k)}
    return [ecs.register_task_definition(**body)["taskDefinition"]["taskDefinitionArn"]
            for _ in range(count)]


def active(devstack, arns: list[str]) -> list[str]:
    ecs = devstack.aws("ecs")
    return [a for a in arns
            if ecs.describe_task_definition(taskDefinition=a)["taskDefinition"]["status"] == "ACTIVE"]


def test_row_8_pruning_throttled_is_owed_and_resumes_once_ecs_answers(devstack):
    """DescribeServices (pruning's first call) throttled while the rollout completes: the
    deployment still SUCCEEDS, nothing is pruned while ECS throttles (the pruning is owed, not
    dropped), and once ECS answers the next event retry or reconcile prunes the old revisions,
    keeping the newest ones and the one in service."""
    keep = 5  # [service.prune] keep of better-chatbot (ecs/production/services.toml)
    old = surplus_revisions(devstack, keep + 3)
    dep, link = waiting(devstack, devstack.push(SERVICE, *release()))
    devstack.fault("ecs", "DescribeServices", "throttle", times=None)
    assert decide(devstack, link) == 200
    assert eventually(lambda: state(devstack, dep["id"])["state"] == "SUCCEEDED"), \
        state(devstack, dep["id"])["timeline"]
    time.sleep(1.0)  # the event's retries and a reconcile or two meet the throttle too
    fired = sum(f["fired"] for f in devstack.faults()["faults"])
    assert fired >= 1 and active(devstack, old) == old, "pruned although ECS throttled"
    devstack.clear_faults()
    reconcile = lambda: devstack.post_json("/_devstack/reconcile", {})  # noqa: E731
    assert eventually(lambda: len(active(devstack, old)) < len(old), nudge=reconcile), \
        "the owed pruning never resumed"
    running = devstack.service()["taskDefinition"]
    assert running.endswith(state(devstack, dep["id"])["task_definition_arn"].rsplit("/", 1)[-1])
    assert active(devstack, [running]) == [running]
    assert active(devstack, old[-(keep - 1):]) == old[-(keep - 1):]  # the newest ones stay
    assert active(devstack, old[:3]) == []  # the oldest ones are gone
