"""The peer, fabfuel's ``ecs-deploy`` (PyPI), in a venv of its own under build/ (never in Slipway's
Lambda package nor in requirements*.txt), and its side of the side-by-side deployment.

    python_path()                  the bench venv's interpreter (created and filled on first use)
    deployment(world, image, ...)  run bench/_peer_child.py there; return its calls by operation
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / "build" / "bench-venv"
REQUIREMENTS = Path(__file__).with_name("requirements-peer.txt")
KEY = "ecsdeploy"


def python_path() -> Path:
    """The bench venv's python, with ecs-deploy installed and every module byte-compiled (as on
    Lambda, where nothing is compiled at start-up: both sides are measured precompiled)."""
    python = VENV / "bin" / "python"
    stamp = VENV / ".installed"
    wanted = REQUIREMENTS.read_text()
    if not (stamp.is_file() and stamp.read_text() == wanted):
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "-r", str(REQUIREMENTS)],
                       check=True, timeout=600)
        site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()"
                               "['purelib'])"], capture_output=True, text=True, check=True)
        subprocess.run([str(python), "-m", "compileall", "-q", site.stdout.strip()],
                       capture_output=True)
        stamp.write_text(wanted)
    return python


def version() -> str:
    done = subprocess.run([str(python_path()), "-c", "import importlib.metadata as m; "
                           "print(m.version('ecs-deploy'))"], capture_output=True, text=True)
    return done.stdout.strip()


class Clock:
    """``POST /advance?s=N`` on 127.0.0.1 moves the world's emulated clock on by N seconds."""

    def __init__(self, world) -> None:
        world_ = world

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                seconds = float(parse_qs(urlparse(self.path).query)["s"][0])
                world_.advance(seconds)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/advance"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def child_env(world) -> dict:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLIPWAY_", "AWS_"))}
    env.update(AWS_ENDPOINT_URL=world.endpoint, AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=KEY,
               AWS_DEFAULT_REGION="us-east-1")
    return env


def deployment(world, svc, image: str, rollout_s: float, migration_s: float) -> dict:
    """ecs-deploy's deployment of ``image`` to ``svc`` (a ServiceConfig); calls it made, by
    (service, operation), counted at the server."""
    world.configure_ecs(task_seconds=migration_s, migration_exit_code=0, rollout="complete")
    clock = Clock(world)
    started = world.scheduler.now
    job = {"advance_url": clock.url, "family": _family(world, svc), "cluster": svc.cluster,
           "service": svc.service, "container": svc.container, "image": image,
           "migration": list(svc.migration.command), "network": world.provisioned.network}
    before = world.counts(KEY)
    timer = threading.Timer(0, lambda: None)
    try:
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(job, f)
        # the rollout's length applies from UpdateService on: set it once the migration runs
        timer = _when_task_runs(world, lambda: world.configure_ecs(task_seconds=rollout_s))
        done = subprocess.run([str(python_path()), str(Path(__file__).with_name("_peer_child.py")),
                               "deploy", f.name], env=child_env(world), capture_output=True,
                              text=True, timeout=600)
    finally:
        timer.cancel()
        clock.close()
        Path(f.name).unlink(missing_ok=True)
    if done.returncode != 0:
        raise RuntimeError(f"ecs-deploy failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.split("RESULT ", 1)[1])
    world.take_events()  # nobody listens to ECS's events on this side
    return {"ok": result["ok"], "calls": world.counts(KEY) - before,
            "emulated_s": world.scheduler.now - started}


def _family(world, svc) -> str:
    ecs = world.client("ecs")
    arn = ecs.describe_services(cluster=svc.cluster, services=[svc.service])["services"][0][
        "taskDefinition"]
    return arn.rsplit("/", 1)[-1].rsplit(":", 1)[0]


def _when_task_runs(world, action) -> threading.Timer:
    """Call ``action`` once a one-off task has been started (watching the emulation's events)."""
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(0.02):
            if any(e.get("detail-type") == "ECS Task State Change" for e in list(world.events)):
                action()
                return

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()

    class Handle:
        def cancel(self) -> None:
            stop.set()

    return Handle()
