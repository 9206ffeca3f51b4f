"""Notification bookkeeping in the ledger, and the re-sync of what failed: service logic the
notifier adapters (Slack, GitHub) and the reconciler share.

    remember(deps, dep, update)  conditional save of ``dep.notifications``
    mark_pending / clear_pending / is_pending / needs_resync
    resync(deps, dep)            re-send what failed earlier for one deployment
    resync_pending(deps)         the reconciler's entry point: resync every deployment marked pending

What notifiers keep in ``dep.notifications`` (each written with a conditional save, see ``remember``):
``slack`` {channel, ts, dms}, ``github`` {id, repository}, ``author`` ("github:<login>", for
prevent_self_review), ``pending`` {channel: last error}. A failure is recorded under
``pending[<channel>]`` so the reconciler (or the next change) re-syncs it.
"""
from __future__ import annotations

import copy
import logging
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from chalicelib.domain.model import Deployment, parse_iso
from chalicelib.errors import ConcurrentUpdate
from chalicelib.service.deps import Deps, updating
from chalicelib.service.ports import NOT_SENT, NotificationError

log = logging.getLogger("slipway.notify")


# -- ledger bookkeeping ---------------------------------------------------------------------------
def remember(deps: Deps, dep: Deployment, update: Callable[[dict], bool]) -> Deployment:
    """Apply ``update`` to the stored deployment's notifications with a conditional save.

    Writes on the caller's copy first, conditional on its version; if anyone wrote meanwhile
    (ConcurrentUpdate), re-reads and applies again, so a state change written meanwhile is kept.
    When the caller's ``dep`` was current, it is brought up to date (version and notifications),
    so the caller's next save does not fail because a notifier wrote in between; a stale ``dep``
    stays stale, and its owner's save fails as it should. Returns the stored copy.

    Inside ``one_write(deps, dep)`` (``Deps.tell`` opens one), the update is applied to ``dep`` in
    memory and every update of that telling is saved by one write at its end. Until then the
    write-ahead ``pending`` markers stay as they were, so nothing is lost if the Lambda dies, and
    an approval waiting for the commit's author is refused (fail closed) for those milliseconds.
    """
    batch = getattr(_batches, "open", {}).get(dep.id)
    if batch is not None:
        if update(dep.notifications):
            batch.append(update)
        return copy.deepcopy(dep)

    def step(fresh: Deployment) -> Deployment:
        fresh = copy.deepcopy(fresh)
        current = fresh.lock_version == dep.lock_version
        if update(fresh.notifications):
            deps.ledger.save(fresh)
            if current:
                dep.lock_version = fresh.lock_version
        dep.notifications = copy.deepcopy(fresh.notifications)
        return fresh

    # Optimistic: the caller's copy was just written (notifiers are told after the write), so
    # try it without reading first; a conflict reads and applies again (one read saved per write).
    return updating(deps, dep, step)


_batches = threading.local()


@contextmanager
def one_write(deps: Deps, dep: Deployment) -> Iterator[None]:
    """Gather the notification bookkeeping of one telling into one conditional write."""
    open_ = _batches.__dict__.setdefault("open", {})
    if dep.id in open_:  # already gathering for it (a nested telling of the same deployment)
        yield
        return
    updates: list[Callable[[dict], bool]] = []
    open_[dep.id] = updates
    try:
        yield
    finally:
        del open_[dep.id]
    if updates:
        _flush(deps, dep, updates)


def _flush(deps: Deps, dep: Deployment, updates: list[Callable[[dict], bool]]) -> None:
    """Save ``dep`` with the updates already applied in memory; if anyone wrote meanwhile, read
    it again and apply them to what is stored."""
    snapshot = copy.deepcopy(dep)
    try:
        deps.ledger.save(snapshot)
        dep.lock_version = snapshot.lock_version
        return
    except ConcurrentUpdate:
        pass

    def step(fresh: Deployment) -> None:
        fresh = copy.deepcopy(fresh)
        if any([u(fresh.notifications) for u in updates]):
            deps.ledger.save(fresh)
        dep.notifications = copy.deepcopy(fresh.notifications)

    updating(deps, deps.load(dep.id), step)


_checks = threading.local()


@contextmanager
def checks_deferred(deps: Deps) -> Iterator[None]:
    """Inside, a notifier's check after an update (Slack's "does the ledger still show what I
    rendered?") waits for the next proof instead of reading at once: the block's next write of
    that deployment succeeding on the rendered version proves nobody wrote in between (free); a
    read of it inside answers the check with what was read; a check still owed at the end costs
    one read then. For blocks that write again after telling (an ECS step claimed, called and
    recorded): one read saved per telling."""
    owed = _checks.__dict__.setdefault("owed", None)
    if owed is not None:  # nested: the outer block settles
        yield
        return
    _checks.owed = {}
    try:
        yield
    finally:
        left, _checks.owed = _checks.owed, None
        for dep_id, (_, check) in left.items():
            try:
                check(deps.ledger.get(dep_id))
            except Exception:  # a notifier's check must never break the pipeline
                log.exception("post-update check of %s failed", dep_id)


def owe_check(dep: Deployment, check: Callable[[Deployment | None], None]) -> bool:
    """Defer ``check`` (run on the stored deployment) inside ``checks_deferred``; False outside
    it (the caller checks at once)."""
    owed = getattr(_checks, "owed", None)
    if owed is None:
        return False
    owed[dep.id] = (dep.lock_version, check)
    return True


def proven(dep_id: str, expected: int) -> None:
    """A write of ``dep_id`` conditional on version ``expected`` succeeded: a check owed on that
    very version is answered (nobody wrote since it was rendered)."""
    owed = getattr(_checks, "owed", None)
    if owed and dep_id in owed and owed[dep_id][0] == expected:
        del owed[dep_id]


def answered(fresh: Deployment) -> None:
    """``fresh`` was just read: run the check owed on it, if any, with it."""
    owed = getattr(_checks, "owed", None)
    if owed and fresh.id in owed:
        _, check = owed.pop(fresh.id)
        try:
            check(fresh)
        except Exception:
            log.exception("post-update check of %s failed", fresh.id)


def mark_pending(deps: Deps, dep: Deployment, channel: str, exc: BaseException) -> None:
    """Log a failed notification and record it for the reconciler; never raises."""
    message = getattr(exc, "message", None) or f"{type(exc).__name__}"
    if isinstance(exc, NotificationError):
        log.warning("%s notification for %s failed: %s", channel, dep.id, message)
    else:
        log.error("%s notification for %s failed unexpectedly", channel, dep.id, exc_info=exc)

    def update(notes: dict) -> bool:
        pending = notes.setdefault("pending", {})
        if pending.get(channel) not in (None, NOT_SENT):
            return False  # keep the first real error
        pending[channel] = str(message)[:200]
        return True

    try:
        remember(deps, dep, update)
    except Exception:
        log.exception("could not record the pending %s notification of %s", channel, dep.id)


def clear_pending(channel: str) -> Callable[[dict], bool]:
    """An ``update`` for ``remember`` that drops ``channel`` from pending."""
    def update(notes: dict) -> bool:
        pending = notes.get("pending") or {}
        if channel not in pending:
            return False
        del pending[channel]
        if not pending:
            notes.pop("pending", None)
        return True

    return update


def is_pending(dep: Deployment, channel: str) -> bool:
    """Recorded as pending (not sent yet, or failed): what a successful sync clears."""
    return channel in (dep.notifications.get("pending") or {})


def needs_resync(deps: Deps, dep: Deployment, channel: str) -> bool:
    """Should someone other than the creating Lambda send it? A real failure: yes. The write-ahead
    'not sent yet': only once the creator had time to do it (else both would post)."""
    value = (dep.notifications.get("pending") or {}).get(channel)
    if value is None:
        return False
    if value != NOT_SENT:
        return True
    age = (deps.clock() - parse_iso(dep.created_at)).total_seconds()
    return age > deps.settings.claim_seconds


# -- re-sync (the reconciler) ---------------------------------------------------------------------
def _members(notifier: Any) -> list:
    """The notifiers inside ``deps.notifier`` (a FanOut of several, or a single one)."""
    inner = getattr(notifier, "notifiers", None)
    if inner is None:
        return [notifier]
    return [m for n in inner for m in _members(n)]


def resync(deps: Deps, dep: Deployment) -> list[str]:
    """Re-send every pending notification of ``dep``; return the channels now in sync."""
    done = []
    for notifier in _members(deps.notifier):
        channel = getattr(notifier, "channel", None)
        if channel and needs_resync(deps, dep, channel):
            if notifier.resync(dep):
                done.append(channel)
    return done


def resync_pending(deps: Deps, heads: dict | None = None,
                   read: dict[str, Deployment] | None = None) -> dict[str, str]:
    """Resync the deployments whose notifications failed (finished ones included): those the
    configured services' head items mark (``n_<id>``, written with each deployment), from
    ``heads`` and the deployments the reconciler already ``read`` when it passes them."""
    out: dict[str, str] = {}
    try:
        heads = heads or deps.ledger.heads([svc.name for svc in deps.config.services])
        marked = {i for head in heads.values() for i in head.notify}
        read = dict(read or {})
        missing = marked - set(read)
        if missing:
            read.update({d.id: d for d in deps.ledger.get_many(missing)})
        candidates = [read[i] for i in sorted(marked) if i in read and any(
            needs_resync(deps, read[i], c) for c in read[i].notifications.get("pending") or {})]
    except Exception:
        log.exception("could not find the deployments to re-sync notifications of")
        return out
    for dep in candidates:
        try:
            done = resync(deps, dep)
        except Exception:  # a notifier must never break the reconciler
            log.exception("re-sync of %s failed", dep.id)
            continue
        left = sorted((deps.load(dep.id).notifications.get("pending") or {}))
        out[f"notify {dep.id}"] = (f"re-synced {', '.join(done)}" if done else "re-sync failed") \
            + (f"; still pending: {', '.join(left)}" if left else "")
    return out
