"""One HTTP server for the devstack: ``/_devstack/*`` control endpoints, everything else is the app.

The app's REST API goes through Chalice's own local API Gateway (``chalice.local.LocalGateway``),
so routes, content types and error handling behave as they do behind API Gateway. Chalice keeps
``app.current_request`` on the app object, so requests into the app are serialised with a lock
(a Lambda container also handles one request at a time).

Routes the app protects with ``IAMAuthorizer`` are checked first, as API Gateway's ``AWS_IAM``
does (``devstack.sigv4``): an unsigned or badly signed request gets API Gateway's 403 and never
reaches the app.
"""
from __future__ import annotations

import base64
import contextlib
import json
import logging
import threading
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import urlsplit

from chalice.config import Config
from chalice.app import IAMAuthorizer
from chalice.local import LocalGateway, LocalGatewayException, RouteMatcher

from devstack import sigv4
from devstack.aws import ACCOUNT

from devstack.faults import SimulatedCrash

log = logging.getLogger("devstack.server")
MAX_BODY = 10 * 1024 * 1024  # API Gateway's payload limit
Reply = tuple[int, Any]  # (status, JSON-able body, or str for text/plain)


class DevstackServer(ThreadingHTTPServer):
    """Binds on construction (so the URL is known before the app is configured); serve() later."""

    daemon_threads = True

    def __init__(self, host: str, port: int):
        super().__init__((host, port), _Handler)
        self.control: dict[tuple[str, str], Callable[[bytes], Reply]] = {}
        self.gateway: LocalGateway | None = None
        self.keys: sigv4.Keys | None = None  # who may call IAM routes (None: nobody)
        self._iam: set[tuple[str, str]] = set()  # (method, route) behind AWS_IAM
        self._routes: RouteMatcher | None = None
        self._app_lock = threading.Lock()
        self._invocation: Callable[[], Any] = contextlib.nullcontext
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def mount(self, app: Any, invocation: Callable[[], Any] = contextlib.nullcontext) -> None:
        """Serve ``app`` (the Chalice object) for every path outside ``/_devstack``;
        ``invocation()`` wraps each request (devstack.faults: an injected crash ends there)."""
        self._invocation = invocation
        config = Config.create(app_name=app.app_name, lambda_timeout=60, lambda_memory_size=256)
        self.gateway = LocalGateway(app, config)
        self._routes = RouteMatcher(list(app.routes))
        self._iam = {(method, path) for path, methods in app.routes.items()
                     for method, entry in methods.items()
                     if isinstance(entry.authorizer, IAMAuthorizer)}
        self.gateway.event_converter.create_lambda_event = self._with_caller(
            self.gateway.event_converter.create_lambda_event)

    def _with_caller(self, create: Callable[..., dict]) -> Callable[..., dict]:
        """API Gateway puts the verified IAM caller in ``requestContext.identity``: on IAM routes
        (checked by ``refused`` before), the devstack's access key and user."""
        def event(method: str, path: str, headers: dict, body: bytes | None = None) -> dict:
            made = create(method, path, headers, body)
            context = made["requestContext"]
            if self.keys is not None and (method, context.get("resourcePath")) in self._iam:
                context["identity"].update(
                    accessKey=self.keys.access_key_id, caller=self.keys.access_key_id,
                    userArn=f"arn:aws:iam::{ACCOUNT}:user/devstack")
            return made

        return event

    def refused(self, method: str, target: str, headers: dict, body: bytes | None
                ) -> tuple[int, dict] | None:
        """API Gateway's 403 for a request to an IAM route that ``keys`` did not sign."""
        if self._routes is None:
            return None
        try:
            route = self._routes.match_route(target).route
        except ValueError:
            return None  # no such route: the gateway answers that itself
        if (method, route) not in self._iam:
            return None
        if self.keys is None:
            return 403, {"message": sigv4.MISSING}
        host = next((v for k, v in headers.items() if k.lower() == "host"), "")
        return sigv4.verify(self.keys, method, f"http://{host}{target}", headers, body)

    def route(self, method: str, path: str, fn: Callable[[bytes], Reply]) -> None:
        self.control[(method, path)] = fn

    def start(self) -> "DevstackServer":
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="devstack-http", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self.shutdown()
            self._thread.join(timeout=10)
        self.server_close()

    def call_app(self, method: str, path: str, headers: dict, body: bytes | None) -> dict:
        if self.gateway is None:
            return {"statusCode": 503, "headers": {"Content-Type": "application/json"},
                    "body": json.dumps({"error": "starting", "message": "not ready yet"})}
        with self._app_lock, warnings.catch_warnings():
            # IAM routes were checked (refused) before; Chalice warns that it lets them through.
            warnings.simplefilter("ignore")
            try:
                with self._invocation():
                    return self.gateway.handle_request(method, path, headers, body)
            except SimulatedCrash:  # the Lambda died: API Gateway answers 502 on its behalf
                log.warning("%s %s: the handler crashed (injected)", method, path)
                return {"statusCode": 502, "headers": {"Content-Type": "application/json"},
                        "body": json.dumps({"message": "Internal server error"})}
            except LocalGatewayException as exc:
                return {"statusCode": exc.CODE, "headers": dict(exc.headers),
                        "body": (exc.body or b"").decode("utf-8")}


class _Handler(BaseHTTPRequestHandler):
    server: DevstackServer
    protocol_version = "HTTP/1.1"
    server_version = "slipway-devstack"

    def _dispatch(self) -> None:
        raw = (self.headers.get("Content-Length") or "0").strip()
        if not (raw.isascii() and raw.isdigit()) or int(raw) > MAX_BODY:
            # API Gateway's answers: a body it cannot frame, or one over its 10 MB payload limit
            too_big = raw.isascii() and raw.isdigit()
            self.close_connection = True
            self._send(413 if too_big else 400, {"Content-Type": "application/json"}, json.dumps(
                {"message": "Request Too Long" if too_big else "Bad Request"}).encode())
            return
        length = int(raw)
        body = self.rfile.read(length) if length else b""
        path = urlsplit(self.path).path
        if path.startswith("/_devstack"):
            self._control(path, body)
        else:
            self._app(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _dispatch

    def _control(self, path: str, body: bytes) -> None:
        fn = self.server.control.get((self.command, path.rstrip("/") or "/"))
        if fn is None:
            known = sorted(f"{m} {p}" for m, p in self.server.control)
            status, reply = 404, {"error": "unknown_endpoint",
                                  "message": f"devstack endpoints: {', '.join(known)}"}
        else:
            try:
                status, reply = fn(body)
            except Exception as exc:  # a devstack bug shows as a 500 with its message
                log.exception("%s %s failed", self.command, path)
                status, reply = 500, {"error": "devstack_error", "message": repr(exc)}
        if isinstance(reply, str):
            self._send(status, {"Content-Type": "text/plain; charset=utf-8"}, reply.encode())
        else:
            self._send(status, {"Content-Type": "application/json"}, json.dumps(reply, default=str).encode())

    def _app(self, body: bytes) -> None:
        headers = {k: v for k, v in self.headers.items()}
        refused = self.server.refused(self.command, self.path, headers, body)
        if refused is not None:
            status, reply = refused
            self._send(status, {"Content-Type": "application/json",
                                "x-amzn-ErrorType": "ForbiddenException"},
                       json.dumps(reply).encode())
            return
        response = self.server.call_app(self.command, self.path, headers, body or None)
        out = dict(response.get("headers") or {})
        for name, values in (response.get("multiValueHeaders") or {}).items():
            out[name] = values
        data = response.get("body") or b""
        if response.get("isBase64Encoded"):
            data = base64.b64decode(data)
        elif isinstance(data, str):
            data = data.encode("utf-8")
        self._send(response["statusCode"], out, data)

    def _send(self, status: int, headers: dict, data: bytes) -> None:
        self.send_response(status)
        headers = {k: v for k, v in headers.items() if k.lower() != "content-length"}
        headers.setdefault("Content-Type", "application/json")
        for name, value in headers.items():
            for one in (value if isinstance(value, list) else [value]):
                self.send_header(name, str(one))
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib name)
        log.debug("%s %s", self.address_string(), format % args)
