"""Promotion on the devstack, over HTTP and boto3: the very digest better-chatbot ran goes to
better-chatbot-eu ([service.promote] from = "better-chatbot", the same ECR repository), awaiting
better-chatbot-eu's own approvers; pushes never deploy better-chatbot-eu.
"""
from __future__ import annotations

import json
import time

import pytest

from tests.ops_kit import TARGET

pytestmark = pytest.mark.timeout(180)
PROMOTE = f"/services/{TARGET}/promote"


def proposal_of(stack, source: dict, timeout: float = 10) -> dict:
    """The better-chatbot-eu deployment proposed from ``source``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for dep in stack.get_json(f"/deployments?service={TARGET}&limit=50")["deployments"]:
            if (dep.get("promoted_from") or {}).get("deployment") == source["id"]:
                return dep
        time.sleep(0.2)
    raise AssertionError(f"{source['id']} was never proposed to {TARGET}")


def reject(stack, dep_id: str) -> None:
    link = stack.approval_link(dep_id)
    path, token = link.split("?token=")
    status, page = stack.call("POST", "/approvals/" + path.rsplit("/approvals/", 1)[1],
                              form={"token": token, "decision": "reject", "comment": "not yet"})
    assert status == 200, page[:300]


def test_a_success_is_proposed_as_the_same_digest_and_deploys_when_approved(opstack):
    """better-chatbot SUCCEEDED → better-chatbot-eu PENDING_APPROVAL with the same digest, a Slack
    card naming its source, and after approval the EU service runs that digest; no image pushed."""
    images = len(opstack.aws("ecr").describe_images(repositoryName="better-chatbot")["imageDetails"])
    source = opstack.deploy("better-chatbot")
    assert source["state"] == "SUCCEEDED", source["timeline"]
    dep = proposal_of(opstack, source)
    assert dep["kind"] == "promote" and dep["state"] == "PENDING_APPROVAL"
    assert dep["image_digest"] == source["image_digest"] and dep["version"] == source["version"]
    assert dep["promoted_from"]["service"] == "better-chatbot"
    card = [m for m in opstack.get_json("/_devstack/slack/messages")["messages"]
            if m.get("channel_name") == "#deploys-eu" and dep["id"] in json.dumps(m["blocks"])]
    assert card and f"Promote {TARGET} {source['version']} from better-chatbot" in card[0]["text"]
    assert "approved by" in json.dumps(card[0]["blocks"])
    opstack.approve(opstack.approval_link(dep["id"]))
    done = opstack.wait_finished(dep["id"])
    assert done["state"] == "SUCCEEDED" and done["migration"]["exit_code"] == 0
    running = opstack.service(name=TARGET)["taskDefinition"]
    image = opstack.aws("ecs").describe_task_definition(taskDefinition=running)[
        "taskDefinition"]["containerDefinitions"][0]["image"]
    assert image.endswith("@" + source["image_digest"]) and running == done["task_definition_arn"]
    after = opstack.aws("ecr").describe_images(repositoryName="better-chatbot")["imageDetails"]
    assert len(after) == images + 1  # the one push of the source; promotion pushed nothing


def test_pushes_never_start_deployments_of_a_promoted_service(opstack):
    """A push to the shared repository deploys better-chatbot and is ignored for the EU service."""
    before = len(opstack.get_json(f"/deployments?service={TARGET}&limit=200")["deployments"])
    status, got = opstack.post_json("/_devstack/push", {"repository": "better-chatbot",
                                                        "tags": ["abcdef1", "9.9.0-abcdef1"]})
    assert status == 200
    assert f"ignored: {TARGET} is deployed by promotion only" in json.dumps(got["results"])
    assert len(opstack.get_json(f"/deployments?service={TARGET}&limit=200")["deployments"]) \
        == before
    reject(opstack, opstack.deployment_of("better-chatbot", got["digest"])["id"])


def test_explicit_promotion_and_its_refusals(opstack):
    """POST /services/better-chatbot-eu/promote: 201 after the automatic proposal was rejected, 409
    while one waits, 409 with what to do when the digest is not in the repository, 400/404 for
    what is not a source deployment."""
    source = opstack.deploy("better-chatbot")
    reject(opstack, proposal_of(opstack, source)["id"])

    status, dep = opstack.post_json(PROMOTE, {"deployment": source["id"]})
    assert status == 201, dep
    assert dep["kind"] == "promote" and dep["state"] == "PENDING_APPROVAL"
    assert dep["image_digest"] == source["image_digest"]
    status, again = opstack.post_json(PROMOTE, {"deployment": source["id"]})
    assert status == 409 and again["error"] == "already_proposed" and dep["id"] in again["message"]

    status, bad = opstack.post_json(PROMOTE, {"deployment": dep["id"]})  # not of better-chatbot
    assert status == 400 and bad["error"] == "wrong_source", bad
    status, bad = opstack.post_json(PROMOTE, {"to": source["id"]})
    assert status == 400 and bad["error"] == "bad_promote", bad
    status, bad = opstack.post_json("/services/better-chatbot/promote", {"deployment": source["id"]})
    assert status == 409 and bad["error"] == "not_promoted", bad

    reject(opstack, dep["id"])
    opstack.aws("ecr").batch_delete_image(repositoryName="better-chatbot",
                                          imageIds=[{"imageDigest": source["image_digest"]}])
    status, missing = opstack.post_json(PROMOTE, {"deployment": source["id"]})
    assert status == 409 and missing["error"] == "image_not_in_repository", missing
    assert "replicat" in missing["message"] and source["image_digest"] in missing["message"]
