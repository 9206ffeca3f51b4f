"""DORA arithmetic on a hand-built ledger, with its edge cases."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from chalicelib.domain import dora
from chalicelib.domain.model import Deployment, State, iso
from tests.unit.pipeline_kit import world

__all__ = ["world"]  # the fixture, imported for pytest

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)
S = State


def dep(name: str, state: State, hours_ago: float, *, kind="deploy", wait_minutes=10.0,
        took_minutes=5.0, td=None, prev=None) -> Deployment:
    """A release pushed, approved after ``wait_minutes``, ended ``hours_ago`` hours before NOW."""
    finished = NOW - timedelta(hours=hours_ago)
    approved = finished - timedelta(minutes=took_minutes)
    created = approved - timedelta(minutes=wait_minutes if kind != "rollback" else 0)
    d = Deployment(id=f"d-{name}", service="web", kind=kind, state=state, created_at=iso(created),
                   task_definition_arn=td or f"arn:td/web:{name}", previous_task_definition_arn=prev,
                   finished_at=iso(finished) if state.terminal else None)
    if kind != "rollback":
        d.timeline.append({"at": iso(approved), "state": "APPROVED", "note": "approved"})
    return d


def test_no_deployments_gives_counts_of_zero_and_no_rates():
    """An empty ledger: nothing divided by zero, the unknowns are None."""
    f = dora.figures([], NOW)
    assert (f.deployments, f.per_day, f.changes, f.failures) == (0, 0.0, 0, 0)
    assert f.change_failure_rate is None and f.lead_time_seconds is None
    assert f.restore_seconds is None and f.approval_wait_seconds is None


def test_a_month_of_releases():
    """Four good releases, one failed migration then a fix two hours later, one outside the window."""
    history = [dep("a", S.SUCCEEDED, 24 * 20), dep("b", S.SUCCEEDED, 24 * 10, wait_minutes=30),
               dep("c", S.FAILED, 24 * 5), dep("d", S.SUCCEEDED, 24 * 5 - 2),
               dep("e", S.SUCCEEDED, 1), dep("old", S.SUCCEEDED, 24 * 40)]
    commits = {"d-a": iso(NOW - timedelta(days=21)), "d-e": iso(NOW - timedelta(hours=3))}
    f = dora.figures(history, NOW, 30, commits)
    assert f.deployments == 4 and f.per_day == pytest.approx(4 / 30)
    assert f.changes == 5 and f.failures == 1 and f.change_failure_rate == pytest.approx(0.2)
    assert f.restore_seconds == 2 * 3600 and f.restores == 1
    assert f.lead_time_samples == 2  # only the commits GitHub told us about
    assert f.lead_time_seconds == pytest.approx((24 * 3600 + 2 * 3600) / 2)
    assert f.approval_wait_seconds == 10 * 60  # median of 10, 30, 10, 10, 10


def test_only_failures():
    """Every release failed: rate 1.0, no frequency, nothing restored yet."""
    history = [dep("a", S.FAILED, 50), dep("b", S.ROLLED_BACK, 20), dep("c", S.FAILED, 2)]
    f = dora.figures(history, NOW)
    assert f.deployments == 0 and f.changes == 3 and f.change_failure_rate == 1.0
    assert f.restore_seconds is None and f.restores == 0


def test_a_release_rolled_back_later_is_a_failure_restored_by_its_rollback():
    """b SUCCEEDED, then an operator's rollback left it: b counts as failed; the rollback, which
    SUCCEEDED 6 minutes after it was asked for, restored; the rollback is not a change itself."""
    a, b = dep("a", S.SUCCEEDED, 48), dep("b", S.SUCCEEDED, 24)
    rollback = dep("r", S.SUCCEEDED, 10, kind="rollback", took_minutes=6, td=a.task_definition_arn,
                   prev=b.task_definition_arn)
    f = dora.figures([a, b, rollback], NOW)
    assert f.changes == 2 and f.failures == 1 and f.change_failure_rate == 0.5
    assert f.deployments == 2 and f.restore_seconds == 6 * 60


def test_a_rollback_of_a_rollback_counts_once():
    """a, b; rollback r1 leaves b for a; rollback r2 leaves r1 (back to b). Only b failed, once;
    rollbacks never count as changes or as deployments."""
    a, b = dep("a", S.SUCCEEDED, 72), dep("b", S.SUCCEEDED, 48)
    r1 = dep("r1", S.SUCCEEDED, 30, kind="rollback", td=a.task_definition_arn,
             prev=b.task_definition_arn)
    r2 = dep("r2", S.SUCCEEDED, 10, kind="rollback", td=b.task_definition_arn,
             prev=a.task_definition_arn)
    f = dora.figures([a, b, r1, r2], NOW)
    assert (f.deployments, f.changes, f.failures) == (2, 2, 1)
    # r2 left a's revision, but what ran then was r1 (a rollback), not the release a
    assert dora.rolled_back_at(a, [a, b, r1, r2]) is None
    assert dora.rolled_back_at(b, [a, b, r1, r2]) == dora.parse_iso(r1.created_at)


def test_series_slices_the_window_oldest_first():
    """Six slices of five days: each slice counts only its own deployments."""
    history = [dep("a", S.SUCCEEDED, 24 * 27), dep("b", S.SUCCEEDED, 24 * 2)]
    rows = dora.series(history, NOW, 30, 6)
    assert [r["deployments"] for r in rows] == [1, 0, 0, 0, 0, 1]
    assert [r["days"] for r in rows] == [5] * 6


def test_the_figures_are_emitted_once_an_hour(world, capsys):
    """EMF lines with the service dimension, once per hour however often the schedule runs."""
    from chalicelib.service import dora as dora_service

    dora_service._emitted.clear()
    dora_service.emit_hourly(world)
    first = capsys.readouterr().out
    dora_service.emit_hourly(world)
    assert '"DeploymentFrequency"' in first and '"better-chatbot-api"' in first
    assert '"DeploymentFrequency"' not in capsys.readouterr().out


def test_the_30_day_approval_wait_is_not_confused_with_a_deployments_own(capsys):
    """The hourly median has its own name: the dashboard's ApprovalWait is per deployment."""
    from chalicelib.service import dora as dora_service

    dora_service.emit("svc", {"per_day": 1.0, "lead_time_seconds": None, "change_failure_rate": None,
                              "restore_seconds": None, "approval_wait_seconds": 600})
    out = capsys.readouterr().out
    assert '"ApprovalWaitMedian"' in out and '"ApprovalWait"' not in out
