"""CloudWatch alarms, as the bake needs them: the current state of named alarms (DescribeAlarms).

One call answers up to 100 names; no ClientError escapes (AwsError instead).
"""
from __future__ import annotations

from typing import Any, Callable

from chalicelib.adapters.ecs import _call


class CloudWatchAlarms:
    def __init__(self, client: Callable[[], Any]):
        self._client = client  # built on first use: most invocations never read an alarm

    def states(self, names: list[str]) -> dict[str, dict]:
        """``{alarm name: {"state": "OK"|"ALARM"|"INSUFFICIENT_DATA", "reason": str}}`` for the
        names that exist (a missing name is simply absent)."""
        out: dict[str, dict] = {}
        for start in range(0, len(names), 100):
            got = _call(self._client().describe_alarms, AlarmNames=list(names[start:start + 100]),
                        AlarmTypes=["MetricAlarm", "CompositeAlarm"])
            for alarm in got.get("MetricAlarms", []) + got.get("CompositeAlarms", []):
                out[alarm["AlarmName"]] = {"state": alarm.get("StateValue"),
                                           "reason": alarm.get("StateReason") or ""}
        return out
