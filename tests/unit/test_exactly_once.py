"""Exactly one migration under faults, recovery whatever the timings, clear reasons (issue 7 rows
4-6), on the in-memory fakes; tests/e2e/test_recovery.py does the same on the devstack."""
from __future__ import annotations

from datetime import timedelta

import pytest

from chalicelib.domain.model import State, iso
from chalicelib.service import decisions, pipeline, reconcile
from chalicelib.service.ports import AwsError
from chalicelib.service.steps import GIVE_UP
from tests.unit.pipeline_kit import WEB, WORKER, push, stopped, world

__all__ = ["world"]  # the fixture, imported for pytest
CLUSTER = "production-cluster"


def approved(deps, service=WEB):
    dep = push(deps, service=service)
    decisions.decide(deps, dep.id, identity="slack:U0APPROVER1", via="slack", decision="approve")
    deps.dispatcher.queued.clear()
    return dep


def tasks_of(deps, dep):
    return deps.ecs.tasks_started_by(CLUSTER, f"slipway/{dep.id}")


def crash_after(deps, method: str):
    """The next ``method`` takes effect, then its worker dies before recording the answer."""
    real = getattr(deps.ecs, method)

    def call(*args, **kwargs):
        real(*args, **kwargs)
        setattr(deps.ecs, method, real)
        raise SystemExit("worker killed")

    setattr(deps.ecs, method, call)


def test_a_lost_runtask_answer_is_adopted_not_run_again(world):
    """RunTask starts the task and its answer is lost (a 500 after the call): the redelivery looks
    for the task by startedBy and adopts it; ECS ran one migration."""
    dep = approved(world)
    real = world.ecs.run_task

    def lost(**kwargs):
        real(**kwargs)
        raise AwsError("RunTask: internal error", code="InternalServerError")

    world.ecs.run_task = lost
    with pytest.raises(AwsError):
        pipeline.advance(world, dep.id)
    world.ecs.run_task = real
    world.ecs.tokens.clear()  # not thanks to clientToken: the fake forgets it, as moto does
    pipeline.advance(world, dep.id)  # the queue's redelivery
    [task] = tasks_of(world, dep)
    assert world.load(dep.id).migration["task_arn"] == task
    assert "found running" in world.load(dep.id).timeline[-1]["note"]


def test_a_stopped_event_for_a_task_never_recorded_is_matched_by_started_by(world):
    """The worker died between RunTask and its ledger write; the task's STOPPED event arrives
    first: it is matched to the deployment by startedBy, judged, and the rollout starts."""
    dep = approved(world)
    crash_after(world, "run_task")
    with pytest.raises(SystemExit):
        pipeline.advance(world, dep.id)
    [task] = tasks_of(world, dep)
    assert not (world.load(dep.id).migration or {}).get("task_arn")
    unrecorded = world.load(dep.id)
    unrecorded.migration = {"task_arn": task}  # what the event names, not what the ledger knows
    out = pipeline.migration_stopped(world, stopped(unrecorded))
    del unrecorded
    after = world.load(dep.id)
    assert out.endswith("DEPLOYING") and after.migration["task_arn"] == task
    assert after.ecs_deployment_id and world.ecs.calls.count("RunTask") == 1
    assert pipeline.advance(world, dep.id).state is State.DEPLOYING  # nothing left to run


@pytest.mark.parametrize("stale_seconds", [2, 60, 600])
def test_crash_recovery_works_whatever_the_reconcilers_timings(world, stale_seconds):
    """A worker dies right after RunTask (its claim is left behind). With the devstack's 2 s as
    with production's 10 minutes, the reconciler waits for the claim to expire, adopts the task
    (one migration) and the deployment goes on: never FAILED 'did not accept'."""
    world.settings.stale_seconds = stale_seconds
    dep = approved(world)
    crash_after(world, "run_task")
    with pytest.raises(SystemExit):
        pipeline.advance(world, dep.id)
    stuck = world.load(dep.id)
    stuck.claims["run_task"] = iso(world.clock())  # a killed worker never gives its claim back
    world.ledger.save(stuck)
    for _ in range(40):  # the reconciler's runs, until the task is known
        world.clock.now += timedelta(seconds=max(stale_seconds, 15))
        reconcile.reconcile(world)
        if (world.load(dep.id).migration or {}).get("task_arn"):
            break
    after = world.load(dep.id)
    assert after.state is State.MIGRATING and after.migration["task_arn"] == tasks_of(world, dep)[0]
    assert len(tasks_of(world, dep)) == 1 and world.ecs.calls.count("RunTask") == 1


@pytest.mark.parametrize("method, service, label", [
    ("run_task", WEB, "RunTask"), ("update_service", WORKER, "UpdateService"),
    ("register", WEB, "RegisterTaskDefinition")])
def test_a_refused_ecs_step_fails_with_the_step_and_ecs_error(world, method, service, label):
    """ECS refuses a step for good: FAILED at once, the reason names the step and ECS's error,
    and the notifier (Slack, GitHub) is told the FAILED deployment with that reason."""
    dep = approved(world, service=service) if service == WEB else push(world, service=service)
    world.dispatcher.queued.clear()

    def refused(*args, **kwargs):
        raise AwsError(f"{label}: subnet-x does not exist", code="InvalidParameterException")

    setattr(world.ecs, method, refused)
    after = pipeline.advance(world, dep.id)
    assert after.state is State.FAILED and after.reason.startswith(label)
    assert "subnet-x does not exist" in after.reason
    assert (dep.id, "FAILED", ("FAILED",)) in world.notifier.seen


def test_a_step_throttled_for_good_gives_up_after_a_number_of_attempts_not_a_time(world):
    """Throttled at every attempt (queue redeliveries): FAILED after GIVE_UP attempts with ECS's
    last error, however quickly they came."""
    dep = approved(world)

    def throttled(**kwargs):
        raise AwsError("RunTask: Rate exceeded", code="ThrottlingException")

    world.ecs.run_task = throttled
    for _ in range(GIVE_UP - 1):
        with pytest.raises(AwsError):
            pipeline.advance(world, dep.id)
    after = pipeline.advance(world, dep.id)
    assert after.state is State.FAILED and f"in {GIVE_UP} attempts" in after.reason
    assert "Rate exceeded" in after.reason and world.ledger.lock_holder(WEB) is None
