"""The service layer on in-memory fakes: intake, decisions, migration, rollout, reconcile, prune."""
from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

import pytest

from chalicelib import config as config_mod
from chalicelib.adapters.ledger_memory import MemoryLedger
from chalicelib.domain.model import State
from chalicelib.errors import Conflict, Forbidden
from chalicelib.service import decisions, intake, pipeline, prune, reconcile, rollback
from chalicelib.service.deps import Deps, Settings
from chalicelib.service.events import DeploymentChanged, TaskStopped
from tests.conftest import CONFIG_DIR, fresh_id, load_event
from tests.fakes import FakeEcs, QueueDispatcher, RecordingNotifier

WEB, WORKER = "better-chatbot", "better-chatbot-worker"
DIGESTS = iter(f"sha256:{i:064x}" for i in range(1, 10_000))


class Clock:
    def __init__(self):
        self.now = datetime(2026, 11, 26, 9, 0, tzinfo=timezone.utc)

    def __call__(self):
        self.now += timedelta(milliseconds=10)
        return self.now


@pytest.fixture
def world():
    cfg = config_mod.load(CONFIG_DIR / "services.toml")
    ecs = FakeEcs()
    for svc in cfg.services:
        body = svc.template or {"family": svc.service, "containerDefinitions": [
            {"name": svc.container, "image": "bootstrap:1"}]}
        ecs.add_service(svc.cluster, svc.service, body)
    deps = Deps(config=cfg, ledger=MemoryLedger(), ecs=ecs, notifier=RecordingNotifier(),
                dispatcher=QueueDispatcher(), secrets=lambda: {"link_signing_key": "k" * 32},
                clock=Clock(), settings=Settings(stale_seconds=60))
    return deps


def push(deps, service=WEB, tags=("abc123d", "1.22.0-abc123d", "latest")):
    digest = next(DIGESTS)
    svc = deps.config.service(service)
    deps.ecs.images[(svc.repository, digest)] = list(tags)
    for tag in tags:
        event = fresh_id(load_event("ecr_push_sha"))
        event["detail"].update({"repository-name": svc.repository, "image-digest": digest,
                                "image-tag": tag})
        intake.on_image_pushed(deps, event)
    return deps.ledger.find(f"key#{service}#{digest}")


def approve(deps, dep, who="slack:U0APPROVER1"):
    out = decisions.decide(deps, dep.id, identity=who, via="slack", decision="approve")
    deps.dispatcher.drain(deps)
    return out


def stopped(dep, exit_code=0, stop_code="EssentialContainerExited"):
    return TaskStopped(task_arn=dep.migration["task_arn"], cluster_arn="", version=3,
                       started_by=f"slipway/{dep.id}", last_status="STOPPED",
                       stop_code=stop_code, stopped_reason="Essential container in task exited",
                       containers=({"name": "app", "exitCode": exit_code},))


def completed(dep, name="SERVICE_DEPLOYMENT_COMPLETED", reason="done"):
    return DeploymentChanged(name, dep.ecs_deployment_id, reason, None)


def to_success(deps, tags=("abc123d", "1.22.0-abc123d", "latest")):
    dep = push(deps, tags=tags)
    approve(deps, dep)
    dep = deps.load(dep.id)
    pipeline.migration_stopped(deps, stopped(dep))
    dep = deps.load(dep.id)
    deps.ecs.finish_rollout("production-cluster", WEB)
    pipeline.rollout_changed(deps, completed(dep), prune=prune.after_success)
    return deps.load(dep.id)


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
            wait_minutes=5)) if s.name == WEB else s for s in world.config.services))
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
    stored.notifications["author"] = "github:octocat"
    world.ledger.save(stored)
    with pytest.raises(Forbidden, match="you wrote this change"):
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


def test_recorded_in_progress_is_noted_once(world):
    """IN_PROGRESS (sent more than once) adds one timeline line and changes no state."""
    dep = push(world)
    approve(world, dep)
    pipeline.migration_stopped(world, stopped(world.load(dep.id)))
    event = load_event("deployment_in_progress")
    event["detail"]["deploymentId"] = world.load(dep.id).ecs_deployment_id
    pipeline.on_deployment_state_change(world, event)
    pipeline.on_deployment_state_change(world, event)
    dep = world.load(dep.id)
    assert dep.state is State.DEPLOYING
    assert sum(t["note"].startswith("rollout in progress") for t in dep.timeline) == 1


def test_a_write_racing_an_ecs_call_does_not_lose_its_answer(world):
    """A tag arriving while UpdateService runs bumps the version; the ECS deployment id is kept."""
    dep = push(world, service=WORKER, tags=("abc123d",))
    real = world.ecs.update_service

    def update_with_a_racing_tag(*args):
        intake._merge_tag(world, world.load(dep.id), "1.0.0-abc123d")  # another event, meanwhile
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
    """A worker that claimed RunTask and was killed (Lambda timeout): nobody else runs the task
    while the claim is fresh; once it has expired, the reconciler runs it, once."""
    from chalicelib.domain.model import iso

    dep = push(world)
    decisions.decide(world, dep.id, identity="slack:U0APPROVER1", via="slack", decision="approve")
    pipeline._start(world, dep.id)
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
    assert world.load(dep.id).migration["task_arn"] and world.ecs.calls.count("RunTask") == runs + 1


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


def test_a_task_stopped_from_outside_is_not_a_successful_migration(world):
    """Exit 0 after a StopTask/Spot interruption does not count: the rollout does not start."""
    dep = push(world)
    approve(world, dep)
    out = pipeline.migration_stopped(world, stopped(world.load(dep.id), exit_code=0,
                                                    stop_code="SpotInterruption"))
    dep = world.load(dep.id)
    assert out.endswith("FAILED") and "SpotInterruption" in dep.reason
    assert "UpdateService" not in world.ecs.calls


def test_the_reconciler_frees_a_service_held_by_a_finished_deployment(world):
    """A lock left behind (a crash between writes) is freed, so the next approval can go on."""
    dep = push(world)
    approve(world, dep)
    pipeline.migration_stopped(world, stopped(world.load(dep.id), exit_code=1))
    world.ledger._locks[WEB] = dep.id  # as if the release had been lost
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
    """A throttled RunTask is retried; still refused after six waits, the deployment FAILS."""
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
    assert dep.state is State.FAILED and "did not accept" in dep.reason


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
    first = finish_rollback(rollback.rollback(world, WEB, "previous", "bad", "iam:me"))
    assert first.task_definition_arn == v1.task_definition_arn
    second = finish_rollback(rollback.rollback(world, WEB, "previous", "still bad", "iam:me"))
    assert second.task_definition_arn == v0.task_definition_arn != v2.task_definition_arn


def test_an_older_build_heard_of_last_does_not_supersede_the_newer_one(world):
    """ECR events arrive unordered: the image pushed last waits for approval, whatever came first."""
    world.ecs.pushed_at["sha256:" + "e" * 64] = "2026-11-26T08:00:00+00:00"  # build 1
    world.ecs.pushed_at["sha256:" + "f" * 64] = "2026-11-26T08:05:00+00:00"  # build 2
    digests = iter(["sha256:" + "f" * 64, "sha256:" + "e" * 64])  # build 2's event arrives first
    global DIGESTS
    saved, DIGESTS = DIGESTS, digests
    try:
        second = push(world, tags=("2222222",))
        first = push(world, tags=("1111111",))
    finally:
        DIGESTS = saved
    assert world.load(second.id).state is State.PENDING_APPROVAL
    first = world.load(first.id)
    assert first.state is State.SUPERSEDED and second.id in first.reason


def test_an_older_build_heard_of_after_the_newer_one_deployed_is_not_deployed(world):
    """A late event for an older build of an approval-free service must not roll the newer back."""
    world.ecs.pushed_at["sha256:" + "c" * 64] = "2026-11-26T08:00:00Z"  # build 1
    world.ecs.pushed_at["sha256:" + "d" * 64] = "2026-11-26T09:05:00+01:00"  # build 2 (08:05Z)
    global DIGESTS
    saved, DIGESTS = DIGESTS, iter(["sha256:" + "d" * 64, "sha256:" + "c" * 64])
    try:
        second = push(world, service=WORKER, tags=("2222222",))
        world.dispatcher.drain(world)
        first = push(world, service=WORKER, tags=("1111111",))
        world.dispatcher.drain(world)
    finally:
        DIGESTS = saved
    assert world.load(first.id).state is State.SUPERSEDED
    assert world.load(second.id).state is State.DEPLOYING
    assert world.ecs.calls.count("UpdateService") == 1


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
