"""Log lines say which invocation wrote them, and each key has one meaning: `service` is Slipway,
the deployed service is `service_name` (also the metrics' dimension, EMF dimensions being log keys)."""
from __future__ import annotations

import io
import json
import logging

import app as app_module
from tests.integration.api_kit import client, push  # noqa: F401

__all__ = ["client"]


def test_a_push_logs_its_lambda_context_and_one_meaning_per_key(stack, client):  # noqa: F811
    out = io.StringIO()
    handler = logging.StreamHandler(out)  # powertools' own JSON formatter, on the notifier's logger
    handler.setFormatter(app_module.logger.registered_formatter)
    notify = logging.getLogger("slipway.notify")
    saved = notify.level, notify.disabled, notify.propagate
    notify.setLevel(logging.INFO)
    notify.disabled, notify.propagate = False, False
    notify.addHandler(handler)
    try:
        push(stack, client, redeliver=False)
    finally:
        notify.removeHandler(handler)
        notify.level, notify.disabled, notify.propagate = saved
    lines = [json.loads(line) for line in out.getvalue().splitlines() if line.startswith("{")]
    assert lines and {r["service"] for r in lines} == {"slipway"}
    assert {r["service_name"] for r in lines} == {"better-chatbot"}
    assert all(r["function_name"] == "on_image_pushed" and r["function_request_id"]
               and "cold_start" in r for r in lines)
