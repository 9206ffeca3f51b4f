"""AWS API calls for one deployment, push → SUCCEEDED, excluding pruning. Budget: ≤ 12 whatever
the rollout takes (DESIGN.md "Budgets"); a polling tool makes one call per second of rollout.

The budget counts the control-plane calls: ECS, ECR and Secrets Manager, the APIs that are
rate-limited per account and that a poller would hammer. DynamoDB (Slipway's own ledger and the
idempotency store, on-demand tables) and SQS (the work queue) are reported separately.

How: on a loopback moto account (bench/loopback.py) the real Lambda handlers of app.py run one
deployment of better-chatbot: an image pushed under three tags (three ECR events) → approved with a
signed link (POST /approvals/{id} through chalice.test.Client) → the worker takes the queued
message → the migration task's STOPPED event (exit 0) → the rollout's SERVICE_DEPLOYMENT_COMPLETED.
Every client Slipway builds gets botocore hooks (bench/awscalls.py); the benchmark's own look-ups
are not counted, and calls made inside ``prune.after_success`` are counted apart as pruning.

It runs twice: "warm" (one process, so one boto3 client set and one secret cache for everything)
and "cold" (dependencies rebuilt before every invocation, as if each landed on a new Lambda
container: the worst case, since each function is its own Lambda and powertools caches the secret
per container). The headline is the cold run.
"""
from __future__ import annotations

import contextlib
import io
import math
from urllib.parse import urlencode

from bench.awscalls import CONTROL_PLANE, Recorder, tally
from bench.report import Result, say, section

BUDGET = 12
SERVICE = "better-chatbot"
CLUSTER = "production-cluster"
APPROVER = "slack:U0APPROVER1"
ROLLOUT_SECONDS = 300  # what a poller would spend on a 5-minute rollout, at one call per second
STEPS = ("push", "approve", "work", "migration", "rollout", "pruning")


def run() -> list[Result]:
    section("AWS API calls for one deployment: push (3 tags) → approve → migrate → roll out")
    from bench.loopback import aws_account

    with aws_account() as account:
        counted = {mode: _deployment_in(account, mode, tags)
                   for mode, tags in (("warm", ["1111111", "1.0.0-1111111", "latest"]),
                                      ("cold", ["2222222", "1.1.0-2222222", "latest"]))}
    for mode, recorder in counted.items():
        _show(mode, recorder)
    _polling(counted["cold"])
    cold = counted["cold"].count(services=CONTROL_PLANE) - _pruning(counted["cold"])
    warm = counted["warm"].count(services=CONTROL_PLANE) - _pruning(counted["warm"])
    return [Result("api_calls", cold, BUDGET, "calls",
                   shown=f"{cold} ECS/ECR/Secrets calls ({warm} if warm)")]


# -- one deployment ----------------------------------------------------------------------------
def _deployment_in(account, mode: str, tags: list[str]) -> Recorder:
    import logging

    import app as app_module
    from bench import awscalls
    from chalicelib.entrypoints import bootstrap
    from chalicelib.service import prune

    logging.getLogger("slipway").setLevel(logging.WARNING)  # powertools' handler: INFO lines
    recorder, uninstall = awscalls.install()
    after_success = prune.after_success

    def counted_apart(deps, dep):
        with recorder.during("pruning"):
            return after_success(deps, dep)

    prune.after_success = counted_apart
    bootstrap.reset()
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # powertools' metric lines (EMF)
            final = _drive(account, app_module, recorder, cold=mode == "cold", tags=tags)
    finally:
        prune.after_success = after_success
        uninstall()
        bootstrap.reset()
    if final != "SUCCEEDED":
        raise RuntimeError(f"the {mode} deployment ended {final}, not SUCCEEDED")
    return recorder


def _drive(account, app_module, recorder: Recorder, cold: bool, tags: list[str]) -> str:
    from bench.lambda_context import Context
    from chalicelib.entrypoints import bootstrap
    from tests.integration import helpers

    def invoke(step: str, handler, event):
        if cold:
            bootstrap.reset()  # a new container: new clients, empty secret cache
        with recorder.during(step):
            return handler(event, Context())

    digest = helpers.push_image(account, SERVICE, tags)
    for event in helpers.push_events(SERVICE, digest, tags):
        invoke("push", app_module.on_image_pushed, event)
    with recorder.off():
        dep = bootstrap.deps().ledger.find(f"key#{SERVICE}#{digest}")
        form = _approval_form(dep)
    invoke("approve", lambda body, _: _post_approval(app_module, dep.id, body), form)
    _drain(account, app_module, invoke)
    with recorder.off():
        dep = bootstrap.deps().load(dep.id).to_item()
    invoke("migration", app_module.on_task_state_change, helpers.task_stopped(dep, exit_code=0))
    _finish_rollout_in_moto()
    with recorder.off():
        dep = bootstrap.deps().load(dep["id"]).to_item()
    invoke("rollout", app_module.on_deployment_state_change, helpers.rollout(dep))
    with recorder.off():
        return bootstrap.deps().load(dep["id"]).state.value


def _approval_form(dep) -> str:
    """The approver's signed link (Slack DMs it), as the form the approval page posts."""
    from chalicelib.entrypoints import bootstrap
    from chalicelib.service import decisions
    from tests.integration.helpers import link_token

    _, token = link_token(decisions.link_for(bootstrap.deps(), dep, APPROVER))
    return urlencode({"token": token, "decision": "approve"})


def _post_approval(app_module, dep_id: str, body: str) -> None:
    from chalice.test import Client

    with Client(app_module.app, stage_name="bench") as client:
        res = client.http.post(f"/approvals/{dep_id}", body=body, headers={
            "Content-Type": "application/x-www-form-urlencoded"})
    if res.status_code != 200:
        raise RuntimeError(f"approval answered {res.status_code}: {res.body[:300]!r}")


def _drain(account, app_module, invoke) -> None:
    """Deliver the work queue to the worker Lambda, as SQS's event source mapping does."""
    sqs = account.client("sqs")
    while True:
        got = sqs.receive_message(QueueUrl=account.queue_url, MaxNumberOfMessages=10,
                                  WaitTimeSeconds=0).get("Messages", [])
        if not got:
            return
        for msg in got:
            invoke("work", app_module.work, {"Records": [{
                "messageId": msg["MessageId"], "receiptHandle": msg["ReceiptHandle"],
                "body": msg["Body"], "attributes": {}, "messageAttributes": {},
                "eventSource": "aws:sqs", "awsRegion": "us-east-1",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:slipway-work"}]})
            sqs.delete_message(QueueUrl=account.queue_url, ReceiptHandle=msg["ReceiptHandle"])


def _finish_rollout_in_moto() -> None:
    """Stand-in for ECS (as tests/integration/conftest.Stack does): moto's UpdateService starts no
    deployment, so leave the service as AWS does after a completed rollout."""
    from moto.backends import get_backend

    backend = get_backend("ecs")["123456789012"]["us-east-1"]
    svc = backend.services[f"{CLUSTER}:{SERVICE}"]
    svc.deployments = [dict(svc.deployments[0], taskDefinition=svc.task_definition,
                            status="PRIMARY", rolloutState="COMPLETED")]


# -- reporting -----------------------------------------------------------------------------------
def _pruning(recorder: Recorder) -> int:
    return recorder.count("pruning", CONTROL_PLANE)


def _show(mode: str, recorder: Recorder) -> None:
    say(f"{mode}: " + ("one process for every invocation (clients and secret cached)"
                       if mode == "warm" else
                       "dependencies rebuilt before every invocation (each a new container)"))
    for step in STEPS:
        control = recorder.select(step, CONTROL_PLANE)
        ddb, sqs = recorder.count(step, ("dynamodb",)), recorder.count(step, ("sqs",))
        say(f"  {step:<9} control plane {len(control):>2}: {tally(control):<62} "
            f"DynamoDB {ddb:>2}, SQS {sqs}")
    deployment = [c for c in recorder.calls if c.phase != "pruning"]
    control = [c for c in deployment if c.service in CONTROL_PLANE]
    say(f"  total excluding pruning: {len(control)} control plane (budget {BUDGET}): "
        f"{tally(control)}")
    say(f"                           {sum(c.service == 'dynamodb' for c in deployment)} DynamoDB "
        f"({tally([c for c in deployment if c.service == 'dynamodb'])}), "
        f"{sum(c.service == 'sqs' for c in deployment)} SQS")


def _polling(recorder: Recorder) -> None:
    control = recorder.count(services=CONTROL_PLANE) - _pruning(recorder)
    say("DynamoDB and SQS calls are Slipway's own bookkeeping (the ledger with conditional "
        "writes, the idempotency store, the work queue): on-demand tables and a queue, not the "
        "rate-limited ECS control plane the budget protects, so they are reported, not budgeted.")
    say(f"polling tool: 1 call/s × rollout seconds = {ROLLOUT_SECONDS} calls for a "
        f"{ROLLOUT_SECONDS // 60}-minute rollout (+ the same register/run/update calls); Slipway: "
        f"{control} whatever the rollout takes (ECS's events arrive through EventBridge), "
        f"{math.floor(ROLLOUT_SECONDS / control)}× fewer at 5 minutes")
