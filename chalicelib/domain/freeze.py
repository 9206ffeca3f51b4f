"""Freeze windows: when may a deployment of a service not be approved, and until when.

A window is absolute (``start`` ≤ now < ``end``), weekly (listed days, ``from``–``to`` on the wall
clock of an IANA time zone), or both (the weekly times, only between ``start`` and ``end``).

Weekly windows follow the *wall clock*: "Fri 16:00–18:00 Europe/Berlin" is 15:00–17:00 UTC in
winter and 14:00–16:00 UTC in summer. A ``to`` earlier than (or equal to) ``from`` runs past
midnight into the next day ("Fri 18:00 → 08:00" ends Saturday 08:00). A start or end time that a
DST switch skips (02:30 on the spring-forward night) falls on the switch itself: the first instant
whose wall clock shows that time or later. Rollbacks are never frozen (the service layer asks only
for approvals). Pure: no I/O; the caller passes the clock's ``now``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from typing import TYPE_CHECKING, Callable, Iterable

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
UTC = timezone.utc
_MAX_SEGMENTS = 16  # a window continuing day after day is followed at most this far for its end


@dataclass(frozen=True)
class Window:
    index: int  # its position among the file's [[freeze]] tables (1-based): how it is named
    services: frozenset[str]  # names, or {"*"} for every service
    reason: str = ""
    start: datetime | None = None  # absolute bounds (aware)
    end: datetime | None = None
    days: frozenset[int] = frozenset()  # weekday numbers (Mon = 0); empty with times: every day
    start_time: time | None = None  # weekly "from" (wall clock)
    end_time: time | None = None  # weekly "to" (wall clock); None: the end of the day
    timezone: str = "UTC"
    break_glass: tuple[str, ...] = field(default_factory=tuple)

    @property
    def weekly(self) -> bool:
        return bool(self.days) or self.start_time is not None or self.end_time is not None

    @property
    def name(self) -> str:
        return f"freeze #{self.index}" + (f" ({self.reason})" if self.reason else "")

    def applies_to(self, service: str) -> bool:
        return "*" in self.services or service in self.services

    def active(self, now: datetime) -> bool:
        now = now.astimezone(UTC)
        if self.start is not None and now < self.start:
            return False
        if self.end is not None and now >= self.end:
            return False
        return self._weekly_active(now) if self.weekly else True

    def ends(self, now: datetime) -> datetime | None:
        """When this window, active at ``now``, lets go (None when it is not active; for a weekly
        window without an absolute end that never lets go, the last instant followed)."""
        if not self.active(now):
            return None
        end = self.end
        if self.weekly:
            moment = now.astimezone(UTC)
            for _ in range(_MAX_SEGMENTS):
                moment = self._segment_end(moment)
                if end is not None and moment >= end or not self._weekly_active(moment):
                    break
            end = moment if end is None else min(end, moment)
        return end

    # -- weekly rules --------------------------------------------------------------------------
    def _zone(self) -> ZoneInfo:
        return zone(self.timezone)

    def _on(self, day: int) -> bool:
        return not self.days or day in self.days

    def _crosses_midnight(self) -> bool:
        return self.end_time is not None and self.end_time <= (self.start_time or time(0))

    def _weekly_active(self, now: datetime) -> bool:
        local = now.astimezone(self._zone())
        wall, day = local.time().replace(tzinfo=None), local.weekday()
        begin = self.start_time or time(0)
        if self._crosses_midnight():
            return (self._on(day) and wall >= begin) or \
                (self._on((day - 1) % 7) and wall < self.end_time)
        return self._on(day) and begin <= wall and (self.end_time is None or wall < self.end_time)

    def _segment_end(self, now: datetime) -> datetime:
        """The end of the stretch of the weekly rule ``now`` is in (one day's window)."""
        local = now.astimezone(self._zone())
        today: date = local.date()
        if self.end_time is None:
            return first_instant(today + timedelta(days=1), time(0), self._zone())
        started_today = local.time().replace(tzinfo=None) >= (self.start_time or time(0))
        if self._crosses_midnight() and started_today and self._on(local.weekday()):
            return first_instant(today + timedelta(days=1), self.end_time, self._zone())
        return first_instant(today, self.end_time, self._zone())


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    from zoneinfo import ZoneInfo  # only with freeze windows: not on every cold start

    return ZoneInfo(name)


def first_instant(day: date, wall: time, tz: ZoneInfo) -> datetime:
    """The first instant (UTC) whose wall clock in ``tz`` shows ``day`` ``wall`` or later: the time
    itself, or the DST switch when the switch skips it."""
    naive = datetime.combine(day, wall)
    candidate = naive.replace(tzinfo=tz).astimezone(UTC)  # fold=0: the offset before a switch
    if candidate.astimezone(tz).replace(tzinfo=None) == naive:
        return candidate  # it exists (fold=0 is the first of a repeated hour)
    low = naive.replace(tzinfo=tz, fold=1).astimezone(UTC)  # skipped: the switch is in between
    high = candidate
    while (high - low) > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(tz).replace(tzinfo=None) >= naive:
            high = middle
        else:
            low = middle
    return high.replace(microsecond=0) if high.microsecond else high


def active_window(windows: Iterable[Window], service: str, now: datetime) -> Window | None:
    """The freeze holding ``service`` at ``now``: of several, the one that lasts longest."""
    holding = [w for w in windows if w.applies_to(service) and w.active(now)]
    if not holding:
        return None
    return max(holding, key=lambda w: w.ends(now) or datetime.max.replace(tzinfo=UTC))


def frozen_until(windows: Iterable[Window], service: str, now: datetime) -> datetime | None:
    """When every window holding ``service`` has let go (windows that overlap or follow one
    another count as one freeze); None when it is not frozen."""
    windows = [w for w in windows if w.applies_to(service)]
    moment, until = now, None
    for _ in range(_MAX_SEGMENTS):
        holding = [w.ends(moment) for w in windows if w.active(moment)]
        if not holding:
            break
        until = moment = max(holding)
    return until


def may_break_glass(window: Window, person: frozenset[str]) -> bool:
    """Is one of this person's identities listed in the window's ``break_glass``?"""
    return bool(person & set(window.break_glass))


def describe(window: Window, until: datetime | None) -> str:
    """"freeze #2 (Black Friday) until 2026-11-30T08:00Z" for messages."""
    when = until.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if until else "further notice"
    return f"{window.name} until {when}"


def frozen_message(service: str, window: Window, until: datetime | None,
                   person: Callable[[str], frozenset[str]] | None = None,
                   identity: str | None = None) -> str:
    """Why an approval was refused, and what may be done about it."""
    text = f"{service} is frozen by {describe(window, until)}; approvals wait until then."
    if window.break_glass:
        allowed = person and identity and may_break_glass(window, person(identity))
        text += (" You may break glass: open your personal approval link (sent to you by "
                 "direct message) and approve with a break-glass reason." if allowed else
                 f" Only {', '.join(window.break_glass)} may break glass.")
    return text
