"""Errors the adapters raise, so no library exception escapes an adapter.

    AdapterError          an external system did not do what we asked
    └── NotificationError Slack or GitHub refused, failed or could not be reached

A ``NotificationError`` must never block a deployment: the caller logs it and
re-syncs later (the ledger is written first). Messages never contain tokens.
"""
from __future__ import annotations


class AdapterError(Exception):
    """Root of the errors raised by adapters to external systems."""


class NotificationError(AdapterError):
    """A Slack or GitHub call failed (refused, HTTP error, timeout, unreachable)."""

    def __init__(self, message: str, *, status: int | None = None, error: str | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.error = error


#: AWS error codes worth another try (a queue or EventBridge redelivers); None = no answer at all.
RETRYABLE_CODES = frozenset({None, "ThrottlingException", "ServerException", "ServiceUnavailable",
                             "RequestLimitExceeded", "InternalFailure", "InternalServerError"})


class AwsError(AdapterError):
    """An AWS call failed for a reason the caller should report (not a bug of ours)."""

    def __init__(self, message: str, *, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.code = code

    @property
    def retryable(self) -> bool:
        return self.code in RETRYABLE_CODES
