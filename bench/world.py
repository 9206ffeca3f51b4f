"""The loopback AWS both tools deploy on, with every call counted at the server.

    with World() as world:            moto server + the devstack's ECS emulation + Slack/GitHub
        world.counts("slipway")       {(service, operation): n} of calls signed with that key
        world.advance(seconds)        emulated time: runs what the ECS emulation scheduled
        world.take_events()           the EventBridge events ECS emitted meanwhile

Counting happens in the moto server's WSGI app, so it sees every request whoever sends it: the
service comes from the SigV4 credential scope, the operation from ``X-Amz-Target`` (or a query
protocol's ``Action``), and the caller from the access key id. Each party signs with its own key:
``slipway`` (the Lambda functions), ``ecsdeploy`` (the peer), ``bench`` (this harness: pushing
images, the SQS event source mapping, the emulation's own look-ups), so one party's numbers never
include another's.

The ECS emulation is ``devstack.ecs_emulator.EcsEmulator`` with two bench-only changes: its timer
runs on emulated time (a rollout of 60 s takes no 60 s), and it treats every one-off task as a
migration (the devstack only does so for ``startedBy slipway/…``) and places the service's tasks
when a rollout completes (what ``ecs-deploy`` waits for with ListTasks/DescribeTasks; moto never
starts a service's tasks). Moto's ListTaskDefinitions also learns ECS's paging and sort order.
"""
from __future__ import annotations

import heapq
import io
import itertools
import logging
import os
import re
import secrets
import threading
from collections import Counter
from pathlib import Path
from urllib.parse import parse_qs

ROOT = Path(__file__).resolve().parent.parent
CONFIG_FILE = ROOT / "ecs" / "production" / "services.toml"
SCOPE = re.compile(r"Credential=([^/]+)/\d{8}/[^/]+/([^/]+)/aws4_request")


class VirtualScheduler:
    """``devstack.scheduler.Scheduler``'s interface on an emulated clock: nothing runs until
    ``advance`` moves the clock past it."""

    def __init__(self) -> None:
        self.now = 0.0
        self._heap: list = []
        self._order = itertools.count()
        self._lock = threading.RLock()

    def start(self) -> "VirtualScheduler":
        return self

    def stop(self) -> None:
        pass

    def call_later(self, delay: float, fn) -> None:
        with self._lock:
            heapq.heappush(self._heap, (self.now + max(delay, 0), next(self._order), fn))

    def advance(self, seconds: float) -> None:
        with self._lock:
            until = self.now + max(seconds, 0)
            while self._heap and self._heap[0][0] <= until:
                at, _, fn = heapq.heappop(self._heap)
                self.now = max(self.now, at)
                fn()
            self.now = until


class Counting:
    """WSGI middleware: one count per AWS request, keyed (access key, service, operation)."""

    def __init__(self, app) -> None:
        self.app = app
        self.counts: Counter = Counter()
        self.failed: Counter = Counter()
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        scope = SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
        if not scope:
            return self.app(environ, start_response)
        key, service = scope.groups()
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        operation = target.rsplit(".", 1)[-1] if target else self._action(environ)

        def counted(status, headers, *args):
            # moto's own 5xx (an emulator fault under load, retried by botocore) is kept apart
            tally = self.failed if status.startswith("5") else self.counts
            with self.lock:
                tally[(key, service, operation)] += 1
            return start_response(status, headers, *args)

        return self.app(environ, counted)

    @staticmethod
    def _action(environ) -> str:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        query = parse_qs(environ.get("QUERY_STRING", "")) or parse_qs(body.decode("utf-8", "replace"))
        return (query.get("Action") or ["?"])[0]


class World:
    """Start with ``with World() as world``; ``world.env`` is what Slipway's Lambdas see."""

    def __init__(self) -> None:
        self.counting: Counting | None = None
        self.scheduler = VirtualScheduler()
        self.events: list[dict] = []
        self._saved: dict = {}
        self._clients: dict = {}
        self._lock = threading.Lock()

    # -- lifecycle ----------------------------------------------------------------------------
    def __enter__(self) -> "World":
        try:
            self._start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _start(self) -> None:
        from moto.moto_server.threaded_moto_server import ThreadedMotoServer

        from devstack import aws as dev
        from devstack import ecs_emulator
        from devstack.standins.github_server import GitHubStandIn
        from devstack.standins.slack_server import SlackStandIn

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        world = self

        class Server(ThreadedMotoServer):
            def _server_entry(self) -> None:  # moto's, with the counting middleware around the app
                from moto.moto_server.werkzeug_app import (DomainDispatcherApplication,
                                                           MotoRequestHandler, create_backend_app)
                from werkzeug.serving import make_server

                world.counting = Counting(DomainDispatcherApplication(create_backend_app))
                self._server = make_server(self._ip_address, self._port, world.counting, True,
                                           request_handler=MotoRequestHandler)
                self._server_ready_event.set()
                self._server.serve_forever()

        self.slack = SlackStandIn(token=f"xoxb-{secrets.token_hex(12)}").start()
        self.github = GitHubStandIn(token=f"ghp_{secrets.token_hex(18)}").start()
        self._server = Server(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        self._reset_moto()
        self._unpage = _page_list_task_definitions()
        self._started_by, ecs_emulator.STARTED_BY = ecs_emulator.STARTED_BY, ""  # every one-off
        # task runs and exits like a migration
        ecs = self.client("ecs")
        self.emulator = _emulator_class()(
            dev.EmbeddedAws.backend("ecs"), emit=self.events.append,
            describe_task=lambda c, t: ecs.describe_tasks(cluster=c, tasks=[t])["tasks"][0])
        self.emulator._scheduler = self.scheduler
        self.emulator.install()
        self.secret = dev.fresh_secret(self.slack.token, self.github.token)
        self.provisioned = dev.provision(self, CONFIG_FILE, self.secret, history=2)
        self.emulator.settle()
        self.env = {**dev.app_environment(self.endpoint, CONFIG_FILE, "http://127.0.0.1:9",
                                          self.provisioned.queue_url, self.slack.url,
                                          self.github.url, 600),
                    "SLACK_API_URL": self.slack.url, "GITHUB_API_URL": self.github.url,
                    "SLACK_RESPONSE_URLS": self.slack.response_url,
                    "AWS_ACCESS_KEY_ID": "slipway", "AWS_SECRET_ACCESS_KEY": "slipway",
                    "POWERTOOLS_SERVICE_NAME": "slipway", "POWERTOOLS_METRICS_NAMESPACE": "Slipway",
                    "POWERTOOLS_LOG_LEVEL": "WARNING", "LOG_LEVEL": "WARNING",
                    "AWS_LAMBDA_FUNCTION_NAME": "slipway-bench",
                    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256"}
        self._saved = {k: os.environ.get(k) for k in self.env}
        os.environ.update(self.env)

    def __exit__(self, *exc) -> None:
        for key, value in self._saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        emulator = getattr(self, "emulator", None)
        if emulator is not None:
            emulator.uninstall()
        if hasattr(self, "_started_by"):
            from devstack import ecs_emulator

            ecs_emulator.STARTED_BY = self._started_by
        if hasattr(self, "_unpage"):
            self._unpage()
        server = getattr(self, "_server", None)
        if server is not None:
            self._reset_moto()
            server.stop()
            if getattr(server, "_server", None) is not None:
                server._server.server_close()
        for standin in (getattr(self, "slack", None), getattr(self, "github", None)):
            if standin is not None:
                standin.stop()

    def _reset_moto(self) -> None:
        from moto.moto_api._internal.models import moto_api_backend

        moto_api_backend.reset()

    # -- use ----------------------------------------------------------------------------------
    def client(self, name: str, key: str = "bench"):
        """A client signed with ``key`` (one per name and key: building one takes ~0.1 s)."""
        import boto3

        with self._lock:
            if (name, key) not in self._clients:
                self._clients[(name, key)] = boto3.session.Session().client(
                    name, region_name="us-east-1", endpoint_url=self.endpoint,
                    aws_access_key_id=key, aws_secret_access_key=key)
            return self._clients[(name, key)]

    def counts(self, key: str) -> Counter:
        """{(service, operation): n} signed with ``key`` so far (take a copy before, subtract);
        requests the server itself failed (5xx, retried by the client) are not in it."""
        with self.counting.lock:
            return Counter({(s, o): n for (k, s, o), n in self.counting.counts.items() if k == key})

    def advance(self, seconds: float) -> None:
        self.scheduler.advance(seconds)

    def take_events(self) -> list[dict]:
        taken, self.events[:] = list(self.events), []
        return taken

    def configure_ecs(self, **settings) -> None:
        self.emulator.configure(settings)


def _emulator_class():
    from devstack.ecs_emulator import EcsEmulator

    class BenchEmulator(EcsEmulator):
        def _complete(self, service, dep_id, previous, settings) -> None:
            super()._complete(service, dep_id, previous, settings)
            if [d["id"] for d in service.deployments] == [dep_id]:
                self._place_tasks(service)

        def _place_tasks(self, service) -> None:
            """Stop the service's old tasks and start ``desiredCount`` of the new revision."""
            backend = self._backend
            cluster = service.cluster_arn.rsplit("/", 1)[-1]
            group = f"service:{service.name}"
            with self._lock:
                for task in backend.tasks.get(cluster, {}).values():
                    if task.group == group and task.last_status != "STOPPED":
                        task.last_status = task.desired_status = "STOPPED"
                for task in self._originals["run_task"](
                        cluster, service.task_definition, service.desired_count, None,
                        f"ecs-svc/{service.name}", None, "FARGATE",
                        service.network_configuration or None, group=group):
                    task.last_status = "RUNNING"

    return BenchEmulator


def _page_list_task_definitions():
    """Moto returns every revision in one answer, oldest first, whatever is asked: answer as ECS
    does (``sort``, ``maxResults`` ≤ 100, default 100, and a ``nextToken``). Returns the undo."""
    from moto.core.responses import ActionResult
    from moto.ecs.responses import EC2ContainerServiceResponse as Responses

    original = Responses.list_task_definitions

    def list_task_definitions(self) -> ActionResult:
        arns = self.ecs_backend.list_task_definitions(self._get_param("familyPrefix"),
                                                      self._get_param("status", "ACTIVE"))
        arns = sorted(arns, key=lambda a: (a.rsplit(":", 1)[0], int(a.rsplit(":", 1)[1])),
                      reverse=self._get_param("sort", "ASC") == "DESC")
        start = int(self._get_param("nextToken") or 0)
        size = min(int(self._get_param("maxResults") or 100), 100)
        page = {"taskDefinitionArns": arns[start:start + size]}
        if start + size < len(arns):
            page["nextToken"] = str(start + size)
        return ActionResult(page)

    Responses.list_task_definitions = list_task_definitions

    def undo() -> None:
        Responses.list_task_definitions = original

    return undo
