"""A tiny HTTP client for the devstack's own URL (the demo and ``serve`` use the API like a user).

Requests to the app are signed with SigV4 (``devstack.sigv4``), as an operator's calls to the IAM
routes are on AWS: with the keys given, or else the devstack's own from ``GET /_devstack/aws``
(fetched once). ``signed=False`` sends a request as an anonymous browser would.
"""
from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from devstack import sigv4


class Response:
    def __init__(self, status: int, headers: dict, body: bytes):
        self.status, self.headers, self.body = status, headers, body

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body or b"null")


class Client:
    def __init__(self, base_url: str, timeout: float = 30, keys: sigv4.Keys | None = None,
                 sign: bool = True):
        self.base_url, self.timeout = base_url.rstrip("/"), timeout
        self._keys, self._sign = keys, sign

    def request(self, method: str, path: str, *, json_body: Any = None,
                form: dict | None = None, signed: bool | None = None) -> Response:
        data, headers = None, {}
        if json_body is not None:
            data, headers["Content-Type"] = json.dumps(json_body).encode(), "application/json"
        elif form is not None:
            data = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        url = path if path.startswith("http") else self.base_url + path
        if self._sign if signed is None else signed:
            if "/_devstack" not in urllib.parse.urlsplit(url).path:
                headers = sigv4.sign(self.keys(), method, url, headers, data)
        return self._send(urllib.request.Request(url, data=data, method=method, headers=headers))

    def keys(self) -> sigv4.Keys:
        """The keys requests are signed with (the devstack's own unless given)."""
        if self._keys is None:
            info = self._send(urllib.request.Request(self.base_url + "/_devstack/aws")).json()
            self._keys = sigv4.Keys(info["access_key_id"], info["secret_access_key"],
                                    info["region"])
        return self._keys

    def _send(self, request: urllib.request.Request) -> Response:
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as resp:
                return Response(resp.status, dict(resp.headers), resp.read())
        except urllib.error.HTTPError as exc:
            return Response(exc.code, dict(exc.headers), exc.read())

    def get(self, path: str, signed: bool | None = None) -> Response:
        return self.request("GET", path, signed=signed)

    def post(self, path: str, body: Any = None, form: dict | None = None,
             signed: bool | None = None) -> Response:
        return self.request("POST", path, json_body=body, form=form, signed=signed)

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
