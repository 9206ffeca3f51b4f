"""The devstack's SigV4 check (devstack/sigv4.py) refuses what API Gateway's AWS_IAM refuses."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from devstack import sigv4

KEYS = sigv4.Keys("AKIADEVSTACKTEST0001", "s3cr3t-key-of-the-devstack", "us-east-1")
URL = "http://127.0.0.1:8000/services/web/rollback?dry=1"
BODY = b'{"to": "previous", "reason": "bad release"}'


def _signed(keys=KEYS, method="POST", url=URL, body=BODY) -> dict:
    return sigv4.sign(keys, method, url, {"Content-Type": "application/json"}, body)


def _sent(headers: dict) -> dict:
    """What arrives: the signed headers plus the Host header any HTTP client adds."""
    return {**headers, "Host": "127.0.0.1:8000"}


def test_a_request_signed_with_the_devstack_keys_passes():
    assert sigv4.verify(KEYS, "POST", URL, _sent(_signed()), BODY) is None


def _tampered():
    other_keys = sigv4.Keys(KEYS.access_key_id, "not-the-secret", KEYS.region)
    stranger = sigv4.Keys("AKIASOMEONEELSE00001", KEYS.secret_access_key, KEYS.region)
    wrong_region = sigv4.Keys(KEYS.access_key_id, KEYS.secret_access_key, "eu-west-1")
    good = _signed()
    return [
        ("unsigned", "POST", URL, {"Content-Type": "application/json"}, BODY,
         sigv4.MISSING),
        ("wrong secret", "POST", URL, _signed(other_keys), BODY, sigv4.MISMATCH),
        ("unknown key", "POST", URL, _signed(stranger), BODY, sigv4.BAD_KEY),
        ("other region", "POST", URL, _signed(wrong_region), BODY, "Credential should"),
        ("other body", "POST", URL, good, BODY.replace(b"previous", b"d-1"), sigv4.MISMATCH),
        ("other path", "POST", URL.replace("/web/", "/api/"), good, BODY, sigv4.MISMATCH),
        ("other query", "POST", URL.replace("dry=1", "dry=0"), good, BODY, sigv4.MISMATCH),
        ("other method", "PUT", URL, good, BODY, sigv4.MISMATCH),
        ("garbage", "POST", URL, {**good, "Authorization": "Bearer abc"}, BODY,
         "Authorization header requires"),
        ("no date", "POST", URL, {k: v for k, v in good.items() if k != "X-Amz-Date"}, BODY,
         "X-Amz-Date"),
        ("signed header dropped", "POST", URL,
         {k: v for k, v in good.items() if k != "Content-Type"}, BODY, sigv4.MISMATCH),
        ("header changed", "POST", URL, {**good, "Content-Type": "text/plain"}, BODY,
         sigv4.MISMATCH),
    ]


@pytest.mark.parametrize("case", range(len(_tampered())), ids=[t[0] for t in _tampered()])
def test_anything_else_is_api_gateways_403(case):
    # Signed when the test runs, not when it is collected: a slow run must not expire them.
    _, method, url, headers, body, message = _tampered()[case]
    status, reply = sigv4.verify(KEYS, method, url, _sent(headers), body)
    assert status == 403 and message in reply["message"]


@pytest.mark.parametrize("minutes", [-6, 6, 60])
def test_a_signature_more_than_five_minutes_off_real_time_is_refused(minutes):
    """Replaying a captured request later does not work (checked against real time)."""
    now = datetime.now(timezone.utc) + timedelta(minutes=minutes)
    status, reply = sigv4.verify(KEYS, "POST", URL, _sent(_signed()), BODY, now=now)
    assert status == 403 and reply["message"].startswith("Signature expired")
