"""Issue 7 rows 1, 2, 4, 5 and 8 on the real handlers, a moto server over HTTP, and faults injected
into the app's own AWS clients (tests/integration/faults.py): one failed write, a throttle, a lost
answer or a dead worker never makes Slipway do the wrong thing."""
from __future__ import annotations

import pytest

from chalicelib.adapters import aws, ledger_retry
from chalicelib.domain.model import iso
from tests.integration.api_kit import approve, client, deliver, get
from tests.integration.faults import error, faults
from tests.integration.helpers import SERVICE, push_events, push_image, rollout, task_stopped

__all__ = ["client", "faults"]  # the fixtures, imported for pytest
CLUSTER = "production-cluster"


def pushed(stack, client, tags) -> tuple[str, list[dict]]:
    digest = push_image(stack, SERVICE, tags)
    return digest, push_events(SERVICE, digest, tags)


def by_digest(client, digest) -> dict | None:
    found = client.http.get(f"/deployments?service={SERVICE}").json_body["deployments"]
    return next((d for d in found if d["image_digest"] == digest), None)


def failing(client, name, event) -> None:
    """Deliver an event whose handler must fail (so that EventBridge delivers it again)."""
    with pytest.raises(Exception):
        out = deliver(client, name, event)
        if out.get("ok") is False or "errorMessage" in out:
            raise RuntimeError(out)


def test_a_supersede_whose_write_fails_once_still_ends_superseded(stack, client, faults):
    """Row 1: the newer push's write (which supersedes the older pending one) fails once with a
    500: nothing is half-written, EventBridge's retry supersedes the older one, and approving the
    older one afterwards is refused."""
    old, old_events = pushed(stack, client, ["1111111", "1.0.0-1111111"])
    deliver(client, "on_image_pushed", old_events[1])
    new, new_events = pushed(stack, client, ["2222222", "1.1.0-2222222"])
    faults.add(aws.client("dynamodb"), "TransactWriteItems", error("InternalServerError", 500),
               times=ledger_retry.ATTEMPTS)  # a 5xx is retried like a throttle: fail them all
    failing(client, "on_image_pushed", new_events[1])
    assert by_digest(client, new) is None and by_digest(client, old)["state"] == "PENDING_APPROVAL"
    deliver(client, "on_image_pushed", new_events[1])  # the retry
    assert by_digest(client, old)["state"] == "SUPERSEDED"
    assert by_digest(client, new)["state"] == "PENDING_APPROVAL"
    assert approve(stack, client, by_digest(client, old)).status_code == 409


def test_a_describe_images_throttle_is_retried_and_never_ordered_by_arrival(stack, client, faults):
    """Row 2: the newer image's event arrives first; the older one's DescribeImages is throttled
    (the event fails and is retried); the retry orders by ECR push time: the older is SUPERSEDED."""
    old, old_events = pushed(stack, client, ["1.0.0-1111111"])
    new, new_events = pushed(stack, client, ["1.1.0-2222222"])
    deliver(client, "on_image_pushed", new_events[0])
    faults.add(aws.client("ecr"), "DescribeImages", error("ThrottlingException"))
    failing(client, "on_image_pushed", old_events[0])
    assert by_digest(client, old) is None
    deliver(client, "on_image_pushed", old_events[0])
    assert by_digest(client, old)["state"] == "SUPERSEDED"
    assert by_digest(client, new)["state"] == "PENDING_APPROVAL"


def tasks_for(stack, dep_id) -> set[str]:
    ecs, by = stack.client("ecs"), f"slipway/{dep_id}"
    return set(ecs.list_tasks(cluster=CLUSTER, startedBy=by)["taskArns"]) | set(
        ecs.list_tasks(cluster=CLUSTER, startedBy=by, desiredStatus="STOPPED")["taskArns"])


def approved(stack, client) -> dict:
    digest, events = pushed(stack, client, ["abc123d", "1.22.0-abc123d"])
    for event in events:
        deliver(client, "on_image_pushed", event)
    dep = by_digest(client, digest)
    assert approve(stack, client, dep).status_code == 200
    return dep


def test_a_lost_runtask_answer_runs_one_migration(stack, client, faults):
    """Row 4: RunTask takes effect and its answer is lost (500 after the call; moto ignores
    clientToken): the redelivered work finds the task by startedBy and adopts it."""
    dep = approved(stack, client)
    faults.add(aws.client("ecs"), "RunTask", error("InternalServerError", 500), when="after")
    with pytest.raises(Exception):
        stack.drain()
    stack.deps()  # the worker Lambda again, on the queue's redelivery
    from chalicelib.service import pipeline
    pipeline.advance(stack.deps(), dep["id"])
    dep = get(client, dep["id"])
    assert dep["state"] == "MIGRATING" and tasks_for(stack, dep["id"]) == {dep["migration"]["task_arn"]}


def test_a_worker_killed_after_runtask_recovers_with_the_devstacks_timings(stack, client, faults):
    """Rows 4 and 5: the worker dies between RunTask and its ledger write, with the devstack's
    2 s stale threshold. The task's STOPPED event is matched by startedBy (not dropped), the
    migration is judged and the rollout starts: one migration, never FAILED."""
    stack.deps().settings.stale_seconds = 2
    dep = approved(stack, client)
    faults.add(aws.client("ecs"), "RunTask", error("InternalServerError", 500), when="after")
    with pytest.raises(Exception):
        stack.drain()
    stored = stack.deps().load(dep["id"])
    stored.claims["run_task"] = iso(stack.clock())  # a killed worker keeps its claim
    stack.deps().ledger.save(stored)
    [task] = tasks_for(stack, dep["id"])
    event = task_stopped({**get(client, dep["id"]), "migration": {"task_arn": task}}, exit_code=0)
    out = deliver(client, "on_task_state_change", event)
    dep = get(client, dep["id"])
    assert out["ok"] and dep["state"] == "DEPLOYING" and dep["migration"]["task_arn"] == task
    assert tasks_for(stack, dep["id"]) == {task} and dep["ecs_deployment_id"]


def test_pruning_cut_short_by_a_throttle_resumes_on_the_retry(stack, client, faults):
    """Row 8: DescribeServices is throttled for good while pruning after SUCCEEDED: the handler
    fails (EventBridge retries), the pruning stays owed, and the retry prunes."""
    ecs = stack.client("ecs")
    body = ecs.describe_task_definition(taskDefinition=stack.services[SERVICE]["first_revision"])
    td = {k: v for k, v in body["taskDefinition"].items() if k in (
        "family", "containerDefinitions", "cpu", "memory", "networkMode",
        "requiresCompatibilities", "executionRoleArn")}
    for _ in range(7):
        ecs.register_task_definition(**td)
    dep = approved(stack, client)
    stack.drain()
    deliver(client, "on_task_state_change", task_stopped(get(client, dep["id"]), exit_code=0))
    stack.finish_rollout_in_moto(CLUSTER, SERVICE)
    event = rollout(get(client, dep["id"]))
    faults.add(aws.client("ecs"), "DescribeServices", error("ThrottlingException"))
    failing(client, "on_deployment_state_change", event)
    assert get(client, dep["id"])["state"] == "SUCCEEDED"
    assert stack.deps().ledger.head(SERVICE).prune
    deliver(client, "on_deployment_state_change", event)  # EventBridge's retry
    assert any("pruned" in t["note"] for t in get(client, dep["id"])["timeline"])
    assert stack.deps().ledger.head(SERVICE).prune == set()
