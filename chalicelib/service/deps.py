"""What every handler gets: config, ports, adapters, a clock and settings. Built once per process."""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

from chalicelib.config import Config, ServiceConfig
from chalicelib.domain.model import Deployment, State
from chalicelib.errors import ConcurrentUpdate, NotFound
from chalicelib.service.ports import Alarms, Dispatcher, Ecs, Ledger, Logs, Notifier

log = logging.getLogger("slipway")
ID = re.compile(r"d-\d{8}T\d{6}-[0-9a-f]{8}")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Settings:
    public_url: str = "http://127.0.0.1:8000"
    stale_seconds: float = 600  # how long the reconciler waits for a missing ECS event
    prune_batch: int = 10_000  # most revisions one invocation deregisters before resuming later
    idempotency_table: str | None = None  # powertools' store for ECR event redeliveries

    claim_seconds: float = 120  # how long work in progress keeps others off (an ECS call, a
    # first Slack post): longer than any worker runs (Lambda's 60 s timeout, twice), and
    # independent of the reconciler's patience: a claim held by a dead worker is taken over after
    # it, and steps give up after a number of attempts, never after a time (issue 7, row 5).


@dataclass
class Deps:
    config: Config
    ledger: Ledger
    ecs: Ecs
    notifier: Notifier
    dispatcher: Dispatcher
    secrets: Callable[[], dict]
    clock: Callable[[], datetime] = utcnow
    settings: Settings = field(default_factory=Settings)
    remaining_ms: Callable[[], int] = lambda: 60_000
    alarms: Alarms | None = None  # the bake's alarms ([service.verify])
    logs: Logs | None = None  # migration log tails
    # a measurement for CloudWatch: (metric, service name, seconds); adapters/metrics.py in Lambda
    gauge: Callable[[str, str, float], None] = lambda metric, service, value: None

    def service(self, name: str) -> ServiceConfig:
        svc = self.config.service(name)
        if svc is None:
            raise NotFound(f"no service named {name!r} is configured", code="unknown_service")
        return svc

    def load(self, dep_id: str) -> Deployment:
        # Ids come from URLs and Slack payloads: anything not shaped like ours is unknown (and
        # never reaches DynamoDB, which refuses keys over 2 KB with an error, not a miss).
        dep = self.ledger.get(dep_id) if isinstance(dep_id, str) and ID.fullmatch(dep_id) else None
        if dep is None:
            raise NotFound(f"no deployment {dep_id!r}", code="unknown_deployment")
        from chalicelib.service.notify import answered

        answered(dep)  # a check a notifier deferred (notify.checks_deferred) reads no more
        return dep

    def commit(self, dep: Deployment, pointers: tuple[str, ...] = (), *,
               prune: str | None = None) -> None:
        """Save, then tell people. Notification failures never undo or block the write."""
        from chalicelib.service.notify import proven

        expected = dep.lock_version
        self.ledger.save(dep, pointers, prune=prune)
        proven(dep.id, expected)
        changes, dep.changes = dep.changes, []
        if changes:
            self.tell(dep, changes)

    def kick(self, dep_id: str) -> None:
        """Queue the ECS work; if the queue is down the reconciler picks the deployment up."""
        try:
            self.dispatcher.advance_later(dep_id)
        except Exception:
            log.exception("could not queue %s; the reconciler will retry", dep_id)

    def tell(self, dep: Deployment, changes: list[str]) -> None:
        from chalicelib.service.notify import one_write  # (notify builds on this module)

        try:
            with one_write(self, dep):  # the notifiers' bookkeeping: one write, at the end
                self.notifier.changed(dep, changes)
        except Exception:  # a notifier must never break the pipeline
            log.exception("notifier failed for %s", dep.id)


def finish(deps: Deps, dep_id: str, to: State, reason: str, *,
           only_from: State | None = None) -> None:
    """End a deployment with ``reason`` unless it has already ended (or left ``only_from``)."""
    def step() -> None:
        dep = deps.load(dep_id)
        if dep.state.terminal or (only_from is not None and dep.state is not only_from):
            return
        dep.reason = reason
        dep.transition(to, reason, deps.clock())
        deps.commit(dep)

    retrying(step)


def retrying(fn: Callable[[], Any], attempts: int = 8) -> Any:
    """Run a read-decide-write step again when another writer got there first."""
    for attempt in range(attempts):
        try:
            return fn()
        except ConcurrentUpdate:
            if attempt == attempts - 1:
                raise
    return None


def updating(deps: Deps, dep: Deployment, fn: Callable[[Deployment], Any],
             attempts: int = 8) -> Any:
    """``fn(dep)`` on the copy the caller already holds (no read first), and on a fresh copy each
    time another writer got there first: a read-decide-write step that reads only on conflict."""
    for attempt in range(attempts):
        try:
            return fn(dep)
        except ConcurrentUpdate:
            if attempt == attempts - 1:
                raise
            dep = deps.load(dep.id)
    return None
