"""Promotion: the same digest from one service to the next (config rules and the domain's choices)."""
from __future__ import annotations

import pytest

from datetime import datetime, timezone

from chalicelib import config
from chalicelib.adapters import slack_message
from chalicelib.adapters.log_notifier import FanOut
from chalicelib.domain.model import State
from chalicelib.entrypoints import pages
from chalicelib.errors import ConfigError, Conflict, SlipwayError
from chalicelib.service import pipeline, promote, reconcile
from chalicelib.service.views import deployment_json
from tests.fakes import RecordingNotifier
from tests.ops_kit import TARGET, write_config
from tests.unit.pipeline_kit import (approve, build_world, completed, push, stopped, to_success)

FAR = datetime(2030, 1, 1, tzinfo=timezone.utc)  # the kit's freeze window, out of the way

PAIR = """
[[service]]
name = "web-staging"
repository = "web"
cluster = "staging"
service = "web"
container = "app"
[service.approval]
required = false
{staging}

[[service]]
name = "web"
repository = "web"
cluster = "prod"
service = "web"
container = "app"
[service.approval]
approvers = ["*"]
[service.promote]
{promote}
"""


def load(tmp_path, promote: str = 'from = "web-staging"', staging: str = ""):
    path = tmp_path / "services.toml"
    path.write_text(PAIR.format(promote=promote, staging=staging))
    return config.load(path)


def test_promote_from_names_the_source_service(tmp_path):
    """[service.promote] from = "web-staging" loads; the source itself has no promotion."""
    cfg = load(tmp_path)
    assert cfg.service("web").promote.source == "web-staging"
    assert cfg.service("web-staging").promote is None


@pytest.mark.parametrize("promote, staging, words", [
    ('from = "web-stagin"', "", "no service named 'web-stagin'"),
    ('from = "web"', "", "cannot promote from itself"),
    ('from = ""', "", "key 'from' must name a service"),
    ('from = "web-staging"\nauto = true', "", "unknown key 'auto'"),
    ('from = "web-staging"', '[service.promote]\nfrom = "web"', "circle"),
])
def test_bad_promotions_fail_naming_file_service_and_key(tmp_path, promote, staging, words):
    """Unknown, self or circular sources and unknown keys fail at load time."""
    with pytest.raises(ConfigError) as err:
        load(tmp_path, promote, staging)
    assert "services.toml: service" in err.value.message and words in err.value.message


# -- the service layer, on fakes ------------------------------------------------------------------
@pytest.fixture
def stages(tmp_path):
    """ecs/production plus better-chatbot-eu promoted from better-chatbot (tests/ops_kit.py); the
    source's SUCCEEDED proposes at once, as the deployed notifier chain does."""
    cfg = config.load(write_config(tmp_path / "cfg", freeze_start=FAR) / "services.toml")
    deps = build_world(cfg)
    deps.notifier = FanOut(RecordingNotifier(), promote.Trigger(deps))
    return deps


def proposals(deps):
    return deps.ledger.list(service=TARGET)


def succeed(deps, dep):
    """Carry an approved promotion through migration and rollout."""
    approve(deps, dep)
    dep = deps.load(dep.id)
    pipeline.migration_stopped(deps, stopped(dep))
    deps.ecs.finish_rollout("production-cluster", TARGET)
    pipeline.rollout_changed(deps, completed(deps.load(dep.id)))
    return deps.load(dep.id)


def test_a_success_proposes_the_same_digest_and_pushes_never_deploy_the_target(stages):
    """better-chatbot SUCCEEDED → one PENDING_APPROVAL promote of its digest, nothing from pushes."""
    source = to_success(stages)
    (dep,) = proposals(stages)
    assert dep.kind == "promote" and dep.state is State.PENDING_APPROVAL
    assert dep.image_digest == source.image_digest and dep.image == source.image
    assert dep.promoted_from["deployment"] == source.id
    assert dep.promoted_from["approved_by"] == ["slack:U0APPROVER1"]
    assert dep.task_definition["family"] == TARGET
    card = str(slack_message.request_message(deployment_json(dep, stages.config.service(TARGET))))
    assert f"Promote {TARGET} 1.22.0 from better-chatbot" in card
    assert "*Promote* `1.22.0-abc123d` from `better-chatbot` (SUCCEEDED 09:00 UTC" in card
    assert "approved by <@U0APPROVER1>" in card
    assert f"Promoted from</th><td><code>better-chatbot</code> <code>{source.id}</code> " \
           "(SUCCEEDED" in pages.facts(deployment_json(dep))
    push(stages)  # another push: only better-chatbot gets a deployment
    assert len(proposals(stages)) == 1
    done = succeed(stages, dep)
    assert done.state is State.SUCCEEDED and done.migration["exit_code"] == 0
    running = stages.ecs.describe_service("production-cluster", TARGET)["taskDefinition"]
    image = stages.ecs.describe_task_definition(running)["containerDefinitions"][0]["image"]
    assert image.endswith("@" + source.image_digest)


def test_newest_wins_among_promotions(stages):
    """v2 succeeding supersedes v1's waiting proposal; asking for v2 twice, or for the older v1
    while v2 waits, is a 409."""
    v1 = to_success(stages, tags=("1111111", "1.0.0-1111111"))
    v2 = to_success(stages, tags=("2222222", "1.1.0-2222222"))
    by_source = {d.promoted_from["deployment"]: d for d in proposals(stages)}
    assert by_source[v1.id].state is State.SUPERSEDED
    assert by_source[v2.id].state is State.PENDING_APPROVAL
    with pytest.raises(Conflict) as refused:  # its proposal still waits: once is enough
        promote.propose(stages, TARGET, v2.id)
    assert refused.value.code == "already_proposed"
    # ECR's push times order images (as for pushes); the v1 proposal ended, so it may be asked
    # for again, but v2 was pushed later and waits: v1 is older than what the target has.
    stages.ecs.pushed_at.update({v1.image_digest: "2026-11-26T08:00:00+00:00",
                                 v2.image_digest: "2026-11-26T08:30:00+00:00"})
    waiting = by_source[v2.id]
    waiting.pushed_at = "2026-11-26T08:30:00+00:00"
    stages.ledger.save(waiting)
    with pytest.raises(Conflict) as older:
        promote.propose(stages, TARGET, v1.id)
    assert older.value.code == "older_than_current" and waiting.id in older.value.message


@pytest.mark.parametrize("case, status, code", [
    ("target without [service.promote]", 409, "not_promoted"),
    ("deployment of another service", 400, "wrong_source"),
    ("not SUCCEEDED", 409, "not_promotable"),
    ("digest missing from the target's repository", 409, "image_not_in_repository"),
])
def test_explicit_promotions_that_cannot_be(stages, case, status, code):
    """Each refusal has its status and code, says what to do, and creates nothing."""
    stages.notifier = RecordingNotifier()  # no automatic proposal: only the explicit one
    source = to_success(stages)
    target, dep_id = TARGET, source.id
    if case.startswith("target"):
        target = "better-chatbot-worker"
    elif case.startswith("deployment of another"):
        dep_id = push(stages, service="better-chatbot-worker", tags=("abc1234",)).id
    elif case == "not SUCCEEDED":
        dep_id = push(stages, tags=("3333333", "1.3.0-3333333")).id
    else:
        stages.ecs.images.pop(("better-chatbot", source.image_digest))
    before = len(stages.ledger.list(limit=200))
    with pytest.raises(SlipwayError) as refused:
        promote.propose(stages, target, dep_id)
    assert (refused.value.status, refused.value.code) == (status, code)
    if code == "image_not_in_repository":
        assert "replicat" in refused.value.message
    assert len(stages.ledger.list(limit=200)) == before


def test_the_reconciler_proposes_what_a_dead_lambda_did_not(stages):
    """Without the immediate trigger (the Lambda died after SUCCEEDED), reconcile proposes once."""
    stages.notifier = RecordingNotifier()
    source = to_success(stages)
    assert proposals(stages) == []
    reconcile.reconcile(stages)
    reconcile.reconcile(stages)
    (dep,) = proposals(stages)
    assert dep.promoted_from["deployment"] == source.id and dep.state is State.PENDING_APPROVAL
