"""Pure domain rules: transitions, task-definition edits, tags, pruning choice, signed links."""
from __future__ import annotations

import copy
import re
from datetime import datetime, timedelta, timezone

import pytest

from chalicelib.domain import links, taskdef
from chalicelib.domain.model import TRANSITIONS, Deployment, IllegalTransition, State
from chalicelib.domain.prune import revisions_to_prune
from chalicelib.domain.tags import describe, may_deploy, parse_tag
from chalicelib.errors import BadRequest, ConfigError, Conflict, Unauthorized

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)


def dep(state: State = State.PENDING_APPROVAL) -> Deployment:
    return Deployment(id="d-1", service="web", kind="deploy", state=state,
                      created_at="2026-11-26T11:00:00Z")


@pytest.mark.parametrize("start", list(State))
def test_every_state_allows_exactly_its_listed_moves(start):
    """Each state moves only where the one transition table says; others raise a 409 error."""
    for to in State:
        d = dep(start)
        if to in TRANSITIONS[start]:
            d.transition(to, "ok", NOW)
            assert d.state is to and d.timeline[-1]["state"] == to.value
        else:
            with pytest.raises(IllegalTransition) as err:
                d.transition(to, "no", NOW)
            assert err.value.status == 409 and d.state is start and not d.timeline


def test_duration_counts_the_deployment_not_the_wait_for_approvers():
    """Duration runs from approval to the end; the wait for approvers is reported apart."""
    d = dep()  # pushed at 11:00
    d.transition(State.APPROVED, "ok", NOW - timedelta(minutes=10))
    d.transition(State.DEPLOYING, "go", NOW - timedelta(minutes=9))
    assert d.duration_seconds() is None
    d.transition(State.SUCCEEDED, "done", NOW)
    assert d.finished_at == "2026-11-26T12:00:00Z"
    assert d.duration_seconds() == 600 and d.approval_wait_seconds() == 3000


def test_deployment_round_trips_through_its_item():
    """What the ledger stores reads back as the same deployment."""
    d = dep()
    d.approvals.append({"by": "slack:U1", "via": "slack", "decision": "approve", "comment": "",
                        "at": "x"})
    assert Deployment.from_item(d.to_item()) == d


TEMPLATE = {
    "family": "web", "taskDefinitionArn": "arn:aws:ecs:r:1:task-definition/web:7", "revision": 7,
    "status": "ACTIVE", "compatibilities": ["FARGATE"], "registeredAt": "2026-01-01",
    "requiresAttributes": [{"name": "x"}], "cpu": "256", "memory": "512",
    "containerDefinitions": [
        {"name": "app", "image": "repo:old", "essential": True,
         "environment": [{"name": "DB_PASSWORD", "value": "hunter2"}, {"name": "MODE", "value": "a"}],
         "secrets": [{"name": "TOKEN", "valueFrom": "arn:aws:ssm:r:1:parameter/token"}]},
        {"name": "sidecar", "image": "envoy:1"},
    ],
}


def test_pin_image_replaces_only_the_configured_container_and_drops_read_only_keys():
    """The new revision runs repo@digest in the configured container and is registrable as is."""
    body = taskdef.pin_image(TEMPLATE, "app", "repo@sha256:" + "a" * 64)
    assert body["containerDefinitions"][0]["image"] == "repo@sha256:" + "a" * 64
    assert body["containerDefinitions"][1]["image"] == "envoy:1"
    assert not set(body) & taskdef.READ_ONLY_KEYS
    assert TEMPLATE["containerDefinitions"][0]["image"] == "repo:old"  # input untouched


def test_pin_image_refuses_an_unknown_container():
    """A container name that is not in the task definition is a configuration error."""
    with pytest.raises(ConfigError):
        taskdef.pin_image(TEMPLATE, "web", "repo@sha256:" + "a" * 64)


def test_diff_shows_changes_but_never_environment_or_secret_values():
    """The diff names changed env vars and secrets but shows *** instead of their values."""
    new = taskdef.pin_image(TEMPLATE, "app", "repo@sha256:" + "b" * 64)
    new["containerDefinitions"][0]["environment"][0]["value"] = "correct-horse"
    new["containerDefinitions"][0]["secrets"][0]["valueFrom"] = "arn:aws:ssm:r:1:parameter/t2"
    new["memory"] = "1024"
    changes = {c["path"]: c for c in taskdef.diff(TEMPLATE, new)}
    assert changes["container[app].image"]["new"] == "repo@sha256:" + "b" * 64
    assert changes["memory"] == {"path": "memory", "old": "512", "new": "1024"}
    assert changes["container[app].environment.DB_PASSWORD"]["new"] == "***"
    assert changes["container[app].secrets.TOKEN"]["old"] == "***"
    assert "container[app].environment.MODE" not in changes
    text = repr(changes)
    assert "hunter2" not in text and "correct-horse" not in text and "parameter/t2" not in text


def test_validate_template_names_what_is_wrong():
    """A template that is not a task definition fails with a message saying why."""
    with pytest.raises(ConfigError, match="containerDefinitions"):
        taskdef.validate_template({"family": "x"}, "app")
    with pytest.raises(ConfigError, match="does not have: foo"):
        taskdef.validate_template({**TEMPLATE, "foo": 1}, "app")
    with pytest.raises(ConfigError, match="no container named 'web'"):
        taskdef.validate_template(TEMPLATE, "web")


@pytest.mark.parametrize("tag,version,commit", [
    ("abc123d", None, "abc123d"), ("1.22.0-abc123d", "1.22.0", "abc123d"),
    ("1.22.0-rc.1-abc123d", "1.22.0-rc.1", "abc123d"), ("latest", None, None),
    ("release", None, None),
])
def test_tags_give_version_and_commit(tag, version, commit):
    """`<version>-<sha>` gives both, `<sha>` gives the commit, anything else neither."""
    info = parse_tag(tag)
    assert (info.version, info.commit) == (version, commit)


def test_latest_never_deploys_whatever_the_pattern():
    """Even a deploy_tags regex that matches everything cannot make `latest` start a deployment."""
    anything = re.compile(".*")
    assert not may_deploy("latest", anything)
    assert not may_deploy(None, anything)
    assert may_deploy("abc123d", anything)
    assert not may_deploy("abc123d", re.compile(r"\d+\.\d+\.\d+-[0-9a-f]{7}"))


def test_describe_prefers_the_version_tag():
    """Of the seed's three tags, the version tag names the deployment."""
    best, info = describe(["latest", "abc123d", "1.22.0-abc123d"])
    assert best == "1.22.0-abc123d" and info.version == "1.22.0"


def arns(*revisions: int) -> list[str]:
    return [f"arn:aws:ecs:r:1:task-definition/web:{r}" for r in revisions]


def test_prune_keeps_the_newest_n_and_every_protected_revision():
    """Old revisions go, oldest first, but never the newest N or one a rollback needs."""
    active = arns(*range(1, 11))
    doomed = revisions_to_prune(active, keep=3, protected={"web:2", arns(5)[0]})
    assert doomed == arns(1, 3, 4, 6, 7)


def test_prune_with_fewer_revisions_than_keep_removes_nothing():
    """A young family loses nothing."""
    assert revisions_to_prune(arns(1, 2), keep=5, protected=set()) == []


KEY = b"k" * 32


def test_link_token_verifies_for_its_deployment_only():
    """A token works for the deployment and identity it was issued for, until it expires."""
    token = links.sign(KEY, "d-1", "slack:U1", expires=2_000)
    claims = links.verify(KEY, token, "d-1", now=1_000)
    assert claims.identity == "slack:U1" and claims.scope == "decide"
    with pytest.raises(Unauthorized):
        links.verify(KEY, token, "d-2", now=1_000)
    with pytest.raises(Conflict, match="expired"):  # genuine but over: a state, 409
        links.verify(KEY, token, "d-1", now=2_001)


def test_forged_or_tampered_tokens_are_refused():
    """Changing a claim, or signing with another key, makes the token worthless."""
    token = links.sign(KEY, "d-1", "slack:U1", expires=2_000)
    body, mac = token.split(".")
    forged = links.sign(b"x" * 32, "d-1", "slack:U1", expires=2_000)
    tampered = links._b64(links._unb64(body).replace(b"U1", b"U2")) + "." + mac
    for bad in (forged, tampered):
        with pytest.raises(Unauthorized):
            links.verify(KEY, bad, "d-1", now=1_000)
    with pytest.raises(BadRequest):
        links.verify(KEY, "garbage", "d-1", now=1_000)
    with pytest.raises(BadRequest):  # compare_digest refuses non-ASCII: never a 500
        links.verify(KEY, token[:-1] + "é", "d-1", now=1_000)
    other_scope = links.sign(KEY, "d-1", "slack:U1", expires=2_000, scope="view")
    with pytest.raises(Unauthorized):
        links.verify(KEY, other_scope, "d-1", now=1_000)


def test_window_and_expiry():
    """Approval windows are computed from the push time."""
    from chalicelib.config import Approval
    from chalicelib.domain.approval import is_expired, open_window

    d = dep()
    open_window(d, Approval(wait_minutes=10, expires_hours=2), NOW)
    assert d.not_before == "2026-11-26T12:10:00Z"
    assert not is_expired(d, NOW + timedelta(hours=1))
    assert is_expired(d, NOW + timedelta(hours=2))


def test_diff_redacts_dotted_env_names_log_options_and_credentials():
    """Env names with dots, log-driver options and registry credentials never show their values."""
    old = {"family": "web", "containerDefinitions": [{
        "name": "app", "image": "a", "environment": [{"name": "spring.datasource.password",
                                                      "value": "hunter2"}],
        "logConfiguration": {"logDriver": "awsfirelens", "options": {"apikey": "dd-key-1"}},
        "repositoryCredentials": {"credentialsParameter": "arn:cred:1"}}]}
    new = copy.deepcopy(old)
    c = new["containerDefinitions"][0]
    c["environment"][0]["value"] = "hunter3"
    c["logConfiguration"]["options"]["apikey"] = "dd-key-2"
    c["repositoryCredentials"]["credentialsParameter"] = "arn:cred:2"
    c["logConfiguration"]["logDriver"] = "awslogs"
    changes = taskdef.diff(old, new)
    text = repr(changes)
    for secret in ("hunter", "dd-key", "arn:cred"):
        assert secret not in text
    assert {"path": "container[app].logConfiguration.logDriver", "old": "awsfirelens",
            "new": "awslogs"} in changes
    assert len(changes) == 4


def test_a_container_added_whole_still_hides_its_values():
    """A sidecar new in this revision is listed field by field, its env values redacted."""
    old = {"family": "web", "containerDefinitions": [{"name": "app", "image": "a"}]}
    new = copy.deepcopy(old)
    new["containerDefinitions"].append({"name": "agent", "image": "dd:7", "environment": [
        {"name": "DD_API_KEY", "value": "sekrit"}]})
    changes = {c["path"]: c for c in taskdef.diff(old, new)}
    assert changes["container[agent].image"]["new"] == "dd:7"
    assert changes["container[agent].environment.DD_API_KEY"]["new"] == "***"
    assert "sekrit" not in repr(changes)
