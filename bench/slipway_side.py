"""Slipway's side of the side-by-side deployment: the real Lambda handlers of app.py, driven the way
AWS drives them, on ``bench.world.World``.

One deployment: the image is pushed under three tags (three ECR events) → the approver opens the
link Slack sent them and approves (POST /approvals/{id}, an API Gateway invocation) → SQS hands
the queued work to ``work`` → ECS's events (the migration task's RUNNING and STOPPED, the
rollout's SERVICE_DEPLOYMENT_IN_PROGRESS and SERVICE_DEPLOYMENT_COMPLETED, every one ECS sends)
go to whichever rule matches, as EventBridge does → SUCCEEDED. The scheduled reconciler runs once
while the rollout is in progress (a 5-minute schedule meets a deployment of a few minutes at most
once). Every invocation starts from fresh dependencies (``bootstrap.reset()``: new clients, no
cached secret, as on a new Lambda container: the worst case). Calls are counted at the server per
invocation, so each is attributed to its handler; pruning (after SUCCEEDED) is counted apart.
"""
from __future__ import annotations

import contextlib
import io
import json
import re
from collections import Counter
from urllib.parse import urlencode

SERVICE = "better-chatbot"
TIMEOUT_MS = {"reconcile": 300_000}  # .chalice/config.json; every other function has 60 s
APPROVAL = re.compile(r"/approvals/(d-[0-9A-Za-z-]+)\?token=([A-Za-z0-9._~%-]+)")


class Driver:
    """Invokes the handlers with fresh dependencies; records calls per handler."""

    def __init__(self, world, app_module) -> None:
        from moto.events.models import EventPattern
        from chalice.app import CloudWatchEventConfig

        from devstack.events import handlers

        self.world, self.app = world, app_module
        self.rules = [(cfg.name, EventPattern.load(json.dumps(cfg.event_pattern)), fn)
                      for cfg, fn in handlers(app_module, CloudWatchEventConfig)]
        self.by_handler: dict[str, Counter] = {}
        self.invocations: Counter = Counter()
        self.phase = "deployment"

    def invoke(self, name: str, fn, *args):
        from bench.lambda_context import Context
        from chalicelib.entrypoints import bootstrap

        bootstrap.reset()  # a new container: new clients, no cached secret
        before = self.world.counts("slipway")
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # powertools' log and EMF lines
                context = Context(TIMEOUT_MS.get(name, 60_000))
                return fn(*args, context) if args else fn(context)
        finally:
            spent = self.world.counts("slipway") - before
            key = f"{name} ({self.phase})" if self.phase != "deployment" else name
            self.by_handler.setdefault(key, Counter()).update(spent)
            self.invocations[key] += 1

    def deliver(self, events: list[dict]) -> int:
        delivered = 0
        for event in events:
            for name, pattern, fn in self.rules:
                if pattern.matches_event(event):
                    self.invoke(name, fn, event)
                    delivered += 1
        return delivered

    def drain_queue(self) -> int:
        """The SQS event source mapping (Lambda's poller, signed ``bench``: not the function's)."""
        sqs, url, handled = self.world.client("sqs"), self.world.provisioned.queue_url, 0
        while True:
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1).get("Messages", [])
            if not got:
                return handled
            msg = got[0]
            record = {"messageId": msg["MessageId"], "receiptHandle": msg["ReceiptHandle"],
                      "body": msg["Body"], "attributes": {}, "messageAttributes": {},
                      "eventSource": "aws:sqs", "awsRegion": "us-east-1",
                      "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:slipway-work"}
            self.invoke("work", self.app.work, {"Records": [record]})
            sqs.delete_message(QueueUrl=url, ReceiptHandle=msg["ReceiptHandle"])
            handled += 1

    def approve(self, dep_id: str, token: str) -> None:
        from chalice.test import Client

        def post(_context):
            with Client(self.app.app, stage_name="bench") as client:
                return client.http.post(f"/approvals/{dep_id}", body=urlencode(
                    {"token": token, "decision": "approve"}),
                    headers={"Content-Type": "application/x-www-form-urlencoded"})

        res = self.invoke("approve (HTTP)", post)
        if res.status_code != 200:
            raise RuntimeError(f"approval answered {res.status_code}: {res.body[:300]!r}")

    def reconcile(self) -> None:
        event = {"version": "0", "id": "bench", "detail-type": "Scheduled Event",
                 "source": "aws.events", "account": "123456789012", "time": "2026-01-01T00:00:00Z",
                 "region": "us-east-1", "resources": [], "detail": {}}
        self.invoke("reconcile", self.app.reconcile, event)


def deployment(world, app_module, tags: list[str], rollout_s: float, migration_s: float) -> dict:
    """Run one deployment to its end; return counts per handler and the final state."""
    from devstack.events import push_image

    driver = Driver(world, app_module)
    world.take_events()
    world.configure_ecs(task_seconds=migration_s, migration_exit_code=0, rollout="complete")
    digest, pushes = push_image(world.client("ecr"), SERVICE, tags, "123456789012", "us-east-1")
    driver.deliver(pushes)
    dep_id, token = _approval_link(world)
    driver.approve(dep_id, token)
    reconciled, configured, started = False, False, world.scheduler.now
    for _ in range(200):
        moved = driver.drain_queue() + driver.deliver(world.take_events())
        state = _state(world, dep_id)
        if state == "DEPLOYING" and not reconciled:
            driver.reconcile()
            reconciled = True
        if state == "MIGRATING" and not configured:  # the task is running: the rollout comes next
            world.configure_ecs(task_seconds=rollout_s)
            configured = True
        if state in ("SUCCEEDED", "FAILED", "ROLLED_BACK"):
            break
        if not moved:
            world.advance(1.0)
    driver.phase = "after"
    driver.drain_queue()
    driver.deliver(world.take_events())
    return {"state": _state(world, dep_id), "by_handler": driver.by_handler,
            "invocations": driver.invocations, "emulated_s": world.scheduler.now - started,
            "dep_id": dep_id}


def _approval_link(world) -> tuple[str, str]:
    """The approver's personal link, from the direct message Slack delivered."""
    for message in reversed(world.slack.messages()):
        found = APPROVAL.search(json.dumps(message))
        if found:
            return found.group(1), found.group(2)
    raise RuntimeError("no approval link was sent to Slack")


def _state(world, dep_id: str) -> str:
    """The deployment's state, read by the harness (signed ``bench``)."""
    from chalicelib.adapters.ledger_dynamodb import DynamoLedger

    ledger = DynamoLedger(world.client("dynamodb"), world.env["SLIPWAY_TABLE"])
    dep = ledger.get(dep_id)
    return dep.state.value if dep else "?"
