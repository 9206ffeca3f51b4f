"""The work queue between fast HTTP handlers and slow ECS work.

Why SQS (rather than an async Lambda invoke or a DynamoDB stream): a Slack click must be answered
within 3 seconds, so the handler only records the decision and enqueues ``{"deployment": id}``.
SQS gives at-least-once delivery, a visibility timeout that keeps two workers off one message,
redelivery on failure and a dead-letter queue, and Chalice wires ``on_sqs_message`` natively; the
devstack drains the very same queue (on moto) into the very same handler. ``advance`` is idempotent,
so a redelivered message is harmless, and the reconciler re-drives anything the queue lost.
"""
from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.adapters.errors import AwsError


class SqsDispatcher:
    def __init__(self, client: Any, queue_url: str):
        self._sqs = client
        self._url = queue_url

    def advance_later(self, dep_id: str, notify: list[str] | None = None) -> None:
        body = {"deployment": dep_id, **({"notify": list(notify)} if notify else {})}
        try:
            self._sqs.send_message(QueueUrl=self._url, MessageBody=json.dumps(body))
        except (ClientError, BotoCoreError) as exc:
            raise AwsError(f"could not queue work for {dep_id}: {exc}") from exc


class DeferredNotifier:
    """Queues the changes instead of telling people now: the worker tells them (Slack's 3 s)."""

    def __init__(self, dispatcher: SqsDispatcher) -> None:
        self._dispatcher = dispatcher

    def changed(self, dep, changes: list[str]) -> None:
        self._dispatcher.advance_later(dep.id, notify=changes)
