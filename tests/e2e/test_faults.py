"""The devstack's fault injection, clock and RunTask clientToken, end to end over HTTP and boto3.

GIVEN a devstack, WHEN a fault is injected into the app's AWS calls (or its clock moved), THEN the
app meets it as it would meet AWS failing, while the devstack itself (provisioning, pushes,
ECS emulation) goes on unaffected; and ECS honours a RunTask ``clientToken`` as AWS documents it.
"""
from __future__ import annotations

import botocore.exceptions
import pytest

from tests.e2e.helpers import release

pytestmark = pytest.mark.timeout(120)
CLUSTER = "production-cluster"


def tasks_started_for(devstack, dep_id: str) -> list[str]:
    """Every task (running or stopped) ECS started for the deployment, asked as AWS is asked."""
    ecs = devstack.aws("ecs")
    by = f"slipway/{dep_id}"
    return sorted(set(ecs.list_tasks(cluster=CLUSTER, startedBy=by)["taskArns"])
                  | set(ecs.list_tasks(cluster=CLUSTER, startedBy=by,
                                       desiredStatus="STOPPED")["taskArns"]))


@pytest.mark.parametrize("body, complaint", [
    ({"operation": "RunTask", "error": "throttle"}, "'service'"),
    ({"service": "ecs", "operation": "RunTask", "error": "bogus error!"}, "'error'"),
    ({"service": "ecs", "operation": "RunTask", "error": "throttle", "when": "during"}, "'when'"),
    ({"service": "ecs", "operation": "RunTask", "error": "throttle", "times": 0}, "'times'"),
    ({"service": "ecs", "operation": "RunTask", "error": "throttle", "times": True}, "'times'"),
    ({"service": "ecs", "operation": "RunTask", "error": "throttle", "colour": 1}, "colour"),
    ([], "JSON object"),
])
def test_a_fault_the_devstack_cannot_use_is_refused_and_nothing_is_armed(devstack, body, complaint):
    """A bad fault body is a 400 naming the field; no fault is armed by it."""
    status, got = devstack.post_json("/_devstack/faults", body)
    assert status == 400 and complaint in got["message"], got
    assert devstack.faults()["faults"] == []


@pytest.mark.parametrize("body", [{}, {"advance_seconds": -5}, {"advance_seconds": 0},
                                  {"advance_seconds": "60"}, {"advance_seconds": True},
                                  {"advance_seconds": 1e12}, {"advance_seconds": 5, "x": 1}])
def test_the_clock_only_moves_forward_by_a_sane_amount(devstack, body):
    """The clock refuses what it cannot honour (backwards, not a number, absurd) and stays put."""
    before = devstack.clock_offset()
    status, got = devstack.post_json("/_devstack/clock", body)
    assert status == 400 and "advance_seconds" in got["message"], got
    assert devstack.clock_offset() == before


def test_faults_reach_the_apps_calls_but_not_the_devstacks_own(devstack):
    """ECR throttled for every app call: the devstack still stores the pushed image (its own
    client), and it is the app's DescribeImages that met the fault."""
    earlier = devstack.faults()["fired_total"]  # what other tests' faults did before
    devstack.fault("ecr", "*", "throttle", times=None)
    try:
        sha, version = release()
        digest = devstack.push("better-chatbot-worker", sha, version)
    finally:
        status = devstack.faults()
        fired = status["fired"][len(status["fired"]) - (status["fired_total"] - earlier):]
        devstack.clear_faults()
    images = devstack.aws("ecr").describe_images(repositoryName="better-chatbot-worker",
                                                 imageIds=[{"imageDigest": digest}])
    assert images["imageDetails"][0]["imageDigest"] == digest
    assert {(f["service"], f["operation"]) for f in fired} == {("ecr", "DescribeImages")}
    assert devstack.faults()["faults"] == []


def test_a_lost_runtask_answer_still_runs_one_migration(devstack):
    """RunTask takes effect and its answer is lost (a 500 after the call): the retry carries the
    same clientToken, so ECS hands back the same task and one migration runs."""
    devstack.fault("ecs", "RunTask", "internal", when="after")
    dep = devstack.deploy()
    assert devstack.faults()["faults"][0]["fired"] == 1
    devstack.clear_faults()
    assert dep["state"] == "SUCCEEDED", dep["timeline"]
    assert len(tasks_started_for(devstack, dep["id"])) == 1
    assert dep["migration"]["task_arn"] in tasks_started_for(devstack, dep["id"])
    assert devstack.service()["taskDefinition"] == dep["task_definition_arn"]


def test_runtask_client_token_is_honoured_as_aws_documents(devstack):
    """Same token and parameters: the same task, nothing new started; same token, other
    parameters: ConflictException; ListTasks lists RUNNING tasks unless asked for STOPPED."""
    ecs = devstack.aws("ecs")
    service = devstack.service()
    run = {"cluster": CLUSTER, "taskDefinition": service["taskDefinition"],
           "launchType": "FARGATE", "networkConfiguration": service["networkConfiguration"],
           "startedBy": f"e2e-{release()[0]}", "clientToken": f"e2e-token-{release()[0]}"}
    first = ecs.run_task(**run)["tasks"][0]["taskArn"]
    again = ecs.run_task(**run)["tasks"][0]["taskArn"]
    assert again == first
    assert ecs.list_tasks(cluster=CLUSTER, startedBy=run["startedBy"])["taskArns"] == [first]
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        ecs.run_task(**{**run, "count": 1, "group": "other"})
    assert refused.value.response["Error"]["Code"] == "ConflictException"
    ecs.stop_task(cluster=CLUSTER, task=first, reason="e2e")
    assert ecs.list_tasks(cluster=CLUSTER, startedBy=run["startedBy"])["taskArns"] == []
    assert ecs.list_tasks(cluster=CLUSTER, startedBy=run["startedBy"],
                          desiredStatus="STOPPED")["taskArns"] == [first]


def test_the_app_clock_expires_a_waiting_approval(devstack):
    """Moving the app's clock past the approval's expiry lets the reconciler expire it; the
    devstack reports the offset."""
    sha, version = release()
    digest = devstack.push("better-chatbot", sha, version)
    dep = devstack.deployment_of("better-chatbot", digest)
    assert dep["state"] == "PENDING_APPROVAL"
    before = devstack.clock_offset()
    moved = devstack.advance_clock(25 * 3600)
    assert moved["offset_seconds"] == before + 25 * 3600
    assert devstack.get_json("/_devstack")["clock"]["offset_seconds"] == moved["offset_seconds"]
    devstack.post_json("/_devstack/reconcile", {})
    assert devstack.wait_finished(dep["id"])["state"] == "EXPIRED"
