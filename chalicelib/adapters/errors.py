"""The errors adapters raise, so no library exception escapes an adapter.

They are the service ports' own error types (``chalicelib.service.ports``): an adapter translates
what its library raises into ``AwsError`` or ``NotificationError``, and the service layer catches
those without knowing any adapter. Re-exported here for the adapters' convenience.
"""
from __future__ import annotations

from chalicelib.service.ports import RETRYABLE_CODES, AwsError, NotificationError, OutsideError

__all__ = ["RETRYABLE_CODES", "AwsError", "NotificationError", "OutsideError"]
