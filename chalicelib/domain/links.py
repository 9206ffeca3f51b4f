"""Signed links: an HMAC-SHA256 token bound to one deployment, one identity, one scope and an
expiry. Two scopes: ``decide`` (an approver's personal approval link; the ledger remembers each
token's nonce once used, so it works once) and ``view`` (the read-only page of one deployment,
``?view=``, carried by Slack's "Review in browser" button and GitHub's status link; it decides
nothing and opens no other deployment).

Token = base64url(JSON claims) "." base64url(HMAC(key, that first part)). Claims: ``d`` deployment id,
``i`` identity (the approver; "" for view links), ``s`` scope, ``e`` expiry (epoch seconds),
``n`` a random nonce (the single-use key). Keys shorter than ``MIN_KEY_BYTES`` sign nothing.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

from chalicelib.errors import BadRequest, ConfigError, Conflict, Unauthorized

SCOPE_DECIDE, SCOPE_VIEW = "decide", "view"
MIN_KEY_BYTES = 32
VIEW_SECONDS = 30 * 86_400  # a view link in a Slack message or a GitHub status opens for 30 days
_WHAT = {SCOPE_DECIDE: "approval link", SCOPE_VIEW: "page link"}


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


def check_key(key: bytes) -> bytes:
    """The key, if long enough to sign with (an empty or short key would make links forgeable)."""
    if not isinstance(key, bytes) or len(key) < MIN_KEY_BYTES:
        raise ConfigError(f"link_signing_key must be at least {MIN_KEY_BYTES} bytes "
                          "(generate one with: python -c 'import secrets; "
                          "print(secrets.token_urlsafe(32))')", code="weak_key")
    return key


def sign(key: bytes, deployment_id: str, identity: str, expires: int,
         scope: str = SCOPE_DECIDE, nonce: str | None = None) -> str:
    check_key(key)
    claims = {"d": deployment_id, "i": identity, "s": scope, "e": int(expires),
              "n": nonce or secrets.token_urlsafe(12)}
    body = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
    return f"{body}.{_mac(key, body)}"


def verify(key: bytes, token: str, deployment_id: str, now: float,
           scope: str = SCOPE_DECIDE) -> LinkClaims:
    """Return the claims of a genuine, unexpired ``scope`` token for this deployment, or raise."""
    what = _WHAT[scope]
    check_key(key)
    if not token or not token.isascii() or token.count(".") != 1 or len(token) > 1024:
        raise BadRequest(f"the {what} is incomplete; open it again from the message",
                         code="bad_token")
    body, mac = token.split(".")
    if not hmac.compare_digest(mac, _mac(key, body)):
        raise Unauthorized(f"this {what} is not genuine", code="bad_token")
    try:
        raw = json.loads(_unb64(body))
        claims = LinkClaims(raw["d"], raw["i"], raw["s"], int(raw["e"]), raw["n"])
    except (ValueError, KeyError, TypeError) as exc:
        raise BadRequest(f"the {what} is malformed", code="bad_token") from exc
    if claims.scope != scope:
        raise Unauthorized(f"this link is not an {what}", code="bad_token")
    if claims.deployment_id != deployment_id:
        raise Unauthorized(f"this {what} belongs to another deployment", code="bad_token")
    if claims.expires < now:  # genuine, but its request is over: a state, not a forgery (409)
        raise Conflict("this approval link has expired, with its approval request"
                       if scope == SCOPE_DECIDE else "this page link has expired; open the "
                       "deployment from a newer message", code="link_expired")
    return claims
