"""The rollback guard: no rollback past a migration unless forced, with a reason, on record."""
from __future__ import annotations

import pytest

from chalicelib.adapters import github_notifier, slack_message
from chalicelib.domain.model import State
from chalicelib.domain.rollback_guard import migrations_since
from chalicelib.entrypoints import pages
from chalicelib.errors import BadRequest
from chalicelib.service import pipeline, rollback
from chalicelib.service.views import deployment_json
from tests.unit.pipeline_kit import (WEB, WORKER, approve, completed, push, stopped, to_success,
                                     world)

__all__ = ["world"]  # the fixture, imported for pytest


def test_migrations_after_the_target_are_listed_oldest_first(world):
    """Later deployments that ran a migration count, a failed one too; the target's own does not."""
    v1 = to_success(world, tags=("1111111", "1.0.0-1111111"))
    v2 = to_success(world, tags=("2222222", "1.1.0-2222222"))
    v3 = push(world, tags=("3333333", "1.2.0-3333333"))
    approve(world, v3)
    pipeline.migration_stopped(world, stopped(world.load(v3.id), exit_code=1))
    history = world.ledger.list(service=WEB)
    found = migrations_since(v1, history)
    assert [m["id"] for m in found] == [v2.id, v3.id]
    assert found[0]["command"] == ["pnpm", "db:migrate"] and found[0]["version"] == "1.1.0"
    assert found[1]["state"] == "FAILED" and found[1]["exit_code"] == 1
    assert migrations_since(v2, history)[0]["id"] == v3.id
    assert migrations_since(world.load(v3.id), history) == []


def test_a_rollback_past_a_migration_is_refused_and_creates_nothing(world):
    """409 migrations_since_target, naming each deployment, its version, command and time."""
    v1 = to_success(world, tags=("1111111", "1.0.0-1111111"))
    v2 = to_success(world, tags=("2222222", "1.1.0-2222222"))
    before = len(world.ledger.list())
    with pytest.raises(rollback.MigrationsSinceTarget) as refused:
        rollback.rollback(world, WEB, "previous", "bad release", "iam:arn:aws:iam::1:user/ops")
    assert refused.value.status == 409 and refused.value.code == "migrations_since_target"
    (listed,) = refused.value.details["migrations"]
    assert listed["id"] == v2.id and listed["version"] == "1.1.0"
    assert listed["command"] == ["pnpm", "db:migrate"] and listed["at"]
    assert v2.id in refused.value.message and "force" in refused.value.message
    assert len(world.ledger.list()) == before
    with pytest.raises(rollback.MigrationsSinceTarget):
        rollback.rollback(world, WEB, v1.id, "bad release", "iam:ops")


def test_forcing_needs_a_reason_and_is_recorded_by_whom(world):
    """force without a reason is a 400; with one, the ledger, Slack and GitHub say it was forced."""
    to_success(world, tags=("1111111", "1.0.0-1111111"))
    v2 = to_success(world, tags=("2222222", "1.1.0-2222222"))
    with pytest.raises(BadRequest):
        rollback.rollback(world, WEB, "previous", " ", "iam:ops", force=True)
    who = "iam:arn:aws:iam::123456789012:user/alice"
    rb = rollback.rollback(world, WEB, "previous", "the column is still there", who, force=True)
    assert rb.forced["by"] == who and rb.forced["reason"] == "the column is still there"
    assert [m["id"] for m in rb.forced["migrations"]] == [v2.id]
    assert any(t["note"].startswith(f"FORCED by {who}") for t in rb.timeline)
    view = deployment_json(rb, world.config.service(WEB))
    assert view["forced"]["by"] == who
    text = str(slack_message.status_message(view)[1])
    assert "*Forced* past migrations" in text and "1.1.0" in text and "the column is still" in text
    assert github_notifier._title(rb).startswith(f"FORCED by {who}")
    assert f"Forced</th><td>by <code>{who}</code>: “the column is still there”" in \
        pages.facts(view)
    world.dispatcher.drain(world)
    world.ecs.finish_rollout("production-cluster", WEB)
    pipeline.rollout_changed(world, completed(world.load(rb.id)))
    assert world.load(rb.id).state is State.SUCCEEDED


def test_a_service_without_migrations_rolls_back_unforced(world):
    """The worker runs no migration: "previous" works as before, nothing is marked forced."""
    svc = world.config.service(WORKER)
    for tag in ("1111111", "2222222"):
        dep = push(world, service=WORKER, tags=(tag,))
        world.dispatcher.drain(world)
        world.ecs.finish_rollout(svc.cluster, svc.service)
        pipeline.rollout_changed(world, completed(world.load(dep.id)))
    rb = rollback.rollback(world, WORKER, "previous", "", "iam:ops")
    assert rb.state is State.APPROVED and rb.forced is None
