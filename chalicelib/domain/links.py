"""Signed approval links: an HMAC-SHA256 token bound to one deployment, one approver, one scope
and an expiry. The ledger remembers each token's nonce once used, so a link works once.

Token = base64url(JSON claims) "." base64url(HMAC(key, that first part)). Claims: ``d`` deployment id,
``i`` approver identity, ``s`` scope ("decide": approve or reject), ``e`` expiry (epoch seconds),
``n`` a random nonce (the single-use key).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

from chalicelib.errors import BadRequest, Conflict, Unauthorized

SCOPE_DECIDE = "decide"


@dataclass(frozen=True)
class LinkClaims:
    deployment_id: str
    identity: str
    scope: str
    expires: int
    nonce: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, body: str) -> str:
    return _b64(hmac.new(key, body.encode(), hashlib.sha256).digest())


def sign(key: bytes, deployment_id: str, identity: str, expires: int,
         scope: str = SCOPE_DECIDE, nonce: str | None = None) -> str:
    claims = {"d": deployment_id, "i": identity, "s": scope, "e": int(expires),
              "n": nonce or secrets.token_urlsafe(12)}
    body = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
    return f"{body}.{_mac(key, body)}"


def verify(key: bytes, token: str, deployment_id: str, now: float) -> LinkClaims:
    """Return the claims of a genuine, unexpired token for this deployment, or raise."""
    if not token or not token.isascii() or token.count(".") != 1 or len(token) > 1024:
        raise BadRequest("the approval link is incomplete; open it again from the message",
                         code="bad_token")
    body, mac = token.split(".")
    if not hmac.compare_digest(mac, _mac(key, body)):
        raise Unauthorized("this approval link is not genuine", code="bad_token")
    try:
        raw = json.loads(_unb64(body))
        claims = LinkClaims(raw["d"], raw["i"], raw["s"], int(raw["e"]), raw["n"])
    except (ValueError, KeyError, TypeError) as exc:
        raise BadRequest("the approval link is malformed", code="bad_token") from exc
    if claims.deployment_id != deployment_id or claims.scope != SCOPE_DECIDE:
        raise Unauthorized("this approval link belongs to another deployment", code="bad_token")
    if claims.expires < now:  # genuine, but its request is over: a state, not a forgery (409)
        raise Conflict("this approval link has expired, with its approval request",
                       code="link_expired")
    return claims
