"""Slack acknowledgement: a click on Approve answered in < 3 s cold and ≤ 0.3 s warm (DESIGN.md
"Budgets"; Slack shows the user an error after 3 s).

Each round, on the loopback AWS of bench/world.py: Slipway's own handlers (in this process) take a
new image's push, so a deployment waits for approval and Slack got its message; then a fresh
process (``python -m bench._cold_child slack``, a new Lambda container) gets the approver's click
as API Gateway delivers ``POST /slack/interactions`` (the body signed with the signing secret):
the cold answer, spawn → response. The ledger is then emptied, the next image pushed, and the
same process gets the next click: the warm answer, request sent → response. Cold and warm are
paired (one container); medians with min/max.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import statistics
import subprocess
import sys
import time
from urllib.parse import urlencode

from bench.report import Result, say, section

ROUNDS = 5
COLD_BUDGET, WARM_BUDGET = 3.0, 0.3
APPROVER = "U0APPROVER1"


def run() -> list[Result]:
    section("Slack acknowledgement: Approve clicked, cold and warm (paired, one container each)")
    from bench import slipway_side
    from bench.api_calls import machine
    from bench.cold_start import ROOT, clear_tables, precompile
    from bench.world import World

    precompile()
    say(f"{machine()}; {ROUNDS} rounds")
    cold, warm = [], []
    with World() as world:
        import app as app_module

        driver = slipway_side.Driver(world, app_module)
        for i in range(ROUNDS):
            event = _pending_click(world, driver, 2 * i)
            spawned = time.time()
            child = subprocess.Popen([sys.executable, "-m", "bench._cold_child", "slack"], cwd=ROOT,
                                     env=world.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
            try:
                cold.append(_answer(world, child, event) - spawned)
                event = _pending_click(world, driver, 2 * i + 1)
                sent = time.time()
                warm.append(_answer(world, child, event) - sent)
            finally:
                child.stdin.close()
                child.wait(timeout=60)
    return _report(cold, warm)


def _pending_click(world, driver, n: int) -> dict:
    """A new image pushed (Slipway's own push handler), its deployment awaiting approval alone in
    an emptied ledger; the approver's click on its Slack message as API Gateway delivers it."""
    from bench import slipway_side
    from bench.cold_start import clear_tables
    from devstack.events import push_image

    clear_tables(world)
    sha = f"{n + 0xa00:07x}"
    world.github.set_commit_author("acme/better-chatbot", sha, "bench-author")  # self-review
    _, pushes = push_image(world.client("ecr"), slipway_side.SERVICE, [sha], "123456789012",
                           "us-east-1")
    driver.deliver(pushes)
    dep_id, _ = slipway_side._approval_link(world)
    payload = {"type": "block_actions", "user": {"id": APPROVER, "username": "approver"},
               "team": {"id": "T0TEAM"}, "channel": {"id": "C0DEPLOYS"},
               "container": {"type": "message", "message_ts": "1700000000.000100"},
               "response_url": world.slack.response_url,
               "actions": [{"type": "button", "action_id": "slipway_approve", "value": dep_id,
                            "block_id": "b1", "action_ts": "1700000001.0"}]}
    body = urlencode({"payload": json.dumps(payload)})
    ts = str(int(time.time()))
    mac = hmac.new(world.secret["slack_signing_secret"].encode(), f"v0:{ts}:{body}".encode(),
                   hashlib.sha256).hexdigest()
    headers = {"content-type": "application/x-www-form-urlencoded", "host": "example.invalid",
               "x-slack-request-timestamp": ts, "x-slack-signature": f"v0={mac}"}
    return {"resource": "/slack/interactions", "path": "/slack/interactions",
            "httpMethod": "POST", "headers": headers,
            "multiValueHeaders": {k: [v] for k, v in headers.items()},
            "queryStringParameters": None, "multiValueQueryStringParameters": None,
            "pathParameters": None, "stageVariables": None, "body": body, "isBase64Encoded": False,
            "requestContext": {"resourcePath": "/slack/interactions", "httpMethod": "POST",
                               "path": "/api/slack/interactions", "stage": "api",
                               "requestId": f"bench-{n}", "identity": {"sourceIp": "127.0.0.1"}}}


def _answer(world, child, event: dict) -> float:
    """Send the click; when it was answered. Raises unless it approved the deployment."""
    from bench.slipway_side import _state

    child.stdin.write(json.dumps(event) + "\n")
    child.stdin.flush()
    answer = json.loads(child.stdout.readline() or "{}")
    dep_id = _dep_of(event)
    if answer.get("status") != 200 or _state(world, dep_id) != "APPROVED":
        raise RuntimeError(f"the click was answered {answer}; {dep_id} is {_state(world, dep_id)}")
    return answer["done_at"]


def _dep_of(event: dict) -> str:
    from urllib.parse import parse_qs

    return json.loads(parse_qs(event["body"])["payload"][0])["actions"][0]["value"]


def _report(cold: list[float], warm: list[float]) -> list[Result]:
    def spread(values: list[float]) -> str:
        return (f"median {statistics.median(values) * 1000:.0f} ms (min {min(values) * 1000:.0f}, "
                f"max {max(values) * 1000:.0f})")

    say(f"cold (spawn → answered): {spread(cold)}; warm (sent → answered): {spread(warm)}")
    return [Result("slack cold", statistics.median(cold), COLD_BUDGET, "s",
                   shown=f"{spread(cold)}"),
            Result("slack warm", statistics.median(warm), WARM_BUDGET, "s",
                   shown=f"{spread(warm)}")]
