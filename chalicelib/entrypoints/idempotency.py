"""Powertools idempotency for ECR push events, keyed on the EventBridge event id.

The ledger already makes a push act once per (service, digest) whatever arrives; this layer adds
that an exact redelivery of one event (EventBridge retries for 24 h) returns the outcome recorded
the first time without reading ECR or ECS again. ``POWERTOOLS_IDEMPOTENCY_DISABLED=1`` turns it off.
"""
from __future__ import annotations

import functools
import os
from typing import Any, Callable

from chalicelib.adapters import aws

EXPIRES_SECONDS = 2 * 24 * 3600  # longer than EventBridge's 24 h of retries


@functools.lru_cache(maxsize=None)
def _store(table: str):
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    return DynamoDBPersistenceLayer(table_name=table, boto3_client=aws.client("dynamodb"))


def once_per_event(fn: Callable[[Any, Any], Any], context: Any = None) -> Callable[[Any, Any], Any]:
    """Wrap ``fn(deps, event)`` so a redelivered event (same ``id``) returns the first result."""
    if os.environ.get("POWERTOOLS_IDEMPOTENCY_DISABLED"):
        return fn
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function

    config = IdempotencyConfig(event_key_jmespath="id", raise_on_no_idempotency_key=True,
                               expires_after_seconds=EXPIRES_SECONDS)
    if context is not None and hasattr(context, "get_remaining_time_in_millis"):
        config.register_lambda_context(context)

    def run(deps: Any, event: Any) -> Any:
        table = deps.settings.idempotency_table
        if not table:
            return fn(deps, event)

        @idempotent_function(data_keyword_argument="event", persistence_store=_store(table),
                             config=config, key_prefix=f"slipway.{fn.__name__}")
        def handle(event: dict) -> Any:
            return fn(deps, event)

        if not isinstance(event, dict) or not event.get("id"):
            return fn(deps, event)  # fn rejects it clearly; nothing to key on
        return handle(event=event)

    return run


def reset() -> None:
    _store.cache_clear()
