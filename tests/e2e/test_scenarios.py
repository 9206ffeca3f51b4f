"""The demo's scenarios and the devstack's promises, end to end over HTTP and boto3.

GIVEN a devstack serving ecs/production, WHEN CI pushes and someone approves, THEN what a user
would notice: the deployment's state and timeline, what ECS runs, what Slack and GitHub received.
"""
from __future__ import annotations

import pytest

from tests.e2e.helpers import release

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
                                     {"to": "previous", "reason": "e2e"})
    assert status == 202, dep
    assert dep["kind"] == "rollback" and dep["rollback_of"] == first["id"]
    done = devstack.wait_finished(dep["id"])
    assert done["state"] == "SUCCEEDED", done["timeline"]
    assert done["migration"] is None
    assert done["task_definition_arn"] == first["task_definition_arn"]
    assert devstack.service()["taskDefinition"] == first["task_definition_arn"]


def test_lost_ecs_events_are_recovered_by_the_reconciler(devstack):
    """With every ECS event withheld, the reconciler still carries the deployment to SUCCEEDED."""
    withheld = devstack.set_ecs(drop_events=True)["dropped_events"]
    dep = devstack.deploy()
    assert dep["state"] == "SUCCEEDED", dep["timeline"]
    assert dep["migration"]["exit_code"] == 0
    assert devstack.service()["taskDefinition"] == dep["task_definition_arn"]
    # the migration task's RUNNING + STOPPED and the rollout's IN_PROGRESS + COMPLETED
    assert devstack.get_json("/_devstack/ecs")["dropped_events"] - withheld >= 4


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
