"""Command line: ``python -m devstack serve|demo`` (``make local`` / ``make demo``)."""
from __future__ import annotations

import argparse
import io
import logging
import os
import signal
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = Path("ecs/production")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=(
        "Slipway on one machine: embedded AWS (moto), emulated ECS events, Slack and GitHub "
        "stand-ins, and the app's own handlers."))
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the stack until Ctrl-C (make local)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    serve.add_argument("--config", type=Path, default=DEFAULT_CONFIG,
                       help="config dir holding services.toml (default: ecs/production)")
    serve.add_argument("--task-seconds", type=float, default=3.0,
                       help="how long emulated ECS tasks and rollouts take (default 3)")
    serve.add_argument("--log-level", default="WARNING", type=str.upper, choices=LEVELS,
                       help="the app's log level (default WARNING)")
    demo = sub.add_parser("demo", help="run one scenario end to end and exit 0 if it ends as expected")
    demo.add_argument("--scenario", default="happy",
                      choices=("happy", "migration-fails", "rollout-fails", "rollback",
                               "alarm-rollback", "chaos"))
    demo.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    demo.add_argument("--task-seconds", type=float, default=2.0)
    demo.add_argument("--log-level", default="INFO", type=str.upper, choices=LEVELS,
                      help="the app's log level, in the demo's log file (default INFO)")
    args = parser.parse_args(argv)
    config = args.config if args.config.is_absolute() or args.config.exists() else ROOT / args.config
    if not (config / "services.toml").is_file():
        parser.error(f"{config}: no services.toml there")
    if args.command == "demo":
        from devstack import demo as demo_mod

        return demo_mod.run(args.scenario, config, args.task_seconds, args.log_level)
    return run_serve(args.host, args.port, config, args.task_seconds, args.log_level)


def run_serve(host: str, port: int, config: Path, task_seconds: float, log_level: str) -> int:
    from chalicelib.errors import ConfigError
    from devstack.aws import ProvisioningError
    from devstack.client import Client
    from devstack.ecs_emulator import EcsSettings
    from devstack.stack import Stack
    from devstack.timeline import Follower, Narrator, link_lines, recovery_lines

    log_file = _log_to_file_and_terminal(log_level)
    if log_level != "DEBUG":  # EMF metric lines are for CloudWatch, not for a person watching
        sys.stdout = _DropMetricLines(sys.stdout)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stack = Stack(config, host, port, ecs=EcsSettings(task_seconds=task_seconds),
                  log_level=log_level)
    stack.log_file = log_file
    try:
        stack.start()
    except (OSError, ConfigError, ProvisioningError) as exc:
        print(f"devstack: could not start: {getattr(exc, 'message', None) or exc}", file=sys.stderr)
        return 1
    narrator = None
    try:
        _banner(stack)
        follower = Follower(Client(stack.url))
        reconciler = stack.reconciler
        narrator = Narrator(follower.lines, link_lines(stack.slack.messages, follower),
                            recovery_lines(reconciler.recovered, follower),
                            holds=[lambda: reconciler.running_since], now=stack.clock)
        while not stop.wait(0.5):
            _print(narrator.poll)
    finally:
        if narrator is not None:
            _print(narrator.flush)
        print("devstack: stopping…", flush=True)
        stack.stop()
        print("devstack: stopped", flush=True)
    return 0


def _print(lines) -> None:
    """Print what the narrator has; a hiccup reading the app is logged, never the end of serve."""
    try:
        for line in lines():
            print(line, flush=True)
    except Exception as exc:
        logging.getLogger("devstack").warning("could not read the timeline: %r", exc, exc_info=True)


def _log_to_file_and_terminal(level: str) -> Path:
    """The devstack's log: one line per record on the terminal, everything (tracebacks too) in a
    log file whose path the banner prints."""
    fd, path = tempfile.mkstemp(prefix="slipway-devstack-", suffix=".log")
    os.close(fd)
    terminal = logging.StreamHandler()
    terminal.setLevel(level)
    terminal.setFormatter(_OneLine("devstack: %(levelname)s %(name)s: %(message)s"))
    to_file = logging.FileHandler(path, encoding="utf-8")
    to_file.setLevel(min(logging.getLevelName(level), logging.INFO))
    to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("devstack")
    logger.addHandler(terminal)
    logger.addHandler(to_file)
    logger.setLevel(min(logging.getLevelName(level), logging.INFO))
    return Path(path)


class _OneLine(logging.Formatter):
    """A record's message without its traceback (that is in the log file)."""

    def format(self, record: logging.LogRecord) -> str:
        saved = record.exc_info, record.exc_text, record.stack_info
        record.exc_info = record.exc_text = record.stack_info = None
        try:
            return super().format(record)
        finally:
            record.exc_info, record.exc_text, record.stack_info = saved


class _DropMetricLines(io.TextIOBase):
    """stdout without powertools' embedded-metric-format lines (``{"_aws": …}``)."""

    def __init__(self, inner):
        self._inner, self._dropped = inner, False

    def write(self, text: str) -> int:
        drop = text.startswith('{"_aws"') or (self._dropped and text == "\n")
        self._dropped = text.startswith('{"_aws"') and not text.endswith("\n")
        if not drop:
            self._inner.write(text)
            self._inner.flush()
        return len(text)

    def flush(self) -> None:
        self._inner.flush()

    def isatty(self) -> bool:
        return self._inner.isatty()


def _banner(stack) -> None:
    url, aws, keys = stack.url, stack.aws.endpoint_url, stack.api_keys
    print(f"Slipway devstack: {url}", flush=True)
    print(f"""  health           {url}/health
  deployments      {url}/deployments      services  {url}/services
                   (IAM, as on AWS: sign with the devstack's keys, e.g.
                   curl --aws-sigv4 aws:amz:us-east-1:execute-api --user {keys.access_key_id}:{keys.secret_access_key} {url}/services)
  devstack         {url}/_devstack        (its own control endpoints: push, ECS behaviour, events)
  embedded AWS     {aws}   region us-east-1, e.g.
                   aws --endpoint-url {aws} ecs describe-services --cluster production-cluster --services better-chatbot
  Slack stand-in   {url}/_devstack/slack/messages
  GitHub stand-in  {url}/_devstack/github/deployments
  log file         {stack.log_file}   (details and tracebacks)
Push an image as CI would:
  curl -s -X POST {url}/_devstack/push -H 'Content-Type: application/json' \\
       -d '{{"repository": "better-chatbot", "tags": ["abc123d", "1.22.0-abc123d", "latest"]}}'
then open the approval link printed below. Ctrl-C stops everything.""", flush=True)
