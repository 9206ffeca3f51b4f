"""DORA figures of a service, read from the ledger (the arithmetic is chalicelib/domain/dora.py).

Bounded reads: ONE ledger list of the service's newest ``HISTORY`` deployments (a DynamoDB Query
on the by-service index, 1 MB a page: a few pages at most) and no other call — commit times were
recorded when Slipway first told GitHub about each deployment (``notifications["commit_time"]``),
so the lead time asks GitHub nothing.
"""
from __future__ import annotations

import logging

from chalicelib.domain import dora
from chalicelib.errors import BadRequest
from chalicelib.service.deps import Deps

log = logging.getLogger("slipway.dora")
HISTORY = 500  # deployments read per service: a month of ~16 a day
MAX_DAYS = 365


def window(raw: str | None, default: float = 30) -> float:
    """``?days=`` as a number of days (1 to 365); 400 otherwise."""
    if raw is None or raw == "":
        return default
    try:
        days = float(raw)
    except ValueError:
        days = -1
    if not 1 <= days <= MAX_DAYS:
        raise BadRequest(f"'days' must be a number from 1 to {MAX_DAYS}", code="bad_parameter")
    return days


def figures(deps: Deps, service: str, days: float = 30, history=None, buckets: int = 6) -> dict:
    """``{"window_days", ..., "series": [...]}`` for ``service`` over ``days``."""
    if history is None:
        history = deps.ledger.list(service=service, limit=HISTORY)
    commits = {d.id: d.notifications.get("commit_time") for d in history
               if d.notifications.get("commit_time")}
    now = deps.clock()
    out = dora.figures(history, now, days, commits).as_dict()
    out["series"] = dora.series(history, now, days, buckets, commits)
    out["ledger_reads"] = 1 if history else 0
    oldest = history[-1].created_at if len(history) >= HISTORY else None
    out["complete"] = oldest is None or (now - dora.parse_iso(oldest)).days >= days
    return out


_emitted: dict[str, str] = {}  # service → the hour its figures were last emitted (this container)


def emit_hourly(deps: Deps) -> dict[str, str]:
    """The hourly ``dora_metrics`` schedule: each service's 30-day figures as CloudWatch metrics
    in the embedded metric format (log lines, no API call), at most once an hour per container
    (the devstack runs every schedule every second): one ledger read per service per hour."""
    hour = deps.clock().strftime("%Y-%m-%dT%H")
    done = {}
    for svc in deps.config.services:
        if _emitted.get(svc.name) == hour:
            continue
        try:
            emit(svc.name, figures(deps, svc.name, 30, buckets=1))
        except Exception:  # metrics never break the reconciler
            log.warning("DORA figures of %s not emitted", svc.name, exc_info=True)
            continue
        _emitted[svc.name] = hour
        done[f"dora:{svc.name}"] = "emitted"
    return done


def emit(service: str, f: dict) -> None:
    from aws_lambda_powertools.metrics import MetricUnit, single_metric

    values = [("DeploymentFrequency", MetricUnit.Count, f["per_day"]),
              ("LeadTimeForChanges", MetricUnit.Seconds, f["lead_time_seconds"]),
              ("ChangeFailureRate", MetricUnit.Percent, None if f["change_failure_rate"] is None
               else 100 * f["change_failure_rate"]),
              ("TimeToRestore", MetricUnit.Seconds, f["restore_seconds"]),
              ("ApprovalWaitMedian", MetricUnit.Seconds, f["approval_wait_seconds"])]
    for name, unit, value in values:
        if value is None:
            continue
        with single_metric(name=name, unit=unit, value=value, namespace="Slipway") as metric:
            metric.add_dimension(name="service_name", value=service)  # `service` is Slipway
