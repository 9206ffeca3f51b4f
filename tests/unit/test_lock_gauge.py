"""The reconciler measures how long a deployment has held its service (the lock-held alarm)."""
from __future__ import annotations

from datetime import timedelta

from chalicelib.service import reconcile
from tests.unit.pipeline_kit import WEB, approve, push, world

__all__ = ["world"]


def test_the_reconciler_reports_how_long_the_service_has_been_held(world):
    seen = []
    world.gauge = lambda metric, service, value: seen.append((metric, service, value))
    reconcile.reconcile(world)
    assert seen == []  # nobody holds anything
    dep = push(world)
    approve(world, dep)
    world.clock.now += timedelta(minutes=7)
    reconcile.reconcile(world)
    assert [(m, s) for m, s, _ in seen] == [("LockHeldSeconds", WEB)]
    assert 7 * 60 <= seen[0][2] < 8 * 60
