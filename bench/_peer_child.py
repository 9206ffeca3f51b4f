"""Runs inside the bench-only venv (bench/peer.py), never with Slipway's code: fabfuel's
``ecs-deploy`` doing what a CI job does with it for one deployment with a migration.

    python bench/_peer_child.py deploy JOB.json    the deployment (below), output on stdout
    python bench/_peer_child.py first  JOB.json    cold start: import ecs-deploy, make its first call

The deployment, as its README suggests:
    ecs update FAMILY -i CONTAINER IMAGE                    new revision with the new image
    ecs run CLUSTER FAMILY:REV -c CONTAINER MIGRATION ...   the migration, as a one-off task
    aws ecs wait tasks-stopped + describe-tasks             ecs-deploy cannot wait for a task
    ecs deploy CLUSTER SERVICE --task FAMILY:REV            rollout, polled until done, cleanup
Emulated time: every ``sleep`` (ecs-deploy's poll interval, boto3's waiter delay) asks the bench
to move the ECS emulation's clock on instead of waiting (``job["advance_url"]``).
"""
from __future__ import annotations

import io
import json
import re
import sys
import time
import urllib.request
from contextlib import redirect_stdout


def _sleep_on(url: str):
    def sleep(seconds: float) -> None:
        urllib.request.urlopen(urllib.request.Request(f"{url}?s={seconds}", method="POST"),
                               timeout=60).close()
    return sleep


def _ecs(args: list[str]) -> str:
    from ecs_deploy.cli import ecs

    out = io.StringIO()
    with redirect_stdout(out):
        try:
            ecs.main(args, prog_name="ecs", standalone_mode=False)
        except SystemExit as exc:
            if exc.code:
                raise RuntimeError(f"ecs {args[0]} exited {exc.code}: {out.getvalue()[-800:]}")
    return out.getvalue()


def deploy(job: dict) -> dict:
    import boto3
    from ecs_deploy import cli

    sleep = _sleep_on(job["advance_url"])
    cli.sleep = sleep
    time.sleep = sleep  # boto3's waiter
    family, cluster, container = job["family"], job["cluster"], job["container"]
    out = _ecs(["update", family, "-i", container, job["image"]])
    rev = re.search(r"Successfully created revision: (\d+)", out).group(1)
    net = job["network"]["awsvpcConfiguration"]
    run = ["run", cluster, f"{family}:{rev}", "-c", container, " ".join(job["migration"]),
           "--launchtype", "FARGATE"]
    for subnet in net["subnets"]:
        run += ["--subnet", subnet]
    for group in net["securityGroups"]:
        run += ["--securitygroup", group]
    task = re.search(r"- (arn:aws:ecs:\S+)", _ecs(run)).group(1)
    ecs = boto3.client("ecs")
    ecs.get_waiter("tasks_stopped").wait(cluster=cluster, tasks=[task])
    exit_code = ecs.describe_tasks(cluster=cluster, tasks=[task])["tasks"][0]["containers"][0] \
        .get("exitCode")
    if exit_code != 0:
        raise RuntimeError(f"the migration exited {exit_code}")
    out = _ecs(["deploy", cluster, job["service"], "--task", f"{family}:{rev}",
                "--timeout", "3600"])
    return {"ok": "Deployment successful" in out, "revision": rev}


def first(job: dict) -> dict:
    """Import + first call of ``ecs deploy``: its client and DescribeServices."""
    t0 = time.perf_counter()
    from ecs_deploy.cli import get_client
    from ecs_deploy.ecs import DeployAction

    t1 = time.perf_counter()
    DeployAction(get_client(None, None, None, None, None, None), job["cluster"], job["service"])
    t2 = time.perf_counter()
    return {"import_s": t1 - t0, "handle_s": t2 - t1, "done_at": time.time(),
            "cpu_s": time.process_time()}


def main(argv: list[str]) -> int:
    mode, job_path = argv
    with open(job_path) as f:
        job = json.load(f)
    out = deploy(job) if mode == "deploy" else first(job)
    print("RESULT " + json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
