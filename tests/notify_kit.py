"""Shared by the approval/notification tests: a small services.toml, an in-memory world wired to the
real Slack and GitHub stand-ins (fixtures ``slack_server``, ``github_server``, ``env``: import them
into a test module to use them), what the stand-ins recorded, and Slack request signing.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlparse

import pytest

from chalicelib import config as config_mod
from chalicelib.adapters import notifiers
from chalicelib.adapters.ledger_memory import MemoryLedger
from chalicelib.adapters.log_notifier import FanOut, LogNotifier
from chalicelib.service import decisions, intake
from chalicelib.service.deps import Deps, Settings
from chalicelib.service.events import DeploymentChanged, TaskStopped
from devstack.standins.github_server import GitHubStandIn
from devstack.standins.slack_server import SlackStandIn, channel_id
from tests.conftest import fresh_id, load_event
from tests.fakes import FakeEcs, QueueDispatcher

SERVICE = "web"
REPO = "acme/web"
SHA = "abc123d" + "0" * 33
SECRET_VALUE = "hunter2-old-secret"
NEW_SECRET_VALUE = "hunter3-new-secret"
PUBLIC_URL = "http://127.0.0.1:9/slipway"
TEMPLATE = {"family": "web", "containerDefinitions": [{
    "name": "app", "image": "placeholder", "memory": 512, "essential": True,
    "environment": [{"name": "API_KEY", "value": NEW_SECRET_VALUE}]}]}


def write_config(folder: Path, *, approvers=("slack:U0ALICE", "slack:U0BOB", "github:carol"),
                 quorum=1, wait_minutes=0, expires_hours=24, prevent_self_review=True,
                 identities: dict | None = None, slack=True, github=True,
                 deploy_tags=r"(?!latest$).+") -> Path:
    """One service ``web`` with a migration, a template (an env value that changes) and notify."""
    (folder / "task-definition.json").write_text(json.dumps(TEMPLATE))
    notify = (['slack_channel = "#deploys"'] if slack else []) + \
        ([f'github_repository = "{REPO}"', 'github_environment = "production"'] if github else [])
    lines = [
        "[[service]]", f'name = "{SERVICE}"', 'repository = "web"', 'cluster = "prod"',
        'service = "web"', 'container = "app"', 'task_definition = "task-definition.json"',
        f"deploy_tags = '{deploy_tags}'",
        "[service.migration]", 'command = ["manage.py", "migrate"]',
        "[service.approval]", f"approvers = {json.dumps(list(approvers))}", f"quorum = {quorum}",
        f"wait_minutes = {wait_minutes}", f"expires_hours = {expires_hours}",
        f"prevent_self_review = {str(prevent_self_review).lower()}",
        "[service.notify]", *notify,
    ]
    if identities is None:  # prevent_self_review needs each Slack approver's GitHub login
        identities = {"github:alice": ["slack:U0ALICE"], "github:bob": ["slack:U0BOB"]}
    if identities:
        lines.append("[identities]")
        lines += [f'"{k}" = {json.dumps(v)}' for k, v in identities.items()]
    path = folder / "services.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


class Clock:
    """A clock that stands still unless moved (tests decide when time passes)."""

    def __init__(self):
        self.now = datetime(2026, 11, 26, 9, 0, tzinfo=timezone.utc)

    def __call__(self):
        return self.now

    def advance(self, **kwargs):
        self.now += timedelta(**kwargs)


def world(config_path: Path, slack_server, github_server, secrets: dict | None = None) -> Deps:
    """Deps on fakes (ledger, ECS, queue) whose notifiers talk HTTP to the stand-ins."""
    cfg = config_mod.load(config_path)
    ecs = FakeEcs()
    ecs.add_service("prod", "web", {**TEMPLATE, "containerDefinitions": [{
        **TEMPLATE["containerDefinitions"][0], "image": "web:bootstrap",
        "environment": [{"name": "API_KEY", "value": SECRET_VALUE}]}]})
    values = secrets or {"link_signing_key": "k" * 32, "slack_signing_secret": "s" * 32,
                         "slack_bot_token": slack_server.token, "github_token": github_server.token}
    deps = Deps(config=cfg, ledger=MemoryLedger(), ecs=ecs, notifier=LogNotifier(),
                dispatcher=QueueDispatcher(), secrets=lambda: values, clock=Clock(),
                settings=Settings(public_url=PUBLIC_URL, stale_seconds=60))
    deps.notifier = FanOut(LogNotifier(), *notifiers.build(deps))
    return deps


def push(deps: Deps, tags=("abc123d", "1.2.0-abc123d"), digest: str | None = None):
    """Deliver one ECR push event per tag; return the deployment."""
    digest = digest or "sha256:" + hashlib.sha256(repr(tags).encode()).hexdigest()
    deps.ecs.images[("web", digest)] = list(tags)
    for tag in tags:
        event = fresh_id(load_event("ecr_push_sha"))
        event["detail"].update({"repository-name": "web", "image-digest": digest,
                                "image-tag": tag})
        intake.on_image_pushed(deps, event)
    return deps.ledger.find(f"key#{SERVICE}#{digest}")


def stopped(dep, exit_code=0) -> TaskStopped:
    return TaskStopped(task_arn=dep.migration["task_arn"], cluster_arn="", version=3,
                       started_by=f"slipway/{dep.id}", last_status="STOPPED",
                       stop_code="EssentialContainerExited",
                       stopped_reason="Essential container in task exited",
                       containers=({"name": "app", "exitCode": exit_code},))


def rollout(dep, name="SERVICE_DEPLOYMENT_COMPLETED", reason="ECS deployment completed.") \
        -> DeploymentChanged:
    return DeploymentChanged(name, dep.ecs_deployment_id, reason, None)


def token_of(url: str) -> str:
    return parse_qs(urlparse(url).query)["token"][0]


# -- fixtures and what the stand-ins recorded ----------------------------------------------
@pytest.fixture
def slack_server():
    with SlackStandIn(token="xoxb-unit-token") as server:
        yield server


@pytest.fixture
def github_server():
    """GitHub, which knows the pushed commit (by dave, no approver) unless a test says otherwise."""
    with GitHubStandIn(token="ghp_unit_token") as server:
        server.set_commit_author(REPO, SHA, "dave")
        yield server


@pytest.fixture
def env(tmp_path, slack_server, github_server, monkeypatch):
    """Build a world from ``write_config`` keywords (stand-in URLs in the environment)."""
    monkeypatch.setenv("SLACK_API_URL", slack_server.url)
    monkeypatch.setenv("GITHUB_API_URL", github_server.url)

    def make(**policy):
        return world(write_config(tmp_path, **policy), slack_server, github_server)

    return make


def channel_message(slack_server) -> dict:
    [message] = [m for m in slack_server.messages() if m["channel"] == channel_id("#deploys")]
    return message


def dms(slack_server) -> dict[str, dict]:
    return {m["channel_name"]: m for m in slack_server.messages() if m["channel_name"] != "#deploys"}


def rendered(version: dict) -> str:
    return (version.get("text") or "") + json.dumps(version.get("blocks"), ensure_ascii=False)


def statuses(github_server) -> list[str]:
    [deployment] = github_server.deployments()
    return [s["state"] for s in deployment["statuses"]]


def approve(deps, dep, who="slack:U0ALICE", via="slack"):
    out = decisions.decide(deps, dep.id, identity=who, via=via, decision="approve")
    deps.dispatcher.drain(deps)
    return out


# -- Slack requests ---------------------------------------------------------------------------
def interaction(dep_id: str, user: str, action: str = "slipway_approve",
                response_url: str | None = None, **extra) -> bytes:
    """The form body Slack posts when ``user`` clicks a button on the message."""
    payload = {"type": "block_actions", "user": {"id": user, "username": user.lower()},
               "team": {"id": "T0TEAM"}, "channel": {"id": "C0DEPLOYS"},
               "container": {"type": "message", "message_ts": "1700000000.000100"},
               "actions": [{"type": "button", "action_id": action, "value": dep_id,
                            "block_id": "b1", "action_ts": "1700000001.0"}], **extra}
    if response_url:
        payload["response_url"] = response_url
    return urlencode({"payload": json.dumps(payload)}).encode()


def signed(secret: str, body: bytes, timestamp: float | None = None) -> dict:
    """Headers of a request Slack signed (v0) at ``timestamp`` (default: now)."""
    ts = str(int(time.time() if timestamp is None else timestamp))
    mac = hmac.new(secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={mac}"}
