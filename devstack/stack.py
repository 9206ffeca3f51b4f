"""The whole devstack in one object: embedded AWS, ECS emulation, stand-ins, event plane, HTTP.

    stack = Stack(Path("ecs/production")).start()   # everything up, GET /health answers
    ...
    stack.stop()                                     # servers shut, threads joined, ports freed

It runs in the calling process (the ECS emulation needs moto's objects) and sets the process
environment the app reads (``bootstrap.deps()``), restoring it on ``stop()``.
"""
from __future__ import annotations

import logging
import os
import secrets
import sys
from pathlib import Path
from typing import Any

from devstack import aws as aws_mod, cloudwatch, sigv4
from devstack.control import register_control
from devstack.ecs_emulator import EcsEmulator, EcsSettings
from devstack.events import EventBus, QueueWorker, Reconciler
from devstack.faults import AppClock, Faults
from devstack.server import DevstackServer
from devstack.standins.github_server import GitHubStandIn
from devstack.standins.slack_server import SlackStandIn

ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger("devstack")


class Stack:
    def __init__(self, config_dir: Path, host: str = "127.0.0.1", port: int = 0, *,
                 ecs: EcsSettings = EcsSettings(), stale_seconds: float = 2.0,
                 reconcile_every: float = 1.0, history: int = 6, log_level: str = "WARNING"):
        self.config_file = (Path(config_dir) / "services.toml").resolve()
        self.host, self.port = host, port
        self.ecs_settings, self.stale_seconds = ecs, stale_seconds
        self.reconcile_every, self.log_level, self.history = reconcile_every, log_level, history
        self.clock = AppClock()  # POST /_devstack/clock: the app's Deps.clock
        self.slack = SlackStandIn(token=f"xoxb-{secrets.token_hex(12)}", clock=self.clock)
        self.github = GitHubStandIn(token=f"ghp_{secrets.token_hex(18)}")
        self.aws = aws_mod.EmbeddedAws(host)
        self.faults = Faults(self.clock)  # POST /_devstack/faults: the app's AWS calls only
        self._unhook: Any = None
        # The one caller the IAM routes accept (GET /_devstack/aws hands these out).
        self.api_keys = sigv4.Keys(f"AKIA{secrets.token_hex(8).upper()}",
                                   secrets.token_urlsafe(30), aws_mod.REGION)
        self.server: DevstackServer | None = None
        self.emulator: EcsEmulator | None = None
        self.bus: EventBus | None = None
        self.worker: QueueWorker | None = None
        self.reconciler: Reconciler | None = None
        self.alarm_control: cloudwatch.AlarmControl | None = None
        self.provisioned: aws_mod.Provisioned | None = None
        self.app_module: Any = None
        self.log_file: Path | None = None  # where tracebacks go (serve and demo set it)
        self._saved_env: dict[str, str | None] = {}
        self._started: list[Any] = []

    @property
    def url(self) -> str:
        return self.server.url if self.server else ""

    def log_hint(self) -> str:
        """Where a person finds the details (tracebacks) of something that went wrong."""
        return f"details in {self.log_file}" if self.log_file else "details in the devstack's log"

    def start(self) -> "Stack":
        if not self.config_file.is_file():
            raise FileNotFoundError(f"{self.config_file}: no services.toml in the config dir")
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        _quiet_libraries()
        self._up(self.slack.start(), self.github.start())
        self._up(self.aws.start())
        ecs = self.aws.client("ecs")
        self.emulator = EcsEmulator(
            self.aws.backend("ecs"), emit=lambda e: self.bus.publish(e) if self.bus else None,
            describe_task=lambda c, t: ecs.describe_tasks(cluster=c, tasks=[t])["tasks"][0],
            settings=self.ecs_settings, alarm_state=cloudwatch.alarm_state,
            write_log=lambda task, lines: cloudwatch.write_migration_log(self.aws, task, lines))
        self._up(self.emulator.install())
        self.server = DevstackServer(self.host, self.port)
        self.server.keys = self.api_keys
        secret = aws_mod.fresh_secret(self.slack.token, self.github.token)
        self.provisioned = aws_mod.provision(self.aws, self.config_file, secret, self.history)
        self._set_env({**aws_mod.app_environment(
            self.aws.endpoint_url, self.config_file, self.server.url, self.provisioned.queue_url,
            self.slack.url, self.github.url, self.stale_seconds),
            # The response_urls the Slack stand-in hands out (the app answers only Slack's own).
            "SLACK_RESPONSE_URLS": f"{self.slack.response_url},"
                                   f"{self.server.url}/_devstack/slack/response"})
        self.emulator.settle()
        app_module = self._import_app()
        region, account = aws_mod.REGION, aws_mod.ACCOUNT
        self.bus = EventBus(app_module, self.faults.invocation)
        self.worker = QueueWorker(app_module, self.aws.client("sqs"), self.provisioned.queue_url,
                                  f"arn:aws:sqs:{region}:{account}:{aws_mod.QUEUE_NAME}", region,
                                  self.faults.invocation)
        self.reconciler = Reconciler(app_module, account, region, self.reconcile_every,
                                     self.faults.invocation, clock=self.clock)
        self._up(self.bus.start(), self.worker.start(), self.reconciler.start())
        register_control(self.server, self)
        self.alarm_control = cloudwatch.AlarmControl(
            self.aws, account, region, emit=lambda e: self.bus.publish_and_wait([e]),
            on_alarm=self.emulator.alarm_changed)
        cloudwatch.register(self.server, self)
        self.server.mount(app_module.app, self.faults.invocation)
        self.server.start()

    def _import_app(self) -> Any:
        """Import ``app.py`` and make it rebuild its dependencies from this environment."""
        if str(ROOT) not in sys.path:
            sys.path.insert(0, str(ROOT))
        import app as app_module
        from chalicelib.adapters import aws as app_aws
        from chalicelib.entrypoints import bootstrap

        if self._unhook is None:  # every client the app builds from now on can be made to fail
            self._unhook = self.faults.install(app_aws)
        bootstrap.reset()
        bootstrap.deps().clock = self.clock  # Slipway's rules read the devstack's clock
        self.app_module = app_module
        return app_module

    def stop(self) -> None:
        """Stop in reverse order; safe to call twice and after a failed start."""
        if self.server is not None:  # first: no new requests while the rest goes down
            self.server.stop()
            self.server = None
        for part in reversed(self._started):
            try:
                part.uninstall() if isinstance(part, EcsEmulator) else part.stop()
            except Exception:  # keep going: every later part must still be stopped
                log.exception("stopping %s failed", type(part).__name__)
        self._started.clear()
        if self._unhook is not None:
            self._unhook()
            self._unhook = None
        try:
            from moto.moto_api._internal.models import moto_api_backend

            moto_api_backend.reset()  # a later Stack in this process starts from nothing
        except Exception:
            log.debug("moto reset failed", exc_info=True)
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env.clear()

    def _up(self, *parts: Any) -> None:
        self._started.extend(parts)

    def _set_env(self, env: dict[str, str]) -> None:
        env = {**env, "POWERTOOLS_LOG_LEVEL": os.environ.get("POWERTOOLS_LOG_LEVEL", self.log_level),
               "POWERTOOLS_METRICS_NAMESPACE": "Slipway", "POWERTOOLS_SERVICE_NAME": "slipway",
               "POWERTOOLS_METRICS_DISABLED": os.environ.get("POWERTOOLS_METRICS_DISABLED", "true")}
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_PROFILE", *env):
            self._saved_env.setdefault(name, os.environ.get(name))
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_PROFILE"):
            os.environ.pop(name, None)  # a developer's own AWS profile must not leak in
        os.environ.update(env)


def _quiet_libraries() -> None:
    for name in ("botocore", "urllib3"):
        logging.getLogger(name).setLevel(logging.ERROR)
