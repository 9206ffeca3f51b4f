"""Build the dependencies once per Lambda container, lazily, from the environment (DESIGN.md)."""
from __future__ import annotations

import functools
import os
from pathlib import Path

from chalicelib import config as config_mod
from chalicelib.adapters import aws
from chalicelib.adapters.cloudwatch import CloudWatchAlarms
from chalicelib.adapters.ecs import Ecs
from chalicelib.adapters.ledger_dynamodb import DynamoLedger
from chalicelib.adapters.log_notifier import FanOut, LogNotifier
from chalicelib.adapters.logs import CloudWatchLogs
from chalicelib.adapters.metrics import MetricsNotifier, gauge
from chalicelib.adapters.queue import SqsDispatcher
from chalicelib.domain import links
from chalicelib.errors import ConfigError
from chalicelib.service.deps import Deps, Settings

ROOT = Path(__file__).resolve().parent.parent.parent


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise ConfigError(f"environment variable {name} is not set")
    return value


def config_path() -> Path:
    path = Path(os.environ.get("SLIPWAY_CONFIG", "ecs/production/services.toml"))
    return path if path.is_absolute() else ROOT / path


SECRET_MAX_AGE_S = 300  # a rotated secret is in use within 5 minutes (docs/security.md)


@functools.lru_cache(maxsize=None)
def _secrets_provider():
    # Imported on the first secret read, not at `import app`: the package loads all five providers.
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    return SecretsProvider(boto3_client=aws.client("secretsmanager"))


def load_secret(secret_id: str) -> dict:
    """The Secrets Manager JSON (powertools keeps it for 5 minutes); never logged."""
    from aws_lambda_powertools.utilities.parameters.exceptions import TransformParameterError

    try:
        value = _secrets_provider().get(secret_id, transform="json", max_age=SECRET_MAX_AGE_S)
    except TransformParameterError:
        value = None
    if not isinstance(value, dict):
        raise ConfigError(f"secret {secret_id} is not a JSON object")
    missing = {"link_signing_key", "slack_signing_secret"} - set(value)
    if missing:
        raise ConfigError(f"secret {secret_id} lacks {sorted(missing)}")
    links.check_key(str(value["link_signing_key"]).encode())  # short keys make forgeable links
    return value


def settings() -> Settings:
    return Settings(
        public_url=os.environ.get("SLIPWAY_PUBLIC_URL", "http://127.0.0.1:8000"),
        stale_seconds=float(os.environ.get("SLIPWAY_STALE_SECONDS", "600")),
        prune_batch=int(os.environ.get("SLIPWAY_PRUNE_BATCH", "10000")),
        idempotency_table=os.environ.get("SLIPWAY_IDEMPOTENCY_TABLE"),
    )


@functools.lru_cache(maxsize=None)
def deps() -> Deps:
    cfg = config_mod.load(config_path())
    from chalicelib.adapters import notifiers  # Slack and GitHub, built from the secret lazily

    d = Deps(
        config=cfg,
        ledger=DynamoLedger(aws.Lazy("dynamodb"), _env("SLIPWAY_TABLE")),
        ecs=Ecs(aws.Lazy("ecs"), aws.Lazy("ecr")),
        notifier=FanOut(LogNotifier()),
        dispatcher=SqsDispatcher(aws.Lazy("sqs"), _env("SLIPWAY_QUEUE_URL")),
        secrets=functools.partial(load_secret, _env("SLIPWAY_SECRET_ID")),
        settings=settings(),
        alarms=CloudWatchAlarms(lambda: aws.client("cloudwatch")),
        logs=CloudWatchLogs(lambda: aws.client("logs")),
        gauge=gauge,
    )
    from chalicelib.service.promote import Trigger  # SUCCEEDED here proposes promotions

    d.notifier = FanOut(LogNotifier(), MetricsNotifier(), *notifiers.build(d), Trigger(d))
    return d


def reset() -> None:
    """Forget everything built (tests and the devstack change the environment)."""
    deps.cache_clear()
    _secrets_provider.cache_clear()  # its cache goes with it
    aws.reset()
