"""Slack and GitHub follow deployments: the service layer on fakes, notifiers over real HTTP to the
loopback stand-ins (which check tokens and payload shapes and record what they got).
"""
from __future__ import annotations

import json
import threading

import pytest

from chalicelib.adapters import notifiers
from chalicelib.domain.model import State
from chalicelib.errors import Conflict, Forbidden
from chalicelib.service import decisions, pipeline, reconcile, rollback
from tests.notify_kit import (NEW_SECRET_VALUE, PUBLIC_URL, REPO, SECRET_VALUE, SHA, approve,
                              channel_message, dms, env, github_server, push, rendered, rollout,
                              slack_server, statuses, stopped, token_of, world, write_config)

__all__ = ["env", "github_server", "slack_server"]  # fixtures, imported for pytest


def test_build_reads_no_secret_and_puts_github_first(tmp_path, slack_server, github_server):
    """Building the notifiers touches no secret; GitHub comes before Slack; no notify, no notifiers."""
    deps = world(write_config(tmp_path), slack_server, github_server)
    deps.secrets = lambda: pytest.fail("secret read at build time")
    assert [n.channel for n in notifiers.build(deps)] == ["github", "slack"]
    bare = world(write_config(tmp_path, slack=False, github=False, prevent_self_review=False),
                 slack_server, github_server)
    assert notifiers.build(bare) == []


def test_a_push_posts_the_request_dms_each_slack_approver_and_records_ids(env, slack_server,
                                                                         github_server):
    """The channel gets the request, each Slack approver a personal link, the ledger the ids."""
    github_server.set_commit_author(REPO, SHA, "dave")
    deps = env()
    dep = deps.load(push(deps).id)
    message = channel_message(slack_server)
    assert dep.notifications["slack"] == {"channel": message["channel"], "ts": message["ts"],
                                          "dms": ["slack:U0ALICE", "slack:U0BOB"]}
    assert dep.notifications["github"]["id"] == github_server.deployments()[0]["id"]
    assert dep.notifications["authors"] == ["github:dave"]
    assert "token=" not in rendered(message)  # the channel message cannot approve anything
    review = [e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]
              if e["action_id"] == "slipway_review"]
    assert review[0]["url"].startswith(f"{PUBLIC_URL}/deployments/{dep.id}/page?view=")
    view = review[0]["url"].split("?view=")[1]  # a read-only token for this deployment alone
    assert decisions.verify_view(deps, dep.id, view).scope == "view"
    private = dms(slack_server)
    assert set(private) == {"U0ALICE", "U0BOB"}
    links = [e["url"] for b in private["U0ALICE"]["blocks"] if b["type"] == "actions"
             for e in b["elements"]]
    claims = decisions.verify_link(deps, dep.id, token_of(links[0]))
    assert claims.identity == "slack:U0ALICE"


def test_message_redacts_env_values_and_escapes_hostile_text(env, slack_server):
    """Env values never reach Slack, and a hostile tag or comment cannot ping or link anyone."""
    deps = env()
    dep = push(deps, tags=("abc123d", "<!channel>", "x<https://evil.example|click>"))
    decisions.decide(deps, dep.id, identity="slack:U0ALICE", via="link", decision="reject",
                     comment="<!here> no & never")
    deps.dispatcher.drain(deps)  # the worker tells people about a decision
    everything = "".join(rendered(v) for m in slack_server.messages() for v in m["history"])
    assert SECRET_VALUE not in everything and NEW_SECRET_VALUE not in everything
    assert "API_KEY" in everything and "***" in everything
    assert "<!channel>" not in everything and "<!here>" not in everything
    assert "<https://evil" not in everything
    assert "&lt;!channel&gt;" in everything and "&lt;!here&gt; no &amp; never" in everything


def test_quorum_two_needs_two_distinct_people_and_slack_shows_each(env, slack_server):
    """The same person twice counts once; each approval shows in the message; two approve it."""
    deps = env(quorum=2)
    dep = push(deps)
    approve(deps, dep, "slack:U0ALICE")
    again = approve(deps, dep, "slack:U0ALICE")
    assert "already approved" in again.message
    assert deps.load(dep.id).state is State.PENDING_APPROVAL
    assert "1 of 2 approvals: <@U0ALICE>" in rendered(channel_message(slack_server))
    approve(deps, dep, "github:carol", via="link")
    got = deps.load(dep.id)
    assert got.state is State.MIGRATING
    assert [a["by"] for a in got.approvals] == ["slack:U0ALICE", "github:carol"]
    last = rendered(channel_message(slack_server))
    assert "<@U0ALICE>" in last and "carol (via link)" in last


def test_wait_timer_refuses_early_approvals_with_a_clear_message(env):
    """Before wait_minutes nothing can be approved (409 too_early); after, it can."""
    deps = env(wait_minutes=30)
    dep = push(deps)
    with pytest.raises(Conflict) as early:
        approve(deps, dep)
    assert early.value.code == "too_early" and "30 minutes" in early.value.message
    assert deps.load(dep.id).approvals == []
    deps.clock.advance(minutes=31)
    approve(deps, dep)
    assert deps.load(dep.id).state is State.MIGRATING


def test_commit_author_cannot_approve_under_any_of_their_identities(env, github_server):
    """prevent_self_review: GitHub names the author; [identities] maps them to their Slack id."""
    github_server.set_commit_author(REPO, SHA, "alice")
    deps = env(identities={"github:alice": ["slack:U0ALICE"], "github:bob": ["slack:U0BOB"]})
    dep = push(deps)
    with pytest.raises(Forbidden) as refused:
        approve(deps, dep, "slack:U0ALICE")
    assert refused.value.code == "self_review"
    assert deps.load(dep.id).approvals == []
    approve(deps, dep, "slack:U0BOB")
    assert deps.load(dep.id).state is State.MIGRATING


def test_reject_with_comment_ends_it_everywhere(env, slack_server, github_server):
    """A rejection with a comment shows in Slack with who and why; GitHub goes inactive."""
    deps = env()
    dep = push(deps)
    decisions.decide(deps, dep.id, identity="slack:U0BOB", via="link", decision="reject",
                     comment="needs the hotfix first")
    deps.dispatcher.drain(deps)  # the worker tells people about a decision
    assert deps.load(dep.id).state is State.REJECTED
    last = rendered(channel_message(slack_server))
    assert "Rejected by <@U0BOB>" in last and "needs the hotfix first" in last
    assert "slipway_approve" not in last  # no buttons left
    assert statuses(github_server) == ["queued", "inactive"]


def test_success_posts_statuses_in_order_and_threads_the_details(env, slack_server,
                                                                 github_server):
    """queued, in_progress while approved/migrating/deploying, success; details in the thread."""
    deps = env()
    dep = push(deps)
    approve(deps, dep)
    pipeline.migration_stopped(deps, stopped(deps.load(dep.id)))
    pipeline.rollout_changed(deps, rollout(deps.load(dep.id)))
    assert deps.load(dep.id).state is State.SUCCEEDED
    [deployment] = github_server.deployments()
    assert [s["state"] for s in deployment["statuses"]] == [
        "queued", "in_progress", "in_progress", "in_progress", "success"]
    assert {s["log_url"].split("?view=")[0] for s in deployment["statuses"]} == {
        f"{PUBLIC_URL}/deployments/{dep.id}/page"}
    assert deployment["ref"] == "abc123d" and deployment["environment"] == "production"
    assert deployment["production_environment"] is True
    assert deployment["payload"] == {"slipway_id": dep.id, "digest": dep.image_digest,
                                     "image": dep.image}
    message = channel_message(slack_server)
    assert ":tada: Deployed" in rendered(message)
    replies = " | ".join(r["text"] for r in message["replies"])
    assert "migration task" in replies and "migration exited 0" in replies
    assert "rollout completed" in replies


def test_a_failed_migration_posts_failure_and_threads_why(env, slack_server, github_server):
    """Exit 1: queued, in_progress, in_progress, failure; the reason is in Slack's thread."""
    deps = env()
    dep = push(deps)
    approve(deps, dep)
    pipeline.migration_stopped(deps, stopped(deps.load(dep.id), exit_code=1))
    assert deps.load(dep.id).state is State.FAILED
    assert statuses(github_server) == ["queued", "in_progress", "in_progress", "failure"]
    message = channel_message(slack_server)
    assert ":x: Failed" in rendered(message)
    assert "app exited 1" in message["replies"][-1]["text"]


def test_expiry_through_the_reconciler_tells_everyone(env, slack_server, github_server):
    """Unapproved past expires_hours: the reconciler expires it; Slack updated, GitHub inactive."""
    deps = env(expires_hours=2)
    dep = push(deps)
    deps.clock.advance(hours=3)
    assert reconcile.reconcile(deps)[dep.id] == "expired"
    assert deps.load(dep.id).state is State.EXPIRED
    assert ":hourglass: Expired" in rendered(channel_message(slack_server))
    assert statuses(github_server) == ["queued", "inactive"]
    with pytest.raises(Conflict):
        approve(deps, dep)


def test_twenty_concurrent_approvals_start_one_migration(env, slack_server):
    """Twenty threads approve at once: one decision wins, nineteen get 409, one task runs."""
    deps = env(approvers=[f"slack:U0PERSON{i:02d}" for i in range(20)], prevent_self_review=False)
    dep = push(deps)
    barrier, results = threading.Barrier(20), []

    def click(i):
        barrier.wait()
        try:
            decisions.decide(deps, dep.id, identity=f"slack:U0PERSON{i:02d}", via="slack",
                             decision="approve")
            results.append("ok")
        except Conflict:
            results.append("conflict")

    threads = [threading.Thread(target=click, args=(i,)) for i in range(20)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    deps.dispatcher.drain(deps)
    assert sorted(results) == ["conflict"] * 19 + ["ok"]
    assert deps.ecs.calls.count("RunTask") == 1
    got = deps.load(dep.id)
    assert got.state is State.MIGRATING and len(got.approvals) == 1
    assert "Running migration" in rendered(channel_message(slack_server))


def test_a_rollback_is_announced_without_buttons_and_tracked_on_github(env, slack_server,
                                                                       github_server):
    """An operator rollback gets its own message, with no buttons, and its own GitHub deployment."""
    github_server.set_commit_author(REPO, "1111111", "dave")
    deps = env()
    first = push(deps, tags=("1111111",))
    approve(deps, first)
    pipeline.migration_stopped(deps, stopped(deps.load(first.id)))
    pipeline.rollout_changed(deps, rollout(deps.load(first.id)))
    back = rollback.rollback(deps, "web", first.id, "bad <!channel> release", "iam:ops")
    deps.dispatcher.drain(deps)
    pipeline.rollout_changed(deps, rollout(deps.load(back.id)))
    assert deps.load(back.id).state is State.SUCCEEDED
    second = [m for m in slack_server.messages() if m["channel_name"] == "#deploys"][1]
    assert second["history"][0]["text"].startswith("Rollback web to 1111111")
    assert all(b["type"] != "actions" for v in second["history"] for b in v["blocks"])
    assert "<!channel>" not in json.dumps(second)
    rolled = github_server.deployments()[1]
    assert rolled["payload"]["slipway_id"] == back.id and rolled["ref"] == "1111111"
    assert [s["state"] for s in rolled["statuses"]] == ["in_progress", "in_progress", "success"]


def test_a_github_approver_gets_their_link_on_slack_through_identities(env, slack_server):
    """`github:carol` mapped to a Slack user gets a personal link there, issued to github:carol."""
    deps = env(identities={"github:carol": ["slack:U0CAROL"], "github:alice": ["slack:U0ALICE"],
                           "github:bob": ["slack:U0BOB"]})
    dep = deps.load(push(deps).id)
    private = dms(slack_server)
    assert set(private) == {"U0ALICE", "U0BOB", "U0CAROL"}
    links = [e["url"] for b in private["U0CAROL"]["blocks"] if b["type"] == "actions"
             for e in b["elements"]]
    assert decisions.verify_link(deps, dep.id, token_of(links[0])).identity == "github:carol"
    assert "github:carol" in dep.notifications["slack"]["dms"]
