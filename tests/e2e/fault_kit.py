"""The fault matrix's cell runner: one deployment on the devstack meeting one injected AWS fault.

Everything goes through the devstack's HTTP API and boto3 on its embedded AWS, as a user's tools
would: push, approve through the Slack link, inject the fault, move the app's clock instead of
sleeping through Slipway's waits, and judge what a user would see. Each cell reuses the one devstack
of the session; each pushes a release of its own.
"""
from __future__ import annotations

import time
import urllib.parse
from dataclasses import dataclass, field

from tests.e2e.helpers import FINISHED, Devstack, release

SERVICE, CLUSTER = "better-chatbot", "production-cluster"
GIVE_UP_SECONDS = 2 * 3600  # past every give-up, claim, migration and rollout timeout of the config
CLAIM_SECONDS = 120  # a worker's claim on an ECS step (chalicelib/service/deps.py Settings)
STEP_WORDS = {  # what a FAILED reason must name for the step that met the fault
    "RegisterTaskDefinition": ("registertaskdefinition", "register"),
    "RunTask": ("runtask", "migration"),
    "UpdateService": ("updateservice", "updating the service", "rollout"),
}
ANY_STEP = ("registertaskdefinition", "register", "runtask", "migration", "updateservice",
            "rollout", "updating the service", "describetasks", "describeservices", "ecs")


class Watched(Devstack):
    """The devstack client, noting every 5xx the app's routes answer (and whether a 503 said
    when to come back, as the contract asks)."""

    def __init__(self, base: Devstack):
        super().__init__(base.url, terminal=base._terminal)
        self.server_errors: list[str] = []

    def call(self, method: str, path: str, body=None, form: dict | None = None):
        got = self._http.request(method, path, json_body=body, form=form)
        if got.status >= 500 and not urllib.parse.urlsplit(path).path.startswith("/_devstack"):
            retry_after = {k.lower(): v for k, v in got.headers.items()}.get("retry-after")
            if not (got.status == 503 and retry_after):
                self.server_errors.append(f"{got.status} {method} {path[:80]}: {got.text[:200]}")
        return got.status, got.text


@dataclass
class Cell:
    operation: str  # the AWS API name
    service: str  # the boto3 client name
    kind: str  # "throttled twice" | "throttled for good" | "500 before" | "500 after" | "crash after"
    phase: str = "approval"  # where the fault is armed: "push" (before the push) or "approval"
    drop_events: bool = False  # make the reconciler ask ECS (the op is only used when polling)
    match: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.operation} / {self.kind}"

    def fault(self) -> dict:
        error, when, times = {
            "throttled twice": ("throttle", "before", 2),
            "throttled for good": ("throttle", "before", None),
            "500 before": ("internal", "before", 1),
            "500 after": ("internal", "after", 1),
            "crash after": ("crash", "after", 1),
        }[self.kind]
        return {"service": self.service, "operation": self.operation, "error": error,
                "when": when, "times": times, "match": self.match}


@dataclass
class Outcome:
    cell: Cell
    state: str = "?"
    problems: list[str] = field(default_factory=list)
    fired: int = 0

    @property
    def passed(self) -> bool:
        return not self.problems


_CLIENTS: dict = {}


def ecs_of(stack: Devstack):
    """One boto3 ECS client per devstack (building one costs more than the calls it makes)."""
    if stack.url not in _CLIENTS:
        _CLIENTS[stack.url] = stack.aws("ecs")
    return _CLIENTS[stack.url]


def tasks_for(stack: Devstack, dep_id: str) -> set[str]:
    ecs = ecs_of(stack)
    by = f"slipway/{dep_id}"
    return set(ecs.list_tasks(cluster=CLUSTER, startedBy=by)["taskArns"]) | set(
        ecs.list_tasks(cluster=CLUSTER, startedBy=by, desiredStatus="STOPPED")["taskArns"])


def running_image(stack: Devstack) -> str:
    ecs = ecs_of(stack)
    arn = ecs.describe_services(cluster=CLUSTER, services=[SERVICE])["services"][0]["taskDefinition"]
    taskdef = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
    return next(c["image"] for c in taskdef["containerDefinitions"] if c["name"] == "app")


def redrive(stack: Devstack, digest: str, tags: list[str]) -> None:
    """Deliver the push's ECR events again (new event ids, as a redrive sends them)."""
    events = [{"source": "aws.ecr", "detail-type": "ECR Image Action",
               "detail": {"result": "SUCCESS", "repository-name": SERVICE, "image-digest": digest,
                          "action-type": "PUSH", "image-tag": tag}} for tag in tags]
    status, got = stack.post_json("/_devstack/events", events)
    assert status == 200, got


def _get(stack: Watched, path: str) -> dict | None:
    status, text = stack.call("GET", path)
    if status != 200:
        return None
    import json

    return json.loads(text)


def _approve(stack: Watched, link: str, deadline: float) -> bool:
    """Press Approve; a 503 (throttled) is tried again, as a person would, until ``deadline``."""
    token = urllib.parse.parse_qs(urllib.parse.urlsplit(link).query)["token"][0]
    path = urllib.parse.urlsplit(link).path
    while time.monotonic() < deadline:
        status, _ = stack.call("POST", path, form={"token": token, "decision": "approve",
                                                   "comment": ""})
        if status == 200:
            return True
        if status == 409:  # decided already (an earlier try's answer was lost): fine
            return True
        time.sleep(0.3)
    return False


def _wait_end(stack: Watched, dep_id: str, timeout: float, nudge: bool = False) -> dict:
    deadline = time.monotonic() + timeout
    dep: dict = {}
    while time.monotonic() < deadline:
        dep = _get(stack, f"/deployments/{dep_id}") or dep
        if dep.get("state") in FINISHED:
            if dep["state"] != "SUCCEEDED" or any("prun" in t["note"] for t in dep["timeline"]):
                return dep
        if nudge:
            stack.post_json("/_devstack/reconcile", {})
        time.sleep(0.25)
    return dep


def _until_given_up(stack: Watched, dep_id: str, rounds: int = 12) -> None:
    """An ECS step throttled *for good*: the fault stays while the reconciler takes the step
    over, attempt after attempt (each past the previous claim), until Slipway gives up on it.
    (Clearing the fault after a fixed number of tries made the cell end either way, by timing.)"""
    for _ in range(rounds):
        if (_get(stack, f"/deployments/{dep_id}") or {}).get("state") in FINISHED:
            return
        stack.advance_clock(CLAIM_SECONDS + 10)
        stack.post_json("/_devstack/reconcile", {})
        time.sleep(0.2)


def run(stack: Watched, cell: Cell, last_good_image: str) -> tuple[Outcome, str]:
    """One cell: deploy through the fault, then judge. Returns the outcome and the image the
    service should now run (this deployment's if it succeeded, else the last good one)."""
    out = Outcome(cell)
    stack.server_errors.clear()
    stack.clear_faults()
    stack.set_ecs(task_seconds=0.2, drop_events=cell.drop_events)
    sha, version = release()
    try:
        if cell.phase == "push":
            stack.fault(**cell.fault())
        digest = stack.push(SERVICE, sha, version)
        if cell.phase == "push" and cell.fault()["times"] is None:
            # Lambda gave each event up after its two retries: the operator redrives them (from
            # the DLQ / an archive) once AWS answers again.
            stack.clear_faults()
            redrive(stack, digest, [sha, f"{version}-{sha}", "latest"])
        dep = stack.deployment_of(SERVICE, digest, timeout=20)
        link = stack.approval_link(dep["id"], timeout=20)
        if cell.phase == "approval":
            stack.fault(**cell.fault())
        # a fault for good that is still on: one met at the push was cleared before the redrive,
        # and moving the clock 2 h during the clean rollout that follows would time it out
        forever = cell.fault()["times"] is None and cell.phase != "push"
        approved = _approve(stack, link, time.monotonic() + (3 if forever else 15))
        if forever or cell.kind == "crash after":
            time.sleep(1.5)  # the fault meets the steps it can meet, in real time
            stack.advance_clock(GIVE_UP_SECONDS if forever else 180)  # past the claim/give-up
            for _ in range(3):
                stack.post_json("/_devstack/reconcile", {})
            if forever and cell.operation in STEP_WORDS:
                _until_given_up(stack, dep["id"])
            time.sleep(1.0)
        out.fired = sum(f["fired"] for f in stack.faults()["faults"])
        stack.clear_faults()
        if not approved and not _approve(stack, link, time.monotonic() + 10):
            out.problems.append("could not approve once the fault was gone")
        end = _wait_end(stack, dep["id"], timeout=30, nudge=cell.drop_events or forever)
        out.state = end.get("state", "?")
        judge(stack, cell, dep["id"], digest, end, out)
    except AssertionError as exc:
        out.problems.append(f"harness: {str(exc)[:300]}")
        return out, last_good_image
    finally:
        stack.clear_faults()
        stack.set_ecs(drop_events=False)
    good = out.state == "SUCCEEDED"
    return out, (running_image(stack) if good else last_good_image)


def judge(stack: Watched, cell: Cell, dep_id: str, digest: str, end: dict, out: Outcome) -> None:
    state, reason = end.get("state"), (end.get("reason") or "").lower()
    if state == "SUCCEEDED":
        if not running_image(stack).endswith("@" + digest):
            out.problems.append("SUCCEEDED but the service does not run its image")
    elif state == "FAILED":
        words = STEP_WORDS.get(cell.operation, ANY_STEP)
        if not any(w in reason for w in words):
            out.problems.append(f"FAILED without naming the step: {end.get('reason')!r}")
        elif cell.fault()["times"] is None and cell.operation in STEP_WORDS and not (
                "ecs's last error" in reason and "rate exceeded" in reason):
            out.problems.append(f"FAILED without ECS's last error: {end.get('reason')!r}")
    else:
        out.problems.append(f"ended {state}: {(end.get('timeline') or [{}])[-1].get('note')}")
    if cell.fault()["times"] is None and cell.operation in STEP_WORDS and state != "FAILED":
        out.problems.append(f"{cell.operation} throttled for good, yet {state}")
    tasks = tasks_for(stack, dep_id)
    started = (end.get("migration") or {}).get("task_arn")
    if len(tasks) > 1 or ((state == "SUCCEEDED" or started) and tasks != {started}):
        out.problems.append(f"{len(tasks)} migration tasks ran (the ledger knows {started})")
    status = _get(stack, f"/services/{SERVICE}") or {}
    if status.get("busy_with") == dep_id:
        out.problems.append("the service is still locked by the finished deployment")
    if stack.server_errors:
        out.problems.append(f"HTTP 5xx: {stack.server_errors[0]}")


def matrix_text(outcomes: list[Outcome], kinds: list[str], pending: set[str]) -> str:
    """The matrix as printed: one row per operation, one column per kind of fault."""
    ops: list[str] = []
    for o in outcomes:
        if o.cell.operation not in ops:
            ops.append(o.cell.operation)
    by = {(o.cell.operation, o.cell.kind): o for o in outcomes}
    width = max(len(op) for op in ops) + 2
    lines = ["".ljust(width) + "".join(k.ljust(20) for k in kinds)]
    for op in ops:
        row = op.ljust(width)
        for kind in kinds:
            o = by.get((op, kind))
            text = ("pass " + o.state if o.passed else "FAIL " + o.state) if o else (
                "pending" if f"{op} / {kind}" in pending else "·")
            row += text.ljust(20)
        lines.append(row)
    passed = sum(o.passed for o in outcomes)
    lines.append("(· not in this run; crash after: the worker dies between the ECS call and its "
                 "ledger write)")
    lines.append(f"cells passed: {passed}/{len(outcomes)}"
                 + (f" (+{len(pending)} pending the production fix)" if pending else ""))
    for o in outcomes:
        if not o.passed:
            lines.append(f"  {o.cell.name}: {'; '.join(o.problems)}")
    return "\n".join(lines)
