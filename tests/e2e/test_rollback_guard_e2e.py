"""The rollback guard on the devstack, over HTTP: refused past a migration, then forced on record.

GIVEN two deployments of better-chatbot (each ran `pnpm db:migrate`), WHEN an operator rolls back
to the first, THEN 409 migrations_since_target names the second; forced with a reason, the
rollback runs and the ledger, Slack and GitHub say it was forced and by whom.
"""
from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.timeout(120)
ROLLBACK = "/services/better-chatbot/rollback"


def test_a_rollback_past_a_migration_is_refused_then_forced_on_record(devstack):
    first, second = devstack.deploy(), devstack.deploy()
    assert (first["state"], second["state"]) == ("SUCCEEDED", "SUCCEEDED")
    count = len(devstack.get_json("/deployments?service=better-chatbot&limit=200")["deployments"])

    status, refused = devstack.post_json(ROLLBACK, {"to": first["id"], "reason": "bad release"})
    assert status == 409 and refused["error"] == "migrations_since_target", refused
    (listed,) = refused["migrations"]
    assert listed["id"] == second["id"] and listed["version"] == second["version"]
    assert listed["command"] == ["pnpm", "db:migrate"] and listed["at"]
    assert "force" in refused["message"]
    assert len(devstack.get_json("/deployments?service=better-chatbot&limit=200")
               ["deployments"]) == count  # nothing was created

    status, bad = devstack.post_json(ROLLBACK, {"to": first["id"], "force": True})
    assert status == 400 and bad["error"] == "bad_rollback", bad

    status, dep = devstack.post_json(ROLLBACK, {"to": first["id"], "force": True,
                                                "reason": "the new column is unused"})
    assert status == 202, dep
    assert dep["forced"]["reason"] == "the new column is unused"
    # the IAM caller API Gateway verified: in the devstack, the user of its signing key
    assert dep["forced"]["by"] == "iam:arn:aws:iam::123456789012:user/devstack"
    assert [m["id"] for m in dep["forced"]["migrations"]] == [second["id"]]
    done = devstack.wait_finished(dep["id"])
    assert done["state"] == "SUCCEEDED" and done["migration"] is None
    assert any(t["note"].startswith("FORCED by iam:") for t in done["timeline"])
    assert devstack.service()["taskDefinition"] == first["task_definition_arn"]

    slack = [m for m in devstack.get_json("/_devstack/slack/messages")["messages"]
             if dep["id"] in json.dumps(m["blocks"])]
    assert slack and "Forced* past migrations" in json.dumps(slack[-1]["blocks"])
    github = [d for d in devstack.get_json("/_devstack/github/deployments")["deployments"]
              if d["payload"].get("slipway_id") == dep["id"]]
    assert github and github[0]["description"].startswith("FORCED by iam:")
    assert github[0]["payload"]["forced"]["reason"] == "the new column is unused"
