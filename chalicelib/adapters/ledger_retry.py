"""DynamoDB throttling, told apart from conflicts: retried with jittered backoff, then ``Throttled``.

A conditional check that fails is a conflict (someone else wrote first; the caller re-reads and
decides again). A throttle is not: nothing was written, and the same write will work a moment
later. botocore's retry mode retries ``ProvisionedThroughputExceededException`` and
``ThrottlingException`` itself; a transaction cancelled with a ``ThrottlingError`` reason it does
not, and when botocore has given up we try a few more times here. Whatever is still throttled
becomes ``Throttled`` (HTTP 503 with ``Retry-After``; an event handler lets Lambda retry).
"""
from __future__ import annotations

import random
import time
from typing import Any, Callable

from botocore.exceptions import ClientError

from chalicelib.errors import Throttled

THROTTLES = frozenset({"ProvisionedThroughputExceededException", "ThrottlingException",
                       "RequestLimitExceeded"})
ATTEMPTS = 3
BASE_SECONDS, CAP_SECONDS = 0.05, 1.0
sleep: Callable[[float], None] = time.sleep  # tests replace it


def cancel_reasons(exc: ClientError) -> list[str | None]:
    return [r.get("Code") for r in exc.response.get("CancellationReasons", [])]


def is_throttle(exc: ClientError) -> bool:
    """A throttle, or DynamoDB failing on its side (any 5xx: retried like one, never a 500 to
    the caller; a write whose answer was lost comes back as a conflict on the retry)."""
    code = exc.response.get("Error", {}).get("Code")
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
    if code in THROTTLES or status >= 500:
        return True
    return code == "TransactionCanceledException" and "ThrottlingError" in cancel_reasons(exc)


def call(fn: Callable[..., Any], **kwargs: Any) -> Any:
    """``fn(**kwargs)``, retried on throttles with full-jitter exponential backoff."""
    for attempt in range(ATTEMPTS):
        try:
            return fn(**kwargs)
        except ClientError as exc:
            if not is_throttle(exc):
                raise
            if attempt == ATTEMPTS - 1:
                raise Throttled("the ledger (DynamoDB) is throttling requests; nothing was "
                                "changed, try again shortly") from exc
            sleep(random.uniform(0, min(CAP_SECONDS, BASE_SECONDS * 2 ** attempt)))
    raise AssertionError("unreachable")
