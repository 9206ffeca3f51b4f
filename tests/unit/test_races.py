"""Races and repeats: concurrent workers, claims, conflicting writes, unordered pushes."""
from __future__ import annotations

from datetime import timedelta

import pytest

from chalicelib.domain.model import State
from chalicelib.service import decisions, intake, pipeline, reconcile
from tests.unit import pipeline_kit as kit
from tests.unit.pipeline_kit import (WORKER, push, world)

__all__ = ["world"]  # the fixture, imported for pytest


def test_a_write_racing_an_ecs_call_does_not_lose_its_answer(world):
    """A tag arriving while UpdateService runs bumps the version; the ECS deployment id is kept."""
    dep = push(world, service=WORKER, tags=("abc123d",))
    real = world.ecs.update_service

    def update_with_a_racing_tag(*args):
        intake._merge_tag(world, (dep.id, dep.tags), "1.0.0-abc123d")  # another event, meanwhile
        return real(*args)

    world.ecs.update_service = update_with_a_racing_tag
    world.dispatcher.drain(world)
    dep = world.load(dep.id)
    assert dep.ecs_deployment_id and "1.0.0-abc123d" in dep.tags
    assert world.ledger.find(f"ecsdep#{dep.ecs_deployment_id}").id == dep.id


def test_concurrent_workers_make_each_ecs_call_once(world):
    """Eight workers advancing one approved deployment at once: one register, one RunTask."""
    import threading

    dep = push(world)
    decisions.decide(world, dep.id, identity="slack:U0APPROVER1", via="slack", decision="approve")
    barrier = threading.Barrier(8)

    def work():
        barrier.wait()
        pipeline.advance(world, dep.id)

    threads = [threading.Thread(target=work) for _ in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert world.ecs.calls.count("RegisterTaskDefinition") == 1
    assert world.ecs.calls.count("RunTask") == 1
    assert world.load(dep.id).migration["task_arn"]


def test_a_claim_left_by_a_dead_worker_is_taken_over_later(world):
    """A worker that claimed RunTask, started the task and was killed before recording it: nobody
    else runs a task while the claim is fresh; once it has expired, the reconciler finds the task
    the dead worker started (ListTasks by startedBy) and adopts it: one migration in all."""
    from chalicelib.domain.model import iso

    dep = push(world)
    decisions.decide(world, dep.id, identity="slack:U0APPROVER1", via="slack", decision="approve")
    pipeline.advance(world, dep.id)
    stored = world.load(dep.id)
    stored.migration = None  # as if the killed worker had claimed and never recorded a task
    stored.claims["run_task"] = iso(world.clock())
    world.ledger.save(stored)
    runs = world.ecs.calls.count("RunTask")
    pipeline.advance(world, dep.id)  # a redelivery right away: the claim is still fresh
    world.clock.now += timedelta(minutes=1)
    reconcile.reconcile(world)
    assert world.ecs.calls.count("RunTask") == runs
    world.clock.now += timedelta(minutes=2)
    reconcile.reconcile(world)
    started = world.ecs.tasks_started_by("production-cluster", f"slipway/{dep.id}")
    assert world.load(dep.id).migration["task_arn"] == started[0] and len(started) == 1
    assert world.ecs.calls.count("RunTask") == runs


def test_a_failed_ecs_call_gives_its_claim_back(world):
    """A throttled RunTask frees its claim, so the queue's redelivery tries again at once."""
    from chalicelib.adapters.errors import AwsError

    dep = push(world)
    decisions.decide(world, dep.id, identity="slack:U0APPROVER1", via="slack", decision="approve")
    real = world.ecs.run_task

    def throttled(**kwargs):
        raise AwsError("Rate exceeded", code="ThrottlingException")

    world.ecs.run_task = throttled
    with pytest.raises(AwsError):
        pipeline.advance(world, dep.id)
    world.ecs.run_task = real
    pipeline.advance(world, dep.id)  # the redelivery
    assert world.load(dep.id).migration["task_arn"]


def test_an_older_build_heard_of_last_does_not_supersede_the_newer_one(world):
    """ECR events arrive unordered: the image pushed last waits for approval, whatever came first."""
    world.ecs.pushed_at["sha256:" + "e" * 64] = "2026-11-26T08:00:00+00:00"  # build 1
    world.ecs.pushed_at["sha256:" + "f" * 64] = "2026-11-26T08:05:00+00:00"  # build 2
    digests = iter(["sha256:" + "f" * 64, "sha256:" + "e" * 64])  # build 2's event arrives first
    saved, kit.DIGESTS = kit.DIGESTS, digests
    try:
        second = push(world, tags=("2222222",))
        first = push(world, tags=("1111111",))
    finally:
        kit.DIGESTS = saved
    assert world.load(second.id).state is State.PENDING_APPROVAL
    first = world.load(first.id)
    assert first.state is State.SUPERSEDED and second.id in first.reason


def test_an_older_build_heard_of_after_the_newer_one_deployed_is_not_deployed(world):
    """A late event for an older build of an approval-free service must not roll the newer back."""
    world.ecs.pushed_at["sha256:" + "c" * 64] = "2026-11-26T08:00:00Z"  # build 1
    world.ecs.pushed_at["sha256:" + "d" * 64] = "2026-11-26T09:05:00+01:00"  # build 2 (08:05Z)
    saved, kit.DIGESTS = kit.DIGESTS, iter(["sha256:" + "d" * 64, "sha256:" + "c" * 64])
    try:
        second = push(world, service=WORKER, tags=("2222222",))
        world.dispatcher.drain(world)
        first = push(world, service=WORKER, tags=("1111111",))
        world.dispatcher.drain(world)
    finally:
        kit.DIGESTS = saved
    assert world.load(first.id).state is State.SUPERSEDED
    assert world.load(second.id).state is State.DEPLOYING
    assert world.ecs.calls.count("UpdateService") == 1
