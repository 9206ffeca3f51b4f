"""Ports: what the service layer needs from the outside world, as Protocols (fakes need not inherit)."""
from __future__ import annotations

from typing import Protocol

from chalicelib.domain.model import Deployment


class Ledger(Protocol):
    """Deployments and their pointers, changed only by conditional (optimistic) writes."""

    def create(self, dep: Deployment, key: str) -> tuple[Deployment, bool]:
        """Store ``dep`` unless a deployment with dedupe ``key`` exists; return (stored, created)."""

    def get(self, dep_id: str) -> Deployment | None: ...

    def save(self, dep: Deployment, pointers: tuple[str, ...] = ()) -> None:
        """Write ``dep`` if nobody wrote since it was read (else ConcurrentUpdate); bump its
        lock_version; point each of ``pointers`` at it. A busy deployment (APPROVED, MIGRATING,
        DEPLOYING) holds its service's lock: Conflict if another deployment holds it."""

    def find(self, pointer: str) -> Deployment | None: ...

    def list(self, service: str | None = None, state: str | None = None,
             limit: int = 50) -> list[Deployment]:
        """Newest first."""

    def unfinished(self) -> list[Deployment]:
        """Every deployment not yet in a terminal state."""

    def lock_holder(self, service: str) -> str | None: ...

    def release_lock(self, service: str, dep_id: str) -> None:
        """Free ``service`` if ``dep_id`` still holds it (the reconciler's repair)."""

    def get_job(self, name: str) -> dict | None: ...

    def put_job(self, name: str, job: dict | None) -> None:
        """Store (or with None, remove) a resumable background job's progress."""


#: What a channel that has not been told yet says in ``dep.notifications["pending"]``.
NOT_SENT = "not sent yet"


class Notifier(Protocol):
    """Tells people about a deployment's changes. Never raises: failures are logged and retried."""

    def changed(self, dep: Deployment, changes: list[str]) -> None: ...


class Dispatcher(Protocol):
    """Hands a deployment to the asynchronous worker (``advance``), with retries; ``notify``
    also hands it changes to tell people about (so a request need not wait for Slack or GitHub)."""

    def advance_later(self, dep_id: str, notify: list[str] | None = None) -> None: ...
