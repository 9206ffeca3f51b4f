"""The Slack interactions route on its own Chalice app: in-memory deps and an injected clock."""
from __future__ import annotations

import dataclasses
from datetime import datetime, timezone

import pytest
from chalice import Chalice
from chalice.test import Client

from chalicelib.domain.freeze import Window
from chalicelib.domain.model import State
from chalicelib.entrypoints import slack_routes
from devstack.standins.github_server import GitHubStandIn
from devstack.standins.slack_server import SlackStandIn
from tests.notify_kit import REPO, SHA, interaction, push, signed, world, write_config

SIGNED_AT = 1_800_000_000


@pytest.fixture
def setup(tmp_path, monkeypatch):
    """An app whose clock says ``now[0]``, with deps on fakes and Slack/GitHub stand-ins."""
    with SlackStandIn(token="xoxb-t") as slack, GitHubStandIn(token="ghp_t") as github:
        github.set_commit_author(REPO, SHA, "dave")  # who wrote the pushed commit
        monkeypatch.setenv("SLACK_API_URL", slack.url)
        monkeypatch.setenv("GITHUB_API_URL", github.url)
        monkeypatch.setenv("SLACK_RESPONSE_URLS", slack.response_url)
        deps = world(write_config(tmp_path), slack, github)
        now = [float(SIGNED_AT)]
        app = Chalice(app_name="slack-routes-test")
        slack_routes.register(app, deps=lambda: deps, clock=lambda: now[0])
        with Client(app) as client:
            yield client, deps, slack, now


def post(client, deps, slack, dep_id, user="U0ALICE"):
    body = interaction(dep_id, user, response_url=slack.response_url)
    headers = signed(deps.secrets()["slack_signing_secret"], body, SIGNED_AT)
    return client.http.post("/slack/interactions", headers=headers, body=body)


@pytest.mark.parametrize("skew, status", [(-299, 200), (299, 200), (301, 401), (-301, 401)])
def test_the_five_minute_window_uses_the_injected_clock(setup, skew, status):
    """A signature is good for five minutes either side of the server's clock, not longer."""
    client, deps, slack, now = setup
    dep = push(deps)
    now[0] = SIGNED_AT + skew
    assert post(client, deps, slack, dep.id).status_code == status
    expected = State.APPROVED if status == 200 else State.PENDING_APPROVAL
    assert deps.load(dep.id).state is expected


def test_an_unknown_deployment_is_explained_not_crashed(setup):
    """A button for a deployment Slipway does not know answers 200 with a private explanation."""
    client, deps, slack, _ = setup
    assert post(client, deps, slack, "d-missing").status_code == 200
    assert "no deployment 'd-missing'" in slack.responses()[-1]["text"]


def test_without_a_response_url_the_answer_is_a_post_ephemeral(setup):
    """Slack payloads lacking response_url still get the private answer (chat.postEphemeral)."""
    client, deps, slack, _ = setup
    dep = push(deps)
    body = interaction(dep.id, "U0STRANGER")
    headers = signed(deps.secrets()["slack_signing_secret"], body, SIGNED_AT)
    assert client.http.post("/slack/interactions", headers=headers, body=body).status_code == 200
    [note] = slack.ephemerals()
    assert note["user"] == "U0STRANGER" and "not an approver" in note["text"]


def test_no_signing_secret_refuses_everything():
    """Without a configured signing secret nothing can be verified, so nothing is accepted."""
    assert slack_routes.verified(None, b"x", {"x-slack-request-timestamp": "1",
                                              "x-slack-signature": "v0=1"}, lambda: 1.0) is False


def test_a_response_url_off_slacks_hosts_is_never_posted_to(setup):
    """L4: a signed payload whose response_url points elsewhere gets its answer through
    chat.postEphemeral; the foreign URL receives nothing."""
    client, deps, slack, _ = setup
    dep = push(deps)
    with SlackStandIn(token="xoxb-elsewhere") as elsewhere:
        body = interaction(dep.id, "U0STRANGER", response_url=elsewhere.response_url)
        headers = signed(deps.secrets()["slack_signing_secret"], body, SIGNED_AT)
        assert client.http.post("/slack/interactions", headers=headers,
                                body=body).status_code == 200
        assert elsewhere.responses() == []
    [note] = slack.ephemerals()
    assert note["user"] == "U0STRANGER" and "not an approver" in note["text"]


@pytest.mark.parametrize("url,allowed", [
    ("https://hooks.slack.com/actions/T0/1/abc", True),
    ("https://hooks.slack-gov.com/actions/T0/1/abc", True),
    ("https://hooks.slack.com:443/actions/T0/1/abc", True),
    ("http://hooks.slack.com/actions/T0/1/abc", False),  # not https
    ("https://hooks.slack.com.evil.example/actions", False),
    ("https://hooks.slack.com@evil.example/actions", False),  # userinfo: the host is evil
    ("https://evil.example/?hooks.slack.com", False),
    ("https://hooks.slack.com:8443/actions", False),
    ("https://slack.com/api/chat.postMessage", False),
    ("javascript:alert(1)", False), ("", False), (None, False), (["x"], False),
    ("http://127.0.0.1:9/response/x", True),  # the stand-in prefix listed below
    ("http://127.0.0.1:9/other", False), ("http://127.0.0.1:10/response", False),
])
def test_only_slacks_own_https_hosts_and_listed_prefixes_are_response_urls(url, allowed):
    from chalicelib.adapters.slack import response_url_allowed

    assert response_url_allowed(url, ["http://127.0.0.1:9/response"]) is allowed


def test_approve_during_a_freeze_points_to_the_personal_link(setup):
    """Slack's Approve in a freeze window changes nothing and tells the clicker how to break glass."""
    client, deps, slack, _ = setup
    window = Window(index=1, services=frozenset({"*"}), reason="release freeze",
                    start=datetime(2000, 1, 1, tzinfo=timezone.utc),
                    end=datetime(2100, 1, 1, tzinfo=timezone.utc), break_glass=("slack:U0ALICE",))
    deps.config = dataclasses.replace(deps.config, freezes=(window,))
    dep = push(deps)
    assert post(client, deps, slack, dep.id).status_code == 200
    said = slack.responses()[-1]["text"]
    assert "frozen by freeze #1 (release freeze) until 2100-01-01 00:00 UTC" in said
    assert "personal approval link" in said and "break-glass reason" in said
    assert deps.load(dep.id).state is State.PENDING_APPROVAL


@pytest.mark.parametrize("timestamp, signature", [
    ("9" * 309, None),              # overflows a float: must not become a 500
    ("9" * 5000, None),             # past int()'s digit limit
    ("١٨٠٠٠٠٠٠٠٠", None),           # Arabic-Indic digits: int() takes them, Slack never sends them
    (" 1800000000", None),
    (str(SIGNED_AT), "v0=" + "é" * 64),
    (str(SIGNED_AT), "v0=" + "a" * 100_000),
    (str(SIGNED_AT), ""),
])
def test_hostile_signature_headers_get_401_and_change_nothing(setup, timestamp, signature):
    """Headers no Slack request carries are refused with 401 before any verifying, never a 500."""
    client, deps, slack, _ = setup
    dep = push(deps)
    body = interaction(dep.id, "U0ALICE", response_url=slack.response_url)
    headers = signed(deps.secrets()["slack_signing_secret"], body, SIGNED_AT)
    headers = {k: v for k, v in headers.items() if k.lower() != "x-slack-request-timestamp"}
    headers["X-Slack-Request-Timestamp"] = timestamp
    if signature is not None:
        headers = {k: v for k, v in headers.items() if k.lower() != "x-slack-signature"}
        headers["X-Slack-Signature"] = signature
    assert client.http.post("/slack/interactions", headers=headers, body=body).status_code == 401
    assert deps.load(dep.id).state is State.PENDING_APPROVAL
