"""Integration fixtures: a real moto server over HTTP on 127.0.0.1, provisioned like production.

``stack`` gives every test a freshly reset AWS (tables from chalicelib.adapters.tables, the secret,
the work queue, ECR repositories, an ECS cluster with the configured services running their first
revision) and an app whose dependencies are rebuilt from the environment, as a Lambda would.
"""
from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3
import pytest
import requests
from moto.server import ThreadedMotoServer

from chalicelib.entrypoints import bootstrap
from devstack import aws as devstack_aws
from devstack.standins.github_server import GitHubStandIn
from devstack.standins.slack_server import SlackStandIn
from tests.conftest import CONFIG_DIR

REGION = "us-east-1"
ACCOUNT = "123456789012"


@pytest.fixture(scope="session")
def moto_server():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


class Clock:
    """A clock tests can move; the app reads it through Deps.clock. Each reading ticks 10 ms, so
    events keep their order as they would in real time."""

    def __init__(self) -> None:
        self.now = datetime.now(timezone.utc).replace(microsecond=0)

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=10)
        return self.now

    def advance(self, **kwargs) -> None:
        self.now += timedelta(**kwargs)


@dataclass
class Stack:
    endpoint: str
    config_dir: Path
    secret: dict
    queue_url: str
    clock: Clock
    services: dict = field(default_factory=dict)
    slack: object = None  # devstack's Slack stand-in (real HTTP on 127.0.0.1)
    github: object = None  # and GitHub's

    def client(self, name: str):
        return boto3.client(name, region_name=REGION, endpoint_url=self.endpoint)

    def deps(self):
        d = bootstrap.deps()
        d.clock = self.clock
        return d

    def finish_rollout_in_moto(self, cluster: str, service: str) -> None:
        """Stand-in for ECS: moto's UpdateService starts no new deployment, so make the service
        look as AWS leaves it after a completed rollout (one PRIMARY on the new revision)."""
        from moto.backends import get_backend

        backend = get_backend("ecs")[ACCOUNT][REGION]
        svc = backend.services[f"{cluster}:{service}"]
        svc.deployments = [dict(svc.deployments[0], taskDefinition=svc.task_definition,
                                status="PRIMARY", rolloutState="COMPLETED")]

    def drain(self) -> int:
        """Run the worker Lambda on every queued message, as SQS would; return how many ran."""
        import app as app_module

        sqs, ran = self.client("sqs"), 0
        while True:
            got = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10,
                                      WaitTimeSeconds=0).get("Messages", [])
            if not got:
                return ran
            for msg in got:
                self.deps()
                app_module.work({"Records": [{
                    "messageId": msg["MessageId"], "receiptHandle": msg["ReceiptHandle"],
                    "body": msg["Body"], "attributes": {}, "messageAttributes": {},
                    "eventSource": "aws:sqs", "awsRegion": REGION,
                    "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:slipway-work"}]}, None)
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=msg["ReceiptHandle"])
                ran += 1


class _Account:
    """What devstack's provisioning needs: boto3 clients on the moto endpoint."""

    def __init__(self, endpoint: str):
        self.endpoint = endpoint

    def client(self, name: str):
        return boto3.client(name, region_name=REGION, endpoint_url=self.endpoint)


def provision(endpoint: str, config_dir: Path) -> tuple[dict, str, dict]:
    """Create what a production account has, from the config dir, exactly as the devstack does
    (tables named by SLIPWAY_TABLE / SLIPWAY_IDEMPOTENCY_TABLE). Returns (secret, queue, services)."""
    secret = devstack_aws.fresh_secret("xoxb-" + secrets.token_hex(8),
                                       "ghp_" + secrets.token_hex(10))
    done = devstack_aws.provision(
        _Account(endpoint), config_dir / "services.toml", secret,
        tables=(os.environ["SLIPWAY_TABLE"], os.environ["SLIPWAY_IDEMPOTENCY_TABLE"]),
        secret_id=os.environ["SLIPWAY_SECRET_ID"])
    vpc = done.network["awsvpcConfiguration"]
    services = {name: {"first_revision": arn, "subnets": vpc["subnets"],
                       "security_group": vpc["securityGroups"][0]}
                for name, arn in done.services.items()}
    return secret, done.queue_url, services


@pytest.fixture
def stack(moto_server, monkeypatch):
    requests.post(f"{moto_server}/moto-api/reset", timeout=10)
    env = {
        "AWS_ENDPOINT_URL": moto_server, "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION,
        "SLIPWAY_CONFIG": str(CONFIG_DIR / "services.toml"), "SLIPWAY_TABLE": "slipway-test",
        "SLIPWAY_IDEMPOTENCY_TABLE": "slipway-idem-test", "SLIPWAY_SECRET_ID": "slipway/test",
        "SLIPWAY_PUBLIC_URL": "http://127.0.0.1:9",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    secret, queue_url, services = provision(moto_server, CONFIG_DIR)
    monkeypatch.setenv("SLIPWAY_QUEUE_URL", queue_url)
    with SlackStandIn(token=secret["slack_bot_token"]) as slack, \
            GitHubStandIn(token=secret["github_token"]) as github:
        monkeypatch.setenv("SLACK_API_URL", slack.url)
        monkeypatch.setenv("GITHUB_API_URL", github.url)
        monkeypatch.setenv("SLACK_RESPONSE_URLS", slack.response_url)
        for sha in ("abc123d", "def456a", "1111111", "2222222", "3333333"):  # what tests push
            github.set_commit_author("acme/better-chatbot", sha, "dev")  # dev: no approver
        bootstrap.reset()
        s = Stack(moto_server, CONFIG_DIR, secret, queue_url, Clock(), services, slack, github)
        s.deps()
        yield s
        bootstrap.reset()
