"""The pages' pictures: phases measured from the timeline, drawn as plain SVG."""
from __future__ import annotations

from datetime import datetime, timezone

from chalicelib.entrypoints import charts

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)


def view(state="SUCCEEDED", kind="deploy", steps=("APPROVED", "MIGRATING", "DEPLOYING"), end=20):
    at = {"PENDING_APPROVAL": 0, "APPROVED": 10, "MIGRATING": 10, "DEPLOYING": 12,
          "VERIFYING": 15}
    timeline = [{"state": s, "at": f"2026-11-28T10:{at[s]:02d}:00Z", "note": ""}
                for s in ("PENDING_APPROVAL", *steps)]
    return {"kind": kind, "state": state, "created_at": "2026-11-28T10:00:00Z",
            "finished_at": f"2026-11-28T10:{end:02d}:00Z", "timeline": timeline}


def test_each_phase_lasts_from_its_start_to_the_next():
    """Approval wait 10 min, migration 2, rollout 8 to the end; nothing failed."""
    got = [(p["name"], p["seconds"], p["failed"]) for p in charts.phases(view(), NOW)]
    assert got == [("wait", 600, False), ("migration", 120, False), ("rollout", 480, False)]


def test_the_phase_a_deployment_failed_in_is_marked():
    """Rolled back during the bake: the bake is the failing phase, in the bar and its legend."""
    v = view("ROLLED_BACK", steps=("APPROVED", "DEPLOYING", "VERIFYING"))
    parts = charts.phases(v, NOW)
    assert [p["name"] for p in parts] == ["wait", "rollout", "bake"] and parts[-1]["failed"]
    html = charts.phase_bar(v, NOW)
    assert "bake 5 min (failed here)" in html and "<script" not in html and "href" not in html


def test_a_rollback_has_no_approval_wait_and_an_unstarted_one_no_bar():
    """A rollback starts approved; a deployment still waiting draws up to now."""
    assert [p["name"] for p in charts.phases(view(kind="rollback", steps=("DEPLOYING",)),
                                             NOW)] == ["rollout"]
    waiting = view("PENDING_APPROVAL", steps=())
    waiting["finished_at"] = None
    [wait] = charts.phases(waiting, NOW)
    assert wait["name"] == "wait" and wait["seconds"] == 2 * 3600


def test_sparklines_scale_to_the_largest_and_skip_unknowns():
    svg = charts.sparkline([1, None, 4], "test")
    assert svg.count("<rect") == 3 and "height='38.0'" in svg and "height='2'" in svg
