"""A world of in-memory fakes for the service-layer tests, and the pipeline driven step by step."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from chalicelib import config as config_mod
from chalicelib.adapters.ledger_memory import MemoryLedger
from chalicelib.service import decisions, intake, pipeline, prune
from chalicelib.service.deps import Deps, Settings
from chalicelib.service.events import DeploymentChanged, TaskStopped
from tests.conftest import CONFIG_DIR, fresh_id, load_event
from tests.fakes import FakeAlarms, FakeEcs, FakeLogs, QueueDispatcher, RecordingNotifier

WEB, WORKER, API = "better-chatbot", "better-chatbot-worker", "better-chatbot-api"
DIGESTS = iter(f"sha256:{i:064x}" for i in range(1, 10_000))


class Clock:
    def __init__(self):
        self.now = datetime(2026, 11, 26, 9, 0, tzinfo=timezone.utc)

    def __call__(self):
        self.now += timedelta(milliseconds=10)
        return self.now


@pytest.fixture
def world():
    return build_world(config_mod.load(CONFIG_DIR / "services.toml"))


def build_world(cfg) -> Deps:
    """Fakes for every port, each configured service present in the fake ECS."""
    ecs = FakeEcs()
    for svc in cfg.services:
        body = svc.template or {"family": svc.service, "containerDefinitions": [
            {"name": svc.container, "image": "bootstrap:1"}]}
        ecs.add_service(svc.cluster, svc.service, body)
    deps = Deps(config=cfg, ledger=MemoryLedger(), ecs=ecs, notifier=RecordingNotifier(),
                dispatcher=QueueDispatcher(), secrets=lambda: {"link_signing_key": "k" * 32},
                clock=Clock(), settings=Settings(stale_seconds=60), alarms=FakeAlarms(),
                logs=FakeLogs())
    return deps


def push(deps, service=WEB, tags=("abc123d", "1.22.0-abc123d", "latest")):
    digest = next(DIGESTS)
    svc = deps.config.service(service)
    deps.ecs.images[(svc.repository, digest)] = list(tags)
    for tag in tags:
        event = fresh_id(load_event("ecr_push_sha"))
        event["detail"].update({"repository-name": svc.repository, "image-digest": digest,
                                "image-tag": tag})
        intake.on_image_pushed(deps, event)
    dep = deps.ledger.find(f"key#{service}#{digest}")
    if dep is not None and svc.approval.prevent_self_review and "authors" not in \
            dep.notifications:  # what GitHub answers (no GitHub notifier here): dev wrote it
        dep.notifications["authors"] = ["github:dev"]
        deps.ledger.save(dep)
    return dep


def approve(deps, dep, who="slack:U0APPROVER1"):
    out = decisions.decide(deps, dep.id, identity=who, via="slack", decision="approve")
    deps.dispatcher.drain(deps)
    return out


def stopped(dep, exit_code=0, stop_code="EssentialContainerExited"):
    return TaskStopped(task_arn=dep.migration["task_arn"], cluster_arn="", version=3,
                       started_by=f"slipway/{dep.id}", last_status="STOPPED",
                       stop_code=stop_code, stopped_reason="Essential container in task exited",
                       containers=({"name": "app", "exitCode": exit_code},))


def completed(dep, name="SERVICE_DEPLOYMENT_COMPLETED", reason="done"):
    return DeploymentChanged(name, dep.ecs_deployment_id, reason, None)


def to_success(deps, tags=("abc123d", "1.22.0-abc123d", "latest")):
    dep = push(deps, tags=tags)
    approve(deps, dep)
    dep = deps.load(dep.id)
    pipeline.migration_stopped(deps, stopped(dep))
    dep = deps.load(dep.id)
    deps.ecs.finish_rollout("production-cluster", WEB)
    pipeline.rollout_changed(deps, completed(dep), prune=prune.after_success)
    return deps.load(dep.id)
