"""When Slack or GitHub fail: nothing waits for them, failures are recorded, and they re-sync."""
from __future__ import annotations

import json

import pytest

from chalicelib.domain.model import State
from chalicelib.service import decisions, notify, pipeline, reconcile
from tests.notify_kit import (REPO, SHA, approve, channel_message, dms, env, github_server, push, rendered,
                              rollout, slack_server, statuses, stopped, token_of, world,
                              write_config)

__all__ = ["env", "github_server", "slack_server"]  # fixtures, imported for pytest


def test_slack_down_at_push_still_approvable_by_link_and_resynced_later(env, slack_server):
    """No Slack at push time: the link still approves; the reconciler posts the message later."""
    slack_server.set_down()
    deps = env()
    dep = push(deps)
    assert "slack" in deps.load(dep.id).notifications["pending"]
    link = decisions.link_for(deps, deps.load(dep.id), "slack:U0ALICE")
    claims = decisions.verify_link(deps, dep.id, token_of(link))
    decisions.decide(deps, dep.id, identity=claims.identity, via="link", decision="approve",
                     link_nonce=claims.nonce)
    deps.dispatcher.drain(deps)
    assert deps.load(dep.id).state is State.MIGRATING
    assert slack_server.messages() == []
    slack_server.set_down(False)
    done = reconcile.reconcile(deps)
    assert done[f"notify {dep.id}"] == "re-synced slack"
    got = deps.load(dep.id)
    assert "pending" not in got.notifications and got.notifications["slack"]["ts"]
    assert "Running migration" in rendered(channel_message(slack_server))
    assert dms(slack_server) == {}  # decided already: nobody is asked any more


def test_slack_and_github_down_throughout_never_stall_the_pipeline(env, slack_server,
                                                                   github_server):
    """With both down from push to success the deployment still succeeds, then everything syncs
    (no prevent_self_review here: with it, approvals wait for GitHub, see test_self_review.py)."""
    slack_server.set_down()
    github_server.set_down()
    deps = env(prevent_self_review=False)
    dep = push(deps)
    approve(deps, dep)
    pipeline.migration_stopped(deps, stopped(deps.load(dep.id)))
    pipeline.rollout_changed(deps, rollout(deps.load(dep.id)))
    got = deps.load(dep.id)
    assert got.state is State.SUCCEEDED
    assert set(got.notifications["pending"]) == {"slack", "github"}
    slack_server.set_down(False)
    github_server.set_down(False)
    notify.resync_pending(deps)
    assert "pending" not in deps.load(dep.id).notifications
    assert statuses(github_server) == ["success"]
    assert ":tada: Deployed" in rendered(channel_message(slack_server))


def test_notification_bookkeeping_never_loses_a_concurrent_change(env):
    """A notifier recording a failure on a stale copy keeps the newer state and stays stale."""
    deps = env()
    dep = push(deps)
    stale = deps.load(dep.id)
    approve(deps, dep)  # the ledger moves on: MIGRATING
    notify.mark_pending(deps, stale, "slack", RuntimeError("boom"))
    got = deps.load(dep.id)
    assert got.state is State.MIGRATING and got.notifications["pending"] == {"slack": "RuntimeError"}
    assert stale.lock_version < got.lock_version  # its owner's next save must fail, and does


def test_a_wrong_token_is_refused_by_the_stand_ins_and_left_pending(tmp_path, slack_server,
                                                                    github_server, monkeypatch):
    """Bad credentials are a failure like any other: logged, pending, nothing blocked."""
    monkeypatch.setenv("SLACK_API_URL", slack_server.url)
    monkeypatch.setenv("GITHUB_API_URL", github_server.url)
    deps = world(write_config(tmp_path), slack_server, github_server, secrets={
        "link_signing_key": "k" * 32, "slack_bot_token": "xoxb-wrong", "github_token": "ghp_x"})
    dep = push(deps)
    got = deps.load(dep.id)
    assert got.state is State.PENDING_APPROVAL
    assert "invalid_auth" in got.notifications["pending"]["slack"]
    assert "Bad credentials" in got.notifications["pending"]["github"]
    assert "xoxb-wrong" not in json.dumps(got.notifications)


def test_a_deleted_message_is_posted_again_on_resync(env, slack_server):
    """If someone deleted the message, the next sync posts a new one and remembers it."""
    deps = env()
    dep = push(deps)
    notify.remember(deps, deps.load(dep.id), lambda notes: notes.update(
        slack={**notes["slack"], "ts": "1.000001"}, pending={"slack": "lost"}) or True)
    assert notify.resync(deps, deps.load(dep.id)) == ["slack"]
    posted = [m for m in slack_server.messages() if m["channel_name"] == "#deploys"]
    assert len(posted) == 2
    assert deps.load(dep.id).notifications["slack"]["ts"] == posted[1]["ts"]


def test_a_write_racing_the_bookkeeping_is_kept_and_the_bookkeeping_retried(env, monkeypatch):
    """Another writer saves between the notifier's read and its save: both changes survive."""
    deps = env()
    dep = push(deps)
    real_save, raced = deps.ledger.save, []

    def racing_save(target, pointers=()):
        if not raced:
            raced.append(True)
            other = deps.load(target.id)
            other.log("a concurrent writer was here", deps.clock())
            real_save(other)
        return real_save(target, pointers)

    monkeypatch.setattr(deps.ledger, "save", racing_save)
    notify.mark_pending(deps, deps.load(dep.id), "github", RuntimeError("x"))
    got = deps.load(dep.id)
    assert got.timeline[-1]["note"] == "a concurrent writer was here"
    assert got.notifications["pending"] == {"github": "RuntimeError"}


def test_nobody_approves_before_github_was_asked_who_wrote_the_commit(env, github_server):
    """A Lambda that died before asking GitHub leaves 'not sent yet': approval waits (409) until
    the reconciler has asked, then the author cannot approve their own change."""
    from chalicelib.errors import Conflict, Forbidden

    github_server.set_commit_author(REPO, SHA, "carol")
    deps = env()
    dep = push(deps)
    stored = deps.load(dep.id)  # as if the push's Lambda had died before telling GitHub
    stored.notifications = {"pending": {"github": "not sent yet"}}
    deps.ledger.save(stored)
    with pytest.raises(Conflict, match="still asking GitHub"):
        decisions.decide(deps, dep.id, identity="github:carol", via="link", decision="approve")
    notify.resync_pending(deps)  # too soon: the creating Lambda may still be at it
    assert "authors" not in deps.load(dep.id).notifications
    deps.clock.advance(minutes=3)
    notify.resync_pending(deps)
    assert deps.load(dep.id).notifications["authors"] == ["github:carol"]
    with pytest.raises(Forbidden, match="you wrote or committed part of this change"):
        decisions.decide(deps, dep.id, identity="github:carol", via="link", decision="approve")


def _tagged(digest: str, tag: str) -> dict:
    from tests.conftest import fresh_id, load_event

    event = fresh_id(load_event("ecr_push_sha"))
    event["detail"].update({"repository-name": "web", "image-digest": digest, "image-tag": tag})
    return event


@pytest.mark.parametrize("meanwhile", ["second tag", "reconciler"])
def test_work_during_the_first_post_does_not_post_twice(env, slack_server, github_server,
                                                        monkeypatch, meanwhile):
    """While the creating Lambda still talks to GitHub, another tag's event or a reconciler run
    leaves the announcement to it: one channel message, one DM per approver, one GitHub deployment."""
    from chalicelib.adapters import github as gh
    from chalicelib.service import intake

    deps = env()
    digest = "sha256:" + "ab" * 32
    deps.ecs.images[("web", digest)] = ["abc123d"]
    real, fired = gh.GitHubClient.create_deployment, []

    def slow_create(self, *args, **kwargs):
        if not fired:
            fired.append(1)
            if meanwhile == "second tag":
                intake.on_image_pushed(deps, _tagged(digest, "1.2.0-abc123d"))
            else:
                reconcile.reconcile(deps)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(gh.GitHubClient, "create_deployment", slow_create)
    intake.on_image_pushed(deps, _tagged(digest, "abc123d"))
    channel = [m for m in slack_server.messages() if m["channel_name"] == "#deploys"]
    private = [m for m in slack_server.messages() if m["channel_name"] != "#deploys"]
    assert len(channel) == 1 and len(private) == 2 and len(github_server.deployments()) == 1
    assert "pending" not in deps.ledger.find(f"key#web#{digest}").notifications
