"""``make demo SCENARIO=alarm-rollback``: the bake after a rollout, and an alarm rolling it back.

better-chatbot-api deploys on every push (no approval) and bakes 5 minutes watching two alarms:

1. release A rolls out, bakes; the devstack's clock moves 6 minutes; the quiet bake ends SUCCEEDED;
2. release B rolls out and bakes; ``POST /_devstack/alarms`` sets better-chatbot-api-5xx to ALARM
   and emits its "CloudWatch Alarm State Change" → on_alarm_state_change → B ends ROLLED_BACK and
   an automatic rollback deployment returns the service to A's revision.
"""
from __future__ import annotations

import time

from devstack.timeline import Follower

SERVICE = REPOSITORY = "better-chatbot-api"
ALARM = "better-chatbot-api-5xx"
RELEASES = [("a1b2c3d", "2.4.0"), ("e5f6a7b", "2.5.0")]


def _push(demo, sha: str, version: str) -> dict:
    tags = [sha, f"{version}-{sha}", "latest"]
    demo.out.step(f"CI pushes {REPOSITORY} with tags {', '.join(tags)} (no approval needed)")
    got = demo.http.post("/_devstack/push", {"repository": REPOSITORY, "tags": tags}).json()
    deps = demo.http.get(f"/deployments?service={SERVICE}&limit=10").json()["deployments"]
    dep = next((d for d in deps if d["image_digest"] == got["digest"]), None)
    if dep is None:
        raise demo.Unexpected("the push created no deployment")
    return dep


_FOLLOWERS: dict[str, Follower] = {}


def _until(demo, dep_id: str, states: set[str], timeout: float = 60) -> dict:
    """Print the deployment's timeline as it grows (each line once) until it reaches ``states``."""
    follower = _FOLLOWERS.setdefault(dep_id, Follower(demo.http, dep_id, label=False))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for text in follower.poll():
            demo.out.line(text)
        dep = follower.latest.get(dep_id) or {}
        if dep.get("state") in states:
            return dep
        time.sleep(0.2)
    raise demo.Unexpected(f"{dep_id} never reached {', '.join(sorted(states))}")


def _revision(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def alarm_rollback(demo) -> str:
    done = {"SUCCEEDED", "FAILED", "ROLLED_BACK"}
    first = _until(demo, _push(demo, *RELEASES[0])["id"], {"VERIFYING"} | done)
    if first["state"] != "VERIFYING":
        raise demo.Unexpected(f"release A ended {first['state']} instead of baking")
    demo.out.step("Nothing goes wrong: the devstack's clock moves past the bake "
                  "(POST /_devstack/clock {\"advance_seconds\": 360})")
    demo.http.post("/_devstack/clock", {"advance_seconds": 360})
    first = _until(demo, first["id"], done)
    if first["state"] != "SUCCEEDED":
        raise demo.Unexpected(f"the quiet bake ended {first['state']}")
    second = _until(demo, _push(demo, *RELEASES[1])["id"], {"VERIFYING"} | done)
    if second["state"] != "VERIFYING":
        raise demo.Unexpected(f"release B ended {second['state']} instead of baking")
    demo.out.step(f"During B's bake the 5xx alarm fires: POST /_devstack/alarms "
                  f"{{\"name\": \"{ALARM}\", \"state\": \"ALARM\"}}")
    got = demo.http.post("/_devstack/alarms", {
        "name": ALARM, "state": "ALARM",
        "reason": "Threshold Crossed: 42 5xx responses in 1 minute (threshold 5)"}).json()
    demo.out.line(f"  CloudWatch: {got.get('previous')} → ALARM; event → "
                  f"{', '.join(got.get('handlers') or []) or 'no handler'}")
    second = _until(demo, second["id"], done)
    if second["state"] != "ROLLED_BACK":
        raise demo.Unexpected(f"release B ended {second['state']}, not ROLLED_BACK")
    rollback_id = (second.get("verify") or {}).get("rollback")
    demo.out.step(f"The automatic rollback {rollback_id}")
    rollback = _until(demo, rollback_id, done)
    running = demo.ecs.describe_services(cluster="production-cluster",
                                         services=[SERVICE])["services"][0]["taskDefinition"]
    if rollback["state"] != "SUCCEEDED" or running != first["task_definition_arn"]:
        raise demo.Unexpected(f"the rollback ended {rollback['state']} with the service on "
                              f"{_revision(running)}")
    demo.http.post("/_devstack/alarms", {"name": ALARM, "state": "OK"})
    return (f"ROLLED_BACK by the bake: {SERVICE} is back on {_revision(running)} "
            f"({first['version']}) after {ALARM} fired during {second['version']}'s bake")
