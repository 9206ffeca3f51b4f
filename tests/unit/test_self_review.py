"""H2: self-review fails closed. Nobody who wrote or committed any commit since the service's last
SUCCEEDED deployment may approve; when GitHub cannot say who that is, nobody may approve (409 that
says why, and the Slack message says so) until the reconciler's next look succeeds.

The service layer runs on fakes; GitHub is the loopback stand-in, fed commits as
``POST /_devstack/github/commits`` feeds it.
"""
from __future__ import annotations

import pytest

from chalicelib.domain import approval
from chalicelib.domain.model import State
from chalicelib.errors import Conflict, Forbidden
from chalicelib.service import decisions, notify, pipeline
from tests.notify_kit import (REPO, approve, channel_message, env, github_server, push, rendered,
                              rollout, slack_server, stopped)

__all__ = ["env", "github_server", "slack_server"]  # fixtures, imported for pytest

BASE, MIDDLE, HEAD = ("b" * 7 + "0" * 33), ("c" * 7 + "0" * 33), ("d" * 7 + "0" * 33)
PEOPLE = {"github:alice": ["slack:U0ALICE"], "github:bob": ["slack:U0BOB"]}


def _history(github_server, middle_author="bob", head_author="dave", head_committer="dave"):
    """BASE ← MIDDLE (by ``middle_author``) ← HEAD (by ``head_author``/``head_committer``)."""
    github_server.history.add(REPO, [
        {"sha": BASE, "author": "dave", "committer": "dave", "parents": []},
        {"sha": MIDDLE, "author": middle_author, "committer": middle_author, "parents": [BASE]},
        {"sha": HEAD, "author": head_author, "committer": head_committer, "parents": [MIDDLE]}])


def _deployed(deps, sha: str):
    """A deployment of ``sha`` taken to SUCCEEDED (approved by carol, who wrote none of it)."""
    dep = push(deps, tags=(sha[:7],))
    approve(deps, dep, "github:carol", via="link")
    pipeline.migration_stopped(deps, stopped(deps.load(dep.id)))
    pipeline.rollout_changed(deps, rollout(deps.load(dep.id)))
    assert deps.load(dep.id).state is State.SUCCEEDED


def test_everyone_who_wrote_a_commit_since_the_last_success_is_refused(env, github_server):
    """bob wrote a commit between what runs and what ships, though not the newest one: he may
    not approve; alice, who wrote none of it, may."""
    _history(github_server)
    deps = env(identities=PEOPLE)
    _deployed(deps, BASE)
    dep = push(deps, tags=(HEAD[:7],))
    assert deps.load(dep.id).notifications["authors"] == ["github:bob", "github:dave"]
    with pytest.raises(Forbidden) as refused:
        approve(deps, dep, "slack:U0BOB")
    assert refused.value.code == "self_review"
    assert approve(deps, dep, "slack:U0ALICE").deployment.state is State.APPROVED


def test_a_committer_counts_as_a_writer(env, github_server):
    """alice committed (rebased, merged) dave's commit: she may not approve it either."""
    _history(github_server, head_committer="alice")
    deps = env(identities=PEOPLE)
    dep = push(deps, tags=(HEAD[:7],))  # a first deployment: the commit itself
    with pytest.raises(Forbidden, match="wrote or committed"):
        approve(deps, dep, "slack:U0ALICE")


@pytest.mark.parametrize("case,tags,why", [
    ("author GitHub cannot map", (HEAD[:7],), "has no GitHub account"),
    ("commit GitHub does not know", ("eeeeeee",), "GitHub does not know commit eeeeeee"),
    ("no SHA in the tags", ("release-candidate",), "name no commit"),
])
def test_when_github_cannot_say_who_wrote_it_nobody_may_approve(env, github_server,
                                                                 slack_server, case, tags, why):
    """Each way of not knowing is a 409 that says why, on every channel, and the Slack message
    says approvals are on hold; a rejection still works."""
    _history(github_server, head_author=None)
    deps = env(identities=PEOPLE)
    dep = push(deps, tags=tags)
    for who, via in (("slack:U0ALICE", "slack"), ("github:carol", "link")):
        with pytest.raises(Conflict) as held:
            approve(deps, dep, who, via=via)
        assert held.value.status == 409 and held.value.code == "authors_unknown"
        assert why in held.value.message
    assert deps.load(dep.id).approvals == []
    message = rendered(channel_message(slack_server))
    assert "Approvals are on hold" in message and why in message
    done = decisions.decide(deps, dep.id, identity="slack:U0BOB", via="slack", decision="reject")
    assert done.deployment.state is State.REJECTED


def test_github_down_holds_approvals_until_the_reconcilers_next_look(env, github_server,
                                                                      slack_server):
    """GitHub down at push: 409 saying so; back up, the reconciler asks again, lifts the hold
    (the Slack message drops its warning), and the author is still refused."""
    _history(github_server)
    github_server.set_down()
    deps = env(identities=PEOPLE)
    dep = push(deps, tags=(HEAD[:7],))
    with pytest.raises(Conflict, match="GitHub could not be asked"):
        approve(deps, dep, "slack:U0ALICE")
    github_server.set_down(False)
    notify.resync_pending(deps)
    assert deps.load(dep.id).notifications["authors"] == ["github:dave"]
    assert "authors_unknown" not in deps.load(dep.id).notifications
    assert "Approvals are on hold" not in rendered(channel_message(slack_server))
    assert approve(deps, dep, "slack:U0ALICE").deployment.state is State.APPROVED


def test_anyone_means_anyone_github_can_vouch_for(env, github_server, slack_server):
    """approvers = ["*"] with prevent_self_review: a Slack user no [identities] entry ties to a
    GitHub login cannot be told apart from the author, so is refused; the message says anyone."""
    _history(github_server)
    deps = env(approvers=["*"], identities=PEOPLE)
    dep = push(deps, tags=(HEAD[:7],))
    with pytest.raises(Forbidden) as refused:
        approve(deps, dep, "slack:U0STRANGER")
    assert refused.value.code == "self_review_unknown"
    assert 'anyone (approvers = [\\"*\\"])' in rendered(channel_message(slack_server))
    assert approve(deps, dep, "slack:U0ALICE").deployment.state is State.APPROVED


class _Policy:
    def __init__(self, approvers, quorum=1):
        self.approvers, self.quorum = approvers, quorum
        self.prevent_self_review, self.wait_minutes = False, 0


def test_no_approvers_is_nobody_and_one_person_counts_once(env):
    """L2 at run time: an empty list approves nothing. L3: identities that overlap are one
    person, however many aliases they click with."""
    deps = env(prevent_self_review=False)
    dep = deps.load(push(deps).id)
    now = deps.clock()
    with pytest.raises(Forbidden, match="not an approver"):
        approval.decide(dep, _Policy(()), identity="slack:U0ALICE", via="slack",
                        decision="approve", comment="", now=now)
    groups = {"slack:U1": frozenset({"slack:U1", "github:a"}),
              "github:b": frozenset({"github:b", "slack:U1"})}
    policy = _Policy(("slack:U1", "github:b", "github:c"), quorum=2)
    approval.decide(dep, policy, identity="slack:U1", via="slack", decision="approve",
                    comment="", now=now, person=lambda i: groups.get(i, frozenset({i})))
    said = approval.decide(dep, policy, identity="github:b", via="link", decision="approve",
                           comment="", now=now, person=lambda i: groups.get(i, frozenset({i})))
    assert "already approved" in said and dep.state is State.PENDING_APPROVAL
