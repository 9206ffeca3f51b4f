"""Slack buttons end to end: ``POST /slack/interactions`` through Chalice's test client, on a real
moto server, with the Slack and GitHub stand-ins as real HTTP servers on 127.0.0.1.
"""
from __future__ import annotations

import threading
import time
from urllib.parse import urlencode

import pytest
from chalice.test import Client

import app as app_module
from chalicelib.service import decisions, reconcile as reconciler
from tests.integration.helpers import (SERVICE, link_token, push_events, push_image, rollout,
                                       task_stopped)
from tests.notify_kit import interaction, signed

APPROVER = "U0APPROVER1"
TAGS = ["abc123d", "1.22.0-abc123d", "latest"]
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def world(stack):
    """The moto stack with its Slack and GitHub stand-ins (they expect the secret's tokens)."""
    with Client(app_module.app) as client:
        yield stack, client, stack.slack, stack.github


def push(stack, client) -> dict:
    digest = push_image(stack, SERVICE, TAGS)
    for event in push_events(SERVICE, digest, TAGS):
        client.lambda_.invoke("on_image_pushed", event)
    found = client.http.get(f"/deployments?service={SERVICE}").json_body["deployments"]
    return next(d for d in found if d["image_digest"] == digest)


def click(stack, client, slack, dep_id, user=APPROVER, action="slipway_approve"):
    body = interaction(dep_id, user, action, response_url=slack.response_url)
    return client.http.post("/slack/interactions", headers=signed(
        stack.secret["slack_signing_secret"], body), body=body)


def get(client, dep_id) -> dict:
    return client.http.get(f"/deployments/{dep_id}").json_body


def history(slack) -> list[str]:
    [message] = [m for m in slack.messages() if m["channel_name"] == "#deploys"]
    return [v["text"] for v in message["history"]]


def test_a_click_moves_the_deployment_and_slack_and_github_follow(world):
    """Approve in Slack: acknowledged fast, then migration, rollout, success, mirrored everywhere."""
    stack, client, slack, github = world
    dep = push(stack, client)
    started = time.monotonic()
    answer = click(stack, client, slack, dep["id"])
    assert answer.status_code == 200 and time.monotonic() - started < 3
    assert get(client, dep["id"])["state"] == "APPROVED"
    assert slack.responses()[-1]["text"].startswith("Approved.")
    assert stack.drain() == 1  # one message: tell Slack/GitHub, then the ECS work
    dep = get(client, dep["id"])
    assert dep["state"] == "MIGRATING"
    assert dep["approvals"][0]["by"] == f"slack:{APPROVER}" and dep["approvals"][0]["via"] == "slack"
    client.lambda_.invoke("on_task_state_change", task_stopped(dep, exit_code=0))
    client.lambda_.invoke("on_deployment_state_change", rollout(get(client, dep["id"])))
    assert get(client, dep["id"])["state"] == "SUCCEEDED"
    states = [text.rsplit(": ", 1)[-1] for text in history(slack)]
    assert states[0].endswith("waiting for approval")
    assert states[1:] == ["approved", "migrating", "deploying", "succeeded"]
    [deployment] = github.deployments()
    assert [s["state"] for s in deployment["statuses"]] == [
        "queued", "in_progress", "in_progress", "in_progress", "success"]


BAD_REQUESTS = {
    "forged": lambda secret, body: (signed("not-the-secret", body), body),
    "stale": lambda secret, body: (signed(secret, body, time.time() - 6 * 60), body),
    "replayed with a new timestamp": lambda secret, body: (
        {**signed(secret, body, time.time() - 6 * 60),
         "X-Slack-Request-Timestamp": str(int(time.time()))}, body),
    "tampered": lambda secret, body: (signed(secret, body), body.replace(b"approve", b"reject")),
    "unsigned": lambda secret, body: (FORM, body),
    "timestamp not a number": lambda secret, body: (
        {**signed(secret, body), "X-Slack-Request-Timestamp": "soon"}, body),
}


@pytest.mark.parametrize("how", sorted(BAD_REQUESTS))
def test_requests_slack_did_not_sign_just_now_are_refused(world, how):
    """Forged, stale, replayed, tampered or unsigned: 401 and nothing changed anywhere."""
    stack, client, slack, github = world
    dep = push(stack, client)
    before, messages = get(client, dep["id"]), slack.messages()
    body = interaction(dep["id"], APPROVER, response_url=slack.response_url)
    headers, sent = BAD_REQUESTS[how](stack.secret["slack_signing_secret"], body)
    answer = client.http.post("/slack/interactions", headers=headers, body=sent)
    assert answer.status_code == 401 and answer.json_body["error"] == "bad_signature"
    assert get(client, dep["id"]) == before
    assert slack.messages() == messages and slack.responses() == []
    assert stack.drain() == 0


def test_a_stranger_is_told_privately_and_nothing_changes(world):
    """A Slack user who is not an approver gets an ephemeral explanation; the ledger is untouched."""
    stack, client, slack, github = world
    dep = push(stack, client)
    before = get(client, dep["id"])
    answer = click(stack, client, slack, dep["id"], user="U0STRANGER")
    assert answer.status_code == 200
    assert get(client, dep["id"]) == before
    [reply] = slack.responses()
    assert reply["response_type"] == "ephemeral"
    assert "slack:U0STRANGER is not an approver" in reply["text"]
    assert stack.drain() == 0


def test_reject_in_slack_ends_it_and_every_channel_says_so(world):
    """Reject from Slack: REJECTED with comment 'rejected in Slack'; Slack and GitHub follow."""
    stack, client, slack, github = world
    dep = push(stack, client)
    assert click(stack, client, slack, dep["id"], action="slipway_reject").status_code == 200
    got = get(client, dep["id"])
    assert got["state"] == "REJECTED"
    assert got["approvals"][-1] == {**got["approvals"][-1], "decision": "reject",
                                    "comment": "rejected in Slack", "via": "slack"}
    # the click was answered before Slack and GitHub were told: the worker tells them
    assert history(slack)[-1].endswith("waiting for approval")
    assert stack.drain() == 1
    assert history(slack)[-1].endswith(": rejected")
    assert [s["state"] for s in github.deployments()[0]["statuses"]] == ["queued", "inactive"]
    again = click(stack, client, slack, dep["id"])
    assert again.status_code == 200 and "was rejected" in slack.responses()[-1]["text"]


def test_link_buttons_other_payloads_and_garbage(world):
    """'Review in browser' and non-button payloads do nothing; a signed non-JSON payload is 400."""
    stack, client, slack, github = world
    dep = push(stack, client)
    before = get(client, dep["id"])
    secret = stack.secret["slack_signing_secret"]
    review = interaction(dep["id"], APPROVER, "slipway_review")
    other = urlencode({"payload": '{"type": "view_submission"}'}).encode()
    garbage = urlencode({"payload": "{not json"}).encode()
    statuses = [client.http.post("/slack/interactions", headers=signed(secret, b), body=b)
                .status_code for b in (review, other, garbage)]
    assert statuses == [200, 200, 400]
    assert get(client, dep["id"]) == before and slack.responses() == []


def test_twenty_concurrent_clicks_start_one_migration(world):
    """Twenty signed clicks at once: one approval recorded, one work message, one migration task."""
    stack, client, slack, github = world
    dep = push(stack, client)
    barrier, codes = threading.Barrier(20), []

    def one():
        barrier.wait()
        with Client(app_module.app) as own:
            codes.append(click(stack, own, slack, dep["id"]).status_code)

    threads = [threading.Thread(target=one) for _ in range(20)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert codes == [200] * 20
    assert stack.drain() == 1  # one work message: tell people, then the ECS work
    got = get(client, dep["id"])
    assert got["state"] == "MIGRATING" and len(got["approvals"]) == 1
    tasks = stack.client("ecs").list_tasks(cluster="production-cluster")["taskArns"]
    assert tasks == [got["migration"]["task_arn"]]
    texts = [r["text"] for r in slack.responses()]
    assert sum(t.startswith("Approved.") for t in texts) == 1 and len(texts) == 20


def test_expiry_through_the_reconciler_updates_slack_and_github(world):
    """Nobody approves within expires_hours: the reconciler expires it; everyone is told."""
    stack, client, slack, github = world
    dep = push(stack, client)
    stack.clock.advance(hours=25)
    done = reconciler.reconcile(stack.deps())
    assert done[dep["id"]] == "expired"
    assert get(client, dep["id"])["state"] == "EXPIRED"
    assert history(slack)[-1].endswith(": expired")
    assert [s["state"] for s in github.deployments()[0]["statuses"]] == ["queued", "inactive"]
    click(stack, client, slack, dep["id"])
    assert "expired" in slack.responses()[-1]["text"]


def test_slack_down_at_push_time_link_still_works_and_message_resyncs(world):
    """Slack unreachable at push: approve by link anyway; the reconciler posts the message later."""
    stack, client, slack, github = world
    slack.set_down()
    dep = push(stack, client)
    url = decisions.link_for(stack.deps(), stack.deps().load(dep["id"]), f"slack:{APPROVER}")
    dep_id, token = link_token(url)
    page = client.http.post(f"/approvals/{dep_id}", headers=FORM,
                            body=urlencode({"token": token, "decision": "approve"}))
    assert page.status_code == 200
    stack.drain()
    assert get(client, dep["id"])["state"] == "MIGRATING" and slack.messages() == []
    slack.set_down(False)
    done = reconciler.reconcile(stack.deps())
    assert done[f"notify {dep['id']}"] == "re-synced slack"
    assert history(slack) == [history(slack)[0]] and history(slack)[0].endswith(": migrating")
    assert "pending" not in stack.deps().load(dep["id"]).notifications


def test_the_commit_author_cannot_approve_their_own_change(world):
    """GitHub says octocat wrote abc123d: octocat's link is refused (403) and nothing changes."""
    stack, client, slack, github = world
    github.set_commit_author("acme/better-chatbot", "abc123d" + "0" * 33, "octocat")
    dep = push(stack, client)
    assert stack.deps().load(dep["id"]).notifications["authors"] == ["github:octocat"]
    before = get(client, dep["id"])
    url = decisions.link_for(stack.deps(), stack.deps().load(dep["id"]), "github:octocat")
    dep_id, token = link_token(url)
    page = client.http.post(f"/approvals/{dep_id}", headers=FORM,
                            body=urlencode({"token": token, "decision": "approve"}))
    assert page.status_code == 403 and "someone else must approve" in page.body.decode()
    assert get(client, dep["id"]) == before
