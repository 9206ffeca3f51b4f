"""``python -m devstack demo --scenario …``: the whole flow on the embedded stack, narrated.

Each scenario starts a fresh stack in this process, then acts only as a user would: pushes through
``/_devstack/push``, reads Slack from the stand-in, approves through the signed link (GET the page,
POST the form), reads ``/deployments`` and looks at ECS with boto3. It exits 0 only if the
scenario's expected outcome happened.
"""
from __future__ import annotations

import base64
import json
import logging
import os
import sys
import tempfile
import traceback
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import boto3

from devstack import demo_bake
from devstack.client import Client
from devstack.ecs_emulator import EcsSettings
from devstack.links import approval_links
from devstack.stack import Stack
from devstack.timeline import (Follower, Line, Narrator, clock, recovery_lines, settled,
                               slack_text)

SERVICE = REPOSITORY = "better-chatbot"
APPROVER = "slack:U0APPROVER1"
RELEASES = [("abc123d", "1.22.0"), ("def4567", "1.23.0")]  # (short sha, version), as CI tags them
SCENARIOS = ("happy", "migration-fails", "rollout-fails", "rollback", "alarm-rollback",
             "chaos")


class Unexpected(Exception):
    """The scenario did not end as it should (printed without a stack trace; exit 1)."""


class Out:
    """Lines, plus one progress line that is redrawn in place on a terminal."""

    def __init__(self, stream=sys.stdout):
        self._stream, self._tty, self._progress = stream, stream.isatty(), False

    def line(self, text: str = "") -> None:
        if self._progress:
            self._stream.write("\r\033[K")
            self._progress = False
        self._stream.write(text + "\n")
        self._stream.flush()

    def step(self, text: str) -> None:
        self.line(f"\n▸ {text}")

    def progress(self, text: str) -> None:
        if self._tty:
            self._stream.write(f"\r\033[K  … {text}")
            self._stream.flush()
            self._progress = True


class Demo:
    Unexpected = Unexpected  # for scenarios in modules of their own (demo_bake)

    def __init__(self, stack: Stack, out: Out):
        self.stack, self.out, self.http = stack, out, Client(stack.url)
        info = self.http.get("/_devstack/aws").json()
        self.ecs = boto3.session.Session().client(
            "ecs", region_name=info["region"], endpoint_url=info["endpoint_url"],
            aws_access_key_id="demo", aws_secret_access_key="demo")
        self.aws_info = info
        self.svc = next(s for s in self.http.get("/services").json()["services"]
                        if s["name"] == SERVICE)

    # -- steps ----------------------------------------------------------------------------------
    def set_ecs(self, **settings) -> None:
        got = self.http.post("/_devstack/ecs", settings).json()
        self.out.line(f"  emulated ECS: migration exits {got['migration_exit_code']}, rollout "
                      f"{got['rollout']}s, tasks take {got['task_seconds']:g} s")

    def running(self) -> dict:
        return self.ecs.describe_services(cluster=self.svc["cluster"],
                                          services=[self.svc["service"]])["services"][0]

    def push(self, sha: str, version: str) -> dict:
        tags = [sha, f"{version}-{sha}", "latest"]
        self.out.step(f"CI pushes {REPOSITORY} with tags {', '.join(tags)}")
        got = self.http.post("/_devstack/push", {"repository": REPOSITORY, "tags": tags}).json()
        self.out.line(f"  ECR stored {got['digest'][:19]}… and emitted {got['events']} "
                      "\"ECR Image Action\" events → on_image_pushed")
        deps = self.http.get(f"/deployments?service={SERVICE}&limit=10").json()["deployments"]
        dep = next((d for d in deps if d["image_digest"] == got["digest"]), None)
        if dep is None:
            raise Unexpected("the push created no deployment")
        self.out.line(f"  deployment {dep['id']}: {dep['state']} (one deployment for three tags)")
        return dep

    def approve(self, dep: dict) -> None:
        link = self._link(dep)
        self.out.step("An approver opens the link and approves")
        path = urlsplit(link)
        page = self.http.get(link)
        shown = dep.get("version") or dep.get("image_tag")
        if page.status != 200 or (shown and shown not in page.text):
            raise Unexpected(f"the approval page answered {page.status}")
        self.out.line(f"  GET  {path.path}?token=… → {page.status}: confirmation page for "
                      f"{SERVICE} {shown} with the task-definition diff (GET changes nothing)")
        token = parse_qs(path.query)["token"][0]
        done = self.http.post(path.path, form={"token": token, "decision": "approve",
                                               "comment": "looks good (devstack demo)"})
        if done.status != 200:
            raise Unexpected(f"approving answered {done.status}")
        self.out.line(f"  POST {path.path} decision=approve → {done.status}")

    def _link(self, dep: dict) -> str:
        self.out.step("Slipway asks for approval (what the Slack stand-in received)")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            got = self.http.get("/_devstack/slack/messages").json()
            links = approval_links(got["messages"], dep["id"])
            if links:
                for message in got["messages"]:
                    if dep["id"] in str(message) or dep["image_digest"][7:19] in str(message):
                        self.out.line(slack_text(message))
                mine = [link for link in links if _identity(link) == APPROVER]
                return (mine or links)[0]
            self.out.progress("waiting for the approval request in Slack")
            time.sleep(0.25)
        raise Unexpected(f"no approval link for {dep['id']} reached the Slack stand-in")

    def follow(self, dep_id: str, timeout: float = 90) -> dict:
        follower = Follower(self.http, dep_id, label=False)
        reconciler = self.stack.reconciler
        narrator = Narrator(follower.lines, recovery_lines(
            reconciler.recovered, dep_id=dep_id, labelled=False), self.fault_lines(), grace=0.5,
            holds=[lambda: reconciler.running_since], now=self.stack.clock)
        started = time.monotonic()
        dep: dict = {}
        while time.monotonic() - started < timeout:
            for text in narrator.poll():
                self.out.line(text)
            dep = follower.latest.get(dep_id, {})
            if settled(dep, now=self.stack.clock):
                for text in narrator.flush():
                    self.out.line(text)
                return dep
            self.out.progress(f"{dep.get('state', '?')} · {time.monotonic() - started:4.1f} s")
            time.sleep(0.2)
        raise Unexpected(f"{dep_id} still {dep.get('state')} after {timeout:g} s")

    def inject(self, says: str, **fault) -> None:
        """Arm a fault on the app's next AWS calls (POST /_devstack/faults) and say what it is."""
        self.http.inject_fault(**fault)
        self.out.line(f"  fault armed: {says}")

    def fault_lines(self):
        """A Narrator source: each injected fault, when it hit the app's call."""
        shown = 0

        def read():
            nonlocal shown
            fired = self.http.faults()["fired"]
            for f in fired[shown:]:
                how = "after it took effect" if f["when"] == "after" else "before it ran"
                yield Line(f["at"], f"  {clock(f['at'])}  {'AWS FAULT':<17} {f['operation']} "
                           f"failed with {f['code']} ({how})")
            shown = len(fired)
        return read

    def deploy(self, sha: str, version: str) -> dict:
        dep = self.push(sha, version)
        self.approve(dep)
        self.out.step("Timeline (worker → RunTask → ECS events → UpdateService → ECS events)")
        return self.follow(dep["id"])


def _identity(link: str) -> str | None:
    """Whom a signed link was issued to (the token's payload is readable; its signature is not)."""
    try:
        token = parse_qs(urlsplit(link).query)["token"][0].split(".")[0]
        return json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))).get("i")
    except (KeyError, ValueError):
        return None


# -- scenarios --------------------------------------------------------------------------------
def happy(demo: Demo) -> str:
    before = demo.running()["taskDefinition"]
    dep = demo.deploy(*RELEASES[0])
    now = demo.running()["taskDefinition"]
    if dep["state"] != "SUCCEEDED" or now != dep["task_definition_arn"]:
        raise Unexpected(f"expected SUCCEEDED on {dep['task_definition_arn']}, got {dep['state']}"
                         f" with the service on {now}")
    pruned = [t["note"] for t in dep["timeline"] if "pruned" in t["note"]]
    if not pruned:
        raise Unexpected("the deployment succeeded but no old revisions were pruned")
    return (f"SUCCEEDED: {SERVICE} moved from {_rev(before)} to {_rev(now)}; {pruned[-1]}")


def migration_fails(demo: Demo) -> str:
    demo.set_ecs(migration_exit_code=1)
    before = demo.running()
    dep = demo.deploy(*RELEASES[0])
    after = demo.running()
    untouched = (after["taskDefinition"] == before["taskDefinition"]
                 and [d["id"] for d in after["deployments"]] == [d["id"] for d in before["deployments"]])
    if dep["state"] != "FAILED" or not untouched:
        raise Unexpected(f"expected FAILED with the service untouched, got {dep['state']}")
    return (f"FAILED as expected: {dep['reason']}; {SERVICE} still runs {_rev(after['taskDefinition'])}"
            " (UpdateService was never called)")


def rollout_fails(demo: Demo) -> str:
    demo.set_ecs(rollout="fail")
    before = demo.running()["taskDefinition"]
    dep = demo.deploy(*RELEASES[0])
    after = demo.running()["taskDefinition"]
    if dep["state"] != "ROLLED_BACK" or after != before:
        raise Unexpected(f"expected ROLLED_BACK onto {before}, got {dep['state']} on {after}")
    return (f"ROLLED_BACK as expected: the circuit breaker put {SERVICE} back on {_rev(after)}")


def rollback(demo: Demo) -> str:
    first = demo.deploy(*RELEASES[0])
    second = demo.deploy(*RELEASES[1])
    if (first["state"], second["state"]) != ("SUCCEEDED", "SUCCEEDED"):
        raise Unexpected(f"the two deployments ended {first['state']} and {second['state']}")
    demo.out.step(f"An operator rolls back: POST /services/{SERVICE}/rollback {{\"to\": \"previous\"}}")
    body = {"to": "previous", "reason": "devstack demo: back to 1.22.0"}
    got = demo.http.post(f"/services/{SERVICE}/rollback", body)
    if got.status != 409 or got.json().get("error") != "migrations_since_target":
        raise Unexpected(f"expected 409 migrations_since_target, got {got.status}: {got.text}")
    demo.out.line(f"  → 409: {got.json()['message']}")
    demo.out.step("The schema change is backward compatible: the operator forces it, with a reason")
    got = demo.http.post(f"/services/{SERVICE}/rollback", {**body, "force": True})
    if got.status != 202:
        raise Unexpected(f"rollback answered {got.status}: {got.text}")
    dep = got.json()
    demo.out.line(f"  → 202: rollback deployment {dep['id']} to {dep['version']} (no approval, "
                  "no migration)")
    dep = demo.follow(dep["id"])
    now = demo.running()["taskDefinition"]
    if (dep["state"] != "SUCCEEDED" or dep["task_definition_arn"] != first["task_definition_arn"]
            or now != first["task_definition_arn"] or dep["migration"]):
        raise Unexpected(f"expected SUCCEEDED on {first['task_definition_arn']} without a "
                         f"migration, got {dep['state']} on {now}")
    return f"SUCCEEDED: {SERVICE} is back on {_rev(now)} ({first['version']}), no migration ran"


def chaos(demo: Demo) -> str:
    """One deployment through a throttle, a lost RunTask answer and dropped ECS events."""
    before = demo.running()["taskDefinition"]
    dep = demo.push(*RELEASES[0])
    demo.out.step("AWS misbehaves (devstack faults: the app's own AWS calls only)")
    demo.inject("RegisterTaskDefinition is throttled twice (ThrottlingException after botocore's "
                "retries)", service="ecs", operation="RegisterTaskDefinition", error="throttle",
                times=2)
    demo.inject("RunTask starts the migration, then its answer is lost (HTTP 500)", service="ecs",
                operation="RunTask", error="internal", when="after")
    demo.set_ecs(drop_events=True)
    demo.out.line("  the migration task's ECS events will be dropped (never delivered)")
    demo.approve(dep)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # once the migration runs, the rollout's events flow again
        if (demo.http.get(f"/deployments/{dep['id']}").json().get("migration") or {}).get(
                "task_arn"):
            break
        time.sleep(0.1)
    demo.set_ecs(drop_events=False)
    demo.out.step("Timeline (the faults as they hit, and how Slipway got past each)")
    dep = demo.follow(dep["id"])
    by = f"slipway/{dep['id']}"
    tasks = {t for status in ("RUNNING", "STOPPED") for t in demo.ecs.list_tasks(
        cluster=demo.svc["cluster"], startedBy=by, desiredStatus=status)["taskArns"]}
    fired = demo.http.faults()["fired"]
    recovered = [r for r in demo.stack.reconciler.recovered() if r["deployment"] == dep["id"]]
    now = demo.running()["taskDefinition"]
    if dep["state"] != "SUCCEEDED" or now != dep["task_definition_arn"] or now == before:
        raise Unexpected(f"expected SUCCEEDED on a new revision, got {dep['state']} on {now}")
    if len(tasks) != 1:
        raise Unexpected(f"expected one migration task, ECS started {len(tasks)}")
    if len(fired) < 3 or not recovered:
        raise Unexpected(f"the chaos did not happen as planned: {len(fired)} faults hit, "
                         f"{len(recovered)} recoveries")
    return (f"SUCCEEDED with one migration task: {len(fired)} AWS faults met (retried; the lost "
            "RunTask answer was recovered through its clientToken), the lost task event made up "
            f"for by the reconciler; {SERVICE} moved from {_rev(before)} to {_rev(now)}")


def _rev(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


RUN = {"happy": happy, "migration-fails": migration_fails, "rollout-fails": rollout_fails,
       "rollback": rollback, "alarm-rollback": demo_bake.alarm_rollback, "chaos": chaos}


def run(scenario: str, config_dir: Path, task_seconds: float = 2.0, log_level: str = "INFO") -> int:
    """Run one scenario; the app's own output (logs, EMF metric lines) goes to a log file."""
    out = Out(sys.stdout)
    log_fd, log_path = tempfile.mkstemp(prefix=f"slipway-demo-{scenario}-", suffix=".log")
    saved = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = os.fdopen(log_fd, "w", buffering=1)  # before the app is imported
    to_log = logging.StreamHandler(sys.stderr)  # the devstack's own log: in the file, tracebacks too
    to_log.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    devstack_log = logging.getLogger("devstack")
    devstack_log.addHandler(to_log)
    devstack_log.setLevel(logging.INFO)
    out.line(f"Slipway demo: {scenario} (config {config_dir})")
    out.step("Starting the devstack (embedded AWS, emulated ECS events, Slack and GitHub stand-ins)")
    stack = Stack(config_dir, ecs=EcsSettings(task_seconds=task_seconds), log_level=log_level)
    stack.log_file = Path(log_path)
    try:
        stack.start()
        demo = Demo(stack, out)
        out.line(f"  Slipway API      {stack.url}   (Chalice routes through the local API Gateway)")
        out.line(f"  embedded AWS     {demo.aws_info['endpoint_url']}   (moto: ECR, ECS, DynamoDB, "
                 "SQS, Secrets Manager)")
        out.line(f"  {SERVICE} runs {_rev(demo.running()['taskDefinition'])} on "
                 f"{demo.svc['cluster']}")
        summary = RUN[scenario](demo)
    except Unexpected as exc:
        out.line(f"\n✘ {scenario}: {exc}\n  (app logs: {log_path})")
        return 1
    except KeyboardInterrupt:
        out.line("\ninterrupted")
        return 130
    except Exception as exc:  # not an expected outcome: the details go to the log, not the screen
        traceback.print_exc()  # into the log file
        out.line(f"\n✘ {scenario}: the devstack failed: {getattr(exc, 'message', None) or repr(exc)}"
                 f"\n  (details in {log_path})")
        return 1
    finally:
        stack.stop()
        devstack_log.removeHandler(to_log)
        log_file = sys.stdout
        sys.stdout, sys.stderr = saved
        log_file.close()
    out.line(f"\n✔ {scenario}: {summary}\n  (app logs and metrics: {log_path})")
    return 0
