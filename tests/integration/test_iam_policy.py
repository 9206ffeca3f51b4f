"""The explicit IAM policies allow every AWS call Slipway makes (Chalice's autogen only reads
app.py, so a call added in chalicelib/ without its permission would fail only in AWS)."""
from __future__ import annotations

import json

import pytest

from chalicelib.adapters import aws
from chalicelib.entrypoints import bootstrap
from chalicelib.service import reconcile, rollback
from tests.conftest import ROOT
from tests.integration.api_kit import client, run_to_success  # noqa: F401

__all__ = ["client"]


def allowed(stage: str) -> set[str]:
    policy = json.loads((ROOT / ".chalice" / f"policy-{stage}.json").read_text())
    actions = set()
    for statement in policy["Statement"]:
        if statement["Effect"] == "Allow":
            found = statement["Action"]
            actions |= set(found if isinstance(found, list) else [found])
    return actions


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_every_call_of_a_whole_deployment_is_allowed(stack, client, stage):  # noqa: F811
    """Push, approve, migrate, roll out, prune, reconcile and roll back: each call is permitted."""
    made: set[str] = set()
    bootstrap.reset()

    def record(model, **_):
        made.add(f"{model.service_model.signing_name}:{model.name}")

    aws._session().events.register("before-call.*.*", record)
    stack.deps()  # clients are built now, on the recording session
    run_to_success(stack, client, ["1111111", "1.0.0-1111111"])
    run_to_success(stack, client, ["2222222", "1.1.0-2222222"])
    rollback.rollback(stack.deps(), "better-chatbot", "previous", "test", "iam:test", force=True)
    stack.drain()
    reconcile.reconcile(stack.deps())
    assert {"ecs:RunTask", "ecs:UpdateService", "dynamodb:TransactWriteItems"} <= made
    missing = made - allowed(stage)
    assert not missing, f".chalice/policy-{stage}.json lacks {sorted(missing)}"
