"""`slipway` over real HTTP against a scripted stand-in API on 127.0.0.1: signing, and every
failure given its exit code and one line (throttling, wrong answers, no credentials, no server).

The CLI runs as a user runs it (a subprocess), so "never a traceback" is checked on what a
terminal would show.
"""
from __future__ import annotations

import hmac
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ROOT = Path(__file__).resolve().parents[2]
KEY, SECRET, REGION = "AKIDSLIPWAYCLITEST01", "cli-test-secret", "eu-west-1"


class StandIn:
    """Answers each request with the next scripted (status, headers, body); records requests."""

    def __init__(self):
        self.script: list[tuple[int, dict, bytes]] = []
        self.requests: list[dict] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                stand_in.requests.append({"method": self.command, "path": self.path,
                                          "headers": dict(self.headers.items()),
                                          "body": self.rfile.read(length)})
                status, headers, body = stand_in.script.pop(0)
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/api"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, status: int, body, headers: dict | None = None) -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.script.append((status, headers or {}, raw))


@pytest.fixture
def api():
    stand_in = StandIn()
    yield stand_in
    stand_in.server.shutdown()
    stand_in.server.server_close()


def slipway(url: str, *args: str, **env: str | None) -> subprocess.CompletedProcess:
    """Run the CLI; ``env`` overrides the test's AWS settings (None removes one)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    environ.update(AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET, AWS_DEFAULT_REGION=REGION,
                   AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull,
                   AWS_EC2_METADATA_DISABLED="true", PYTHONPATH=str(ROOT))
    for name, value in env.items():
        if value is None:
            environ.pop(name, None)
        else:
            environ[name] = value
    result = subprocess.run([sys.executable, "-m", "slipway_cli", "--url", url, *args], env=environ,
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    return result


def signature_is_valid(request: dict, host: str) -> bool:
    """Recompute the SigV4 signature as API Gateway does, over the headers the client signed."""
    headers = {k.lower(): v for k, v in request["headers"].items()}
    credential, signed, signature = (part.split("=", 1)[1] for part in
                                     headers["authorization"].split(" ", 1)[1].split(", "))
    assert credential.split("/")[2:] == [REGION, "execute-api", "aws4_request"]
    again = AWSRequest(method=request["method"], url=f"http://{host}{request['path']}",
                       data=request["body"], headers={h: headers[h] for h in signed.split(";")})
    again.context["timestamp"] = headers["x-amz-date"]
    signer = SigV4Auth(Credentials(KEY, SECRET), "execute-api", REGION)
    expected = signer.signature(signer.string_to_sign(again, signer.canonical_request(again)), again)
    return hmac.compare_digest(expected, signature)


def test_requests_are_signed_for_execute_api_and_bodies_are_the_json_sent(api):
    """A rollback is one POST, SigV4-signed (body included) with the caller's credentials."""
    api.answer(202, {"id": "d-2", "service": "web", "state": "APPROVED", "image_tag": "1.0.0-abc1234",
                     "rollback_of": "d-1"})
    result = slipway(api.url, "rollback", "web", "--to", "previous", "--reason", "5xx")
    assert result.returncode == 0, result.stderr
    assert "follow it: slipway watch d-2" in result.stdout
    (request,) = api.requests
    assert (request["method"], request["path"]) == ("POST", "/api/services/web/rollback")
    assert json.loads(request["body"]) == {"to": "previous", "reason": "5xx"}
    assert signature_is_valid(request, f"127.0.0.1:{api.server.server_port}")


def test_a_throttled_read_is_retried_after_retry_after(api):
    """GET meets 503 + Retry-After twice, then an answer: exit 0 after three requests."""
    for _ in range(2):
        api.answer(503, {"error": "throttled", "message": "AWS is throttling"}, {"Retry-After": "0"})
    api.answer(200, {"deployments": []})
    result = slipway(api.url, "deployments", "--service", "web", "--state", "FAILED")
    assert result.returncode == 0, result.stderr
    assert len(api.requests) == 3
    assert api.requests[0]["path"] == "/api/deployments?limit=20&service=web&state=FAILED"


def test_a_throttled_rollback_is_never_sent_twice(api):
    """POST meets 503: exit 4 saying when to try again; one request only."""
    api.answer(503, {"error": "throttled", "message": "AWS is throttling"}, {"Retry-After": "3"})
    result = slipway(api.url, "rollback", "web", "--to", "previous", "--reason", "r")
    assert result.returncode == 4
    assert "Slipway is busy (503): AWS is throttling; try again in 3 s" in result.stderr
    assert len(api.requests) == 1


@pytest.mark.parametrize("status, body, code, message", [
    (403, {"message": "Missing Authentication Token"}, 4, "refused the request's AWS signature"),
    (200, b"<html>not the API</html>", 4, "without JSON: is this Slipway's API URL?"),
    (500, {"message": "Internal server error"}, 4, "Slipway answered 500: Internal server error"),
    (409, {"error": "service_locked", "message": "web is busy with deployment d-9"}, 3,
     "slipway: web is busy with deployment d-9 (409 service_locked)"),
    (403, {"error": "not_allowed", "message": "you may not"}, 3, "you may not (403 not_allowed)"),
], ids=["apigw-403", "not-json", "500", "slipway-409", "slipway-403"])
def test_answers_map_to_exit_codes(api, status, body, code, message):
    api.answer(status, body)
    result = slipway(api.url, "services")
    assert result.returncode == code, result.stderr
    assert message in result.stderr


def test_refusal_details_are_listed(api):
    """A 409 that lists migrations since the target prints each one under the message."""
    api.answer(409, {"error": "migrations_since_target", "message": "migrations ran; use --force",
                     "migrations": [{"id": "d-7", "version": "1.4.0", "command": ["pnpm", "db:migrate"],
                                     "at": "2026-11-28T10:00:00Z"}]})
    result = slipway(api.url, "rollback", "web", "--to", "d-1", "--reason", "r")
    assert result.returncode == 3
    assert "migration since the target: d-7 1.4.0 `pnpm db:migrate` at 2026-11-28 10:00:00Z" \
        in result.stderr


def test_no_credentials_exit_4_before_any_request(api):
    result = slipway(api.url, "services", AWS_ACCESS_KEY_ID=None, AWS_SECRET_ACCESS_KEY=None)
    assert result.returncode == 4
    assert "no AWS credentials found" in result.stderr
    assert api.requests == []


def test_nobody_listening_exits_4(api):
    port = api.server.server_port
    api.server.shutdown()
    api.server.server_close()
    result = slipway(f"http://127.0.0.1:{port}/api", "services")
    assert result.returncode == 4
    assert f"cannot reach http://127.0.0.1:{port}/api" in result.stderr
