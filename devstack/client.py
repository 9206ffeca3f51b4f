"""A tiny HTTP client for the devstack's own URL (the demo and ``serve`` use the API like a user)."""
from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any


class Response:
    def __init__(self, status: int, headers: dict, body: bytes):
        self.status, self.headers, self.body = status, headers, body

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body or b"null")


class Client:
    def __init__(self, base_url: str, timeout: float = 30):
        self.base_url, self.timeout = base_url.rstrip("/"), timeout

    def request(self, method: str, path: str, *, json_body: Any = None,
                form: dict | None = None) -> Response:
        data, headers = None, {}
        if json_body is not None:
            data, headers["Content-Type"] = json.dumps(json_body).encode(), "application/json"
        elif form is not None:
            data = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        url = path if path.startswith("http") else self.base_url + path
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as resp:
                return Response(resp.status, dict(resp.headers), resp.read())
        except urllib.error.HTTPError as exc:
            return Response(exc.code, dict(exc.headers), exc.read())

    def get(self, path: str) -> Response:
        return self.request("GET", path)

    def post(self, path: str, body: Any = None, form: dict | None = None) -> Response:
        return self.request("POST", path, json_body=body, form=form)

    def delete(self, path: str) -> Response:
        return self.request("DELETE", path)

    # -- the devstack's fault and clock controls (devstack/faults.py) ----------------------------
    def inject_fault(self, service: str, operation: str, error: str, when: str = "before",
                     times: int | None = 1, match: dict | None = None) -> dict:
        """Make the app's next ``times`` calls of ``service`` ``operation`` fail (None: until
        ``clear_faults``); returns the fault as the devstack recorded it."""
        got = self.post("/_devstack/faults", {"service": service, "operation": operation,
                                              "error": error, "when": when, "times": times,
                                              "match": match or {}})
        if got.status != 201:
            raise ValueError(f"fault refused: {got.status} {got.text}")
        return got.json()

    def faults(self) -> dict:
        return self.get("/_devstack/faults").json()

    def clear_faults(self) -> dict:
        return self.delete("/_devstack/faults").json()

    def advance_clock(self, seconds: float) -> dict:
        """Move the app's clock forward; returns ``{"offset_seconds", "now"}``."""
        got = self.post("/_devstack/clock", {"advance_seconds": seconds})
        if got.status != 200:
            raise ValueError(f"clock refused: {got.status} {got.text}")
        return got.json()

    def clock_offset(self) -> float:
        return float(self.get("/_devstack/clock").json()["offset_seconds"])
