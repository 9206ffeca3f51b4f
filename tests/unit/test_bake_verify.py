"""The bake (VERIFYING): ECS's deployment alarms, alarm-driven automatic rollback, quiet ends."""
from __future__ import annotations

import dataclasses
from datetime import timedelta

from chalicelib.config import Verify
from chalicelib.domain.model import State
from chalicelib.service import pipeline, prune, reconcile, verify
from tests.conftest import load_event
from tests.unit.pipeline_kit import (API, WEB, approve, completed, push, stopped, world)

__all__ = ["world"]  # the fixture, imported for pytest
CLUSTER = "production-cluster"
ALARM_5XX, ALARM_LATENCY = "better-chatbot-api-5xx", "better-chatbot-api-latency"


def rolled_out(deps, service=API, tags=("abc123d",)):
    """Push (auto-approved), roll out, and report ECS's COMPLETED: the deployment as it is now."""
    dep = push(deps, service=service, tags=tags)
    deps.dispatcher.drain(deps)
    dep = deps.load(dep.id)
    deps.ecs.finish_rollout(CLUSTER, service)
    pipeline.rollout_changed(deps, completed(dep), prune=prune.after_success)
    return deps.load(dep.id)


def alarm_event(name=ALARM_5XX, state="ALARM"):
    event = load_event("alarm_state_change", alarmName=name)
    event["detail"]["state"]["value"] = state
    return event


def rollbacks(deps, service=API):
    return [d for d in deps.ledger.list(service=service) if d.kind == "rollback"]


def test_the_rollout_asks_ecs_to_watch_the_alarms_and_roll_back(world):
    """UpdateService carries the deployment alarms (enable, rollback) and keeps the circuit breaker."""
    dep = push(world, service=API)
    world.dispatcher.drain(world)
    config = world.ecs.services[(CLUSTER, API)]["deploymentConfiguration"]
    assert config["alarms"] == {"alarmNames": [ALARM_5XX, ALARM_LATENCY], "enable": True,
                                "rollback": True}
    assert config["deploymentCircuitBreaker"]["rollback"] is True
    assert world.load(dep.id).state is State.DEPLOYING


def test_completed_enters_the_bake_locked_unpruned_with_one_look_at_the_alarms(world):
    """COMPLETED → VERIFYING for bake_minutes: service still locked, nothing pruned, alarms read once."""
    dep = rolled_out(world)
    assert dep.state is State.VERIFYING and dep.verify["alarms"] == [ALARM_5XX, ALARM_LATENCY]
    assert dep.verify["bake_minutes"] == 5 and "watching alarms" in dep.timeline[-1]["note"]
    assert world.ledger.lock_holder(API) == dep.id
    assert "DeregisterTaskDefinition" not in world.ecs.calls and world.alarms.calls == 1
    assert "ListTaskDefinitions" not in world.ecs.calls


def test_a_quiet_bake_ends_succeeded_when_the_reconciler_sees_the_time_is_up(world):
    """Before ends_at the reconciler only looks; after it the deployment SUCCEEDED and is pruned."""
    dep = rolled_out(world)
    world.clock.now += timedelta(minutes=4)
    assert dep.id not in reconcile.reconcile(world)
    assert world.load(dep.id).state is State.VERIFYING
    world.clock.now += timedelta(minutes=2)
    done = reconcile.reconcile(world)
    dep = world.load(dep.id)
    assert done[dep.id] == f"{dep.id} SUCCEEDED" and dep.state is State.SUCCEEDED
    assert dep.reason is None and any("5 min over with no alarm in ALARM" in t["note"]
                                      for t in dep.timeline)
    assert world.ledger.lock_holder(API) is None
    assert "ListTaskDefinitions" in world.ecs.calls  # pruning ran only now


def test_an_alarm_during_the_bake_rolls_back_to_the_release_before(world):
    """ALARM on a watched alarm: ROLLED_BACK naming alarm and reason, one rollback deployment to
    the revision that ran before, which rolls out without alarms and without a bake."""
    dep = rolled_out(world)
    before = dep.previous_task_definition_arn
    result = verify.on_alarm_state_change(world, alarm_event())
    dep = world.load(dep.id)
    assert dep.state is State.ROLLED_BACK and "rollback" in result
    assert ALARM_5XX in dep.reason and "was greater than the threshold (5.0)" in dep.reason
    [rb] = rollbacks(world)
    assert rb.task_definition_arn == before and rb.state is State.APPROVED
    assert dep.verify["rollback"] == rb.id and rb.approvals[0]["by"] == verify.AUTOMATIC
    world.dispatcher.drain(world)
    rb = world.load(rb.id)
    assert world.ecs.services[(CLUSTER, API)]["taskDefinition"] == before
    assert world.ecs.services[(CLUSTER, API)]["deploymentConfiguration"]["alarms"]["enable"] is False
    world.ecs.finish_rollout(CLUSTER, API)
    pipeline.rollout_changed(world, completed(rb), prune=prune.after_success)
    assert world.load(rb.id).state is State.SUCCEEDED  # a rollback restores; it does not bake


def test_the_same_alarm_twice_and_the_reconciler_start_one_rollback(world):
    """A redelivered event, a second alarm and the reconciler's look: one rollback deployment."""
    dep = rolled_out(world)
    verify.on_alarm_state_change(world, alarm_event())
    world.alarms.set(ALARM_LATENCY, "ALARM", "latency")
    assert verify.on_alarm_state_change(world, alarm_event()).endswith("not baking")
    verify.alarm_fired(world, dep.id, ALARM_LATENCY, "latency", "test")
    reconcile.reconcile(world)
    assert len(rollbacks(world)) == 1 and world.load(dep.id).state is State.ROLLED_BACK


def test_an_alarm_already_in_alarm_when_the_bake_starts_counts_without_its_event(world):
    """DescribeAlarms at the start of the bake: an alarm already firing rolls back at once."""
    world.alarms.set(ALARM_LATENCY, "ALARM", "p99 above 2 s")
    dep = rolled_out(world)
    assert dep.state is State.ROLLED_BACK and "p99 above 2 s" in dep.reason
    assert dep.verify["alarm"]["via"] == "already in ALARM when the bake began"
    assert len(rollbacks(world)) == 1


def test_the_reconciler_finds_an_alarm_whose_event_was_lost(world):
    """An alarm that fired after the first look, its event dropped: the next reconcile rolls back."""
    dep = rolled_out(world)
    world.alarms.set(ALARM_5XX, "ALARM", "5xx")
    reconcile.reconcile(world)
    assert world.load(dep.id).state is State.ROLLED_BACK and len(rollbacks(world)) == 1


def test_alarms_that_are_not_watched_or_not_alarming_change_nothing(world):
    """OK, INSUFFICIENT_DATA, an unknown alarm, or no bake in progress: ignored."""
    dep = rolled_out(world)
    assert verify.on_alarm_state_change(world, alarm_event(state="OK")).startswith("ignored")
    assert verify.on_alarm_state_change(world, alarm_event("someone-elses")).startswith("ignored")
    assert world.load(dep.id).state is State.VERIFYING and not rollbacks(world)


def test_an_ecs_alarm_failure_during_the_rollout_ends_rolled_back_naming_the_alarm(world):
    """ECS failed the rollout on an alarm and rolled back: ROLLED_BACK with ECS's reason."""
    dep = push(world, service=API)
    world.dispatcher.drain(world)
    dep = world.load(dep.id)
    reason = f"ECS deployment {dep.ecs_deployment_id} rolled back: alarm {ALARM_5XX} in ALARM."
    pipeline.rollout_changed(world, completed(dep, "SERVICE_DEPLOYMENT_FAILED", reason))
    dep = world.load(dep.id)
    assert dep.state is State.ROLLED_BACK and ALARM_5XX in dep.reason and not rollbacks(world)


def test_an_automatic_rollback_says_the_schema_was_not_rolled_back(world):
    """The rollback guard does not block the automatic rollback, but a migration is named."""
    svc = world.config.service(WEB)
    world.config = dataclasses.replace(world.config, services=tuple(
        dataclasses.replace(s, verify=Verify(bake_minutes=5, alarms=(ALARM_5XX,)))
        if s.name == WEB else s for s in world.config.services))
    assert svc.migration is not None
    dep = push(world)
    approve(world, dep)
    pipeline.migration_stopped(world, stopped(world.load(dep.id)))
    world.ecs.finish_rollout(CLUSTER, WEB)
    pipeline.rollout_changed(world, completed(world.load(dep.id)))
    verify.on_alarm_state_change(world, alarm_event())
    dep = world.load(dep.id)
    assert dep.state is State.ROLLED_BACK and "schema was NOT rolled back" in dep.reason
    assert dep.id in dep.reason and len(rollbacks(world, WEB)) == 1


def test_the_alarm_event_fixture_parses_as_cloudwatch_sends_it():
    """The real shape: detail.alarmName, detail.state.value/reason, detail.previousState."""
    from chalicelib.service.events import alarm_changed

    change = alarm_changed(load_event("alarm_state_change"))
    assert (change.alarm, change.state, change.previous) == (ALARM_5XX, "ALARM", "OK")
    assert change.reason.startswith("Threshold Crossed")


def test_slack_and_github_show_the_bake_and_its_outcome(world):
    """The message says until when and which alarms; GitHub's status says the same in a line."""
    from chalicelib.adapters import github_notifier, slack_message
    from chalicelib.service.views import deployment_json

    dep = rolled_out(world)
    text = str(slack_message.status_message(deployment_json(dep))[1])
    assert "Baking until" in text and ALARM_5XX in text and ALARM_LATENCY in text
    assert github_notifier.STATUS[dep.state] == "in_progress"
    assert github_notifier.describe(dep).startswith("Baking until") and ALARM_5XX in \
        github_notifier.describe(dep)
    world.clock.now += timedelta(minutes=6)
    reconcile.reconcile(world)
    text = str(slack_message.status_message(deployment_json(world.load(dep.id)))[1])
    assert "bake of 5 min quiet" in text



def test_a_rollback_a_dead_worker_never_created_is_created_by_the_reconciler(world, monkeypatch):
    """The worker ended the bake ROLLED_BACK and died before creating the rollback: the next
    reconcile creates exactly that one (same id); later reconciles create nothing more."""
    dep = rolled_out(world)
    real = verify.rollback.start

    def dies(*args, **kwargs):
        raise RuntimeError("Lambda timed out")

    monkeypatch.setattr(verify.rollback, "start", dies)
    try:
        verify.on_alarm_state_change(world, alarm_event())
    except RuntimeError:
        pass
    monkeypatch.setattr(verify.rollback, "start", real)
    dep = world.load(dep.id)
    assert dep.state is State.ROLLED_BACK and not rollbacks(world)
    done = reconcile.reconcile(world)
    [rb] = rollbacks(world)
    assert rb.id == dep.verify["rollback"] and "started" in done[dep.id]
    reconcile.reconcile(world)
    assert len(rollbacks(world)) == 1
