"""SigV4 on the devstack's IAM routes, checked as API Gateway's ``AWS_IAM`` checks it.

API Gateway recomputes the signature of the request it received with the caller's secret key and
compares; so does ``verify``, with botocore's own ``SigV4Auth`` (the signer boto3 and the
``slipway`` CLI use) over the headers the caller says it signed. The devstack knows one set of
credentials (``GET /_devstack/aws``: ``access_key_id``/``secret_access_key``). Real time, never
the devstack's movable clock: a signature more than 5 minutes off is refused, as AWS refuses it.

    verify(creds, method, url, headers, body, now) -> None | (403, {"message": ...})

The messages are API Gateway's own, so a client sees here what it would see on AWS.
"""
from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

SERVICE = "execute-api"
SKEW = timedelta(minutes=5)
MISSING = "Missing Authentication Token"
MISMATCH = ("The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method. Consult the service "
            "documentation for details.")
BAD_KEY = "The security token included in the request is invalid."
_AUTH = re.compile(r"^AWS4-HMAC-SHA256 +Credential=(?P<credential>[^,\s]+), *"
                   r"SignedHeaders=(?P<signed>[^,\s]+), *Signature=(?P<signature>[0-9a-f]{64})$")
_DATE = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True)
class Keys:
    """The one identity the devstack's "IAM" knows."""

    access_key_id: str
    secret_access_key: str
    region: str


def sign(keys: Keys, method: str, url: str, headers: dict | None = None,
         body: bytes | None = None) -> dict[str, str]:
    """The headers to send (``Authorization``, ``X-Amz-Date`` and the caller's own)."""
    request = AWSRequest(method=method, url=url, data=body or b"", headers=dict(headers or {}))
    SigV4Auth(Credentials(keys.access_key_id, keys.secret_access_key), SERVICE,
              keys.region).add_auth(request)
    return dict(request.headers.items())


def verify(keys: Keys, method: str, url: str, headers: dict[str, str], body: bytes | None,
           now: datetime | None = None) -> tuple[int, dict] | None:
    """None when ``keys`` signed this very request within the last 5 minutes; else API Gateway's
    403 answer. ``url`` is ``http://<Host header><path and query as received>``."""
    lower = {k.lower(): v for k, v in headers.items()}
    authorization = lower.get("authorization")
    if not authorization:
        return _refused(MISSING)
    found = _AUTH.match(authorization.strip())
    if not found:
        return _refused("Authorization header requires 'Credential', 'SignedHeaders' and "
                        "'Signature' parameters.")
    parts = found["credential"].split("/")
    if len(parts) != 5 or parts[4] != "aws4_request":
        return _refused("Credential should be scoped to a valid region, not a malformed scope.")
    access_key, day, region, service = parts[:4]
    if not hmac.compare_digest(access_key, keys.access_key_id):
        return _refused(BAD_KEY)
    if region != keys.region or service != SERVICE:
        return _refused(f"Credential should be scoped to a valid region and to the service "
                        f"'{SERVICE}' ({keys.region}).")
    stamp = lower.get("x-amz-date", "")
    try:
        when = datetime.strptime(stamp, _DATE).replace(tzinfo=timezone.utc)
    except ValueError:
        return _refused("Authorization header requires existence of either a 'X-Amz-Date' or "
                        "a 'Date' header.")
    now = now or datetime.now(timezone.utc)
    if abs(now - when) > SKEW or day != stamp[:8]:
        return _refused(f"Signature expired: {stamp} is now earlier than "
                        f"{(now - SKEW).strftime(_DATE)} ({now.strftime(_DATE)} - 5 min.)")
    signed = found["signed"].split(";")
    if "host" not in signed or any(h not in lower for h in signed):
        return _refused(MISMATCH)
    claimed = lower.get("x-amz-content-sha256")
    if claimed is not None and claimed != hashlib.sha256(body or b"").hexdigest():
        return _refused(MISMATCH)  # a body other than the one that was signed
    request = AWSRequest(method=method, url=url, data=body or b"",
                         headers={h: lower[h] for h in signed})
    request.context["timestamp"] = stamp
    signer = SigV4Auth(Credentials(keys.access_key_id, keys.secret_access_key), SERVICE, region)
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)),
                                request)
    if not hmac.compare_digest(expected, found["signature"]):
        return _refused(MISMATCH)
    return None


def _refused(message: str) -> tuple[int, dict]:
    return 403, {"message": message}
