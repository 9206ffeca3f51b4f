"""Command line: ``python -m devstack serve|demo`` (``make local`` / ``make demo``)."""
from __future__ import annotations

import argparse
import io
import logging
import signal
import sys
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
                      choices=("happy", "migration-fails", "rollout-fails", "rollback"))
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
    from devstack.links import approval_links
    from devstack.stack import Stack
    from devstack.timeline import Follower

    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("devstack: %(levelname)s %(name)s: %(message)s"))
    logging.getLogger("devstack").addHandler(handler)
    logging.getLogger("devstack").setLevel(log_level)
    if log_level != "DEBUG":  # EMF metric lines are for CloudWatch, not for a person watching
        sys.stdout = _DropMetricLines(sys.stdout)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stack = Stack(config, host, port, ecs=EcsSettings(task_seconds=task_seconds),
                  log_level=log_level)
    try:
        stack.start()
    except (OSError, ConfigError, ProvisioningError) as exc:
        print(f"devstack: could not start: {getattr(exc, 'message', None) or exc}", file=sys.stderr)
        return 1
    try:
        _banner(stack)
        client, shown = Client(stack.url), set()
        follower = Follower(client)
        while not stop.wait(0.5):
            for line in follower.poll():
                print(line, flush=True)
            for link in approval_links(stack.slack.messages()):
                if link not in shown:
                    shown.add(link)
                    print(f"  approval link (from the Slack stand-in): {link}", flush=True)
    finally:
        print("devstack: stopping…", flush=True)
        stack.stop()
        print("devstack: stopped", flush=True)
    return 0


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
    url, aws = stack.url, stack.aws.endpoint_url
    print(f"Slipway devstack: {url}", flush=True)
    print(f"""  health           {url}/health
  deployments      {url}/deployments      services  {url}/services
  devstack         {url}/_devstack        (control endpoints, see DESIGN.md)
  embedded AWS     {aws}   region us-east-1, e.g.
                   aws --endpoint-url {aws} ecs describe-services --cluster production-cluster --services better-chatbot
  Slack stand-in   {url}/_devstack/slack/messages
  GitHub stand-in  {url}/_devstack/github/deployments
Push an image as CI would:
  curl -s -X POST {url}/_devstack/push -H 'Content-Type: application/json' \\
       -d '{{"repository": "better-chatbot", "tags": ["abc123d", "1.22.0-abc123d", "latest"]}}'
then open the approval link printed below. Ctrl-C stops everything.""", flush=True)
