"""An in-memory ledger with the same contract as DynamoLedger (unit tests; contract-tested)."""
from __future__ import annotations

import copy
import threading
from typing import Any, Iterable

from chalicelib.domain.model import Deployment, Head, State, marks, order_fields
from chalicelib.errors import Conflict, ConcurrentUpdate

ANY = object()
SNAPSHOT = "ecsdep#"  # as DynamoLedger.SNAPSHOT


class MemoryLedger:
    def __init__(self) -> None:
        self._deps: dict[str, dict] = {}
        self._pointers: dict[str, tuple[str, list[str]]] = {}
        self._snapshots: dict[str, dict] = {}
        self._heads: dict[str, Head] = {}
        self._jobs: dict[str, dict] = {}
        self._mutex = threading.RLock()

    def _head(self, service: str) -> Head:
        return self._heads.setdefault(service, Head(service=service))

    def _check_lock(self, dep: Deployment) -> None:
        holder = self._head(dep.service).lock
        if (dep.busy or dep.releases_lock) and holder not in (None, dep.id):
            raise Conflict(f"{dep.service} is busy with deployment {holder}; "
                           "try again when it has finished", code="service_locked")

    @staticmethod
    def _mark(dep: Deployment, head: Head) -> bool:
        info, notify, rollback = marks(dep)
        if info is not None:
            head.info[dep.id] = info
        else:
            head.info.pop(dep.id, None)
        (head.notify.add if notify else head.notify.discard)(dep.id)
        if rollback:
            head.rollbacks.add(dep.id)
        return rollback

    def _apply_head(self, dep: Deployment, head: Head) -> bool:
        changed = self._mark(dep, head)
        if dep.busy:
            head.lock, changed = dep.id, True
        if dep.finishes:
            if dep.state is State.SUCCEEDED:
                head.deployed = {"id": dep.id, "commit": dep.commit}
            head.open.discard(dep.id)
            if dep.releases_lock and head.lock == dep.id:
                head.lock = None
            changed = True
        return changed

    def create(self, dep: Deployment, key: str, *, expect_head: Any = ANY,
               also: Iterable[Deployment] = ()) -> tuple[Deployment, bool]:
        with self._mutex:
            if key in self._pointers:
                return self._load(self._pointers[key][0]), False
            head = self._head(dep.service)
            others = list(also)
            if expect_head is not ANY and head.version != expect_head:
                raise ConcurrentUpdate(f"the head of {dep.service} changed meanwhile")
            for other in others:
                stored = self._deps.get(other.id)
                if stored is None or stored["lock_version"] != other.lock_version:
                    raise ConcurrentUpdate(f"deployment {other.id} changed meanwhile")
            self._check_lock(dep)
            dep.lock_version = 1
            self._pointers[key] = (dep.id, sorted(dep.tags))
            self._deps[dep.id] = copy.deepcopy(dep.to_item())
            self._mark(dep, head)
            if not dep.state.terminal:
                head.open.add(dep.id)
                if dep.kind != "rollback":
                    head.newest = order_fields(dep)
            if dep.busy:
                head.lock = dep.id
            for other in others:
                other.lock_version += 1
                self._deps[other.id] = copy.deepcopy(other.to_item())
                self._mark(other, head)
                if other.finishes:
                    head.open.discard(other.id)
                other.releases_lock = other.finishes = False
            head.version += 1
            return dep, True

    def _load(self, dep_id: str) -> Deployment | None:
        item = self._deps.get(dep_id)
        return Deployment.from_item(copy.deepcopy(item)) if item else None

    def get(self, dep_id: str) -> Deployment | None:
        with self._mutex:
            return self._load(dep_id)

    def save(self, dep: Deployment, pointers: tuple[str, ...] = (), *,
             prune: str | None = None) -> None:
        with self._mutex:
            stored = self._deps.get(dep.id)
            if stored is None or stored["lock_version"] != dep.lock_version:
                raise ConcurrentUpdate(f"deployment {dep.id} changed meanwhile")
            self._check_lock(dep)
            dep.lock_version += 1
            self._deps[dep.id] = copy.deepcopy(dep.to_item())
            for pointer in pointers:
                self._pointers[pointer] = (dep.id, sorted(dep.tags))
                if pointer.startswith(SNAPSHOT):
                    self._snapshots[pointer] = copy.deepcopy(dep.to_item())
            head = self._head(dep.service)
            if self._apply_head(dep, head) or prune:
                head.version += 1
            if prune:
                head.prune.add(prune)
            dep.releases_lock = dep.finishes = False

    def release_lock(self, service: str, dep_id: str) -> None:
        with self._mutex:
            head = self._head(service)
            if head.lock == dep_id:
                head.lock = None
                head.version += 1

    def find(self, pointer: str) -> Deployment | None:
        with self._mutex:
            seen = self._pointers.get(pointer)
            return self._load(seen[0]) if seen else None

    def snapshot(self, pointer: str) -> Deployment | None:
        with self._mutex:
            copy_ = self._snapshots.get(pointer)
            if copy_ is not None:
                return Deployment.from_item(copy.deepcopy(copy_))
            seen = self._pointers.get(pointer)
            return self._load(seen[0]) if seen else None

    def seen(self, pointer: str) -> tuple[str, list[str]] | None:
        with self._mutex:
            seen = self._pointers.get(pointer)
            return (seen[0], list(seen[1])) if seen else None

    def seen_and_head(self, pointer: str, service: str):
        with self._mutex:
            return self.seen(pointer), self.head(service)

    def head(self, service: str) -> Head:
        with self._mutex:
            return copy.deepcopy(self._head(service))

    def heads(self, services: Iterable[str]) -> dict[str, Head]:
        return {s: self.head(s) for s in services}

    def get_many(self, dep_ids: Iterable[str]) -> list[Deployment]:
        return [d for d in (self.get(i) for i in sorted(set(dep_ids))) if d is not None]

    def lock_holder(self, service: str) -> str | None:
        return self.head(service).lock

    def unfinished(self, services: Iterable[str]) -> list[Deployment]:
        ids = [i for h in self.heads(services).values() for i in h.open]
        return [d for d in self.get_many(ids) if not d.state.terminal]

    def rollback_done(self, service: str, dep_id: str) -> None:
        with self._mutex:
            self._head(service).rollbacks.discard(dep_id)

    def prune_done(self, service: str, family: str) -> None:
        with self._mutex:
            self._head(service).prune.discard(family)

    def list(self, service: str | None = None, state: str | None = None,
             limit: int = 50) -> list[Deployment]:
        with self._mutex:
            deps = [self._load(i) for i in self._deps]
        deps = [d for d in deps if (not service or d.service == service)
                and (not state or d.state.value == state)]
        deps.sort(key=lambda d: (d.created_at, d.id), reverse=True)
        return deps[:limit]

    def get_job(self, name: str) -> dict | None:
        return copy.deepcopy(self._jobs.get(name))

    def put_job(self, name: str, job: dict | None) -> None:
        if job is None:
            self._jobs.pop(name, None)
        else:
            self._jobs[name] = copy.deepcopy(job)
