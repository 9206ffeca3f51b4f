"""Slipway's Lambda functions and REST API: wiring only. Everything else lives in chalicelib/.

Every function imports this module on its cold start, so it imports only what they all need; each
handler imports its own service module, and the routes import their pages and services on the
first request (entrypoints/lazy.py).
"""
from __future__ import annotations

import os

from aws_lambda_powertools import Logger
from chalice import Chalice, IAMAuthorizer, Rate

from chalicelib.entrypoints import bootstrap
from chalicelib.entrypoints import routes, slack_routes
from chalicelib.entrypoints.events import handle_event
from chalicelib.entrypoints.http import contract_error, secured
from chalicelib.entrypoints.lambda_logs import with_lambda_context

app = Chalice(app_name="slipway", configure_logs=False)  # powertools' Logger formats the logs
logger = Logger(service="slipway")
app.register_middleware(with_lambda_context(logger), "all")  # request id, cold start in each line
routes.register(app, IAMAuthorizer())
slack_routes.register(app)


@app.middleware("http")
def contract_errors(event, get_response):
    """Even Chalice's own 405/415 answers use the contract's error shape; every answer carries
    the security headers (nosniff, HSTS): set here, in one place."""
    return secured(contract_error(get_response(event), event.path))


@app.on_cw_event({"source": ["aws.ecr"], "detail-type": ["ECR Image Action"],
                  "detail": {"action-type": ["PUSH"], "result": ["SUCCESS"]}})
def on_image_pushed(event):
    # No powertools idempotency record: the ledger's dedupe key (service, digest) already makes a
    # redelivery a one-read no-op, and a failed attempt leaves nothing that could swallow a retry.
    from chalicelib.service import intake

    return handle_event("ecr-push", intake.on_image_pushed, event)


@app.on_cw_event({"source": ["aws.ecs"], "detail-type": ["ECS Task State Change"],
                  "detail": {"lastStatus": ["STOPPED"], "startedBy": [{"prefix": "slipway/"}]}})
def on_task_state_change(event):
    from chalicelib.service import pipeline

    return handle_event("task-stopped", pipeline.on_task_state_change, event)


@app.on_cw_event({"source": ["aws.ecs"], "detail-type": ["ECS Deployment State Change"]})
def on_deployment_state_change(event):
    from chalicelib.service import pipeline, prune

    bootstrap.deps().remaining_ms = _remaining(event)  # pruning stops before the Lambda times out
    return handle_event(
        "rollout", lambda deps, raw: pipeline.on_deployment_state_change(
            deps, raw, prune=prune.after_success), event)


@app.on_cw_event({"source": ["aws.cloudwatch"], "detail-type": ["CloudWatch Alarm State Change"],
                  "detail": {"state": {"value": ["ALARM"]}}})
def on_alarm_state_change(event):
    """The bake's gate: a [service.verify] alarm in ALARM rolls the baking release back."""
    from chalicelib.service import verify

    return handle_event("alarm", verify.on_alarm_state_change, event)


@app.schedule(Rate(1, unit=Rate.HOURS))
def dora_metrics(event):
    """Each service's DORA figures as EMF metrics (the dashboard's source), once an hour."""
    from chalicelib.service import dora

    return dora.emit_hourly(bootstrap.deps())


@app.schedule(Rate(5, unit=Rate.MINUTES))
def reconcile(event):
    from chalicelib.service import reconcile as reconciler

    deps = bootstrap.deps()
    deps.remaining_ms = _remaining(event)
    return reconciler.reconcile(deps)


# The queue's name is fixed when packaging: `make package STAGE=prod` sets slipway-prod-work.
@app.on_sqs_message(queue=os.environ.get("SLIPWAY_WORK_QUEUE", "slipway-work"), batch_size=1)
def work(event):
    """The asynchronous worker: does the ECS step a deployment waits for (see adapters/queue.py)."""
    from chalicelib.service import pipeline

    for record in event:
        handle_event("work", pipeline.work_message, record.body)


def _remaining(event):
    context = getattr(event, "context", None)
    return getattr(context, "get_remaining_time_in_millis", lambda: 60_000)
