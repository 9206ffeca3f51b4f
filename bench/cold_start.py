"""Cold start: a fresh process that imports ``app`` and handles one ECR push event, against a bare
process that imports boto3 and makes the same AWS calls. Budget: ≤ 1.5× (DESIGN.md "Budgets").
Also: the peak RSS of that process against the 256 MB the functions get.

How: a moto server on 127.0.0.1 (in this process) is provisioned once like production, with a
Slack/GitHub stand-in so notifications succeed as they would in production (bench/loopback.py).
Each round pushes a new image (three tags) to moto's ECR and runs these children in turn:

* ``slipway``: ``python -m bench._cold_child slipway`` imports app and calls the real handler
  ``app.on_image_pushed(event, context)`` for the push's first event (dependencies come from the
  environment, as in Lambda); botocore hooks record every AWS call it makes;
* ``bare``: ``python -m bench._cold_child bare`` imports boto3 and replays exactly those calls
  (same operations, same parameters, same order) with plain clients;
* a what-if: ``slipway`` again, with every boto3 client built from one Session (reported as a
  detail only, never the headline).

Between children the tables are emptied, so both meet the same state. One warm-up round is run
first (it warms the OS file cache), then ROUNDS rounds. The headline is the ratio of the median
"ready" times, spawn → handler returned (interpreter start-up included on both sides; the
interpreter's exit excluded, since a Lambda container does not exit after answering).
"""
from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.report import Result, say, section

ROUNDS = 7
BUDGET = 1.5  # × the bare process
MEMORY_MB = 256
ROOT = Path(__file__).resolve().parent.parent
SERVICE = "better-chatbot"
TAGS = ["abc123d", "1.22.0-abc123d", "latest"]
#: Not in our zip: the Lambda Python runtime provides (and has compiled) the AWS SDK; the last two
#: are artefacts of the development venv (certifi comes with requests, _distutils_hack with pip).
NOT_SHIPPED = ("boto3", "botocore", "s3transfer", "dateutil", "urllib3", "six", "certifi",
               "_distutils_hack")


def run() -> list[Result]:
    section("cold start: fresh process, one ECR push event, vs bare boto3 making the same calls")
    from bench.loopback import aws_account

    with aws_account() as account, tempfile.TemporaryDirectory() as tmp:
        rounds = [_round(account, Path(tmp), i) for i in range(ROUNDS + 1)][1:]  # no warm-up
    results = _results(rounds)
    _what_if(rounds)
    _import_profile()
    return results


def _round(account, tmp: Path, i: int) -> dict:
    event = _push(account, i)
    before = len(account.stub.requests)
    slipway = _child(account, tmp, "slipway", {"event": event})
    slipway["http"] = account.stub.requests[before:]
    account.clear_tables()
    bare = _child(account, tmp, "bare", {"calls": slipway["calls"]})
    account.clear_tables()
    what_if = _child(account, tmp, "slipway", {"event": _push(account, 1000 + i),
                                               "shared_session": True})
    account.clear_tables()
    return {"slipway": slipway, "bare": bare, "what_if": what_if}


def _what_if(rounds: list[dict]) -> None:
    """Each round also ran Slipway's child with every boto3 client built from one Session (a
    what-if, not the app's code): how much of the gap is the Session-per-client of aws.py."""
    ready = statistics.median(p["what_if"]["ready_s"] for p in rounds)
    ratio = statistics.median(p["what_if"]["ready_s"] / p["bare"]["ready_s"] for p in rounds)
    clients = statistics.median(p["what_if"]["clients_s"] for p in rounds)
    say(f"what-if, one boto3 Session for all clients (chalicelib/adapters/aws.py builds a new "
        f"Session per client, which reloads botocore's data): ready {_ms(ready)}, "
        f"{ratio:.2f}× bare (per-round median); building clients {_ms(clients)}")


def _import_profile(top: int = 6, runs: int = 3) -> None:
    """``python -X importtime -c 'import app'``: the heaviest direct imports of app.py (best of
    ``runs`` per module, since the machine is shared)."""
    best: dict[str, float] = {}
    for _ in range(runs):
        done = subprocess.run([sys.executable, "-X", "importtime", "-c", "import app"], cwd=ROOT,
                              capture_output=True, text=True, timeout=60)
        for line in done.stderr.splitlines():
            if not line.startswith("import time:") or line.count("|") != 2:
                continue
            _, cumulative, name = line.split("|")
            if name.startswith("   ") and not name.startswith("    "):  # direct children of app
                ms = int(cumulative) / 1000
                best[name.strip()] = min(ms, best.get(name.strip(), ms))
    heavy = ", ".join(f"{n} {ms:.0f} ms" for n, ms in sorted(best.items(), key=lambda kv: -kv[1])
                      [:top])
    say(f"heaviest imports of app.py (cumulative; the first importer pays, so bootstrap carries "
        f"boto3): {heavy}")


def _push(account, i: int) -> dict:
    """Push a new image under three tags to moto's ECR; return the event of its first tag."""
    from tests.integration.helpers import push_events, push_image

    digest = push_image(account, SERVICE, TAGS)
    event = push_events(SERVICE, digest, TAGS)[0]
    event["id"] = f"bench-cold-{i}-{time.time_ns()}"
    return event


def _child(account, tmp: Path, mode: str, job: dict) -> dict:
    job_path, out_path = tmp / f"{mode}.job.json", tmp / f"{mode}.out.json"
    job_path.write_text(json.dumps(job))
    spawned, started = time.time(), time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "bench._cold_child", mode, str(job_path),
                           str(out_path)], cwd=ROOT, env=account.env, capture_output=True,
                          text=True, timeout=120)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{mode} child failed ({done.returncode}):\n{done.stderr[-3000:]}")
    out = json.loads(out_path.read_text())
    out["wall_s"] = wall
    out["ready_s"] = out["done_at"] - spawned  # spawn → handler returned (what Lambda waits for)
    out["exit_s"] = wall - out["ready_s"]  # writing the result and the interpreter's exit
    out["log_lines"] = len(done.stdout.splitlines())
    return out


# -- reporting -------------------------------------------------------------------------------------
KEYS = ("ready_s", "wall_s", "exit_s", "import_s", "handle_s", "maxrss_mb")


def _results(rounds: list[dict]) -> list[Result]:
    s = {k: statistics.median(p["slipway"][k] for p in rounds) for k in KEYS + ("clients_s",)}
    b = {k: statistics.median(p["bare"][k] for p in rounds) for k in KEYS}
    first = rounds[0]["slipway"]
    ratio = s["ready_s"] / b["ready_s"]
    paired = statistics.median(p["slipway"]["ready_s"] / p["bare"]["ready_s"] for p in rounds)
    say(f"{len(rounds)} rounds (slipway, bare, what-if) after one warm-up; medians. 'ready' = "
        "spawn → handler returned (what a cold Lambda makes its caller wait); 'exit' = the "
        "interpreter's exit after it")
    say(f"slipway: ready {_ms(s['ready_s'])} = start-up + import app {_ms(s['import_s'])} + "
        f"handler {_ms(s['handle_s'])} (building boto3 clients {_ms(s['clients_s'])} of it); "
        f"exit +{_ms(s['exit_s'])}; peak RSS {s['maxrss_mb']:.0f} MB")
    say(f"bare:    ready {_ms(b['ready_s'])} = start-up + import boto3 {_ms(b['import_s'])} + "
        f"calls {_ms(b['handle_s'])}; exit +{_ms(b['exit_s'])}; peak RSS {b['maxrss_mb']:.0f} MB")
    say(f"ready slipway {[_ms(p['slipway']['ready_s']) for p in rounds]}")
    say(f"ready bare    {[_ms(p['bare']['ready_s']) for p in rounds]}")
    say(f"ratio of medians {ratio:.2f}×; median of per-round ratios {paired:.2f}×; "
        f"spawn → exit {s['wall_s'] / b['wall_s']:.2f}× ({_ms(s['wall_s'])} vs {_ms(b['wall_s'])})")
    _calls(first, rounds)
    _shipped_modules(first)
    return [
        Result("cold_start", ratio, BUDGET, "× bare",
               shown=f"{ratio:.2f}× ({_ms(s['ready_s'])} vs {_ms(b['ready_s'])})"),
        Result("memory", s["maxrss_mb"], MEMORY_MB, "MB",
               shown=f"{s['maxrss_mb']:.0f} MB peak RSS (bare {b['maxrss_mb']:.0f} MB)"),
    ]


def _calls(first: dict, rounds: list[dict]) -> None:
    from bench.awscalls import Call, tally

    calls = [Call(service, op, params, "run") for service, op, params in first["calls"]]
    say(f"result: {first['result']}")
    say(f"AWS calls replayed ({len(calls)}): {tally(calls)}")
    errors = sorted({e for p in rounds for e in p["bare"]["errors"]})
    if errors:
        say(f"replay answered with errors (same round trip, counted as calls): {errors}")
    say(f"besides AWS: {len(first['http'])} Slack/GitHub requests to the loopback stand-in "
        f"({', '.join(sorted(set(first['http'])))}), {first['log_lines']} log lines")


def _shipped_modules(first: dict) -> None:
    """How many modules come from our zip (not the Lambda runtime, not the stdlib), and what
    compiling them costs: Lambda cannot write .pyc files into /var/task, so a zip without them
    compiles these on every cold start."""
    ours = [f for f in first["modules"] if f.endswith(".py") and _shipped(f)]
    sources = [(Path(path).read_text(encoding="utf-8"), path) for path in ours]
    cost = min(_compile_all(sources) for _ in range(3))  # best of three: the machine is shared
    groups: dict[str, int] = {}
    for path in ours:
        groups[_top(path)] = groups.get(_top(path), 0) + 1
    say(f"modules imported from the deployment package: {len(ours)} "
        f"({', '.join(f'{k} {v}' for k, v in sorted(groups.items(), key=lambda kv: -kv[1]))}); "
        f"compiling them from source takes {_ms(cost)} (paid per cold start: the zip has no .pyc)")


def _compile_all(sources: list[tuple[str, str]]) -> float:
    started = time.perf_counter()
    for source, path in sources:
        compile(source, path, "exec")
    return time.perf_counter() - started


def _shipped(path: str) -> bool:
    if "/site-packages/" in path:
        return _top(path) not in NOT_SHIPPED
    return path.startswith(str(ROOT)) and _top(path) in ("app", "chalicelib")


def _top(path: str) -> str:
    rel = path.split("/site-packages/", 1)[1] if "/site-packages/" in path else \
        str(Path(path).relative_to(ROOT)) if path.startswith(str(ROOT)) else path
    return rel.split("/", 1)[0].removesuffix(".py")


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"
