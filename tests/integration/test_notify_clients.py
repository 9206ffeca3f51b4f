"""Slack and GitHub clients against the loopback stand-ins, over real HTTP."""
from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from chalicelib.adapters.errors import NotificationError
from chalicelib.adapters.github import GitHubClient
from chalicelib.adapters.slack import SlackClient
from chalicelib.adapters.slack_message import request_message, status_message
from devstack.standins.github_server import GitHubStandIn
from devstack.standins.slack_server import SlackStandIn

SLACK_TOKEN = "xoxb-test-token-123"
GITHUB_TOKEN = "ghp_test_token_456"
SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def slack_server():
    with SlackStandIn(token=SLACK_TOKEN) as server:
        yield server


@pytest.fixture
def github_server():
    with GitHubStandIn(token=GITHUB_TOKEN) as server:
        yield server


@pytest.fixture
def slack(slack_server):
    return SlackClient(SLACK_TOKEN, base_url=slack_server.url, response_urls=[slack_server.response_url])


@pytest.fixture
def github(github_server):
    return GitHubClient(GITHUB_TOKEN, api_url=github_server.url)


def hostile_dep(**overrides) -> dict:
    dep = {"id": "dep-7", "service": "web", "kind": "deploy", "state": "PENDING_APPROVAL",
           "version": "1.2.3", "commit": SHA, "image_digest": "sha256:" + "ab" * 32,
           "tags": ["<!channel>", "1.2.3"], "approvals": [], "approvers": ["slack:U0ALICE"], "quorum": 1,
           "diff": [{"path": f"env.V{i}", "old": "x" * 100, "new": "y" * 100} for i in range(200)],
           "migration_command": ["manage.py", "migrate"], "approval_url": "http://127.0.0.1:1/approvals/dep-7",
           "github_repository": "acme/web", "expires_at": None, "duration_seconds": None}
    dep.update(overrides)
    return dep


def test_post_update_thread_are_recorded_in_order(slack, slack_server):
    """A message is posted, updated, then threaded, and the stand-in keeps that history in order."""
    text, blocks = request_message(hostile_dep())
    channel, ts = slack.post_message("#deploys", text, blocks)
    approved = [{"by": "slack:U0ALICE", "via": "slack", "decision": "approve", "comment": None, "at": "t"}]
    text2, blocks2 = status_message(hostile_dep(state="APPROVED", approvals=approved))
    slack.update_message(channel, ts, text2, blocks2)
    slack.post_thread(channel, ts, "migration exited 0")

    [message] = slack_server.messages()
    assert channel.startswith("C") and message["channel"] == channel and message["ts"] == ts
    assert [version["text"] for version in message["history"]] == [text, text2]
    assert message["blocks"] == blocks2
    assert [(r["thread_ts"], r["text"]) for r in message["replies"]] == [(ts, "migration exited 0")]


def test_channel_names_map_to_stable_ids_and_ts_increase(slack):
    """The same channel name gets the same id, and each post gets a later ts."""
    first = slack.post_message("#deploys", "one", None)
    second = slack.post_message("deploys", "two", None)
    assert first[0] == second[0]
    assert float(second[1]) > float(first[1])


def test_update_of_unknown_message_fails(slack):
    """Updating a ts the stand-in never issued raises NotificationError with Slack's code."""
    channel, _ = slack.post_message("#deploys", "hello", None)
    with pytest.raises(NotificationError) as caught:
        slack.update_message(channel, "1.000000", "changed", None)
    assert caught.value.error == "message_not_found"


def test_oversized_blocks_are_refused(slack):
    """The stand-in enforces Slack's 3000-character section limit, so builders cannot drift past it."""
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}]
    with pytest.raises(NotificationError) as caught:
        slack.post_message("#deploys", "too long", blocks)
    assert caught.value.error == "invalid_blocks"


def test_wrong_slack_token_raises_without_leaking_it(slack_server):
    """A bad token becomes NotificationError(invalid_auth) whose message omits the token."""
    client = SlackClient("xoxb-wrong-secret", base_url=slack_server.url)
    with pytest.raises(NotificationError) as caught:
        client.post_message("#deploys", "hi", None)
    assert caught.value.error == "invalid_auth" and caught.value.status == 401
    assert "xoxb-wrong-secret" not in str(caught.value)
    assert slack_server.messages() == []


def test_slack_down_raises_and_records_nothing(slack, slack_server):
    """While Slack answers 503 every call raises NotificationError."""
    slack_server.set_down(True)
    with pytest.raises(NotificationError) as caught:
        slack.post_message("#deploys", "hi", None)
    assert caught.value.status == 503
    assert slack_server.messages() == []


def test_slack_unreachable_raises():
    """A refused connection becomes NotificationError, not a urllib error."""
    server = SlackStandIn(token=SLACK_TOKEN).start()
    url = server.url
    server.stop()
    with pytest.raises(NotificationError):
        SlackClient(SLACK_TOKEN, base_url=url).post_message("#deploys", "hi", None)


def test_base_url_without_trailing_slash_still_reaches_the_api(slack_server):
    """SLACK_API_URL given without its trailing slash keeps the /api/ path."""
    client = SlackClient(SLACK_TOKEN, base_url=slack_server.url.rstrip("/"))
    client.post_message("#deploys", "hi", None)
    assert len(slack_server.messages()) == 1


def test_ephemeral_and_response_url(slack, slack_server):
    """Ephemeral messages and response_url answers reach the stand-in's records."""
    slack.post_ephemeral("#deploys", "U0BOB", "You may not approve web.")
    slack.respond(slack_server.response_url, "Approved.", replace_original=False)
    assert [(e["user"], e["text"]) for e in slack_server.ephemerals()] == [("U0BOB", "You may not approve web.")]
    assert slack_server.responses()[0]["text"] == "Approved."


def test_respond_while_down_raises(slack, slack_server):
    """A failing response_url becomes NotificationError."""
    slack_server.set_down(True)
    with pytest.raises(NotificationError):
        slack.respond(slack_server.response_url, "Approved.")


def test_github_deployment_statuses_in_order(github, github_server):
    """A deployment and its statuses arrive in order with the fields Slipway must send."""
    dep_id = github.create_deployment("acme/web", SHA, "production", {"slipway_id": "dep-7"}, "web 1.2.3", True)
    for state in ("queued", "in_progress", "success"):
        github.create_status("acme/web", dep_id, state, f"web is {state}", log_url="http://127.0.0.1/d/dep-7")
    [deployment] = github_server.deployments()
    assert deployment["id"] == dep_id and deployment["ref"] == SHA and deployment["production_environment"] is True
    assert deployment["payload"] == {"slipway_id": "dep-7"}
    assert [s["state"] for s in deployment["statuses"]] == ["queued", "in_progress", "success"]
    assert deployment["statuses"][0]["log_url"] == "http://127.0.0.1/d/dep-7"


def test_github_failure_path_and_increasing_ids(github, github_server):
    """A second deployment gets a higher id and records a failure after in_progress."""
    first = github.create_deployment("acme/web", SHA, "staging", {}, "one", False)
    second = github.create_deployment("acme/web", SHA, "staging", {}, "two", False)
    github.create_status("acme/web", second, "in_progress", "migrating")
    github.create_status("acme/web", second, "failure", "migration exited 1")
    assert second > first
    assert [s["state"] for s in github_server.deployments()[1]["statuses"]] == ["in_progress", "failure"]


def test_long_status_description_is_truncated(github, github_server):
    """A description over 140 characters is cut to fit instead of being refused."""
    dep_id = github.create_deployment("acme/web", SHA, "production", {}, "d", True)
    github.create_status("acme/web", dep_id, "failure", "x" * 500)
    description = github_server.deployments()[0]["statuses"][0]["description"]
    assert len(description) == 140 and description.endswith("…")


def test_status_for_unknown_deployment_is_404(github):
    """Posting a status to a deployment GitHub does not know raises with status 404."""
    with pytest.raises(NotificationError) as caught:
        github.create_status("acme/web", 999, "success", "done")
    assert caught.value.status == 404


def test_unknown_status_state_is_refused_before_sending(github, github_server):
    """A state outside GitHub's enum is a programming error and sends nothing."""
    dep_id = github.create_deployment("acme/web", SHA, "production", {}, "d", True)
    with pytest.raises(ValueError):
        github.create_status("acme/web", dep_id, "approved", "nope")
    assert github_server.deployments()[0]["statuses"] == []


def test_commit_author_lookup(github, github_server):
    """Known commits give their author's login; unknown commits and author-less commits give None."""
    github_server.set_commit_author("acme/web", SHA, "octocat")
    github_server.set_commit_author("acme/web", "f" * 40, None)
    assert github.commit_author("acme/web", SHA) == "octocat"
    assert github.commit_author("acme/web", SHA[:7]) == "octocat"
    assert github.commit_author("acme/web", "f" * 40) is None
    assert github.commit_author("acme/web", "e" * 40) is None


def test_wrong_github_token_raises_without_leaking_it(github_server):
    """A bad token becomes NotificationError carrying GitHub's message, not the token."""
    client = GitHubClient("ghp_wrong_secret", api_url=github_server.url)
    with pytest.raises(NotificationError) as caught:
        client.create_deployment("acme/web", SHA, "production", {}, "d", True)
    assert caught.value.status == 401 and "Bad credentials" in str(caught.value)
    assert "ghp_wrong_secret" not in str(caught.value)


def test_github_down_and_unreachable_raise(github, github_server):
    """503s and refused connections both become NotificationError."""
    github_server.set_down(True)
    with pytest.raises(NotificationError) as caught:
        github.commit_author("acme/web", SHA)
    assert caught.value.status == 503
    url = github_server.url
    github_server.stop()
    with pytest.raises(NotificationError):
        GitHubClient(GITHUB_TOKEN, api_url=url).create_deployment("acme/web", SHA, "prod", {}, "d", True)


def test_github_standin_refuses_auto_merge(github_server):
    """The stand-in rejects a deployment that would let GitHub auto-merge or wait on all checks."""
    body = json.dumps({"ref": SHA, "environment": "production"}).encode()
    request = urllib.request.Request(
        github_server.url + "/repos/acme/web/deployments", data=body, method="POST",
        headers={"Authorization": f"Bearer {GITHUB_TOKEN}", "Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=3)
    fields = {error["field"] for error in json.loads(caught.value.read())["errors"]}
    assert caught.value.code == 422 and fields == {"auto_merge", "required_contexts"}
