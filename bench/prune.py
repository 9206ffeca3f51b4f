"""Pruning a family of 5,000 task-definition revisions. Budget (DESIGN.md "Budgets"): ⌈N/100⌉
list calls + one call per revision removed, resumable across invocations, nothing lost track of.

How: the real Lambda handlers of app.py run against ``tests/fakes.FakeEcs`` (which pages
ListTaskDefinitions 100 at a time like ECS; moto never pages) and the in-memory ledger, handed to
them in place of ``bootstrap.deps()``. First the rollout handler ``app.on_deployment_state_change``
gets SERVICE_DEPLOYMENT_COMPLETED for the deployment (it marks it SUCCEEDED and calls
``prune.after_success``), then ``app.reconcile`` runs on its schedule (``prune.resume_all``) until
the job is done. Lambda's clock is simulated: every ECS call spends CALL_MS and every ledger job
read/write LEDGER_MS; the context's ``get_remaining_time_in_millis`` counts down from the
function's timeout (60 s / 300 s, .chalice/config.json, RUNNING_MS already spent), and at zero
Lambda kills the invocation. Whatever app.py wires into ``deps.remaining_ms`` is what pruning
sees. These costs are a model (an ECS call plus adaptive-retry backoff), not a measurement: they
set how many invocations it takes, not how many calls are needed.

The family: revisions 1..5000, the service on 5000 (the deployment being rolled out), the previous
SUCCEEDED deployment on 1234 (an older rollback target), ``keep = 5``: 4996..5000 and 1234 must
stay, 4,994 go. The headline is the run with no fault injected. A second run also crashes the
second invocation half-way (after ECS did a call, before Slipway saved its progress) to show the
job resumes from its checkpoint; a third makes every THROTTLE_EVERY-th DeregisterTaskDefinition
fail for good (a throttle that outlasts botocore's 10 adaptive attempts) to show what becomes of
those revisions.
"""
from __future__ import annotations

import contextlib
import importlib
import io
import json
import logging
import math

from bench.report import Result, say, section

N = 5_000
PAGE = 100
OLD_GOOD = 1234
CALL_MS = 100
LEDGER_MS = 20
RUNNING_MS = 1_000
TIMEOUT_MS = {"rollout": 60_000, "reconcile": 300_000}  # .chalice/config.json
MAX_INVOCATIONS = 200
THROTTLE_EVERY = 500
ITEM_LIMIT = 400 * 1024  # DynamoDB's item size limit: the job lives in one ledger item
SERVICE = "better-chatbot"
ECS_DEPLOYMENT = "ecs-svc/4242424242424242424"


class Killed(BaseException):
    """Lambda ended the invocation (timeout, crash): nothing after this runs, no handler sees it."""


def run() -> list[Result]:
    section(f"pruning a family of {N:,} revisions across Lambda invocations")
    importlib.import_module("app")  # it sets up the "slipway" logger: quiet it after

    quiet = logging.getLogger("slipway")
    level, quiet.level = quiet.level, logging.ERROR  # 'could not deregister…' when throttled
    try:
        clean = _prune()
        killed = _prune(kill_in=(2, 137))
        throttled = _prune(throttle_every=THROTTLE_EVERY)
    finally:
        quiet.setLevel(level)
    _show(clean, "no fault injected")
    _show(killed, "a crash injected")
    _show(throttled, "throttles injected")
    _explain(clean)
    budget = math.ceil(N / PAGE) + clean["removed"]
    measured = clean["lists"] + clean["deregisters"]
    return [Result("prune", measured, budget, "calls",
                   shown=f"{clean['lists']} list + {clean['deregisters']:,} deregister calls "
                         f"({clean['invocations']} invocations)")]


# -- the world: a fake ECS whose calls cost simulated Lambda time ---------------------------------
def _classes():
    from chalicelib.adapters.errors import AwsError
    from chalicelib.adapters.ledger_memory import MemoryLedger
    from tests.fakes import FakeEcs

    class Invocation:
        def __init__(self, timeout_ms: int) -> None:
            self.left = timeout_ms - RUNNING_MS
            self.deregistered = 0

        def spend(self, ms: int) -> None:
            self.left -= ms
            if self.left <= 0:
                raise Killed("Lambda timeout")

        def get_remaining_time_in_millis(self) -> int:  # the Lambda context's
            return max(self.left, 0)

    class MeteredEcs(FakeEcs):
        now: Invocation | None = None
        kill_after: int | None = None  # deregistrations into the current invocation
        throttle_every: int | None = None  # every n-th deregister fails after all retries

        def __init__(self):
            super().__init__()
            self.attempts = self.repeated = self.failed = 0

        def describe_service(self, cluster, service):
            self.now.spend(CALL_MS)
            return super().describe_service(cluster, service)

        def task_definition_pages(self, family):
            for page in super().task_definition_pages(family):
                self.now.spend(CALL_MS)
                yield page

        def deregister(self, arn):
            self.now.spend(CALL_MS)
            self.attempts += 1
            if self.throttle_every and self.attempts % self.throttle_every == 0:
                self.calls.append("DeregisterTaskDefinition")
                self.failed += 1
                raise AwsError("Rate exceeded (after botocore's retries)",
                               code="ThrottlingException")
            try:
                super().deregister(arn)
            except AwsError:  # already INACTIVE: done before a checkpoint, then killed
                self.repeated += 1
                raise
            self.now.deregistered += 1
            if self.kill_after is not None and self.now.deregistered >= self.kill_after:
                raise Killed("crash")

    class MeteredLedger(MemoryLedger):
        ecs: MeteredEcs
        job_writes = 0
        largest_job = 0

        def get_job(self, name):
            self.ecs.now.spend(LEDGER_MS)
            return super().get_job(name)

        def peek_job(self, name):  # the benchmark's own look (no Lambda time)
            return super().get_job(name)

        def put_job(self, name, job):
            self.ecs.now.spend(LEDGER_MS)
            self.job_writes += 1
            self.largest_job = max(self.largest_job, len(json.dumps(job or {})))
            super().put_job(name, job)

    return Invocation, MeteredEcs, MeteredLedger


def _world():
    from bench.world import CONFIG_FILE
    from chalicelib import config as config_mod
    from chalicelib.domain.model import State
    from chalicelib.service.deps import Deps
    from tests.fakes import QueueDispatcher, RecordingNotifier

    Invocation, MeteredEcs, MeteredLedger = _classes()
    cfg = config_mod.load(CONFIG_FILE)
    svc = cfg.service(SERVICE)
    ecs = MeteredEcs()
    first = ecs.add_service(svc.cluster, svc.service, svc.template)
    arns = [first] + _register_many(ecs, svc.template, N - 1)
    service = ecs.services[(svc.cluster, svc.service)]
    service["taskDefinition"] = arns[-1]
    service["deployments"][0]["taskDefinition"] = arns[-1]
    ledger = MeteredLedger()
    ledger.ecs = ecs
    older = _deployment(0, State.SUCCEEDED, arns[OLD_GOOD - 1], arns[-2])
    ledger.create(older, f"key#{SERVICE}#0")
    latest = _deployment(1, State.DEPLOYING, arns[-1], arns[OLD_GOOD - 1])
    ledger.create(latest, f"key#{SERVICE}#1")
    ledger.save(latest, pointers=(f"ecsdep#{ECS_DEPLOYMENT}",))
    deps = Deps(config=cfg, ledger=ledger, ecs=ecs, notifier=RecordingNotifier(),
                dispatcher=QueueDispatcher(), secrets=dict)
    return deps, ecs, ledger, arns, Invocation


def _deployment(i: int, state, arn: str, previous: str):
    """A deployment of the service's image ``1.0.i-abcdef1`` (a tag only_tags lets prune)."""
    from chalicelib.domain.model import Deployment, State

    return Deployment(id=_bench_id(i), service=SERVICE, kind="deploy", state=state,
                      created_at=f"2026-01-0{i + 1}T00:00:00+00:00", tags=[f"1.0.{i}-abcdef1"],
                      task_definition_arn=arn, previous_task_definition_arn=previous,
                      ecs_deployment_id=ECS_DEPLOYMENT if state is State.DEPLOYING else None)


def _bench_id(i: int) -> str:
    """Shaped like Slipway's ids (anything else is an unknown deployment)."""
    return f"d-2026010{i + 1}T000000-{i:08x}"


def _register_many(ecs, body: dict, count: int) -> list[str]:
    """FakeEcs._register, ``count`` times in O(count) (it scans every revision per call)."""
    from tests.fakes import ACCOUNT_PREFIX

    family = body["family"]
    start = 1 + max(int(a.rsplit(":", 1)[1]) for a in ecs.task_definitions)
    arns = []
    for revision in range(start, start + count):
        arn = f"{ACCOUNT_PREFIX}:task-definition/{family}:{revision}"
        ecs.task_definitions[arn] = {**body, "taskDefinitionArn": arn, "revision": revision,
                                     "status": "ACTIVE"}
        ecs.active.add(arn)
        arns.append(arn)
    return arns


# -- the runs ------------------------------------------------------------------------------------
def _prune(kill_in: tuple[int, int] | None = None, throttle_every: int | None = None) -> dict:
    """Invoke until the job is done; ``kill_in`` = (invocation, after so many deregistrations);
    ``throttle_every``: every n-th DeregisterTaskDefinition still fails after botocore's retries."""
    import app as app_module
    from chalicelib.domain.prune import family_revision
    from chalicelib.entrypoints import bootstrap

    deps, ecs, ledger, arns, Invocation = _world()
    job = f"prune#{family_revision(arns[-1]).rsplit(':', 1)[0]}"
    before = set(ecs.active)
    ecs.throttle_every = throttle_every
    invocations: list[tuple[str, int]] = []
    built, bootstrap.deps = bootstrap.deps, lambda: deps  # the handlers get our world
    try:
        for number in range(1, MAX_INVOCATIONS + 1):
            kind = "rollout" if number == 1 else "reconcile"
            ecs.now = Invocation(TIMEOUT_MS[kind])
            ecs.kill_after = kill_in[1] if kill_in and kill_in[0] == number else None
            handler, event = ((app_module.on_deployment_state_change, _rollout_completed())
                              if number == 1 else (app_module.reconcile, _scheduled()))
            try:
                with contextlib.redirect_stdout(io.StringIO()):  # powertools' metric lines
                    handler(event, ecs.now)
            except Killed as end:
                kind += f" ({end.args[0]})"
            invocations.append((kind, ecs.now.deregistered))
            if number == 1 and ledger.get(_bench_id(1)).state.value != "SUCCEEDED":
                raise RuntimeError("the rollout event did not finish the deployment")
            if ledger.peek_job(job) is None:
                break
    finally:
        bootstrap.deps = built
    return _outcome(ecs, ledger, before, arns, invocations)


def _rollout_completed() -> dict:
    from tests.conftest import load_event

    event = load_event("deployment_completed")
    event["detail"]["deploymentId"] = ECS_DEPLOYMENT
    return event


def _scheduled() -> dict:
    return {"version": "0", "id": "bench-reconcile", "detail-type": "Scheduled Event",
            "source": "aws.events", "account": "123456789012", "time": "2026-01-02T00:00:00Z",
            "region": "us-east-1", "detail": {},
            "resources": ["arn:aws:events:us-east-1:123456789012:rule/slipway-reconcile"]}


def _outcome(ecs, ledger, before: set, arns: list[str], invocations) -> dict:
    keep = set(arns[-5:]) | {arns[OLD_GOOD - 1]}
    doomed = before - keep
    return {
        "invocations": len(invocations), "per_invocation": invocations,
        "lists": ecs.calls.count("ListTaskDefinitions"),
        "deregisters": ecs.calls.count("DeregisterTaskDefinition"),
        "describes": ecs.calls.count("DescribeServices"),
        "removed": len(before - ecs.active), "doomed": len(doomed),
        "missed": len(doomed & ecs.active), "wrongly_removed": len(keep - ecs.active),
        "job_writes": ledger.job_writes, "largest_job": ledger.largest_job,
        "repeated": ecs.repeated, "failed": ecs.failed,
    }


# -- reporting -----------------------------------------------------------------------------------
def _show(o: dict, name: str) -> None:
    lists_budget = math.ceil(N / PAGE)
    steps = ", ".join(f"{kind} {n}" for kind, n in o["per_invocation"])
    why = [f"{o['repeated']} repeated: done after the last checkpoint of an invocation that "
           "was killed"] if o["repeated"] else []
    why += [f"{o['failed']} failed for good"] if o["failed"] else []
    say(f"{name}: {o['invocations']} invocations (deregistered per invocation: {steps})")
    say(f"  list calls {o['lists']} (⌈{N}/{PAGE}⌉ = {lists_budget}); deregister calls "
        f"{o['deregisters']} for {o['removed']} revisions removed"
        + (f" ({'; '.join(why)})" if why else ""))
    ok = not o["missed"] and not o["wrongly_removed"]
    say(f"  lost track of: {o['missed']} of {o['doomed']} doomed revisions still ACTIVE with no "
        f"job left to retry them, {o['wrongly_removed']} protected/newest revisions removed "
        f"({'OK' if ok else 'NOT OK'})")
    say(f"  also: {o['describes']} DescribeServices (one per invocation, to recompute what is "
        f"protected), {o['job_writes']} job writes, largest job item "
        f"{o['largest_job'] / 1024:.0f} KB of DynamoDB's {ITEM_LIMIT // 1024} KB")


def _explain(clean: dict) -> None:
    if "timeout" in clean["per_invocation"][0][0]:
        say("the rollout invocation ran into Lambda's 60 s timeout: app.py's rollout handler "
            "does not give pruning the context's remaining time (deps.remaining_ms keeps its "
            "60,000 ms default; only reconcile sets it), so prune.run never stops SAFETY_MS early")
