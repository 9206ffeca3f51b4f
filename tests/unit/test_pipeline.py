"""The service layer on in-memory fakes: intake, decisions, migration, rollout, metrics."""
from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from chalicelib.domain.model import State
from chalicelib.errors import Conflict, Forbidden
from chalicelib.service import decisions, intake, pipeline
from tests.conftest import load_event
from tests.unit.pipeline_kit import (WEB, WORKER, approve, completed, push, stopped, to_success,
                                     world)

__all__ = ["world"]  # the fixture, imported for pytest


def test_a_whole_deployment_takes_few_aws_calls(world):
    """Push → SUCCEEDED costs a handful of ECS/ECR calls, whatever the rollout takes (≤ 12)."""
    dep = push(world)
    approve(world, dep)
    dep = world.load(dep.id)
    pipeline.migration_stopped(world, stopped(dep))
    before_prune = len(world.ecs.calls)
    world.ecs.finish_rollout("production-cluster", WEB)
    pipeline.rollout_changed(world, completed(world.load(dep.id)))
    assert world.load(dep.id).state is State.SUCCEEDED
    assert before_prune <= 12, world.ecs.calls


def test_a_newer_push_supersedes_the_pending_one(world):
    """Only the newest image waits for approval; the older request is closed as SUPERSEDED."""
    old = push(world, tags=("1111111",))
    new = push(world, tags=("2222222",))
    assert world.load(old.id).state is State.SUPERSEDED
    assert new.id in world.load(old.id).reason
    with pytest.raises(Conflict, match="superseded"):
        approve(world, world.load(old.id))


def test_a_service_without_approval_goes_straight_on(world):
    """The worker service needs no approval: the push alone deploys it (no migration)."""
    dep = push(world, service=WORKER)
    world.dispatcher.drain(world)
    dep = world.load(dep.id)
    assert dep.state is State.DEPLOYING and dep.ecs_deployment_id
    assert "RunTask" not in world.ecs.calls
    image = world.ecs.task_definitions[dep.task_definition_arn]["containerDefinitions"][0]["image"]
    assert image == dep.image


def test_approval_policy_stranger_quorum_wait_and_self_review(world):
    """Strangers are refused, quorum counts distinct people, wait and self-review are enforced."""
    policy = world.config.service(WEB).approval
    world.config = dataclasses.replace(world.config, services=tuple(
        dataclasses.replace(s, approval=dataclasses.replace(
            policy, approvers=("slack:U0A", "slack:U0B", "github:octocat"), quorum=2,
            wait_minutes=5)) if s.name == WEB else s for s in world.config.services),
        identities={"github:a": frozenset({"slack:U0A"}), "github:b": frozenset({"slack:U0B"})})
    dep = push(world)
    with pytest.raises(Forbidden):
        decisions.decide(world, dep.id, identity="slack:U0STRANGER", via="slack",
                         decision="approve")
    with pytest.raises(Conflict, match="open at"):
        decisions.decide(world, dep.id, identity="slack:U0A", via="slack", decision="approve")
    world.clock.now += timedelta(minutes=6)
    first = decisions.decide(world, dep.id, identity="slack:U0A", via="slack", decision="approve")
    again = decisions.decide(world, dep.id, identity="slack:U0A", via="link", decision="approve")
    assert "1 of 2" in first.message and "already approved" in again.message
    assert world.load(dep.id).state is State.PENDING_APPROVAL
    stored = world.load(dep.id)
    stored.notifications["authors"] = ["github:octocat"]
    world.ledger.save(stored)
    with pytest.raises(Forbidden, match="you wrote or committed part of this change"):
        decisions.decide(world, dep.id, identity="github:octocat", via="link", decision="approve")
    done = decisions.decide(world, dep.id, identity="slack:U0B", via="slack", decision="approve")
    assert done.deployment.state is State.APPROVED
    assert [a["by"] for a in done.deployment.approvals] == ["slack:U0A", "slack:U0B"]


def test_a_used_link_cannot_decide_again(world):
    """A link's nonce is spent by its decision; presenting it again is a 409."""
    dep = push(world)
    decisions.decide(world, dep.id, identity="slack:U0APPROVER1", via="link", decision="reject",
                     comment="not today", link_nonce="n1")
    assert world.load(dep.id).state is State.REJECTED
    with pytest.raises(Conflict, match="already used"):
        decisions.decide(world, dep.id, identity="slack:U0APPROVER1", via="link",
                         decision="approve", link_nonce="n1")


def test_circuit_breaker_failure_is_rolled_back(world):
    """A FAILED rollout on a service whose circuit breaker rolls back ends ROLLED_BACK."""
    dep = push(world)
    approve(world, dep)
    pipeline.migration_stopped(world, stopped(world.load(dep.id)))
    out = pipeline.rollout_changed(world, completed(
        world.load(dep.id), "SERVICE_DEPLOYMENT_FAILED",
        "ECS deployment circuit breaker: task failed to start."))
    dep = world.load(dep.id)
    assert out.endswith("ROLLED_BACK") and dep.state is State.ROLLED_BACK
    assert "circuit breaker" in dep.reason


def test_an_ecs_refusal_fails_the_deployment_with_the_reason(world):
    """If RunTask is refused, the deployment is FAILED with ECS's words, and nothing else runs."""
    world.ecs.fail_run_task = "No Container Instances were found in your cluster."
    dep = push(world)
    approve(world, dep)
    dep = world.load(dep.id)
    assert dep.state is State.FAILED and "No Container Instances" in dep.reason
    assert world.ledger.lock_holder(WEB) is None


def test_finished_deployments_emit_duration_and_success_metrics(world, capsys):
    """SUCCEEDED and FAILED deployments become CloudWatch metrics (EMF lines on stdout)."""
    import json

    from chalicelib.adapters.metrics import MetricsNotifier

    world.notifier = MetricsNotifier()
    to_success(world)
    failing = push(world, tags=("2222222", "1.23.0-2222222"))
    approve(world, failing)
    pipeline.migration_stopped(world, stopped(world.load(failing.id), exit_code=1))
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()
             if line.startswith("{") and "_aws" in line]
    by_name = {}
    for line in lines:
        for metric in line["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
            value = line[metric["Name"]]
            by_name.setdefault(metric["Name"], []).extend(value if isinstance(value, list)
                                                          else [value])
    assert by_name["DeploymentFinished"] == [1.0, 1.0]
    assert by_name["DeploymentSucceeded"] == [1.0, 0.0]
    assert len(by_name["DeploymentDuration"]) == 2 and all(d > 0 for d in by_name[
        "DeploymentDuration"])


def test_one_person_across_channels_is_one_approver(world):
    """With [identities], a GitHub-listed approver may click in Slack, and counts once for quorum."""
    from chalicelib.config import Config

    policy = world.config.service(WEB).approval
    world.config = Config(world.config.path, tuple(
        dataclasses.replace(s, approval=dataclasses.replace(
            policy, approvers=("github:octocat", "slack:U0B"), quorum=2,
            prevent_self_review=False)) if s.name == WEB else s for s in world.config.services),
        {"github:octocat": frozenset({"slack:U0OCTO"})})
    dep = push(world)
    first = decisions.decide(world, dep.id, identity="slack:U0OCTO", via="slack",
                             decision="approve")
    second = decisions.decide(world, dep.id, identity="github:octocat", via="link",
                              decision="approve")
    assert "1 of 2" in first.message and "already approved" in second.message
    assert world.load(dep.id).state is State.PENDING_APPROVAL
    done = decisions.decide(world, dep.id, identity="slack:U0B", via="slack", decision="approve")
    assert done.deployment.state is State.APPROVED


@pytest.mark.parametrize("fixture,why", [
    ("ecr_delete", "ignored: DELETE"), ("ecr_push_latest", "does not start"),
    ("ecr_push_no_tag", "does not start"), ("ecr_push_other_repo", "not configured"),
])
def test_recorded_ecr_events_that_must_not_deploy(world, fixture, why):
    """AWS's own shapes: a delete, `latest`, an untagged push, another repository: no deployment."""
    out = intake.on_image_pushed(world, load_event(fixture))
    assert why in out[0] and world.ledger.list() == []


def test_recorded_redelivery_and_sibling_tags_make_one_deployment(world):
    """The recorded push under three tags plus EventBridge's redelivery: one deployment."""
    digest = load_event("ecr_push_sha")["detail"]["image-digest"]
    world.ecs.images[("better-chatbot", digest)] = ["abc123d", "1.22.0-abc123d", "latest"]
    for name in ("ecr_push_sha", "ecr_push_version", "ecr_push_latest", "ecr_push_redelivery"):
        intake.on_image_pushed(world, load_event(name))
    [dep] = world.ledger.list()
    assert dep.version == "1.22.0" and dep.image_digest == digest


def test_recorded_circuit_breaker_events_end_the_deployment_rolled_back(world):
    """FAILED for our ECS deployment ends it ROLLED_BACK once; the rollback's own events (a new
    id, naming only the service) and a late one for another cluster touch nothing."""
    dep = push(world)
    approve(world, dep)
    pipeline.migration_stopped(world, stopped(world.load(dep.id)))
    dep = world.load(dep.id)
    rollback_event = load_event("deployment_rollback")
    assert pipeline.on_deployment_state_change(world, rollback_event).startswith("ignored")
    assert world.load(dep.id).state is State.DEPLOYING
    failed = load_event("deployment_failed")
    failed["detail"]["deploymentId"] = dep.ecs_deployment_id
    assert pipeline.on_deployment_state_change(world, failed).endswith("ROLLED_BACK")
    assert pipeline.on_deployment_state_change(world, failed).startswith("duplicate")
    dep = world.load(dep.id)
    assert dep.state is State.ROLLED_BACK and "circuit breaker" in dep.reason
    assert world.ledger.lock_holder(WEB) is None


def test_in_progress_is_acknowledged_without_touching_the_ledger(world):
    """IN_PROGRESS (sent more than once) changes nothing: no state, no write (DEPLOYING already
    says the rollout runs), so ECS's chatter costs no ledger call."""
    dep = push(world)
    approve(world, dep)
    pipeline.migration_stopped(world, stopped(world.load(dep.id)))
    event = load_event("deployment_in_progress")
    event["detail"]["deploymentId"] = world.load(dep.id).ecs_deployment_id
    before = world.load(dep.id)
    for _ in range(2):
        assert pipeline.on_deployment_state_change(world, event).startswith("ignored")
    dep = world.load(dep.id)
    assert dep.state is State.DEPLOYING and dep.lock_version == before.lock_version


def test_a_task_stopped_from_outside_is_not_a_successful_migration(world):
    """Exit 0 after a StopTask/Spot interruption does not count: the rollout does not start."""
    dep = push(world)
    approve(world, dep)
    out = pipeline.migration_stopped(world, stopped(world.load(dep.id), exit_code=0,
                                                    stop_code="SpotInterruption"))
    dep = world.load(dep.id)
    assert out.endswith("FAILED") and "SpotInterruption" in dep.reason
    assert "UpdateService" not in world.ecs.calls


def test_a_template_ecs_would_refuse_is_refused_at_push(world):
    """A task definition RegisterTaskDefinition would reject never waits for an approval."""
    from chalicelib.adapters.errors import AwsError

    svc = world.config.service(WEB)
    bad = dataclasses.replace(svc, template={**svc.template, "cpu": 256})
    world.config = dataclasses.replace(world.config, services=(bad,) + tuple(
        s for s in world.config.services if s.name != WEB))
    with pytest.raises(AwsError, match="would be refused"):
        push(world)
    assert world.ledger.list() == []
