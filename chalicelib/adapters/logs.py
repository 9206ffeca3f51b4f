"""CloudWatch Logs, as the migration tail needs it: the last lines of one log stream.

``tail`` never raises for "there are no logs to read" (stream or group missing, access denied):
it answers ``(lines, note)`` where ``note`` says in plain words why there are none. Throttling and
other AWS failures also become a note: a log tail is worth a line in the timeline, never a retry.
"""
from __future__ import annotations

from typing import Any, Callable

from chalicelib.adapters.ecs import _call
from chalicelib.adapters.errors import AwsError

_MISSING = {"ResourceNotFoundException"}
_DENIED = {"AccessDeniedException", "AccessDenied", "UnauthorizedOperation"}


class CloudWatchLogs:
    def __init__(self, client: Callable[[], Any]):
        self._client = client  # built on first use: only a stopped migration reads logs

    def tail(self, group: str, stream: str, limit: int = 50) -> tuple[list[str], str | None]:
        """The last ``limit`` messages of ``group``/``stream``, oldest first."""
        try:
            got = _call(self._client().get_log_events, logGroupName=group, logStreamName=stream,
                        limit=limit, startFromHead=False)
        except AwsError as exc:
            if exc.code in _MISSING:
                return [], f"no logs: log stream {stream} not found in log group {group}"
            if exc.code in _DENIED:
                return [], f"no logs: Slipway may not read log group {group} (access denied)"
            return [], f"no logs: CloudWatch Logs did not answer ({exc.code or 'no answer'})"
        lines = [e.get("message", "") for e in got.get("events", [])]
        return lines[-limit:], None if lines else f"no logs: log stream {stream} is empty"
