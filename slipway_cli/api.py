"""Where Slipway's API is, and one SigV4-signed request to it, each failure told by its meaning.

The URL: ``--url`` (or ``SLIPWAY_URL``), or the ``ApiUrl`` output of the CloudFormation stack named
by ``--stack`` (Chalice's own ``EndpointURL`` output is accepted too). The region: ``--region``,
else the one in an ``execute-api`` host name, else botocore's (``AWS_REGION``, ``AWS_DEFAULT_REGION``,
the profile's). Credentials: botocore's chain (environment, ``AWS_PROFILE`` and ``~/.aws``, SSO,
container and instance roles), signed for service ``execute-api`` as API Gateway's ``AWS_IAM``
checks them.

Answers: 2xx → the JSON; 4xx with Slipway's ``{"error", "message"}`` → ``Refused`` (exit 3);
401/403 without it (API Gateway refusing the signature) and no answer at all → ``Unreachable``
(exit 4). A GET that meets 503/429 + ``Retry-After`` (AWS throttling) is retried a few times.
"""
from __future__ import annotations

import http.client
import json
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Callable

import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.exceptions import BotoCoreError, ClientError, NoRegionError

from slipway_cli.errors import Refused, Unreachable, UsageError

SERVICE = "execute-api"
OUTPUT_KEYS = ("ApiUrl", "EndpointURL")  # Slipway's template output; Chalice's default one
TIMEOUT_SECONDS = 20
BUSY_RETRIES = 3
MAX_RETRY_AFTER = 10.0
_EXECUTE_API = re.compile(r"\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$")


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


def session() -> botocore.session.Session:
    return botocore.session.Session()


def check_url(url: str) -> str:
    """The API's base URL, without a trailing slash; a UsageError for anything else."""
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise UsageError(f"{url!r} is not the API's URL: give https://<api-id>.execute-api."
                         "<region>.amazonaws.com/api (or --stack NAME)")
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError as exc:
        raise UsageError(f"{url!r} is not the API's URL: {exc}") from exc
    return url.strip().rstrip("/")


def stack_url(sess: botocore.session.Session, stack: str, region: str | None) -> str:
    """The API URL among the outputs of CloudFormation stack ``stack``."""
    try:
        client = sess.create_client("cloudformation", region_name=region)
        stacks = client.describe_stacks(StackName=stack)["Stacks"]
    except NoRegionError as exc:
        raise UsageError("which AWS region is the stack in? --region, or AWS_REGION") from exc
    except ClientError as exc:
        error = exc.response.get("Error", {})
        if "does not exist" in error.get("Message", ""):
            raise UsageError(f"no CloudFormation stack {stack!r} in "
                             f"{client.meta.region_name}") from exc
        raise Unreachable(f"cannot read stack {stack!r}: {error.get('Message') or exc}") from exc
    except BotoCoreError as exc:
        raise Unreachable(f"cannot read stack {stack!r}: {exc}") from exc
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs") or []}
    for key in OUTPUT_KEYS:
        if outputs.get(key):
            return outputs[key]
    raise UsageError(f"stack {stack!r} has no {' or '.join(OUTPUT_KEYS)} output (it has: "
                     f"{', '.join(sorted(outputs)) or 'none'}): is it a Slipway stack?")


class Api:
    """Signed JSON requests to one Slipway API."""

    def __init__(self, url: str, region: str, credentials: Any,
                 sleep: Callable[[float], None] = time.sleep):
        self.url = url
        self.region = region
        self._credentials = credentials
        self._sleep = sleep

    @classmethod
    def connect(cls, url: str | None, stack: str | None, region: str | None) -> "Api":
        sess = session()
        # botocore reads AWS_DEFAULT_REGION and the profile; AWS_REGION is what most tools set.
        region = region or os.environ.get("AWS_REGION")
        if stack:
            url = stack_url(sess, stack, region)
        url = url or os.environ.get("SLIPWAY_URL")
        if not url:
            raise UsageError("where is Slipway? --url URL, --stack NAME, or SLIPWAY_URL")
        url = check_url(url)
        found = _EXECUTE_API.search(urllib.parse.urlsplit(url).hostname or "")
        region = region or (found.group(1) if found else None) or sess.get_config_variable("region")
        if not region:
            raise UsageError("which AWS region signs the requests? --region, or AWS_REGION")
        return cls(url, region, _credentials(sess))

    def get(self, path: str, query: dict[str, Any] | None = None) -> Answer:
        for attempt in range(BUSY_RETRIES + 1):
            try:
                return self._send("GET", path, query, None)
            except _Busy as busy:
                if attempt == BUSY_RETRIES:
                    raise busy.error from None
                self._sleep(busy.wait)
        raise AssertionError("unreachable")

    def post(self, path: str, body: dict) -> Answer:
        try:
            return self._send("POST", path, None, body)
        except _Busy as busy:  # never resent: Slipway may have acted on it
            raise busy.error from None

    def _send(self, method: str, path: str, query: dict | None, body: dict | None) -> Answer:
        url = self.url + path
        pairs = sorted((k, str(v)) for k, v in (query or {}).items() if v is not None)
        if pairs:
            url += "?" + urllib.parse.urlencode(pairs)
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        signed = AWSRequest(method=method, url=url, data=data or b"", headers=headers)
        try:
            frozen = self._credentials.get_frozen_credentials()
        except (BotoCoreError, ClientError) as exc:
            raise Unreachable(f"cannot refresh the AWS credentials: {exc}") from exc
        SigV4Auth(frozen, SERVICE, self.region).add_auth(signed)
        request = urllib.request.Request(url, data=data, method=method,
                                         headers=dict(signed.headers.items()))
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
                status, raw, answer_headers = response.status, response.read(), response.headers
        except urllib.error.HTTPError as exc:
            status, raw, answer_headers = exc.code, exc.read(), exc.headers
        except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise Unreachable(f"cannot reach {self.url}: {reason}") from exc
        return self._answer(method, path, status, raw, dict(answer_headers.items()))

    def _answer(self, method: str, path: str, status: int, raw: bytes,
                headers: dict[str, str]) -> Answer:
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        if 200 <= status < 300:
            if body is None:
                raise Unreachable(f"{method} {self.url}{path} answered {status} without JSON: "
                                  "is this Slipway's API URL?")
            return Answer(status, body, headers)
        fields = body if isinstance(body, dict) else {}
        message = fields.get("message") or fields.get("Message") or _first_line(raw)
        if status in (429, 503) and "retry-after" in {k.lower() for k in headers}:
            wait = _retry_after(headers)
            raise _Busy(wait, Unreachable(f"Slipway is busy ({status}): {message}; "
                                          f"try again in {wait:g} s", body))
        if 400 <= status < 500 and "error" in fields:
            raise Refused(f"{message} ({status} {fields['error']})", body)
        if status in (401, 403):
            raise Unreachable(f"{self.url} refused the request's AWS signature ({status}): "
                              f"{message}. Check the credentials, their region ({self.region}) "
                              "and that they may call this API", body)
        if 400 <= status < 500:
            raise Refused(f"{method} {path}: {status} {message}", body)
        raise Unreachable(f"Slipway answered {status}: {message}", body)


class _Busy(Exception):
    def __init__(self, wait: float, error: Unreachable):
        super().__init__(error.message)
        self.wait, self.error = wait, error


def _retry_after(headers: dict[str, str]) -> float:
    value = next(v for k, v in headers.items() if k.lower() == "retry-after")
    try:
        return min(max(float(value), 0.5), MAX_RETRY_AFTER)
    except ValueError:
        return 2.0


def _first_line(raw: bytes) -> str:
    text = raw.decode("utf-8", "replace").strip().splitlines()
    return text[0][:200] if text else "no message"


def _credentials(sess: botocore.session.Session) -> Any:
    try:
        credentials = sess.get_credentials()
    except (BotoCoreError, ClientError) as exc:
        raise Unreachable(f"cannot load AWS credentials: {exc}") from exc
    if credentials is None:
        raise Unreachable("no AWS credentials found: set AWS_PROFILE (or AWS_ACCESS_KEY_ID and "
                          "AWS_SECRET_ACCESS_KEY), or run `aws sso login`")
    return credentials
