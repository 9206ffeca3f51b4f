"""Pruning and rollback: what survives, what a rollback may return to."""
from __future__ import annotations


import pytest

from chalicelib.domain.model import State
from chalicelib.errors import Conflict
from chalicelib.service import pipeline, prune, reconcile, rollback
from tests.unit.pipeline_kit import (WEB, WORKER, completed, push, to_success,
                                     world)

__all__ = ["world"]  # the fixture, imported for pytest


def test_pruning_a_huge_family_resumes_across_invocations(world):
    """5,000 revisions: ⌈N/100⌉ list calls once, then deregistration continues where it stopped."""
    template = world.config.service(WEB).template
    for _ in range(5_000):
        world.ecs._register(template)
    world.settings.prune_batch = 2_000
    dep = to_success(world, tags=("abc123d", "1.22.0-abc123d"))
    lists = world.ecs.calls.count("ListTaskDefinitions")
    assert lists == 51  # 5,002 ACTIVE revisions, 100 a page
    assert world.ecs.calls.count("DeregisterTaskDefinition") == 2_000
    assert len(world.ledger.get_job("prune#better-chatbot")["revisions"]) > 0
    reconcile.reconcile(world)
    reconcile.reconcile(world)
    assert world.ecs.calls.count("ListTaskDefinitions") == lists  # resumed, not re-listed
    assert world.ledger.get_job("prune#better-chatbot") is None
    family = [a for a in world.ecs.active if "/better-chatbot:" in a]
    assert len(family) == 5 and dep.task_definition_arn in family


def test_pruning_skips_images_without_a_release_tag(world):
    """only_tags: a build without a version tag (not main/develop) prunes nothing."""
    template = world.config.service(WEB).template
    for _ in range(10):
        world.ecs._register(template)
    dep = to_success(world, tags=("abc123d",))
    assert "DeregisterTaskDefinition" not in world.ecs.calls
    assert any("pruning skipped" in t["note"] for t in dep.timeline)


def test_rollback_of_a_service_that_never_succeeded_is_refused(world):
    """With no earlier good deployment there is nothing to roll back to: 409, nothing created."""
    with pytest.raises(Conflict, match="no successful deployment"):
        rollback.rollback(world, WEB, "previous", "", "iam:me")
    assert world.ledger.list() == []


def test_previous_after_a_rollback_never_returns_to_the_bad_release(world):
    """v1, v2 (bad), rollback to v1; 'previous' again goes before v1, not back to v2."""
    def finish_rollback(rb):
        world.dispatcher.drain(world)
        rb = world.load(rb.id)
        world.ecs.finish_rollout("production-cluster", WEB)
        pipeline.rollout_changed(world, completed(rb))
        return world.load(rb.id)

    v0 = to_success(world, tags=("0000000", "0.9.0-0000000"))
    v1 = to_success(world, tags=("1111111", "1.0.0-1111111"))
    v2 = to_success(world, tags=("2222222", "1.1.0-2222222"))
    first = finish_rollback(rollback.rollback(world, WEB, "previous", "bad", "iam:me", force=True))
    assert first.task_definition_arn == v1.task_definition_arn
    second = finish_rollback(rollback.rollback(world, WEB, "previous", "still bad", "iam:me",
                                               force=True))
    assert second.task_definition_arn == v0.task_definition_arn != v2.task_definition_arn


def test_a_chain_of_rollbacks_never_targets_a_pruned_revision(world):
    """keep = 3 on the worker: five releases, then three 'previous' rollbacks in a row each land
    on a revision that pruning left ACTIVE."""
    svc = world.config.service(WORKER)

    def deploy(tag):
        dep = push(world, service=WORKER, tags=(tag,))
        world.dispatcher.drain(world)
        world.ecs.finish_rollout(svc.cluster, svc.service)
        pipeline.rollout_changed(world, completed(world.load(dep.id)), prune=prune.after_success)
        return world.load(dep.id)

    releases = [deploy(f"{i:07x}") for i in range(1, 6)]
    assert all(r.state is State.SUCCEEDED for r in releases)
    for back in (2, 3):  # to release 4, then release 3: both kept
        rb = rollback.rollback(world, WORKER, "previous", "bad", "iam:ops")
        world.dispatcher.drain(world)
        world.ecs.finish_rollout(svc.cluster, svc.service)
        pipeline.rollout_changed(world, completed(world.load(rb.id)), prune=prune.after_success)
        rb = world.load(rb.id)
        assert rb.state is State.SUCCEEDED and rb.task_definition_arn in world.ecs.active
        assert rb.task_definition_arn == releases[-back].task_definition_arn
    with pytest.raises(Conflict, match="older than the 3 that pruning keeps"):
        rollback.rollback(world, WORKER, "previous", "bad", "iam:ops")


@pytest.mark.parametrize("resume", ["redelivery", "reconcile"])
def test_pruning_cut_short_by_a_throttle_is_owed_and_resumed(world, resume):
    """DescribeServices is throttled during pruning (issue 7 row 8): the deployment is SUCCEEDED,
    the pruning stays owed (recorded in the SUCCEEDED write), and the event's retry or the next
    reconcile does it; once done, nothing is owed any more."""
    from chalicelib.service.ports import AwsError

    template = world.config.service(WEB).template
    for _ in range(10):
        world.ecs._register(template)
    dep = push(world, tags=("abc123d", "1.22.0-abc123d"))
    from tests.unit.pipeline_kit import approve, stopped
    approve(world, dep)
    pipeline.migration_stopped(world, stopped(world.load(dep.id)))
    world.ecs.finish_rollout("production-cluster", WEB)
    real = world.ecs.describe_service

    def throttled(*args):
        raise AwsError("Rate exceeded", code="ThrottlingException")

    world.ecs.describe_service = throttled
    event = completed(world.load(dep.id))
    with pytest.raises(AwsError):
        pipeline.rollout_changed(world, event, prune=prune.after_success)
    world.ecs.describe_service = real
    assert world.load(dep.id).state is State.SUCCEEDED
    assert world.ledger.head(WEB).prune and "DeregisterTaskDefinition" not in world.ecs.calls
    if resume == "redelivery":
        pipeline.rollout_changed(world, event, prune=prune.after_success)  # EventBridge's retry
    else:
        reconcile.reconcile(world)
    assert world.ecs.calls.count("DeregisterTaskDefinition") == 7  # 12 revisions, keep 5
    assert world.ledger.head(WEB).prune == set()
    pipeline.rollout_changed(world, event, prune=prune.after_success)  # one more: nothing to do
    assert world.ecs.calls.count("DeregisterTaskDefinition") == 7
