"""Freeze windows: which instants they hold, when they let go (time zones, DST), how they load."""
from __future__ import annotations

import dataclasses
from datetime import datetime, time, timedelta, timezone

import pytest

from chalicelib import config
from chalicelib.adapters import slack_message
from chalicelib.adapters.log_notifier import FanOut
from chalicelib.domain.model import State
from chalicelib.entrypoints import pages
from chalicelib.errors import Conflict, Forbidden
from chalicelib.service import decisions, pipeline, promote, reconcile, rollback
from chalicelib.service.views import deployment_json
from tests.fakes import RecordingNotifier
from tests.ops_kit import TARGET
from chalicelib.domain.freeze import Window, active_window, first_instant, frozen_until, zone
from chalicelib.errors import ConfigError

UTC = timezone.utc
BERLIN = "Europe/Berlin"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def weekly(days=(), begin=None, finish=None, tz=BERLIN, **extra) -> Window:
    return Window(index=1, services=frozenset({"*"}), days=frozenset(days), start_time=begin,
                  end_time=finish, timezone=tz, **extra)


FRIDAY_AFTERNOON = weekly({4}, time(16), time(18))


def test_a_weekly_window_follows_the_wall_clock_across_seasons():
    """Fri 16:00-18:00 Berlin is 15:00-17:00 UTC in winter and 14:00-16:00 UTC in summer."""
    assert FRIDAY_AFTERNOON.active(at("2026-01-09T15:00:00Z"))
    assert not FRIDAY_AFTERNOON.active(at("2026-01-09T14:59:59Z"))
    assert FRIDAY_AFTERNOON.ends(at("2026-01-09T15:30:00Z")) == at("2026-01-09T17:00:00Z")
    assert FRIDAY_AFTERNOON.active(at("2026-07-10T14:00:00Z"))
    assert not FRIDAY_AFTERNOON.active(at("2026-07-10T16:00:00Z"))
    assert FRIDAY_AFTERNOON.ends(at("2026-07-10T15:00:00Z")) == at("2026-07-10T16:00:00Z")
    assert not FRIDAY_AFTERNOON.active(at("2026-07-09T14:30:00Z"))  # a Thursday


def test_a_window_across_the_spring_forward_night_is_an_hour_shorter():
    """Sun 01:00-04:00 Berlin on 29 March 2026 (02:00 CET → 03:00 CEST) lasts two real hours."""
    window = weekly({6}, time(1), time(4))
    assert not window.active(at("2026-03-28T23:59:59Z"))
    assert window.active(at("2026-03-29T00:00:00Z"))  # 01:00 CET
    assert window.active(at("2026-03-29T01:30:00Z"))  # 03:30 CEST
    assert window.ends(at("2026-03-29T00:10:00Z")) == at("2026-03-29T02:00:00Z")  # 04:00 CEST
    assert not window.active(at("2026-03-29T02:00:00Z"))


def test_a_window_across_the_fall_back_night_is_an_hour_longer():
    """Sun 01:00-03:00 Berlin on 25 October 2026 (03:00 CEST → 02:00 CET) lasts three hours."""
    window = weekly({6}, time(1), time(3))
    assert window.active(at("2026-10-24T23:00:00Z"))  # 01:00 CEST
    assert window.active(at("2026-10-25T01:30:00Z"))  # the second 02:30, now CET
    assert window.ends(at("2026-10-24T23:30:00Z")) == at("2026-10-25T02:00:00Z")  # 03:00 CET
    assert not window.active(at("2026-10-25T02:00:00Z"))


def test_a_time_the_switch_skips_falls_on_the_switch():
    """02:30 does not exist in Berlin on 29 March 2026: a window ending then ends at 03:00 CEST."""
    assert first_instant(at("2026-03-29T00:00:00Z").date(), time(2, 30), zone(BERLIN)) == \
        at("2026-03-29T01:00:00Z")
    window = weekly({6}, time(0), time(2, 30))
    assert window.ends(at("2026-03-28T23:30:00Z")) == at("2026-03-29T01:00:00Z")
    assert not window.active(at("2026-03-29T01:00:00Z"))  # 03:00 CEST: past 02:30 on the wall


def test_a_window_whose_end_is_before_its_start_runs_past_midnight():
    """Fri 18:00 → 08:00 holds Friday evening and Saturday morning, not Thursday night."""
    window = weekly({4}, time(18), time(8), tz="UTC")
    assert window.active(at("2026-11-27T18:00:00Z")) and window.active(at("2026-11-28T07:59:00Z"))
    assert window.ends(at("2026-11-27T20:00:00Z")) == at("2026-11-28T08:00:00Z")
    assert not window.active(at("2026-11-28T08:00:00Z"))
    assert not window.active(at("2026-11-27T07:00:00Z"))  # Friday morning follows Thursday


def test_whole_days_in_a_row_end_when_the_last_day_does():
    """days = Sat, Sun without times: frozen from Saturday 00:00 to Monday 00:00 local time."""
    window = weekly({5, 6}, tz="America/New_York")
    assert window.active(at("2026-11-28T05:00:00Z"))  # Saturday 00:00 EST
    assert window.ends(at("2026-11-28T12:00:00Z")) == at("2026-11-30T05:00:00Z")
    assert not window.active(at("2026-11-30T05:00:00Z"))


def test_absolute_windows_and_weekly_times_inside_them():
    """start/end bound a window; with days too, only those days within the bounds count."""
    xmas = Window(index=1, services=frozenset({"web"}), start=at("2026-12-23T00:00:00Z"),
                  end=at("2027-01-02T00:00:00Z"), reason="holidays")
    assert xmas.active(at("2026-12-24T12:00:00Z")) and not xmas.active(at("2027-01-02T00:00:00Z"))
    assert xmas.ends(at("2026-12-24T12:00:00Z")) == at("2027-01-02T00:00:00Z")
    inverted = Window(index=2, services=frozenset({"*"}), start=at("2027-01-02T00:00:00Z"),
                      end=at("2026-12-23T00:00:00Z"))
    assert not inverted.active(at("2026-12-25T00:00:00Z"))
    fridays_in_december = weekly({4}, tz="UTC", start=at("2026-12-01T00:00:00Z"),
                                 end=at("2026-12-18T12:00:00Z"))
    assert fridays_in_december.active(at("2026-12-04T10:00:00Z"))
    assert fridays_in_december.ends(at("2026-12-18T10:00:00Z")) == at("2026-12-18T12:00:00Z")
    assert not fridays_in_december.active(at("2026-12-25T10:00:00Z"))


def test_which_services_and_how_long_overlapping_windows_hold():
    """A window holds only its services; overlapping windows freeze until the last lets go."""
    short = Window(index=1, services=frozenset({"web"}), start=at("2026-12-01T00:00:00Z"),
                   end=at("2026-12-01T10:00:00Z"))
    longer = Window(index=2, services=frozenset({"*"}), start=at("2026-12-01T09:00:00Z"),
                    end=at("2026-12-01T12:00:00Z"))
    now = at("2026-12-01T09:30:00Z")
    assert active_window([short, longer], "web", now) is longer
    assert frozen_until([short, longer], "web", at("2026-12-01T08:00:00Z")) == \
        at("2026-12-01T12:00:00Z")
    assert active_window([short], "worker", now) is None
    assert frozen_until([short], "web", at("2026-12-01T10:00:00Z")) is None


FREEZE = """
[[freeze]]
services = ["web"]
{body}
"""


def load(tmp_path, body: str):
    from tests.unit.test_config import BASE

    path = tmp_path / "services.toml"
    path.write_text(BASE.format(extra="[service.approval]\nrequired = false")
                    + FREEZE.format(body=body))
    return config.load(path)


def test_freeze_tables_load_with_times_days_and_zones(tmp_path):
    """RFC 3339 strings or TOML date-times, HH:MM times and IANA zones become a Window."""
    cfg = load(tmp_path, 'start = 2026-12-23T00:00:00+01:00\nend = "2027-01-02T08:00:00Z"\n'
                         'days = ["Fri", "sat"]\nfrom = "16:00"\nto = "08:00"\n'
                         'timezone = "Europe/Berlin"\nreason = "holidays"\n'
                         'break_glass = ["github:octocat"]')
    (window,) = cfg.freezes
    assert window.start == at("2026-12-22T23:00:00Z") and window.end == at("2027-01-02T08:00:00Z")
    assert window.days == {4, 5} and window.start_time == time(16) and window.end_time == time(8)
    assert window.break_glass == ("github:octocat",) and window.name == "freeze #1 (holidays)"


@pytest.mark.parametrize("body, key", [
    ('days = ["Fri"]\ntimezone = "Mars/Olympus"', "timezone"),
    ('start = "next friday"\nend = "2027-01-01T00:00:00Z"', "start"),
    ('days = ["Fri"]\nfrom = "25:00"', "from"),
    ('days = ["Fri"]\nto = "5pm"', "to"),
    ('days = ["Freitag"]', "days"),
    ('days = ["Fri"]\nbreak_glass = ["octocat"]', "break_glass"),
    ('days = ["Fri"]\nwhen = "always"', "when"),
    ('start = "2026-12-01T00:00:00Z"', "end"),
])
def test_bad_freeze_tables_fail_naming_file_and_key(tmp_path, body, key):
    """Unknown zones, unparseable times and unknown keys fail at load, naming file and key."""
    with pytest.raises(ConfigError) as err:
        load(tmp_path, body)
    assert "services.toml: [[freeze]] #1" in err.value.message and key in err.value.message


def test_a_freeze_of_an_unknown_service_fails(tmp_path):
    """A misspelt service name would freeze nothing: refused at load."""
    load(tmp_path, 'days = ["Fri"]')  # valid as written
    path = tmp_path / "services.toml"
    path.write_text(path.read_text().replace('["web"]', '["wbe"]'))
    with pytest.raises(ConfigError, match="key 'services': no service named 'wbe'"):
        config.load(path)


def test_overlapping_and_inverted_windows_load(tmp_path):
    """Overlaps and an end before the start are accepted (the latter is simply never active)."""
    cfg = load(tmp_path, 'start = "2027-01-02T00:00:00Z"\nend = "2026-12-23T00:00:00Z"\n'
                         '[[freeze]]\nservices = ["*"]\ndays = ["Fri"]\nfrom = "18:00"\nto = "08:00"')
    assert len(cfg.freezes) == 2


# -- freezes at work: approvals, break glass, auto-approval, rollbacks ---------------------------
FROZEN_AT = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)  # the kit's clock starts at 09:00


@pytest.fixture
def frozen(tmp_path):
    """better-chatbot-eu frozen 12:00-13:00 (only github:octocat, Slack U0OCTOCAT1, breaks glass),
    with a promotion of better-chatbot's release waiting for approval."""
    from tests.ops_kit import write_config
    from tests.unit.pipeline_kit import build_world, to_success

    cfg = config.load(write_config(tmp_path / "cfg", freeze_start=FROZEN_AT) / "services.toml")
    deps = build_world(cfg)
    deps.notifier = FanOut(RecordingNotifier(), promote.Trigger(deps))
    source = to_success(deps)
    (dep,) = deps.ledger.list(service=TARGET)
    deps.clock.now = FROZEN_AT + timedelta(minutes=5)
    return deps, source, dep


def decide(deps, dep, who, glass=""):
    return decisions.decide(deps, dep.id, identity=who, via="link", decision="approve",
                            break_glass=glass)


def test_a_frozen_deployment_cannot_be_approved_and_waits(frozen):
    """409 frozen names the window and its end; the deployment still waits; rejecting works."""
    deps, _, dep = frozen
    with pytest.raises(Conflict) as refused:
        decide(deps, dep, "slack:U0APPROVER1")
    assert refused.value.code == "frozen"
    assert "freeze #1 (EU launch) until 2026-11-26 13:00 UTC" in refused.value.message
    assert "Only github:octocat may break glass" in refused.value.message
    assert deps.load(dep.id).state is State.PENDING_APPROVAL
    with pytest.raises(Forbidden) as glass:  # a reason is not enough: who may is listed
        decide(deps, dep, "slack:U0APPROVER1", "customers are down")
    assert glass.value.code == "not_break_glass"
    deps.clock.now = FROZEN_AT + timedelta(hours=1)
    assert decide(deps, dep, "slack:U0APPROVER1").deployment.state is State.APPROVED


def test_break_glass_approves_records_and_announces(frozen):
    """octocat (via their Slack identity) breaks glass with a reason: approved, recorded, told."""
    deps, _, dep = frozen
    with pytest.raises(Conflict, match="You may break glass"):
        decide(deps, dep, "slack:U0OCTOCAT1")
    outcome = decide(deps, dep, "slack:U0OCTOCAT1", "  checkout is broken in the EU  ")
    done = outcome.deployment
    assert done.state is State.APPROVED
    assert (dep.id, ["APPROVED", "BREAK_GLASS"]) in deps.dispatcher.notify  # the worker tells
    deps.dispatcher.drain(deps)
    assert done.approvals[-1]["break_glass"] == "checkout is broken in the EU"
    assert done.timeline[-1]["note"].startswith("BREAK GLASS by slack:U0OCTOCAT1 during freeze #1")
    told = [changes for dep_id, _, changes in deps.notifier.notifiers[0].seen if dep_id == dep.id]
    assert ("APPROVED", "BREAK_GLASS") in told
    text = str(slack_message.status_message(deployment_json(done))[1])
    assert "broke glass" in text and "checkout is broken in the EU" in text
    assert "broke glass</strong>: “checkout is broken in the EU”" in pages.approvals(
        deployment_json(done))


def test_rollbacks_are_never_frozen(frozen):
    """Two releases of the EU service before the window; during it a rollback starts at once."""
    from tests.unit.pipeline_kit import to_success

    deps, _, first = frozen
    deps.clock.now = FROZEN_AT - timedelta(hours=2)
    decide(deps, first, "slack:U0APPROVER1")
    deps.dispatcher.drain(deps)
    _finish(deps, first)
    to_success(deps, tags=("2222222", "1.23.0-2222222"))
    second = next(d for d in deps.ledger.list(service=TARGET) if d.id != first.id)
    decide(deps, second, "slack:U0APPROVER1")
    deps.dispatcher.drain(deps)
    assert _finish(deps, second).state is State.SUCCEEDED
    deps.clock.now = FROZEN_AT + timedelta(minutes=30)
    back = rollback.rollback(deps, TARGET, "previous", "bad", "iam:ops", force=True)
    assert back.state is State.APPROVED and back.rollback_of == first.id


def _finish(deps, dep):
    from tests.unit.pipeline_kit import completed, stopped

    pipeline.migration_stopped(deps, stopped(deps.load(dep.id)))
    deps.ecs.finish_rollout("production-cluster", TARGET)
    pipeline.rollout_changed(deps, completed(deps.load(dep.id)))
    return deps.load(dep.id)


def test_auto_approval_waits_for_the_window_to_end(frozen):
    """A service that needs no approval is frozen too: its push waits, then the reconciler goes on."""
    from tests.unit.pipeline_kit import WORKER, push

    deps, _, _ = frozen
    window = Window(index=1, services=frozenset({WORKER}), start=FROZEN_AT,
                    end=FROZEN_AT + timedelta(hours=1), reason="worker freeze")
    deps.config = dataclasses.replace(deps.config, freezes=(window,))
    dep = push(deps, service=WORKER, tags=("abc1234",))
    assert deps.load(dep.id).state is State.PENDING_APPROVAL
    reconcile.reconcile(deps)
    assert deps.load(dep.id).state is State.PENDING_APPROVAL
    deps.clock.now = FROZEN_AT + timedelta(hours=1)
    reconcile.reconcile(deps)
    assert deps.load(dep.id).state is not State.PENDING_APPROVAL
