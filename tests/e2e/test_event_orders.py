"""Property (issue 7): whatever order, and however often, AWS delivers the events of two or three
pushes, the newest approved image ends up running, each migration runs once, and every older
deployment that was waiting is SUPERSEDED.

The world is the devstack's own parts without their threads: moto's server on loopback, the ECS
emulator with a hand-cranked scheduler (a task exits, a rollout completes, when the test says so),
the app's real handlers called as Lambda would call them, and the SQS work queue drained by hand.
Hypothesis picks every next step among what could happen now: deliver one of the pushes' ECR
events (again, perhaps), deliver an ECS event already emitted (again, perhaps), let ECS progress,
deliver one work message, or approve a waiting deployment. Then everything left is delivered and
the reconciler runs; the outcome is judged through the ledger and ECS, as a user would see them.
"""
from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

ROOT = Path(__file__).resolve().parents[2]
SERVICE, REPO, CLUSTER = "better-chatbot", "better-chatbot", "production-cluster"
APPROVER = "slack:U0APPROVER1"
pytestmark = pytest.mark.timeout(600)
EXAMPLES = int(os.environ.get("SLIPWAY_PROPERTY_EXAMPLES", "6"))


class HandCranked:
    """The emulator's scheduler, run by the test: ``call_later`` only queues."""

    def __init__(self) -> None:
        self.pending: list = []

    def start(self) -> "HandCranked":
        return self

    def stop(self) -> None:
        self.pending.clear()

    def call_later(self, _delay: float, fn) -> None:
        self.pending.append(fn)


class World:
    """moto + emulator + the app's handlers, no threads; one per test module."""

    def __init__(self) -> None:
        from devstack import aws as aws_mod
        from devstack.ecs_emulator import EcsEmulator, EcsSettings
        from devstack.faults import AppClock
        from devstack.stack import Stack

        self.stack = Stack(ROOT / "ecs" / "production")  # its stand-ins and environment handling
        self.stack.slack.start(), self.stack.github.start()
        self.aws = aws_mod.EmbeddedAws().start()
        self.events: list[dict] = []
        ecs = self.aws.client("ecs")
        self.emulator = EcsEmulator(
            self.aws.backend("ecs"), emit=self.events.append,
            describe_task=lambda c, t: ecs.describe_tasks(cluster=c, tasks=[t])["tasks"][0],
            settings=EcsSettings(task_seconds=0))
        self.crank = self.emulator._scheduler = HandCranked()
        self.emulator.install()
        config = (ROOT / "ecs" / "production" / "services.toml").resolve()
        secret = aws_mod.fresh_secret(self.stack.slack.token, self.stack.github.token)
        self.provisioned = aws_mod.provision(self.aws, config, secret)
        self.stack._set_env(aws_mod.app_environment(
            self.aws.endpoint_url, config, "http://127.0.0.1:9", self.provisioned.queue_url,
            self.stack.slack.url, self.stack.github.url, 2.0))
        self.emulator.settle()
        if str(ROOT) not in sys.path:
            sys.path.insert(0, str(ROOT))
        import app as app_module
        from chalicelib.entrypoints import bootstrap

        bootstrap.reset()
        self.deps = bootstrap.deps()
        self.clock = self.deps.clock = AppClock()
        self.app = app_module
        self.sqs, self.ecr = self.aws.client("sqs"), self.aws.client("ecr")
        self.pushed = 0

    def close(self) -> None:
        self.emulator.uninstall()
        self.aws.stop()
        self.stack.slack.stop(), self.stack.github.stop()
        self.stack.stop()  # restores the environment, resets moto

    # -- what can happen ----------------------------------------------------------------------
    def push(self, version: str, pushed_at: int) -> tuple[str, list[dict]]:
        """Store an image (no event yet) pushed at ``pushed_at``; its three ECR events."""
        from devstack.events import push_image

        from devstack.control import _known_commit

        sha = uuid.uuid4().hex[:7]
        tags = [sha, f"{version}-{sha}", "latest"]
        _known_commit(self.stack, REPO, tags)  # self-review asks GitHub who wrote it (fails closed)
        digest, events = push_image(self.ecr, REPO, tags, "123456789012", "us-east-1")
        repo = self.aws.backend("ecr").repositories[REPO]
        for image in repo.images:
            if image.image_digest == digest:
                image.image_pushed_at = pushed_at
        return digest, events

    def deliver(self, event: dict) -> None:
        handler = {"ECR Image Action": "on_image_pushed", "ECS Task State Change":
                   "on_task_state_change", "ECS Deployment State Change":
                   "on_deployment_state_change"}[event["detail-type"]]
        if handler == "on_task_state_change" and event["detail"].get("lastStatus") != "STOPPED":
            return  # the app's rule matches STOPPED only
        _invoke(getattr(self.app, handler), event)

    def work_once(self) -> bool:
        got = self.sqs.receive_message(QueueUrl=self.provisioned.queue_url,
                                       MaxNumberOfMessages=1, VisibilityTimeout=0)
        for message in got.get("Messages", []):
            record = {"messageId": message["MessageId"], "receiptHandle": message["ReceiptHandle"],
                      "body": message["Body"], "attributes": {}, "messageAttributes": {},
                      "md5OfBody": "", "eventSource": "aws:sqs", "awsRegion": "us-east-1",
                      "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:slipway-work"}
            try:
                _invoke(self.app.work, {"Records": [record]})
            except Exception:  # left on the queue: SQS delivers it again
                return True
            self.sqs.delete_message(QueueUrl=self.provisioned.queue_url,
                                    ReceiptHandle=message["ReceiptHandle"])
            return True
        return False

    def progress(self, index: int) -> None:
        self.crank.pending.pop(index)()

    def approve(self, dep_id: str) -> None:
        from chalicelib.errors import SlipwayError
        from chalicelib.service import decisions

        try:
            decisions.decide(self.deps, dep_id, identity=APPROVER, via="slack", decision="approve")
        except SlipwayError:
            pass  # superseded, already decided, busy: the answer a person would get

    def reconcile(self) -> None:
        self.clock.advance({"advance_seconds": 300})
        from devstack.events import envelope

        _invoke(self.app.reconcile, envelope({"detail-type": "Scheduled Event",
                                              "source": "aws.events", "detail": {}},
                                             "123456789012", "us-east-1"))

    def deployment(self, digest: str):
        found = [d for d in self.deps.ledger.list(service=SERVICE, limit=200)
                 if d.image_digest == digest]
        return found[0] if found else None

    def tasks(self, dep_id: str) -> set[str]:
        ecs = self.aws.client("ecs")
        by = f"slipway/{dep_id}"
        return set(ecs.list_tasks(cluster=CLUSTER, startedBy=by)["taskArns"]) | set(
            ecs.list_tasks(cluster=CLUSTER, startedBy=by, desiredStatus="STOPPED")["taskArns"])

    def running_image(self) -> str:
        ecs = self.aws.client("ecs")
        arn = ecs.describe_services(cluster=CLUSTER, services=[SERVICE])["services"][0][
            "taskDefinition"]
        return ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"][
            "containerDefinitions"][0]["image"]


def _invoke(fn, event) -> None:
    from chalice.local import LambdaContext

    name = getattr(fn, "name", None) or getattr(fn, "__name__", "handler")
    fn(event, LambdaContext(function_name=name, memory_size=256, max_runtime_ms=60_000))


@pytest.fixture(scope="module")
def world():
    with pytest.MonkeyPatch.context() as env:
        for name in ("SLACK_API_URL", "GITHUB_API_URL", "AWS_ENDPOINT_URL"):
            env.delenv(name, raising=False)  # another test's stand-ins, not this world's
        w = World()
        try:
            yield w
        finally:
            w.close()


def settle(world: World, limit: int = 200) -> None:
    """Let everything still possible happen, in a plain order, until nothing is left."""
    delivered = 0
    for _ in range(limit):
        if world.crank.pending:
            world.progress(0)
        elif world.work_once():
            pass
        elif delivered < len(world.events):
            world.deliver(world.events[delivered])
            delivered += 1
        else:
            return
    raise AssertionError("the world never settled")


@settings(max_examples=EXAMPLES, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(data=st.data(), pushes=st.integers(2, 3))
def test_any_order_of_events_ends_with_the_newest_image_and_one_migration_each(world, data,
                                                                                 pushes):
    base = 1_900_000_000 + world.pushed * 60
    world.pushed += pushes + 1
    builds = [world.push(f"1.{world.pushed}.{i}", base + i * 5) for i in range(pushes)]
    ecr = [e for _, events in builds for e in events]
    seen_ecs = len(world.events)
    for _ in range(data.draw(st.integers(4, 30), label="steps")):
        choices = ["ecr"]
        mine = world.events[seen_ecs:]
        if mine:
            choices.append("ecs")
        if world.crank.pending:
            choices.append("progress")
        choices += ["work", "approve"]
        what = data.draw(st.sampled_from(choices), label="what")
        if what == "ecr":
            world.deliver(data.draw(st.sampled_from(ecr), label="ecr event"))
        elif what == "ecs":
            world.deliver(data.draw(st.sampled_from(mine), label="ecs event"))
        elif what == "progress":
            world.progress(data.draw(st.integers(0, len(world.crank.pending) - 1), label="ecs"))
        elif what == "work":
            world.work_once()
        else:
            digest = data.draw(st.sampled_from([d for d, _ in builds]), label="approve")
            dep = world.deployment(digest)
            if dep is not None:
                world.approve(dep.id)
    for event in ecr:  # EventBridge delivers every event at least once
        world.deliver(event)
    settle(world)
    newest = world.deployment(builds[-1][0])
    assert newest is not None, "the newest push made no deployment"
    world.approve(newest.id)
    for _ in range(4):
        settle(world)
        world.reconcile()
    settle(world)
    newest = world.deployment(builds[-1][0])
    assert newest.state.value == "SUCCEEDED", (newest.state, newest.reason, newest.timeline[-3:])
    assert world.running_image().endswith("@" + builds[-1][0])
    for digest, _ in builds:
        dep = world.deployment(digest)
        if dep is None:
            continue  # an older push heard of after the newer one may be refused outright
        ran = world.tasks(dep.id)
        assert len(ran) <= 1, f"{len(ran)} migrations for {dep.id}"
        if dep.state.value == "SUCCEEDED":
            assert len(ran) == 1
        if dep.id != newest.id:
            assert dep.state.value in ("SUPERSEDED", "SUCCEEDED"), (dep.state, dep.reason)
