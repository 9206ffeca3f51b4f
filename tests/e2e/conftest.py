"""End-to-end fixtures: ``python -m devstack serve`` in a subprocess, driven over HTTP and boto3 only.

One devstack serves the whole session (starting one takes a few seconds); every test sets the
emulated ECS behaviour it needs first, pushes its own image (a new digest), and waits for its
deployment to end, so tests do not lean on each other.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.helpers import Devstack

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
TASK_SECONDS = 0.5  # emulated migrations and rollouts take this long


def _wait_for_url(log: Path, proc: subprocess.Popen, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(r"Slipway devstack: (http://\S+)", log.read_text(errors="replace"))
        if found:
            return found.group(1)
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    raise RuntimeError(f"the devstack did not start:\n{log.read_text(errors='replace')[-3000:]}")


def serve_kept(tmp_path_factory, name: str):
    """A devstack whose terminal is captured in a file of its own (the tests read it, and another
    run in the same checkout must not truncate it), then kept as test-artifacts/<name>-e2e.log."""
    ARTIFACTS.mkdir(exist_ok=True)
    log = tmp_path_factory.mktemp(name) / "terminal.log"
    try:
        yield from _serve(log)
    finally:
        if log.exists():
            shutil.copyfile(log, ARTIFACTS / f"{name}-e2e.log")


@pytest.fixture(scope="session")
def devstack(tmp_path_factory):
    yield from serve_kept(tmp_path_factory, "devstack")


@pytest.fixture(scope="session")
def opstack(tmp_path_factory):
    """A second devstack for promotion and freezes: ecs/production plus better-chatbot-eu,
    promoted from better-chatbot, frozen for an hour from two hours on (``freeze_start``; see
    tests/ops_kit.py)."""
    from datetime import datetime, timedelta, timezone

    from tests.ops_kit import write_config

    ARTIFACTS.mkdir(exist_ok=True)
    root = tmp_path_factory.mktemp("opstack")
    log = root / "terminal.log"
    start = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(hours=2)
    try:
        for stack in _serve(log, "--config", str(write_config(root / "config", start))):
            stack.freeze_start = start
            yield stack
    finally:
        if log.exists():
            shutil.copyfile(log, ARTIFACTS / "opstack-e2e.log")


def _serve(log: Path, *extra: str):
    env = {k: v for k, v in os.environ.items()
           if k not in ("SLACK_API_URL", "GITHUB_API_URL", "AWS_ENDPOINT_URL")}
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "devstack", "serve", "--host", "127.0.0.1", "--port", "0",
             "--task-seconds", str(TASK_SECONDS), "--log-level", "INFO", *extra],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        stack = Devstack(_wait_for_url(log, proc, 60), terminal=log)
        stack.wait_healthy(60)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    yield stack
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("the devstack did not stop within 30 s of SIGTERM")
    assert code == 0, f"the devstack exited {code}; see {ARTIFACTS / 'devstack-e2e.log'}"
    with socket.socket() as probe:  # its port is free again
        assert probe.connect_ex(("127.0.0.1", stack.port)) != 0


@pytest.fixture(autouse=True)
def default_ecs(request):
    """Every e2e test starts from well-behaved emulated ECS (exit 0, rollouts complete, events on)
    and no injected AWS faults."""
    if "devstack" in request.fixturenames:
        stack = request.getfixturevalue("devstack")
        stack.set_ecs(migration_exit_code=0, rollout="complete", drop_events=False,
                      task_seconds=TASK_SECONDS)
        stack.clear_faults()
