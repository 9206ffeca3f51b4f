"""H2 on the devstack: GitHub (the stand-in, fed by POST /_devstack/github/commits) says who wrote
a change; when it cannot, the approval link answers 409 saying why and Slack says approvals are on
hold."""
from __future__ import annotations

import json
import secrets
import urllib.parse

import pytest

from tests.e2e.helpers import release

pytestmark = pytest.mark.timeout(120)
REPO, SERVICE = "acme/better-chatbot", "better-chatbot"


def _commit(devstack, sha: str, author: str | None) -> None:
    status, got = devstack.post_json("/_devstack/github/commits", {
        "repository": REPO, "commits": [{"sha": sha, "author": author, "committer": author,
                                         "parents": []}]})
    assert status == 200 and got["commits"] == 1, got


def test_a_commit_github_cannot_map_holds_approvals(devstack):
    """author null (an e-mail GitHub links to no account): the link's POST is a 409 naming the
    commit, the deployment stays PENDING_APPROVAL, and the Slack message says approvals are on
    hold."""
    sha, version = release()
    _commit(devstack, sha + secrets.token_hex(17)[:33], None)
    dep = devstack.deployment_of(SERVICE, devstack.push(SERVICE, sha, version))
    link = devstack.approval_link(dep["id"])
    token = urllib.parse.parse_qs(urllib.parse.urlsplit(link).query)["token"][0]
    status, page = devstack.call("POST", urllib.parse.urlsplit(link).path,
                                 form={"token": token, "decision": "approve"})
    assert status == 409 and "Approvals are on hold" in page and "no GitHub account" in page
    assert devstack.get_json(f"/deployments/{dep['id']}")["state"] == "PENDING_APPROVAL"
    messages = json.dumps(devstack.get_json("/_devstack/slack/messages"))
    assert "Approvals are on hold" in messages


def test_the_commits_endpoint_refuses_what_github_would_not_hold(devstack):
    """A body that does not describe commits is a 400 and changes nothing."""
    for body in ({}, {"repository": REPO}, {"repository": REPO, "commits": [{"sha": "abc"}]},
                 {"repository": REPO, "commits": [{"sha": "a" * 40, "author": "no spaces!"}]}):
        status, got = devstack.post_json("/_devstack/github/commits", body)
        assert status == 400 and got["error"] == "bad_request", (body, got)
