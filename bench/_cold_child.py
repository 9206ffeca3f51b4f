"""The child process of bench/cold_start.py: one fresh interpreter, one Lambda invocation.

    python -m bench._cold_child slipway JOB.json OUT.json   import app, handle job["event"]
    python -m bench._cold_child bare    JOB.json OUT.json   import boto3, replay job["calls"]
    python -m bench._cold_child libraries JOB.json OUT.json  the same after importing powertools,
                                                             Chalice and slack_sdk too

``slipway`` is what Lambda does on a cold start: import ``app`` (dependencies are built from the
environment on the first event) and call ``app.on_image_pushed(event, context)``. It records every
AWS call (service, operation, parameters) with botocore hooks so that ``bare`` can make exactly the
same calls, in the same order, with plain ``boto3.client(...)`` and nothing else.

Both write to OUT.json their timings; ``cpu_s``, the process's CPU time when the handler
returned (what the benchmark gathers afterwards, the calls and modules, is not counted);
``done_at``, the wall-clock time the work was done (the parent measures spawn → answer, without
the interpreter's exit, which a Lambda container never pays per invocation); and the peak RSS,
read as ``VmHWM`` from /proc/self/status, because ``resource.getrusage(RUSAGE_SELF).ru_maxrss``
keeps the parent's RSS from before the exec (here the moto server's: both children reported the
same 270 MB). Only the stdlib is imported up front, so both sides start from the same
interpreter state.
"""
from __future__ import annotations

import json
import resource
import sys
import time

def slipway(job: dict) -> dict:
    t0 = time.perf_counter()
    from bench import awscalls
    from bench.lambda_context import Context

    recorder, _ = awscalls.install()  # imports chalicelib.adapters.aws, which app imports anyway
    import app

    t1 = time.perf_counter()
    result = app.on_image_pushed(job["event"], Context())
    t2 = time.perf_counter()
    out = _done({"import_s": t1 - t0, "handle_s": t2 - t1, "result": result})
    # What the benchmark wants to know besides, gathered after the clock stopped:
    out.update(clients_s=recorder.build_s,
               calls=[[c.service, c.operation, c.params] for c in recorder.calls],
               modules=sorted({getattr(m, "__file__", None) or "" for m in sys.modules.values()}
                              - {""}))
    return out


def bare(job: dict, libraries: bool = False) -> dict:
    t0 = time.perf_counter()
    import boto3
    from botocore import xform_name
    from botocore.exceptions import ClientError

    if libraries:  # what Slipway imports besides boto3 (the Slack client, only when it posts)
        import aws_lambda_powertools
        import chalice
        import slack_sdk
    t1 = time.perf_counter()
    clients, errors = {}, []
    for service, operation, params in job["calls"]:
        if service not in clients:
            clients[service] = boto3.client(service)
        try:
            getattr(clients[service], xform_name(operation))(**json.loads(params))
        except ClientError as exc:  # the same request gets the same answer; keep count
            errors.append(f"{operation}: {exc.response['Error'].get('Code')}")
    t2 = time.perf_counter()
    return _done({"import_s": t1 - t0, "handle_s": t2 - t1, "errors": errors})


def _done(out: dict) -> dict:
    """The clock stops here, the moment the handler returned (for both sides alike)."""
    out["done_at"] = time.time()  # the parent measures spawn → here
    out["cpu_s"] = time.process_time()  # CPU since the process started (steadier on a busy host)
    return out


def slack() -> int:
    """``slack`` mode: one Lambda container answering Slack clicks. Reads one API Gateway event
    per line on stdin, answers each with a JSON line: its status and when it was answered (the
    first line is the cold start: the import of app is part of it)."""
    from bench.lambda_context import Context

    for line in sys.stdin:
        event = json.loads(line)
        import app  # the first time only: a cold container imports, a warm one has it

        res = app.app(event, Context())
        print(json.dumps({"status": res.get("statusCode"), "done_at": time.time(),
                          "body": str(res.get("body"))[:300]}), flush=True)
    return 0


def peak_rss_mb() -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux; see above


def main(argv: list[str]) -> int:
    if argv == ["slack"]:
        return slack()
    mode, job_path, out_path = argv
    with open(job_path) as f:
        job = json.load(f)
    out = slipway(job) if mode == "slipway" else bare(job, libraries=mode == "libraries")
    out["maxrss_mb"] = peak_rss_mb()
    with open(out_path, "w") as f:
        json.dump(out, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
