"""A production-like AWS account on 127.0.0.1 for the benchmarks: a moto server provisioned as
``tests/integration/conftest.provision`` does (tables, secret, queue, ECR, an ECS cluster running
the configured services), plus a Slack/GitHub stand-in that answers instantly, so notifications
take their success path (as in production) without leaving the machine.

Use ``with aws_account() as account:``; inside, ``os.environ`` holds what a Lambda of the stage
would see (``account.env`` too, for child processes).
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = ROOT / "ecs" / "production"
REGION = "us-east-1"
ACCOUNT = "123456789012"
LEDGER_TABLE = "slipway-bench"
IDEMPOTENCY_TABLE = "slipway-idempotency-bench"


# -- Slack and GitHub, answering at once -----------------------------------------------------------
class _NotifyHandler(BaseHTTPRequestHandler):
    def do_GET(self):  # GitHub: GET /repos/{o}/{r}/commits/{sha}
        self._answer(200, {"sha": self.path.rsplit("/", 1)[-1],
                           "author": {"login": "bench-author"}})

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.startswith("/api/"):  # Slack Web API: chat.postMessage, chat.update, …
            self._answer(200, {"ok": True, "channel": "C0BENCH", "ts": f"{time.time():.6f}"})
        elif self.path.endswith("/deployments"):
            self._answer(201, {"id": 4242})
        else:  # deployment statuses
            self._answer(201, {"id": 1, "state": "success"})

    def _answer(self, status: int, body: dict) -> None:
        self.server.requests.append(f"{self.command} {self.path.split('?')[0]}")
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):  # quiet
        pass


class NotifyStub:
    """Slack's Web API under ``/api/`` and GitHub's REST API, on 127.0.0.1."""

    def __init__(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _NotifyHandler)
        self._server.daemon_threads = True
        self._server.requests = []
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def requests(self) -> list[str]:
        return self._server.requests

    def start(self) -> "NotifyStub":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


# -- the account -----------------------------------------------------------------------------------
@dataclass
class Account:
    endpoint: str
    env: dict
    queue_url: str
    stub: NotifyStub
    services: dict = field(default_factory=dict)

    def client(self, name: str):
        import boto3

        return boto3.client(name, region_name=REGION, endpoint_url=self.endpoint)

    def clear_tables(self) -> int:
        """Empty the ledger and idempotency tables (back to the just-provisioned state)."""
        ddb, removed = self.client("dynamodb"), 0
        for table in (LEDGER_TABLE, IDEMPOTENCY_TABLE):
            keys = [k["AttributeName"] for k in
                    ddb.describe_table(TableName=table)["Table"]["KeySchema"]]
            for page in ddb.get_paginator("scan").paginate(TableName=table):
                for item in page["Items"]:
                    ddb.delete_item(TableName=table, Key={k: item[k] for k in keys})
                    removed += 1
        return removed


def lambda_env(endpoint: str, stub_url: str) -> dict:
    """The environment of a Slipway Lambda (.chalice/config.json) aimed at the loopback account."""
    return {
        "AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION,
        "SLIPWAY_CONFIG": str(CONFIG_DIR / "services.toml"), "SLIPWAY_TABLE": LEDGER_TABLE,
        "SLIPWAY_IDEMPOTENCY_TABLE": IDEMPOTENCY_TABLE, "SLIPWAY_SECRET_ID": "slipway/bench",
        "SLIPWAY_PUBLIC_URL": "http://127.0.0.1:9",
        "SLACK_API_URL": f"{stub_url}/api/", "GITHUB_API_URL": stub_url,
        "POWERTOOLS_SERVICE_NAME": "slipway", "POWERTOOLS_METRICS_NAMESPACE": "Slipway",
        "LOG_LEVEL": "INFO",  # as in production (JSON lines on stdout)
        "AWS_LAMBDA_FUNCTION_NAME": "slipway-bench", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
    }


@contextmanager
def patched_env(values: dict):
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def aws_account():
    """Start moto and the Slack/GitHub stand-in on 127.0.0.1, provision, yield an Account."""
    from moto.server import ThreadedMotoServer
    from tests.integration.conftest import provision

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    stub = NotifyStub().start()
    try:
        _reset(endpoint)  # moto's backends live in this process: a second server would share them
        env = lambda_env(endpoint, stub.url)
        with patched_env(env):
            _, queue_url, services = provision(endpoint, CONFIG_DIR)
            env["SLIPWAY_QUEUE_URL"] = queue_url
            with patched_env({"SLIPWAY_QUEUE_URL": queue_url}):
                yield Account(endpoint, dict(os.environ), queue_url, stub, services)
    finally:
        stub.stop()
        _reset(endpoint)
        server.stop()


def _reset(endpoint: str) -> None:
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"),
                           timeout=10).close()
