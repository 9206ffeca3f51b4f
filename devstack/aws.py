"""Embedded AWS: moto's server in this process, on loopback, provisioned from a config dir.

In-process (not a subprocess) so that ``devstack.ecs_emulator`` can reach moto's backend objects and
fill in what moto does not do (task exits, rollouts, ECS events). Everything else talks to it over
HTTP with boto3, exactly as the Lambda functions talk to AWS: ``AWS_ENDPOINT_URL`` plus dummy
credentials.

Provisioning follows ``services.toml``: an ECR repository per service repository; a VPC (DNS
hostnames on: Fargate tasks need it in moto), two subnets and a security group; the ECS clusters;
per service its first task-definition revision (the ``task_definition`` template, or
``<name>.bootstrap.json`` beside services.toml for services that clone their current revision) and
a FARGATE/awsvpc service with the deployment circuit breaker (rollback on); the DynamoDB tables from
``chalicelib.adapters.tables``; the Secrets Manager secret (fresh random values); the SQS work queue;
the CloudWatch alarms ``[service.verify]`` names (in OK).
"""
from __future__ import annotations

import json
import logging
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import boto3
from moto.core import DEFAULT_ACCOUNT_ID
from moto.server import ThreadedMotoServer

from chalicelib import config as config_mod
from chalicelib.adapters.tables import all_tables
from devstack.cloudwatch import provision_alarms

REGION = "us-east-1"
ACCOUNT = DEFAULT_ACCOUNT_ID
TABLE, IDEMPOTENCY_TABLE = "slipway-devstack", "slipway-idempotency-devstack"
SECRET_ID, QUEUE_NAME = "slipway/devstack", "slipway-work"
CIRCUIT_BREAKER = {"deploymentCircuitBreaker": {"enable": True, "rollback": True},
                   "maximumPercent": 200, "minimumHealthyPercent": 100}


class EmbeddedAws:
    """A moto server on ``host:port`` (0: a free port) in a daemon thread of this process."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self._server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
        self.endpoint_url = ""

    def start(self) -> "EmbeddedAws":
        from moto.moto_api._internal.models import moto_api_backend

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log line per AWS call
        moto_api_backend.reset()  # moto's state is per process: start from nothing, whatever ran
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        """Shut the server down and free its port (moto's stop() leaves the socket open)."""
        self._server.stop()
        inner = getattr(self._server, "_server", None)
        if inner is not None:
            inner.server_close()

    def client(self, name: str):
        return boto3.session.Session().client(
            name, region_name=REGION, endpoint_url=self.endpoint_url,
            aws_access_key_id="devstack", aws_secret_access_key="devstack")

    @staticmethod
    def backend(service: str):
        """moto's in-process backend object for ``service`` (same objects the server uses)."""
        from moto.backends import get_backend

        return get_backend(service)[ACCOUNT][REGION]


@dataclass
class Provisioned:
    """What provisioning created; the devstack's own record (secrets stay in memory only)."""

    secret_id: str
    secret: dict
    queue_url: str
    clusters: list[str]
    services: dict[str, str] = field(default_factory=dict)  # service name → first revision ARN
    network: dict = field(default_factory=dict)
    alarms: list[str] = field(default_factory=list)


def app_environment(endpoint_url: str, config_file: Path, public_url: str, queue_url: str,
                    slack_url: str, github_url: str, stale_seconds: float) -> dict[str, str]:
    """The environment the app reads (bootstrap.deps()); Slack/GitHub URLs already set win."""
    return {
        "AWS_ENDPOINT_URL": endpoint_url, "AWS_ACCESS_KEY_ID": "devstack",
        "AWS_SECRET_ACCESS_KEY": "devstack", "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION,
        "SLIPWAY_CONFIG": str(config_file), "SLIPWAY_TABLE": TABLE,
        "SLIPWAY_IDEMPOTENCY_TABLE": IDEMPOTENCY_TABLE, "SLIPWAY_SECRET_ID": SECRET_ID,
        "SLIPWAY_PUBLIC_URL": public_url, "SLIPWAY_QUEUE_URL": queue_url,
        "SLIPWAY_STALE_SECONDS": str(stale_seconds),
        "SLACK_API_URL": os.environ.get("SLACK_API_URL") or slack_url,
        "GITHUB_API_URL": os.environ.get("GITHUB_API_URL") or github_url,
    }


def fresh_secret(slack_token: str, github_token: str) -> dict[str, str]:
    return {"slack_bot_token": slack_token, "slack_signing_secret": secrets.token_hex(16),
            "github_token": github_token, "link_signing_key": secrets.token_urlsafe(32)}


class ProvisioningError(Exception):
    """The config dir lacks something the devstack needs to stand the services up."""


def provision(aws, config_file: Path, secret: dict, history: int = 1, *,
              tables: tuple[str, str] = (TABLE, IDEMPOTENCY_TABLE),
              secret_id: str = SECRET_ID) -> Provisioned:
    """Create everything Slipway expects to find, from ``services.toml`` and its templates.

    ``aws`` is anything with ``client(name)`` (an EmbeddedAws; the integration tests pass their
    own). ``history`` revisions of each service's first task definition are registered (as if it
    had been deployed that often before), and the service runs the newest: pruning then has work.
    """
    cfg = config_mod.load(config_file)
    ecr, ec2, ecs = aws.client("ecr"), aws.client("ec2"), aws.client("ecs")
    for repository in sorted({s.repository for s in cfg.services}):
        ecr.create_repository(repositoryName=repository)
    network = _network(ec2)
    clusters = sorted({s.cluster for s in cfg.services})
    for cluster in clusters:
        ecs.create_cluster(clusterName=cluster)
    done = Provisioned(secret_id, secret, "", clusters, network=network)
    for svc in cfg.services:
        template = svc.template or _bootstrap_template(config_file.parent, svc.name)
        for _ in range(max(history, 1)):
            arn = ecs.register_task_definition(**template)["taskDefinition"]["taskDefinitionArn"]
        ecs.create_service(
            cluster=svc.cluster, serviceName=svc.service, taskDefinition=arn, desiredCount=1,
            launchType="FARGATE", networkConfiguration=network,
            deploymentConfiguration=CIRCUIT_BREAKER)
        # moto's CreateService drops deploymentConfiguration; its UpdateService keeps it.
        ecs.update_service(cluster=svc.cluster, service=svc.service,
                           deploymentConfiguration=CIRCUIT_BREAKER)
        done.services[svc.name] = arn
    dynamodb = aws.client("dynamodb")
    for table in all_tables(*tables):
        dynamodb.create_table(**table)
    aws.client("secretsmanager").create_secret(Name=secret_id, SecretString=json.dumps(secret))
    done.queue_url = aws.client("sqs").create_queue(
        QueueName=QUEUE_NAME, Attributes={"VisibilityTimeout": "10"})["QueueUrl"]
    done.alarms = provision_alarms(aws, config_file)  # the [service.verify] alarms, all OK
    return done


def _network(ec2) -> dict:
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24",
                                 AvailabilityZone=f"{REGION}{zone}")["Subnet"]["SubnetId"]
               for i, zone in ((1, "a"), (2, "b"))]
    group = ec2.create_security_group(GroupName="slipway-devstack", VpcId=vpc,
                                      Description="devstack services")["GroupId"]
    return {"awsvpcConfiguration": {"subnets": subnets, "securityGroups": [group],
                                    "assignPublicIp": "DISABLED"}}


def _bootstrap_template(config_dir: Path, name: str) -> dict:
    path = config_dir / f"{name}.bootstrap.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ProvisioningError(f"{path}: missing; service {name!r} has no task_definition template, so "
                         "the devstack needs this file to register its first revision") from exc
