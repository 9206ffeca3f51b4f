"""Slipway's exception tree: every error a user can see has a code and an HTTP status.

    SlipwayError
    ├── BadRequest        400  malformed input (request, event, token format)
    ├── Unauthorized      401  bad signature, forged or expired token
    ├── Forbidden         403  a verified identity that may not do this
    ├── NotFound          404  unknown deployment or service
    ├── Conflict          409  wrong state: already decided, superseded, expired, locked
    │   └── ConcurrentUpdate   someone else wrote first (optimistic lock lost)
    ├── Throttled         503  AWS throttled us after retries; nothing changed (+ Retry-After)
    └── ConfigError       500-at-load  services.toml is invalid (never raised per request)

Domain errors become HTTP statuses in exactly one place: ``chalicelib.entrypoints.http``.
"""
from __future__ import annotations


class SlipwayError(Exception):
    """Root of every error Slipway raises on purpose."""

    status = 500
    code = "internal"

    def __init__(self, message: str, *, code: str | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code


class BadRequest(SlipwayError):
    """The input could not be understood; nothing was changed."""

    status = 400
    code = "bad_request"


class Unauthorized(SlipwayError):
    """The request's signature or token is missing, forged or stale."""

    status = 401
    code = "unauthorized"


class Forbidden(SlipwayError):
    """The caller is known but may not do this."""

    status = 403
    code = "forbidden"


class NotFound(SlipwayError):
    """No such deployment or service."""

    status = 404
    code = "not_found"


class Conflict(SlipwayError):
    """The deployment is not in a state that allows this."""

    status = 409
    code = "conflict"


class ConcurrentUpdate(Conflict):
    """Another writer changed the item first; re-read and decide again."""

    code = "concurrent_update"


class Throttled(SlipwayError):
    """AWS (the ledger) kept throttling after retries with backoff; nothing was changed.
    Not a conflict: the same request will work shortly (HTTP 503 with ``Retry-After``)."""

    status = 503
    code = "throttled"
    retry_after = 5  # seconds


class ConfigError(SlipwayError):
    """services.toml or a task-definition template is invalid."""

    code = "bad_config"
