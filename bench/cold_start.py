"""Cold start, paired: Slipway's handler against bare boto3 making the same calls and against
``ecs-deploy``'s import + first call. Budgets (DESIGN.md "Budgets"): ≤ 1.1× bare, and faster than
ecs-deploy. Also the peak RSS against the 256 MB the functions get, and the import profile.

Each round spawns, in an order that rotates from round to round, on the loopback AWS of
bench/world.py (tables emptied between children, so each meets the same state):

* ``slipway``: ``python -m bench._cold_child slipway`` imports ``app`` and calls the real
  ``app.on_image_pushed(event, context)`` for a new image's first tag (dependencies from the
  environment, as in Lambda; Slack and GitHub are told, as in production);
* ``bare``: ``python -m bench._cold_child bare`` imports boto3 and replays exactly those AWS calls;
* ``libraries``: the same replay after importing what Slipway is built on besides boto3
  (powertools, Chalice, slack_sdk): what any Slipway on these libraries pays before a line of its
  own code runs, and so what stands between Slipway and the ≤ 1.1× budget that no code of ours
  can remove (not a budget itself, reported beside it);
* ``ecs-deploy``: bench/_peer_child.py ``first`` in the bench venv: import ``ecs_deploy`` and make
  its first call (its client, DescribeServices), what ``ecs deploy`` does before anything else.

Everything is byte-compiled first (app, chalicelib, both venvs): Lambda never compiles at start-up
(``make package`` ships .pyc, the runtime's boto3 is compiled), and this machine sets
PYTHONDONTWRITEBYTECODE, so an uncompiled side would pay for compiling on every start. "ready" is
spawn → handler returned (interpreter start-up included, its exit excluded: a Lambda container
does not exit after answering). The headline is the median of the per-round ratios, with min/max.
"""
from __future__ import annotations

import compileall
import json
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

from bench.report import Result, say, section

ROUNDS = int(__import__("os").environ.get("BENCH_ROUNDS", "7"))
BUDGET = 1.1  # × bare boto3
MEMORY_MB = 256
ROOT = Path(__file__).resolve().parent.parent
SERVICE = "better-chatbot"
MODES = ("slipway", "bare", "libraries", "ecs-deploy")


def run() -> list[Result]:
    section("cold start, paired rounds: Slipway vs bare boto3 (same calls) vs ecs-deploy")
    from bench import peer
    from bench.api_calls import machine
    from bench.world import World

    peer_python = peer.python_path()
    precompile()
    say(f"{machine()}; {ROUNDS} rounds after one warm-up, order rotating; everything precompiled")
    with World() as world, tempfile.TemporaryDirectory() as tmp:
        rounds = [_round(world, Path(tmp), i, peer_python) for i in range(ROUNDS + 1)][1:]
    results = _results(rounds)
    import_profile()
    return results


def precompile() -> None:
    """Byte-compile what both sides import (quiet; only what is stale is compiled)."""
    for path in (ROOT / "app.py", ROOT / "chalicelib", Path(sysconfig.get_paths()["purelib"])):
        if path.is_dir():
            compileall.compile_dir(str(path), quiet=2)
        else:
            compileall.compile_file(str(path), quiet=2)


def _round(world, tmp: Path, i: int, peer_python: Path) -> dict:
    from bench import peer

    order = MODES[i % len(MODES):] + MODES[:i % len(MODES)]
    out: dict = {}
    calls = None
    for mode in order:
        if mode == "slipway":
            event = _push(world, i)
            out["slipway"] = _child(world.env, tmp, [sys.executable, "-m", "bench._cold_child",
                                                     "slipway"], {"event": event})
            calls = out["slipway"]["calls"]
        elif mode in ("bare", "libraries"):
            if calls is None:  # before Slipway this round: the previous round's calls
                calls = getattr(world, "last_calls")
            out[mode] = _child(world.env, tmp, [sys.executable, "-m", "bench._cold_child",
                                                mode], {"calls": calls})
        else:
            out["ecs-deploy"] = _child(peer.child_env(world), tmp, [
                str(peer_python), str(ROOT / "bench" / "_peer_child.py"), "first"],
                {"cluster": "production-cluster", "service": SERVICE})
        clear_tables(world)
    world.last_calls = out["slipway"]["calls"]
    return out


def _push(world, i: int) -> dict:
    from devstack.events import push_image

    sha = f"{i:07x}"
    _, events = push_image(world.client("ecr"), SERVICE, [sha, f"1.{i}.0-{sha}", "latest"],
                           "123456789012", "us-east-1")
    return events[0]


def clear_tables(world) -> None:
    """Back to the just-provisioned ledger (and idempotency store)."""
    ddb = world.client("dynamodb")
    for table in (world.env["SLIPWAY_TABLE"], world.env["SLIPWAY_IDEMPOTENCY_TABLE"]):
        keys = [k["AttributeName"] for k in ddb.describe_table(TableName=table)["Table"]["KeySchema"]]
        for page in ddb.get_paginator("scan").paginate(TableName=table):
            for item in page["Items"]:
                ddb.delete_item(TableName=table, Key={k: item[k] for k in keys})


def _child(env: dict, tmp: Path, argv: list[str], job: dict) -> dict:
    job_path, out_path = tmp / "job.json", tmp / "out.json"
    job_path.write_text(json.dumps(job))
    out_path.unlink(missing_ok=True)
    argv = argv + [str(job_path)] + ([str(out_path)] if "bench._cold_child" in argv else [])
    spawned = time.time()
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"{argv[-2]} child failed ({done.returncode}):\n{done.stderr[-3000:]}")
    if out_path.is_file():
        out = json.loads(out_path.read_text())
    else:
        out = json.loads(done.stdout.split("RESULT ", 1)[1])
    out["ready_s"] = out["done_at"] - spawned
    return out


# -- reporting -------------------------------------------------------------------------------------
def _spread(values: list[float]) -> str:
    return f"median {statistics.median(values):.2f}× (min {min(values):.2f}, max {max(values):.2f})"


def _ratios(rounds: list[dict], key: str, a: str, b: str) -> list[float]:
    return [r[a][key] / r[b][key] for r in rounds]


def _results(rounds: list[dict]) -> list[Result]:
    ready = {m: [r[m]["ready_s"] for r in rounds] for m in MODES}
    med = {m: statistics.median(v) for m, v in ready.items()}
    cpu = {m: statistics.median(r[m]["cpu_s"] for r in rounds) for m in MODES}
    imports = {m: statistics.median(r[m]["import_s"] for r in rounds) for m in MODES}
    handles = {m: statistics.median(r[m]["handle_s"] for r in rounds) for m in MODES}
    say("'ready' = spawn → handler returned (wall); 'CPU' = the child's CPU time until then "
        "(steadier when the host is busy); medians:")
    for m in MODES:
        say(f"  {m:<10} ready {_ms(med[m])} (import {_ms(imports[m])} + work {_ms(handles[m])}), "
            f"CPU {_ms(cpu[m])}; rounds {[_ms(v) for v in ready[m]]}")
    table = {}
    for key, label in (("ready_s", "ready"), ("cpu_s", "CPU")):
        for a, b in (("slipway", "bare"), ("slipway", "ecs-deploy"), ("ecs-deploy", "bare"),
                     ("libraries", "bare")):
            table[(key, a, b)] = values = _ratios(rounds, key, a, b)
            say(f"{label:<5} {a} / {b}: {_spread(values)}")
    extra = {m: statistics.median(r[m]["cpu_s"] - r[base]["cpu_s"] for r in rounds)
             for m, base in (("libraries", "bare"), ("slipway", "libraries"))}
    say(f"in the way of ≤ {BUDGET}× (CPU, medians of each round's difference): the libraries "
        f"alone (powertools, Chalice, slack_sdk imported, the same calls replayed) cost "
        f"{_ms(extra['libraries'])} over bare; Slipway's own code (its modules, the push's own "
        f"work, the Slack and GitHub requests) {_ms(extra['slipway'])} more")
    first = rounds[0]["slipway"]
    say(f"Slipway's handler answered {first['result']}; AWS calls replayed by bare: "
        f"{len(first['calls'])} ({', '.join(sorted({c[1] for c in first['calls']}))})")
    rss = statistics.median(r["slipway"]["maxrss_mb"] for r in rounds)
    out = []
    for key, label in (("ready_s", "wall"), ("cpu_s", "CPU")):
        vs_bare, vs_peer = table[(key, "slipway", "bare")], table[(key, "slipway", "ecs-deploy")]
        out.append(Result(f"cold {label}", statistics.median(vs_bare), BUDGET, "× bare",
                          shown=f"{statistics.median(vs_bare):.2f}× bare "
                                f"(min {min(vs_bare):.2f}, max {max(vs_bare):.2f})"))
        out.append(Result(f"cold {label} peer", statistics.median(vs_peer), 1.0, "× ecs-deploy",
                          shown=f"{statistics.median(vs_peer):.2f}× ecs-deploy "
                                f"(min {min(vs_peer):.2f}, max {max(vs_peer):.2f})"))
    out.append(Result("memory", rss, MEMORY_MB, "MB", shown=f"{rss:.0f} MB peak RSS"))
    return out


def import_profile(top: int = 12, runs: int = 3) -> list[tuple[str, float]]:
    """``python -X importtime -c 'import app'``: the heaviest modules (cumulative, best of
    ``runs``), as printed in docs/benchmarks.md."""
    best: dict[str, float] = {}
    for _ in range(runs):
        done = subprocess.run([sys.executable, "-X", "importtime", "-c", "import app"], cwd=ROOT,
                              capture_output=True, text=True, timeout=60)
        for line in done.stderr.splitlines():
            if not line.startswith("import time:") or line.count("|") != 2 or "cumulative" in line:
                continue
            _, cumulative, name = line.split("|")
            depth = (len(name) - len(name.lstrip())) // 2
            if depth <= 2:  # app's imports and theirs
                key = name.strip()
                ms = int(cumulative) / 1000
                best[key] = min(ms, best.get(key, ms))
    heavy = sorted(best.items(), key=lambda kv: -kv[1])[:top]
    say("import profile of `import app` (cumulative ms, best of 3): "
        + ", ".join(f"{n} {ms:.0f}" for n, ms in heavy))
    return heavy


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"
