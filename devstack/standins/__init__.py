"""Stand-ins for Slack and GitHub: real HTTP servers on 127.0.0.1 for tests and the devstack.

    StandIn                          this module: a loopback server in a daemon thread
    ├── slack_server.SlackStandIn    Slack Web API (chat.postMessage, chat.update, …)
    └── github_server.GitHubStandIn  GitHub REST (deployments, statuses, commits)

Each checks the bearer token and the payload shapes, records what it received
(thread-safe) and can be switched "down" to answer 503 to everything. Port 0
picks a free port; ``url`` is what to hand to the client under test.
"""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Reply = tuple[int, Any]  # (HTTP status, JSON-able body or plain text)


class StandIn:
    """A loopback HTTP server whose requests go to ``handle``; subclasses fill it in."""

    def __init__(self, token: str, host: str = "127.0.0.1", port: int = 0):
        self.token = token
        self._address = (host, port)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.RLock()
        self._down = False

    @property
    def root_url(self) -> str:
        """``http://127.0.0.1:<port>`` once started."""
        if self._server is None:
            raise RuntimeError("stand-in not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def url(self) -> str:
        """The base URL a client should use (subclasses may add a path)."""
        return self.root_url

    def start(self) -> "StandIn":
        """Bind and serve in a daemon thread; returns self."""
        if self._server is not None:
            return self
        server = ThreadingHTTPServer(self._address, _handler_for(self))
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05},
            name=f"{type(self).__name__}-{server.server_address[1]}", daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close the socket and join the thread."""
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> "StandIn":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def set_down(self, down: bool = True) -> None:
        """While down, every call answers 503 (for "Slack/GitHub is down" tests)."""
        with self._lock:
            self._down = down

    @property
    def is_down(self) -> bool:
        with self._lock:
            return self._down

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        """Answer one request; ``headers`` keys are lower-case."""
        raise NotImplementedError


def _handler_for(standin: StandIn) -> type[BaseHTTPRequestHandler]:
    """A request-handler class bound to one stand-in."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "slipway-standin"

        def _dispatch(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {key.lower(): value for key, value in self.headers.items()}
            try:
                status, payload = standin.handle(self.command, self.path, headers, body)
            except Exception as exc:  # a stand-in bug must show, not hang the client
                status, payload = 500, {"ok": False, "error": f"standin_error: {exc!r}"}
            self._send(status, payload)

        def _send(self, status: int, payload: Any) -> None:
            if isinstance(payload, (dict, list)):
                data, ctype = json.dumps(payload).encode("utf-8"), "application/json; charset=utf-8"
            else:
                data, ctype = str(payload).encode("utf-8"), "text/plain; charset=utf-8"
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib name)
            """Quiet: tests read what was recorded, not access logs."""

    return Handler


def bearer(headers: dict[str, str]) -> str | None:
    """The token of an ``Authorization: Bearer …`` (or GitHub's ``token …``) header."""
    value = headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() in ("bearer", "token") and token.strip() else None
