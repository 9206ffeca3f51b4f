"""AWS API calls for one deployment, Slipway next to fabfuel's ``ecs-deploy``, counted at the server.

Budgets (DESIGN.md "Budgets"): push → SUCCEEDED, excluding pruning, ECS/ECR/Secrets Manager ≤ 12
and all services ≤ 30, whatever the rollout takes; the peer's number is the one measured here.

Both tools deploy the same new image of better-chatbot (migration task waited for, rollout,
cleanup) on one loopback AWS (bench/world.py: moto + the devstack's ECS emulation on emulated
time), one after the other, at each rollout length of ROLLOUTS. Slipway's side is
bench/slipway_side.py (the real handlers, fresh dependencies per invocation, every ECS event, one
reconciler run); ecs-deploy's is bench/_peer_child.py in its own venv (bench/peer.py).
"""
from __future__ import annotations

import platform
from collections import Counter
from datetime import datetime, timezone

from bench.report import Result, say, section

ROLLOUTS = (5, 20, 60)
MIGRATION_S = 10
CONTROL = ("ecs", "ecr", "secretsmanager")
BUDGET_CONTROL, BUDGET_ALL = 12, 30
SERVICE = "better-chatbot"


def run() -> list[Result]:
    section("AWS calls per deployment, side by side with ecs-deploy (counted at the server)")
    from bench import peer
    from bench.world import World
    from chalicelib import config
    from devstack.events import push_image

    say(f"{machine()}; ecs-deploy {peer.version()}; migration {MIGRATION_S} s (emulated time)")
    rows = []
    with World() as world:
        import app as app_module

        svc = config.load(world.env["SLIPWAY_CONFIG"]).service(SERVICE)
        warm_up(world, app_module)
        for i, rollout in enumerate(ROLLOUTS):
            ours, pruned = slipway(world, app_module, i, rollout)
            sha = f"{i + 1:x}" * 7
            digest, _ = push_image(world.client("ecr"), SERVICE, [f"peer-{sha}"], "123456789012",
                                   "us-east-1")
            theirs = peer.deployment(world, svc, f"123456789012.dkr.ecr.us-east-1.amazonaws.com/"
                                     f"{SERVICE}@{digest}", rollout, MIGRATION_S)
            if not theirs["ok"]:
                raise RuntimeError("ecs-deploy's deployment did not succeed")
            rows.append((rollout, ours, pruned, theirs))
    return _report(rows)


def slipway(world, app_module, i: int, rollout: float) -> tuple[dict, Counter]:
    """Slipway's ``i``-th deployment (a new image) with a ``rollout``-second rollout: what
    ``slipway_side.deployment`` returns, and the calls pruning made (counted apart)."""
    from bench import slipway_side

    sha = f"{i + 1:x}" * 7
    # GitHub knows who wrote the commit (prevent_self_review holds approvals until it does).
    world.github.set_commit_author("acme/better-chatbot", sha, "bench-author")
    with _pruning_apart(world) as pruned:
        ours = slipway_side.deployment(world, app_module, [sha, f"1.{i}.0-{sha}", "latest"],
                                       rollout, MIGRATION_S)
    if ours["state"] != "SUCCEEDED":
        raise RuntimeError(f"Slipway's deployment ended {ours['state']}")
    return ours, Counter(pruned)


def warm_up(world, app_module) -> None:
    """The service's first deployment through Slipway, not reported: a service being deployed has
    a history, and the first push of one without asks the ledger once more (a Query for its last
    success, which from then on is on the service's head item)."""
    slipway(world, app_module, 9, 5)


def deployment_calls(ours: dict, pruned: Counter) -> Counter:
    """Every call push → SUCCEEDED, by (service, operation), pruning excluded."""
    return _total(ours["by_handler"], pruned)


def machine() -> str:
    import os

    return (f"{platform.node() or 'machine'}: {os.cpu_count()} CPUs, {platform.machine()}, "
            f"Python {platform.python_version()}, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC")


class _pruning_apart:
    """Count what ``prune.after_success`` does apart (the budget excludes pruning)."""

    def __init__(self, world) -> None:
        self.world = world

    def __enter__(self) -> Counter:
        from chalicelib.service import prune

        self.pruned: Counter = Counter()
        self.original = prune.after_success
        pruned, original, world = self.pruned, self.original, self.world

        def counted(deps, dep):
            before = world.counts("slipway")
            try:
                return original(deps, dep)
            finally:
                pruned.update(world.counts("slipway") - before)

        prune.after_success = counted
        return self.pruned

    def __exit__(self, *exc) -> None:
        from chalicelib.service import prune

        prune.after_success = self.original


def _total(by_handler: dict, pruned: Counter) -> Counter:
    total: Counter = Counter()
    for name, calls in by_handler.items():
        if not name.endswith("(after)"):
            total.update(calls)
    total.subtract(pruned)
    return +total


def _by_service(calls: Counter) -> dict[str, int]:
    out: dict[str, int] = {}
    for (service, _), n in calls.items():
        out[service] = out.get(service, 0) + n
    return out


def _report(rows) -> list[Result]:
    say("calls by service, push → SUCCEEDED (Slipway: pruning excluded, one reconciler run "
        "included; ecs-deploy: update + run + wait for the task + deploy with its cleanup)")
    say(f"{'rollout':>8} | {'Slipway ECS/ECR/SM':>18} {'DynamoDB':>8} {'SQS':>4} {'all':>4} | "
        f"{'ecs-deploy ECS':>14} {'all':>4} | Slipway pruning")
    results = []
    for rollout, ours, pruned, theirs in rows:
        total = _total(ours["by_handler"], Counter(pruned))
        svc = _by_service(total)
        control = sum(n for s, n in svc.items() if s in CONTROL)
        peer_all = sum(theirs["calls"].values())
        say(f"{rollout:>6} s | {control:>18} {svc.get('dynamodb', 0):>8} {svc.get('sqs', 0):>4} "
            f"{sum(svc.values()):>4} | {peer_all:>14} {peer_all:>4} | {sum(pruned.values())} "
            f"({', '.join(f'{o}×{n}' for (_, o), n in sorted(pruned.items()))})")
        rows_all = sum(svc.values())
        results.append(Result(f"calls {rollout}s", rows_all, BUDGET_ALL, "calls",
                              shown=f"{rows_all} all ({control} ECS/ECR/SM); ecs-deploy {peer_all}"))
        results.append(Result(f"ctl {rollout}s", control, BUDGET_CONTROL, "calls"))
    _crossover(rows)
    rollout, ours, pruned, theirs = rows[len(rows) // 2]
    _per_handler(rollout, ours, Counter(pruned))
    say(f"ecs-deploy at {rollout} s: " + ", ".join(
        f"{o}×{n}" for (_, o), n in sorted(theirs["calls"].items(), key=lambda kv: -kv[1])))
    return results


def _crossover(rows) -> None:
    """ecs-deploy's calls as a + b·rollout (first and last lengths); where Slipway's flat count
    crosses it."""
    (t0, ours, pruned, p0), (t1, _, _, p1) = rows[0], rows[-1]
    c0, c1 = sum(p0["calls"].values()), sum(p1["calls"].values())
    slope = (c1 - c0) / (t1 - t0)
    base = c0 - slope * t0
    mine = sum(_total(ours["by_handler"], Counter(pruned)).values())
    say(f"ecs-deploy ≈ {base:.0f} + {slope:.2f} per second of rollout; Slipway's {mine} are fewer "
        f"for rollouts longer than {max((mine - base) / slope, 0):.0f} s" if slope > 0 else
        "ecs-deploy's calls did not grow with the rollout")


def _per_handler(rollout, ours, pruned: Counter) -> None:
    say(f"Slipway at {rollout} s, calls per operation per handler (invocations in brackets; "
        "pruning taken out of the rollout handler)")
    for name, calls in ours["by_handler"].items():
        calls = Counter(calls)
        if name.startswith("on_deployment_state_change"):
            calls.subtract(pruned)
            calls = +calls
        text = ", ".join(f"{s}:{o}×{n}" for (s, o), n in
                         sorted(calls.items(), key=lambda kv: (kv[0][0], -kv[1])))
        say(f"  {name} [{ours['invocations'][name]}] {sum(calls.values())}: {text}")
