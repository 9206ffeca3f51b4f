"""Freeze windows with break glass on the devstack, over HTTP: the clock is moved into the window
(`POST /_devstack/clock`), the promotion waiting there cannot be approved, and the one person
listed in `break_glass` approves it anyway with a reason that the ledger and Slack keep.
"""
from __future__ import annotations

import json
import time
import urllib.parse
from datetime import datetime, timedelta, timezone

import pytest

from devstack.links import approval_links
from tests.e2e.test_promotion_e2e import proposal_of
from tests.ops_kit import OCTOCAT_SLACK, TARGET

pytestmark = pytest.mark.timeout(180)


def link_for(stack, dep_id: str, slack_user: str, timeout: float = 10) -> str:
    """The personal link Slack delivered to ``slack_user`` by direct message."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dms = [m for m in stack.get_json("/_devstack/slack/messages")["messages"]
               if m.get("channel_name") == slack_user]
        found = approval_links(dms, dep_id)
        if found:
            return found[0]
        time.sleep(0.2)
    raise AssertionError(f"no approval link for {dep_id} reached {slack_user}")


def decide(stack, link: str, **fields) -> tuple[int, str]:
    parts = urllib.parse.urlsplit(link)
    token = urllib.parse.parse_qs(parts.query)["token"][0]
    return stack.call("POST", parts.path, form={"token": token, "decision": "approve",
                                                "comment": "", **fields})


def move_clock_to(stack, moment: datetime) -> None:
    """Move Slipway's clock forward to ``moment`` (it never goes back)."""
    now = datetime.now(timezone.utc) + timedelta(seconds=stack.clock_offset())
    ahead = (moment - now).total_seconds()
    if ahead > 0:
        stack.advance_clock(ahead)


@pytest.fixture
def in_the_window(opstack):
    """Slipway's clock five minutes into the window; afterwards past its end (the next tests on
    this devstack are not frozen)."""
    yield lambda: move_clock_to(opstack, opstack.freeze_start + timedelta(minutes=5))
    move_clock_to(opstack, opstack.freeze_start + timedelta(hours=1, minutes=1))


def test_a_frozen_promotion_waits_and_only_break_glass_approves_it(opstack, in_the_window):
    source = opstack.deploy("better-chatbot")
    dep = proposal_of(opstack, source)
    in_the_window()

    approver = link_for(opstack, dep["id"], "U0APPROVER1")
    status, page = opstack.call("GET", approver)
    assert status == 200 and "frozen by freeze #1 (EU launch) until" in page
    assert "name='break_glass'" not in page  # not listed in break_glass: no field
    status, page = decide(opstack, approver)
    assert status == 409 and "frozen" in page, page[:500]
    status, page = decide(opstack, approver, break_glass="please")
    assert status == 403, page[:500]
    assert opstack.get_json(f"/deployments/{dep['id']}")["state"] == "PENDING_APPROVAL"

    octocat = link_for(opstack, dep["id"], OCTOCAT_SLACK.split(":")[1])
    status, page = opstack.call("GET", octocat)
    assert status == 200 and "name='break_glass'" in page and "You may break glass" in page
    status, page = decide(opstack, octocat)  # no reason: still frozen
    assert status == 409, page[:500]
    status, page = decide(opstack, octocat, break_glass="EU checkout is down")
    assert status == 200, page[:500]

    done = opstack.wait_finished(dep["id"])
    assert done["state"] == "SUCCEEDED", done["timeline"]
    (approved,) = [a for a in done["approvals"] if a["decision"] == "approve"]
    assert approved["by"] == "github:octocat"  # the approver its link was issued to
    assert approved["break_glass"] == "EU checkout is down"
    assert any(t["note"].startswith("BREAK GLASS by") for t in done["timeline"])
    deadline, thread = time.monotonic() + 15, ""
    while "BREAK GLASS" not in thread and time.monotonic() < deadline:  # told asynchronously
        posted = [m for m in opstack.get_json("/_devstack/slack/messages")["messages"]
                  if m.get("channel_name") == "#deploys-eu" and dep["id"] in json.dumps(m)]
        thread = json.dumps([m.get("replies") or [] for m in posted])
        time.sleep(0.3)
    assert "BREAK GLASS" in thread and "EU checkout is down" in thread
