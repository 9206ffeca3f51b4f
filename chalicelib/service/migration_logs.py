"""The last lines a migration printed, read once when its task stops (CloudWatch Logs).

Never an error: no logs (another driver, the stream missing, access denied, Logs down) becomes a
plain note in ``migration.log_note`` and an empty ``migration.log_tail``.
"""
from __future__ import annotations

import logging

from chalicelib.domain import logtail
from chalicelib.domain.model import Deployment
from chalicelib.service.deps import Deps

log = logging.getLogger("slipway.migration_logs")


def read(deps: Deps, dep: Deployment, task_arn: str) -> dict:
    """``{"log_tail": [...], "log_note": str | None}`` for the stopped migration task."""
    svc = deps.config.service(dep.service)
    where = logtail.location(dep.task_definition, svc.container if svc else "", task_arn)
    if isinstance(where, str):
        return {"log_tail": [], "log_note": where}
    if deps.logs is None:
        return {"log_tail": [], "log_note": "no logs: Slipway has no CloudWatch Logs access here"}
    try:
        lines, note = deps.logs.tail(*where, logtail.TAIL)
    except Exception:  # a log tail is never worth failing a deployment over
        log.exception("reading the migration log of %s failed", dep.id)
        lines, note = [], "no logs: reading CloudWatch Logs failed (see Slipway's log)"
    return {"log_tail": logtail.shown(lines, dep.task_definition), "log_note": note,
            "log_stream": f"{where[0]} {where[1]}"}
