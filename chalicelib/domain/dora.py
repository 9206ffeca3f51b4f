"""DORA figures of one service from its ledger: pure arithmetic over deployments, no I/O.

Over a window ``[now - days, now]``:

- deployment frequency: releases (``deploy``/``promote``, not rollbacks) that ended SUCCEEDED in the
  window, and that count per day;
- lead time for changes: commit time (GitHub's committer date, recorded when Slipway first told
  GitHub about the deployment) → SUCCEEDED, median and 90th percentile; releases without a known
  commit time are left out (``lead_time_samples`` says how many counted);
- change failure rate: releases that reached ECS (a migration or a rollout started: they ended
  SUCCEEDED, FAILED or ROLLED_BACK) and failed — FAILED, ROLLED_BACK, or SUCCEEDED and later
  rolled back (a rollback left it while it ran) — over all of them;
- time to restore: from a failure (a failed/rolled-back release's end, or the moment a rollback of a
  good-looking release was asked for) to the next SUCCEEDED deployment of any kind, median;
- approval wait: push → approval of the releases that were approved, median.

Rollbacks restore; they are never counted as changes, so a rollback of a rollback changes the
failure rate of nothing but the release it finally leaves, if that release was not a rollback.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import median

from chalicelib.domain.model import Deployment, State, parse_iso

RELEASES = ("deploy", "promote")
REACHED = (State.SUCCEEDED, State.FAILED, State.ROLLED_BACK)


@dataclass(frozen=True)
class Figures:
    days: float
    deployments: int
    per_day: float
    lead_time_seconds: float | None
    lead_time_p90_seconds: float | None
    lead_time_samples: int
    changes: int
    failures: int
    change_failure_rate: float | None
    restore_seconds: float | None
    restores: int
    approval_wait_seconds: float | None

    def as_dict(self) -> dict:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def _at(value: str | None) -> datetime | None:
    try:
        return parse_iso(value) if value else None
    except ValueError:
        return None


def _p90(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]


def rolled_back_at(dep: Deployment, history: list[Deployment]) -> datetime | None:
    """When a rollback first left this deployment while it was what ran (the last SUCCEEDED
    deployment of its revision before the rollback), if ever. A rollback that leaves a revision a
    previous rollback had restored rolls back that rollback, not the release."""
    if dep.state is not State.SUCCEEDED or not dep.task_definition_arn:
        return None
    times = []
    for r in history:
        asked = _at(r.created_at)
        if r.kind != "rollback" or r.state not in REACHED or asked is None or \
                r.previous_task_definition_arn != dep.task_definition_arn:
            continue
        current = [d for d in history if d.state is State.SUCCEEDED
                   and d.task_definition_arn == dep.task_definition_arn
                   and (t := _at(d.finished_at)) is not None and t <= asked]
        if current and max(current, key=lambda d: parse_iso(d.finished_at)).id == dep.id:
            times.append(asked)
    return min(times) if times else None


def figures(history: list[Deployment], now: datetime, days: float = 30,
            commit_times: dict[str, str] | None = None) -> Figures:
    """The figures of the deployments that ended (or, for approval wait, were approved) in the
    window. ``history`` may hold more than the window (older ones give context: what a rollback
    left); ``commit_times`` maps a deployment id to its commit's time (ISO)."""
    start = now - timedelta(days=days)
    commit_times = commit_times or {}

    def inside(value: str | None) -> bool:
        moment = _at(value)
        return moment is not None and start <= moment <= now

    releases = [d for d in history if d.kind in RELEASES]
    ended = [d for d in releases if d.state in REACHED and inside(d.finished_at)]
    good = [d for d in ended if d.state is State.SUCCEEDED]
    leads = [(parse_iso(d.finished_at) - commit).total_seconds() for d in good
             if (commit := _at(commit_times.get(d.id))) is not None
             and commit <= parse_iso(d.finished_at)]
    failed_at: list[datetime] = []
    for dep in ended:
        if dep.state is not State.SUCCEEDED:
            failed_at.append(parse_iso(dep.finished_at))
        elif (later := rolled_back_at(dep, history)) is not None and later <= now:
            failed_at.append(later)
    restores = [r for f in failed_at if (r := _restored(f, history, now)) is not None]
    waits = [w for d in releases if inside(d.approved_at())
             and (w := d.approval_wait_seconds()) is not None and w >= 0]
    return Figures(
        days=days, deployments=len(good), per_day=len(good) / days if days else 0.0,
        lead_time_seconds=median(leads) if leads else None, lead_time_p90_seconds=_p90(leads),
        lead_time_samples=len(leads), changes=len(ended), failures=len(failed_at),
        change_failure_rate=len(failed_at) / len(ended) if ended else None,
        restore_seconds=median(restores) if restores else None, restores=len(restores),
        approval_wait_seconds=median(waits) if waits else None,
    )


def _restored(failed: datetime, history: list[Deployment], now: datetime) -> float | None:
    """Seconds from a failure to the next SUCCEEDED deployment (any kind), if one came."""
    after = [t for d in history if d.state is State.SUCCEEDED
             and (t := _at(d.finished_at)) is not None and failed <= t <= now]
    return (min(after) - failed).total_seconds() if after else None


def series(history: list[Deployment], now: datetime, days: float = 30, buckets: int = 6,
           commit_times: dict[str, str] | None = None) -> list[dict]:
    """The figures per consecutive slice of the window, oldest first (for small charts; no
    timestamps, so two reads a moment apart answer the same)."""
    width = days / buckets
    out = []
    for i in range(buckets):
        end = now - timedelta(days=width * (buckets - 1 - i))
        out.append(figures(history, end, width, commit_times).as_dict())
    return out
