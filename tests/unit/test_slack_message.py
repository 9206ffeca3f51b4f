"""Slack message builders: escaping, buttons, limits and status lines (pure, no network)."""
from __future__ import annotations

import json
import re

import pytest

from chalicelib.adapters.slack_message import (
    ACTION_APPROVE,
    ACTION_REJECT,
    escape_mrkdwn,
    request_message,
    status_message,
    thread_text,
)

HOSTILE = ["<!channel>", "<https://evil.example|click>", "a&b", "<@U0HOSTILE>"]
FINAL_STATES = ["APPROVED", "MIGRATING", "DEPLOYING", "SUCCEEDED", "FAILED", "REJECTED",
                "SUPERSEDED", "EXPIRED", "ROLLED_BACK"]


def make_dep(**overrides) -> dict:
    dep = {
        "id": "dep-0001", "service": "web", "kind": "deploy", "state": "PENDING_APPROVAL",
        "repository": "web", "image_tag": "1.22.0-abc123d",
        "image_digest": "sha256:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd1234",
        "image": "123.dkr.ecr.us-east-1.amazonaws.com/web@sha256:7f5b…", "version": "1.22.0",
        "commit": "abc123d", "task_definition_arn": "arn:aws:ecs:us-east-1:1:task-definition/web:43",
        "previous_task_definition_arn": None, "migration": None, "ecs_deployment_id": None,
        "approvals": [], "created_at": "2024-05-01T10:00:00Z", "updated_at": "2024-05-01T10:00:00Z",
        "finished_at": None, "reason": None, "timeline": [],
        "tags": ["abc123d", "1.22.0-abc123d", "latest"],
        "diff": [{"path": "containerDefinitions[web].image", "old": "web@sha256:aaa", "new": "web@sha256:bbb"},
                 {"path": "containerDefinitions[web].environment.API_KEY", "old": "***", "new": "***"}],
        "migration_command": ["pnpm", "db:migrate"], "approvers": ["slack:U0ALICE", "github:octocat"],
        "quorum": 2, "expires_at": "2024-05-02T10:00:00+00:00",
        "approval_url": "https://slipway.example/approvals/dep-0001",
        "github_repository": "acme/web", "duration_seconds": None,
    }
    dep.update(overrides)
    return dep


def all_text(text: str, blocks: list[dict]) -> str:
    """Everything Slack would render, as one string."""
    return text + "\n" + json.dumps(blocks, ensure_ascii=False)


def section_texts(blocks: list[dict]) -> list[str]:
    out = []
    for block in blocks:
        if block["type"] in ("section", "header") and "text" in block:
            out.append(block["text"]["text"])
        out.extend(field["text"] for field in block.get("fields", []))
        if block["type"] == "context":
            out.extend(element["text"] for element in block["elements"])
    return out


def actions_of(blocks: list[dict]) -> list[dict]:
    return [element for block in blocks if block["type"] == "actions" for element in block["elements"]]


def test_escape_mrkdwn_escapes_ampersand_first():
    """Ampersands are escaped before angle brackets, so entities in input stay visible as typed."""
    assert escape_mrkdwn("a & <b> &lt;") == "a &amp; &lt;b&gt; &amp;lt;"
    assert escape_mrkdwn(None) == ""


def test_hostile_tags_version_and_service_are_escaped():
    """Tags, version and service from outside cannot ping a channel, link, or mention anyone."""
    dep = make_dep(tags=HOSTILE, version="<!here>", service="web&<x>", commit="<!channel>", image_tag="<!channel>")
    text, blocks = request_message(dep)
    rendered = all_text(text, blocks)
    for raw in ("<!channel>", "<!here>", "<https://evil", "<@U0HOSTILE>", "<x>"):
        assert raw not in rendered
    assert "&lt;!channel&gt;" in rendered and "a&amp;b" in rendered
    for chunk in section_texts(blocks) + [text]:
        assert not re.search(r"&(?!amp;|lt;|gt;)", chunk), chunk


def test_hostile_rejection_comment_is_escaped_but_approver_is_mentioned():
    """A reject comment is shown as text, while the verified rejecter is a real mention."""
    dep = make_dep(state="REJECTED", approvals=[
        {"by": "slack:U0ALICE", "via": "slack", "decision": "reject", "comment": "<!channel> & <@U0EVIL>", "at": "t"}])
    text, blocks = status_message(dep)
    rendered = all_text(text, blocks)
    assert "<@U0ALICE>" in rendered
    assert "<!channel>" not in rendered and "<@U0EVIL>" not in rendered
    assert "&lt;!channel&gt; &amp; &lt;@U0EVIL&gt;" in rendered


def test_only_slack_identities_become_mentions():
    """Approvers render as mentions only when they are well-formed slack:U… identities."""
    dep = make_dep(approvers=["slack:U0ALICE", "github:octocat", "slack:<!channel>", "slack:U0BOB|x"])
    _, blocks = request_message(dep)
    approvers = next(t for t in section_texts(blocks) if t.startswith("*Approvers*"))
    assert "<@U0ALICE>" in approvers and "github:octocat" in approvers
    assert "<!channel>" not in approvers and "<@U0BOB" not in approvers


def test_buttons_carry_the_deployment_id():
    """Approve and Reject carry the deployment id, styled, and the review link points at the page."""
    _, blocks = request_message(make_dep(id="dep-42"))
    buttons = {button["action_id"]: button for button in actions_of(blocks)}
    assert buttons[ACTION_APPROVE]["value"] == "dep-42" and buttons[ACTION_APPROVE]["style"] == "primary"
    assert buttons[ACTION_REJECT]["value"] == "dep-42" and buttons[ACTION_REJECT]["style"] == "danger"
    review = [b for b in buttons.values() if b.get("url")]
    assert [b["url"] for b in review] == ["https://slipway.example/approvals/dep-0001"]


def test_no_review_button_without_approval_url():
    """Without an approval URL only the two decision buttons appear."""
    _, blocks = request_message(make_dep(approval_url=None))
    assert [b["action_id"] for b in actions_of(blocks)] == [ACTION_APPROVE, ACTION_REJECT]


def test_long_diff_is_truncated_under_slack_limits():
    """A huge diff stays under 3000 characters per section and says how many changes were cut."""
    diff = [{"path": f"containerDefinitions[web].environment.VAR_{i}", "old": "<&>" * 80, "new": "x" * 200}
            for i in range(400)]
    _, blocks = request_message(make_dep(diff=diff))
    diff_text = next(t for t in section_texts(blocks) if t.startswith("*Task definition changes*"))
    assert len(diff_text) <= 3000
    match = re.search(r"… (\d+) more changes$", diff_text)
    assert match and 0 < int(match.group(1)) < 400
    assert all(len(t) <= 3000 for t in section_texts(blocks))
    assert len(blocks[0]["text"]["text"]) <= 150


def test_diff_values_cannot_close_the_code_block():
    """Backticks and mentions inside diff values stay inside the code block, inert."""
    diff = [{"path": "command", "old": None, "new": "```\n<!channel>```"}]
    _, blocks = request_message(make_dep(diff=diff))
    diff_text = next(t for t in section_texts(blocks) if t.startswith("*Task definition changes*"))
    assert diff_text.count("```") == 2 and "<!channel>" not in diff_text


def test_partial_quorum_keeps_buttons_and_counts():
    """With 1 of 2 approvals the message shows who approved and keeps the buttons."""
    alice = {"by": "slack:U0ALICE", "via": "slack", "decision": "approve", "comment": None, "at": "t"}
    _, blocks = status_message(make_dep(approvals=[alice]))
    assert any("1 of 2 approvals: <@U0ALICE>" in t for t in section_texts(blocks))
    assert {b["action_id"] for b in actions_of(blocks)} >= {ACTION_APPROVE, ACTION_REJECT}


def test_same_person_twice_counts_once():
    """Two approvals by the same identity show as one of the quorum."""
    twice = {"by": "slack:U0ALICE", "via": "slack", "decision": "approve", "comment": None, "at": "t"}
    _, blocks = status_message(make_dep(approvals=[twice, dict(twice)]))
    assert any("1 of 2 approvals" in t for t in section_texts(blocks))


@pytest.mark.parametrize("state", FINAL_STATES)
def test_states_past_approval_drop_the_buttons(state):
    """Once the deployment has left PENDING_APPROVAL the message has no buttons."""
    _, blocks = status_message(make_dep(state=state, reason="because"))
    assert actions_of(blocks) == []


@pytest.mark.parametrize("state", ["PENDING_APPROVAL", "FAILED", "REJECTED", "APPROVED"])
def test_status_line_fits_a_section_with_many_long_approvals(state):
    """Fifty approvers with long hostile comments and a long reason still fit Slack's limits."""
    approvals = [{"by": f"slack:U0PERSON{i}", "via": "link", "decision": "approve", "comment": "<&>" * 400, "at": "t"}
                 for i in range(50)]
    approvals.append({"by": "slack:U0BOB", "via": "slack", "decision": "reject", "comment": "&" * 5000, "at": "t"})
    _, blocks = status_message(make_dep(state=state, approvals=approvals, reason="<!channel>" * 500, quorum=60))
    assert all(len(text) <= 3000 for text in section_texts(blocks))
    assert "<!channel>" not in json.dumps(blocks)
    assert state == "REJECTED" or " more" in section_texts(blocks)[-1]


def test_approved_lists_each_approval():
    """APPROVED names every approver, mentioning Slack users and naming link approvers."""
    approvals = [
        {"by": "slack:U0ALICE", "via": "slack", "decision": "approve", "comment": None, "at": "t"},
        {"by": "github:octocat", "via": "link", "decision": "approve", "comment": "lgtm <3", "at": "t"},
    ]
    _, blocks = status_message(make_dep(state="APPROVED", approvals=approvals))
    status = section_texts(blocks)[-1]
    assert "Approved by <@U0ALICE>, github:octocat (via link): “lgtm &lt;3”" in status


def test_succeeded_says_how_long_it_took():
    """SUCCEEDED reports the duration in seconds."""
    _, blocks = status_message(make_dep(state="SUCCEEDED", duration_seconds=41.6))
    assert "Deployed in 42 s" in section_texts(blocks)[-1]


def test_failed_shows_the_escaped_reason():
    """FAILED shows why, escaped."""
    _, blocks = status_message(make_dep(state="FAILED", reason="migration exited 1 <!channel>"))
    assert "Failed: migration exited 1 &lt;!channel&gt;" in section_texts(blocks)[-1]


def test_commit_links_to_github_only_for_a_real_sha():
    """A hex commit with a GitHub repository becomes a link; anything else stays text."""
    _, blocks = request_message(make_dep(commit="abc123def456"))
    assert "<https://github.com/acme/web/commit/abc123def456|abc123d>" in json.dumps(blocks)
    _, blocks = request_message(make_dep(commit="main|evil"))
    assert "github.com" not in json.dumps(blocks)


def test_digest_and_expiry_rendering():
    """The digest shows its first 12 hex digits and the expiry is a Slack date token."""
    _, blocks = request_message(make_dep())
    rendered = json.dumps(blocks)
    assert "`7f5b2640fe6f`" in rendered and "7f5b2640fe6fb" not in rendered
    assert "<!date^1714644000^{date_short_pretty} at {time}|2024-05-02 10:00 UTC>" in rendered


def test_thread_text_escapes_and_bounds():
    """Threaded notes are escaped and kept within one section's length."""
    assert thread_text("exit 1 <!channel>") == "exit 1 &lt;!channel&gt;"
    assert len(thread_text("&" * 5000)) <= 3000
