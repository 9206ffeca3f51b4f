"""The per-function policies deploy/iam.py generates from ecs/production: least privilege by
construction (what each function may do, on which resources), checked without AWS."""
from __future__ import annotations

import botocore.session
import pytest

from chalicelib import config as config_mod
from chalicelib.errors import ConfigError
from deploy import iam
from tests.conftest import CONFIG_DIR

NAMES = iam.Names(table="slipway-prod", idempotency_table="slipway-idempotency-prod",
                  queue="slipway-prod-work", secret_id="slipway/prod")
ECS_WRITES = {"ecs:RegisterTaskDefinition", "ecs:DeregisterTaskDefinition", "ecs:RunTask",
              "ecs:StopTask", "ecs:UpdateService", "ecs:DeleteTaskDefinitions",
              "ecs:CreateService", "ecs:DeleteService", "ecs:TagResource"}
DEPLOYED = list(iam.FUNCTIONS)


def policies(cfg=None) -> dict[str, dict]:
    cfg = cfg or config_mod.load(CONFIG_DIR / "services.toml")
    return {fn: iam.policy(fn, cfg, NAMES, iam.function_name("slipway", "prod", fn))
            for fn in DEPLOYED}


def statements(policy: dict) -> list[dict]:
    return [s for s in policy["Statement"] if "Fn::If" not in s]


def actions(policy: dict) -> set[str]:
    return {a for s in statements(policy) for a in s["Action"]}


def test_the_api_handler_can_neither_change_ecs_nor_pass_a_role():
    """The internet-facing function reads the ledger, the secret and services; it writes ECS
    nothing and passes no role."""
    api = actions(policies()["api_handler"])
    assert not api & ECS_WRITES and "iam:PassRole" not in api
    assert {"ecs:DescribeServices", "sqs:SendMessage", "dynamodb:GetItem"} <= api


def test_each_function_has_a_policy_of_its_own():
    got = policies()
    assert len(got) == len(iam.FUNCTIONS) == 8
    assert len({repr(sorted(actions(p))) for p in got.values()}) == 8


def test_no_wildcard_resource_for_an_ecs_write_or_passrole():
    """Only the four task-definition actions without resource-level permissions take `*`, and
    ListTasks (read-only) under the migration clusters' condition."""
    for fn, policy in policies().items():
        for st in statements(policy):
            if "*" in st["Resource"] or st["Resource"] == "*":
                if st["Action"] == ["ecs:ListTasks"]:
                    assert st["Condition"]["ArnEquals"]["ecs:cluster"], (fn, st)
                    continue
                assert set(st["Action"]) <= iam.NO_RESOURCE_LEVEL | set(iam.XRAY), (fn, st)


def test_scopes_come_from_the_config():
    """RunTask: the template's family, only in its cluster; PassRole: its roles, to ECS tasks
    only; UpdateService: the configured services."""
    work = policies()["work"]
    by_action = {a: s for s in statements(work) for a in s["Action"]}
    run = by_action["ecs:RunTask"]
    assert [r["Fn::Sub"].split("}:")[-1] for r in run["Resource"]] == [
        "task-definition/better-chatbot:*"]
    assert run["Condition"]["ArnEquals"]["ecs:cluster"][0]["Fn::Sub"].endswith(
        ":cluster/production-cluster")
    passrole = by_action["iam:PassRole"]
    assert passrole["Resource"] == [
        "arn:aws:iam::123456789012:role/better-chatbot-api-task",
        "arn:aws:iam::123456789012:role/better-chatbot-task",
        "arn:aws:iam::123456789012:role/better-chatbot-task-execution",
        "arn:aws:iam::123456789012:role/better-chatbot-worker-task"]
    assert passrole["Condition"] == {"StringEquals": {"iam:PassedToService":
                                                      "ecs-tasks.amazonaws.com"}}
    services = [r["Fn::Sub"].split("}:")[-1] for r in by_action["ecs:UpdateService"]["Resource"]]
    assert services == ["service/production-cluster/better-chatbot",
                        "service/production-cluster/better-chatbot-api",
                        "service/production-cluster/better-chatbot-worker"]


def test_every_action_exists_and_unused_ones_are_gone():
    """Each action is an operation of its service's API in botocore's model (iam:PassRole is a
    permission-only action); the removed ones stay removed."""
    session = botocore.session.get_session()
    models = {"dynamodb": "dynamodb", "ecs": "ecs", "ecr": "ecr", "sqs": "sqs", "logs": "logs",
              "secretsmanager": "secretsmanager", "xray": "xray", "cloudwatch": "cloudwatch"}
    every = set().union(*(actions(p) for p in policies().values()))
    for action in every - {"iam:PassRole"}:
        prefix, op = action.split(":")
        assert op in session.get_service_model(models[prefix]).operation_names, action
    assert not every & {"ecs:DeleteTaskDefinitions", "ecr:BatchGetImage",
                        "dynamodb:TransactWriteItems", "cloudwatch:PutMetricData"}


def test_a_cloned_service_without_its_roles_is_refused(tmp_path):
    """Without a template, only `task_roles` says which roles Slipway may pass: fail, naming it."""
    text = (CONFIG_DIR / "services.toml").read_text()
    start = text.index("task_roles = [")
    end = text.index("]", start) + 1
    (tmp_path / "services.toml").write_text(text[:start] + text[end:])
    (tmp_path / "task-definition.json").write_text(
        (CONFIG_DIR / "task-definition.json").read_text())
    cfg = config_mod.load(tmp_path / "services.toml")
    with pytest.raises(ConfigError, match="better-chatbot-worker.*'task_roles'"):
        policies(cfg)
