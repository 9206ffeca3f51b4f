"""Each function's generated IAM policy (deploy/iam.py) allows every AWS call that function makes in
a whole deployment — push, approval, migration, rollout, prune, rollback, reconciler recoveries —
and nothing else. Calls are recorded per function on the moto server; each is judged with our own
IAM evaluator (tests/integration/iam_kit.py) against resources, ARNs and condition keys."""
from __future__ import annotations

import os

import pytest
from botocore.exceptions import ConnectionClosedError

import app as app_module
from chalicelib import config as config_mod
from chalicelib.domain.model import State
from chalicelib.entrypoints import bootstrap
from chalicelib.service.deps import finish
from deploy import iam
from tests.conftest import CONFIG_DIR, fresh_id, load_event
from tests.integration import iam_kit
from tests.integration.api_kit import approve, client, deliver, get, push, run_to_success
from tests.integration.helpers import SERVICE, push_events, push_image, rollout, task_stopped

__all__ = ["client"]
WORKER = "better-chatbot-worker"
BAKED = "better-chatbot-api"  # [service.verify]: a bake after the rollout, alarms watched
SCHEDULED = {"version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
             "detail-type": "Scheduled Event", "source": "aws.events", "account": iam_kit.ACCOUNT,
             "time": "2026-01-01T00:00:00Z", "region": iam_kit.REGION, "resources": [],
             "detail": {}}


def drain(stack, client) -> None:
    """SQS → the work function, through the Lambda entry point (so it is recorded as `work`).
    A message whose handling raised is left in the queue for redelivery, as SQS does."""
    sqs = stack.client("sqs")
    while got := sqs.receive_message(QueueUrl=stack.queue_url, MaxNumberOfMessages=10,
                                     VisibilityTimeout=0).get("Messages", []):
        for msg in got:
            client.lambda_.invoke("work", {"Records": [{
                "messageId": msg["MessageId"], "receiptHandle": msg["ReceiptHandle"],
                "body": msg["Body"], "attributes": {}, "messageAttributes": {},
                "eventSource": "aws:sqs", "awsRegion": iam_kit.REGION,
                "eventSourceARN": f"arn:aws:sqs:{iam_kit.REGION}:{iam_kit.ACCOUNT}:work"}]})
            sqs.delete_message(QueueUrl=stack.queue_url, ReceiptHandle=msg["ReceiptHandle"])


def lose_queued_work(stack) -> None:
    sqs = stack.client("sqs")
    while got := sqs.receive_message(QueueUrl=stack.queue_url, MaxNumberOfMessages=10)\
            .get("Messages", []):
        for msg in got:
            sqs.delete_message(QueueUrl=stack.queue_url, ReceiptHandle=msg["ReceiptHandle"])


def older_revisions(stack, family: str, count: int) -> None:
    """Revisions registered before Slipway came (pruning has something to remove)."""
    ecs = stack.client("ecs")
    body = ecs.describe_task_definition(taskDefinition=family)["taskDefinition"]
    keep = ("family", "taskRoleArn", "executionRoleArn", "networkMode", "containerDefinitions",
            "requiresCompatibilities", "cpu", "memory")
    for _ in range(count):
        ecs.register_task_definition(**{k: body[k] for k in keep if k in body})


def push_worker(stack, client, tags: list[str], service: str = WORKER) -> dict:
    digest = push_image(stack, service, tags)
    for event in push_events(service, digest, tags):
        deliver(client, "on_image_pushed", event)
    found = client.http.get(f"/deployments?service={service}").json_body["deployments"]
    return next(d for d in found if d["image_digest"] == digest)


def baked(stack, client, tags: list[str]) -> dict:
    """A release of the baked service, rolled out: VERIFYING."""
    dep = push_worker(stack, client, tags, service=BAKED)
    drain(stack, client)
    stack.finish_rollout_in_moto("production-cluster", BAKED)
    deliver(client, "on_deployment_state_change", rollout(get(client, dep["id"])))
    dep = get(client, dep["id"])
    assert dep["state"] == "VERIFYING", dep["timeline"]
    return dep


def _answer_lost(**_):
    raise ConnectionClosedError(endpoint_url="ecs (the test lost RunTask's answer)")


def reconcile_later(stack, client, minutes: float) -> None:
    stack.clock.advance(minutes=minutes)
    client.lambda_.invoke("reconcile", SCHEDULED)


def whole_deployment(stack, client, monkeypatch) -> iam_kit.Recorder:
    hooks: dict[str, object] = {}

    def cold_start():
        bootstrap.reset()
        events = iam_kit.aws._session().events
        events.unregister("after-call.ecs.RunTask", unique_id="ended-meanwhile")
        for event, hook in hooks.items():  # before the clients are made: they copy the hooks
            events.register(event, hook, unique_id="ended-meanwhile")
        stack.deps()

    monkeypatch.setattr(stack, "drain", lambda: drain(stack, client))
    for sha in ("6666666", "7777777", "8888888", "9999999"):  # GitHub knows who wrote them
        stack.github.set_commit_author("acme/better-chatbot", sha, "dev")
    older_revisions(stack, SERVICE, 8)  # pruning has something to remove, after each success
    older_revisions(stack, WORKER, 6)
    with iam_kit.recording(app_module.app, iam.FUNCTIONS, monkeypatch, cold_start) as rec:
        # Two releases with approval, migration, rollout and pruning; then a rollback.
        run_to_success(stack, client, ["1111111", "1.0.0-1111111"])
        run_to_success(stack, client, ["2222222", "1.1.0-2222222"])
        res = client.http.post(f"/services/{SERVICE}/rollback", headers={
            "Content-Type": "application/json"},
            body='{"to": "previous", "reason": "bad", "force": true}')  # past a migration
        assert res.status_code == 202, res.json_body
        drain(stack, client)
        stack.finish_rollout_in_moto("production-cluster", SERVICE)
        deliver(client, "on_deployment_state_change", rollout(get(client, res.json_body["id"])))
        assert client.http.get("/services").status_code == 200
        # A failed migration releases the service.
        dep = push(stack, client, ["3333333", "1.2.0-3333333"], redeliver=False)
        assert approve(stack, client, dep).status_code == 200
        drain(stack, client)
        deliver(client, "on_task_state_change", task_stopped(get(client, dep["id"]), exit_code=1))
        # A cloned, auto-approved service whose work message is lost: the reconciler deploys it;
        # a second push waits for the service, then the reconciler approves it (its rollout
        # event lost too, the reconciler finishes the first and prunes).
        first = push_worker(stack, client, ["4444444", "1.3.0-4444444"])
        lose_queued_work(stack)
        reconcile_later(stack, client, minutes=11)
        push_worker(stack, client, ["5555555", "1.4.0-5555555"])
        stack.finish_rollout_in_moto("production-cluster", WORKER)
        reconcile_later(stack, client, minutes=11)
        reconcile_later(stack, client, minutes=1)
        assert get(client, first["id"])["state"] == "SUCCEEDED"
        drain(stack, client)
        # A migration whose work message is lost, then runs past its timeout: the reconciler
        # starts it, then stops it.
        dep = push(stack, client, ["6666666", "1.5.0-6666666"], redeliver=False)
        assert approve(stack, client, dep).status_code == 200
        lose_queued_work(stack)
        reconcile_later(stack, client, minutes=11)
        assert get(client, dep["id"])["state"] == "MIGRATING"
        reconcile_later(stack, client, minutes=16)
        assert get(client, dep["id"])["state"] == "FAILED"
        # The deployment ends while the worker is inside RunTask: the worker stops its task.
        dep = push(stack, client, ["7777777", "1.6.0-7777777"], redeliver=False)
        assert approve(stack, client, dep).status_code == 200
        hooks["after-call.ecs.RunTask"] = lambda **_: finish(
            stack.deps(), dep["id"], State.FAILED, "ended by the test meanwhile")
        drain(stack, client)
        hooks.clear()
        # RunTask's answer is lost: the worker's retry finds the task it started (ListTasks);
        # the same for the reconciler, when the work message was lost too.
        dep = push(stack, client, ["8888888", "1.7.0-8888888"], redeliver=False)
        assert approve(stack, client, dep).status_code == 200
        hooks["after-call.ecs.RunTask"] = _answer_lost
        with pytest.raises(Exception):
            drain(stack, client)
        hooks.clear()
        drain(stack, client)  # the redelivery
        adopted = get(client, dep["id"])
        assert adopted["state"] == "MIGRATING" and adopted["migration"]["task_arn"]
        # its STOPPED event is lost: the reconciler finds the task stopped and reads its output
        stack.client("ecs").stop_task(cluster="production-cluster",
                                      task=adopted["migration"]["task_arn"], reason="test")
        reconcile_later(stack, client, minutes=11)
        assert get(client, dep["id"])["state"] == "FAILED"
        dep = push(stack, client, ["9999999", "1.8.0-9999999"], redeliver=False)
        assert approve(stack, client, dep).status_code == 200
        lose_queued_work(stack)
        hooks["after-call.ecs.RunTask"] = _answer_lost
        reconcile_later(stack, client, minutes=11)
        hooks.clear()
        reconcile_later(stack, client, minutes=11)
        # A quiet bake the reconciler ends; then an alarm during the next bake rolls it back.
        first = baked(stack, client, ["aaaaaaa", "2.0.0-aaaaaaa"])
        reconcile_later(stack, client, minutes=6)
        assert get(client, first["id"])["state"] == "SUCCEEDED"
        second = baked(stack, client, ["bbbbbbb", "2.1.0-bbbbbbb"])
        alarm = fresh_id(load_event("alarm_state_change"))
        deliver(client, "on_alarm_state_change", alarm)
        assert get(client, second["id"])["state"] == "ROLLED_BACK"
        drain(stack, client)
        # The hourly DORA figures.
        client.lambda_.invoke("dora_metrics", SCHEDULED)
    return rec


@pytest.fixture
def recorded(stack, client, monkeypatch):
    return whole_deployment(stack, client, monkeypatch)


def _policies(stack) -> dict[str, dict]:
    cfg = config_mod.load(CONFIG_DIR / "services.toml")
    names = iam.Names(table=os.environ["SLIPWAY_TABLE"],
                      idempotency_table=os.environ["SLIPWAY_IDEMPOTENCY_TABLE"],
                      queue=stack.queue_url.rsplit("/", 1)[-1],
                      secret_id=os.environ["SLIPWAY_SECRET_ID"])
    return {fn: iam_kit.resolve(iam.policy(fn, cfg, names, f"slipway-test-{fn}"))
            for fn in iam.FUNCTIONS if fn in app_module.app.handler_map or fn == "api_handler"}


def test_each_function_may_make_exactly_the_calls_it_makes(stack, recorded):
    """Every recorded call is allowed by its own function's policy (resources and conditions
    included), and every action a policy allows was needed by that function."""
    policies = _policies(stack)
    ecs = stack.client("ecs")

    def roles(task_definition: str) -> list[str]:
        td = ecs.describe_task_definition(taskDefinition=task_definition)["taskDefinition"]
        return [td[k] for k in ("taskRoleArn", "executionRoleArn") if td.get(k)]

    needed: dict[str, set[str]] = {}
    denied = []
    for fn, action, params in recorded.calls:
        for req in iam_kit.requests_for(action, params, roles):
            needed.setdefault(fn, set()).add(req.action)
            if not iam_kit.allows(policies[fn], req):
                denied.append(f"{fn}: {req.action} on {req.resource} {dict(req.context)}")
    made = "\n".join(f"  {fn}: {sorted(a)}" for fn, a in sorted(needed.items()))
    assert not denied, ("deploy/iam.py denies calls the code makes:\n" + "\n".join(
        sorted(set(denied))) + f"\nwhat each function needed:\n{made}")
    assert set(needed) == set(policies), "a function made no call at all, or an unknown one did"
    for fn, policy in policies.items():
        ours = {"Statement": [s for s in policy["Statement"] if s["Sid"] not in iam.PLATFORM_SIDS]}
        unused = iam_kit.actions_of(ours) - needed[fn]
        assert not unused, (f"{fn}'s policy allows {sorted(unused)}, which its code never "
                            f"calls\nwhat each function needed:\n{made}")
