"""The reconciler: expiry, lost events, timeouts, stuck steps and stale locks."""
from __future__ import annotations

from datetime import timedelta

import pytest

from chalicelib.domain.model import State
from chalicelib.service import decisions, pipeline, reconcile
from tests.unit.pipeline_kit import (WEB, approve, push, stopped, world)

__all__ = ["world"]  # the fixture, imported for pytest


def test_reconciler_expires_stale_approvals(world):
    """A request nobody approved within expires_hours becomes EXPIRED and people are told."""
    dep = push(world)
    world.clock.now += timedelta(hours=25)
    done = reconcile.reconcile(world)
    assert done[dep.id] == "expired" and world.load(dep.id).state is State.EXPIRED
    assert (dep.id, "EXPIRED", ("EXPIRED",)) in world.notifier.seen


def test_reconciler_recovers_a_lost_task_event(world):
    """If the STOPPED event never arrives, the reconciler reads the task and carries on."""
    dep = push(world)
    approve(world, dep)
    dep = world.load(dep.id)
    task = world.ecs.tasks[dep.migration["task_arn"]]
    task.update(lastStatus="STOPPED", stopCode="EssentialContainerExited", version=4,
                containers=[{"name": "app", "exitCode": 0}])
    assert reconcile.reconcile(world) == {}  # not stale yet: the event may still come
    world.clock.now += timedelta(minutes=2)
    done = reconcile.reconcile(world)
    assert "recovered lost task event" in done[dep.id]
    assert world.load(dep.id).state is State.DEPLOYING


def test_reconciler_stops_a_migration_past_its_timeout(world):
    """A migration running longer than timeout_minutes is stopped and the deployment FAILED."""
    dep = push(world)
    approve(world, dep)
    world.clock.now += timedelta(minutes=16)  # timeout_minutes = 15 in services.toml
    done = reconcile.reconcile(world)
    dep = world.load(dep.id)
    assert done[dep.id] == "failed: migration timed out" and dep.state is State.FAILED
    assert world.ecs.tasks[dep.migration["task_arn"]]["lastStatus"] == "STOPPED"
    assert "UpdateService" not in world.ecs.calls


def test_reconciler_recovers_a_lost_rollout_event(world):
    """If COMPLETED never arrives, DescribeServices' rolloutState finishes the deployment."""
    dep = push(world)
    approve(world, dep)
    pipeline.migration_stopped(world, stopped(world.load(dep.id)))
    world.ecs.finish_rollout("production-cluster", WEB)
    world.clock.now += timedelta(minutes=2)
    done = reconcile.reconcile(world)
    assert "SUCCEEDED" in done[dep.id] and world.load(dep.id).state is State.SUCCEEDED


def test_the_reconciler_frees_a_service_held_by_a_finished_deployment(world):
    """A lock left behind (a crash between writes) is freed, so the next approval can go on."""
    dep = push(world)
    approve(world, dep)
    pipeline.migration_stopped(world, stopped(world.load(dep.id), exit_code=1))
    world.ledger._heads[WEB].lock = dep.id  # as if the release had been lost
    done = reconcile.reconcile(world)
    assert world.ledger.lock_holder(WEB) is None and f"lock:{WEB}" in done


def test_a_rollout_that_never_settles_fails_after_its_timeout(world):
    """Without a circuit breaker ECS may never finish: after rollout_timeout_minutes it is FAILED."""
    dep = push(world)
    approve(world, dep)
    pipeline.migration_stopped(world, stopped(world.load(dep.id)))
    limit = world.config.service(WEB).rollout_timeout_minutes  # 30 in ecs/production
    world.clock.now += timedelta(minutes=limit - 1)
    assert reconcile.reconcile(world) == {}
    world.clock.now += timedelta(minutes=2)
    done = reconcile.reconcile(world)
    assert done[dep.id] == "failed: rollout timed out"
    assert world.ledger.lock_holder(WEB) is None


def test_a_step_ecs_keeps_refusing_fails_instead_of_retrying_forever(world):
    """A throttled RunTask is retried; still throttled after six attempts, the deployment FAILS
    with a reason naming the step and ECS's last error (issue 7 row 6)."""
    from chalicelib.adapters.errors import AwsError

    dep = push(world)
    decisions.decide(world, dep.id, identity="slack:U0APPROVER1", via="slack", decision="approve")

    def throttled(**kwargs):
        raise AwsError("Rate exceeded", code="ThrottlingException")

    world.ecs.run_task = throttled
    with pytest.raises(AwsError):
        pipeline.advance(world, dep.id)
    for _ in range(6):
        world.clock.now += timedelta(minutes=1, seconds=1)
        reconcile.reconcile(world)
    dep = world.load(dep.id)
    assert dep.state is State.FAILED and dep.reason.startswith("RunTask")
    assert "ECS's last error: Rate exceeded" in dep.reason


def test_a_rollout_started_late_gets_its_whole_timeout(world):
    """UpdateService throttled for longer than the rollout timeout, then answered: the rollout's
    time counts from UpdateService's answer, not from when the migration ended (the reconciler
    once failed such a rollout at once, and ECS then completed it under a FAILED deployment)."""
    from chalicelib.adapters.errors import AwsError

    dep = push(world)
    approve(world, dep)
    real = world.ecs.update_service

    def throttled(*args, **kwargs):
        raise AwsError("Rate exceeded", code="ThrottlingException")

    world.ecs.update_service = throttled
    with pytest.raises(AwsError):
        pipeline.migration_stopped(world, stopped(world.load(dep.id)))
    limit = world.config.service(WEB).rollout_timeout_minutes
    for _ in range(3):  # attempts 2-4, further apart than the whole rollout timeout
        world.clock.now += timedelta(minutes=limit)
        reconcile.reconcile(world)
    world.ecs.update_service = real
    world.clock.now += timedelta(minutes=limit)
    assert reconcile.reconcile(world) == {dep.id: "advanced"}
    assert world.load(dep.id).state is State.DEPLOYING and world.load(dep.id).ecs_deployment_id
    world.clock.now += timedelta(minutes=limit - 1)
    assert reconcile.reconcile(world) == {}  # still within its own timeout: not failed
    world.clock.now += timedelta(minutes=2)
    assert reconcile.reconcile(world)[dep.id] == "failed: rollout timed out"
