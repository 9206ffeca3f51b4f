"""Pruning 5,000 revisions on the real ECS API shapes: moto's ListTaskDefinitions (paged and
sorted as ECS does, bench/world.py) and DeregisterTaskDefinition, over HTTP, every call counted at
the server. Budget (DESIGN.md "Budgets"): ⌈N/100⌉ list calls + one call per revision removed,
resumable across invocations, nothing lost track of.

How: the family of better-chatbot is filled up to N - 1 ACTIVE revisions (registered straight into
moto's backend: the set-up is not measured), then Slipway deploys a new image through its real
handlers (bench/slipway_side.py), so the family holds N revisions; the rollout handler marks the
deployment SUCCEEDED and starts pruning, and the scheduled reconciler is invoked until the ledger
holds no pruning job. Each invocation gets Lambda's context with its real timeout (60 s for the
rollout handler, 300 s for the reconciler) counting down in real time, so the number of
invocations is what this machine's moto needs, not a model. Fault injection (a crash mid-way,
throttles) is bench/prune.py's, on the fake ECS.
"""
from __future__ import annotations

import logging
import math
import time
from collections import Counter

from bench.report import Result, say, section

N = 5_000
PAGE = 100
MAX_RECONCILES = 20
SERVICE = "better-chatbot"


def run() -> list[Result]:
    section(f"pruning {N:,} revisions on moto's ECS API, real handlers, real timeouts")
    from bench import slipway_side
    from bench.api_calls import _pruning_apart
    from bench.world import World
    from chalicelib.adapters.ledger_dynamodb import DynamoLedger

    started = time.perf_counter()
    quiet = logging.getLogger("slipway")
    level = quiet.level
    with World() as world:
        import app as app_module

        quiet.setLevel(logging.ERROR)
        family, keep = _fill_family(world, N - 1)  # the deployment registers the N-th
        # GitHub knows who wrote the commit (prevent_self_review holds approvals until it does).
        world.github.set_commit_author("acme/better-chatbot", "f00d001", "bench-author")
        with _pruning_apart(world) as first:
            out = slipway_side.deployment(world, app_module, ["f00d001", "2.0.0-f00d001", "latest"],
                                          rollout_s=5, migration_s=5)
        if out["state"] != "SUCCEEDED":
            raise RuntimeError(f"the deployment ended {out['state']}")
        ledger = DynamoLedger(world.client("dynamodb"), world.env["SLIPWAY_TABLE"])
        driver = slipway_side.Driver(world, app_module)
        before = world.counts("slipway")
        reconciles = 0
        while ledger.get_job(f"prune#{family}") and reconciles < MAX_RECONCILES:
            driver.reconcile()
            reconciles += 1
        later = world.counts("slipway") - before
        active = _active(world, family)
    quiet.setLevel(level)
    return _report(first, later, reconciles, active, keep, time.perf_counter() - started)


def _fill_family(world, total: int) -> tuple[str, int]:
    """Register revisions of the service's family in moto until it has ``total`` (not counted)."""
    from devstack.aws import EmbeddedAws

    ecs = world.client("ecs")
    svc = ecs.describe_services(cluster="production-cluster", services=[SERVICE])["services"][0]
    body = ecs.describe_task_definition(taskDefinition=svc["taskDefinition"])["taskDefinition"]
    backend = EmbeddedAws.backend("ecs")
    for _ in range(total - len(_active(world, body["family"]))):
        backend.register_task_definition(
            family=body["family"], container_definitions=body["containerDefinitions"],
            network_mode=body.get("networkMode"), cpu=body.get("cpu"), memory=body.get("memory"),
            requires_compatibilities=body.get("requiresCompatibilities"),
            execution_role_arn=body.get("executionRoleArn"))
    from chalicelib import config

    keep = config.load(world.env["SLIPWAY_CONFIG"]).service(SERVICE).prune.keep
    return body["family"], keep


def _active(world, family: str) -> list[str]:
    ecs, arns, token = world.client("ecs"), [], None
    while True:
        page = ecs.list_task_definitions(familyPrefix=family, status="ACTIVE",
                                         **({"nextToken": token} if token else {}))
        arns += page["taskDefinitionArns"]
        token = page.get("nextToken")
        if not token:
            return arns


def _report(first: Counter, later: Counter, reconciles: int, active: list[str], keep: int,
            took: float) -> list[Result]:
    total = first + later
    lists = total[("ecs", "ListTaskDefinitions")]
    deregisters = total[("ecs", "DeregisterTaskDefinition")]
    removed = N - len(active)
    other = {f"{s}:{o}": n for (s, o), n in sorted(total.items())
             if o not in ("ListTaskDefinitions", "DeregisterTaskDefinition")}
    say(f"invocations: the rollout handler (60 s) + {reconciles} reconciler run(s) (300 s); "
        f"the rollout handler's share: {first[('ecs', 'DeregisterTaskDefinition')]} deregistered")
    say(f"{lists} ListTaskDefinitions (⌈{N}/{PAGE}⌉ = {math.ceil(N / PAGE)}), {deregisters:,} "
        f"DeregisterTaskDefinition for {removed:,} revisions removed; {len(active)} left ACTIVE "
        f"(keep = {keep}, plus what a rollback needs)")
    say(f"every other call of the pruning invocations: {other}")
    say(f"took {took:.0f} s on this machine (set-up included)")
    budget = math.ceil(N / PAGE) + removed
    return [Result("prune moto", lists + deregisters, budget, "calls",
                   shown=f"{lists} list + {deregisters:,} deregister, {1 + reconciles} invocations")]
