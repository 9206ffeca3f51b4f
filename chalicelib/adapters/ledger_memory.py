"""An in-memory ledger with the same contract as DynamoLedger (unit tests; contract-tested)."""
from __future__ import annotations

import copy
import threading

from chalicelib.domain.model import Deployment
from chalicelib.errors import Conflict, ConcurrentUpdate


class MemoryLedger:
    def __init__(self) -> None:
        self._deps: dict[str, dict] = {}
        self._pointers: dict[str, str] = {}
        self._locks: dict[str, str] = {}
        self._jobs: dict[str, dict] = {}
        self._mutex = threading.Lock()

    def create(self, dep: Deployment, key: str) -> tuple[Deployment, bool]:
        with self._mutex:
            if key in self._pointers:
                return self._load(self._pointers[key]), False
            holder = self._locks.get(dep.service)
            if dep.busy and holder not in (None, dep.id):
                raise Conflict(f"{dep.service} is busy with deployment {holder}; "
                               "try again when it has finished", code="service_locked")
            if dep.busy:
                self._locks[dep.service] = dep.id
            dep.lock_version = 1
            self._pointers[key] = dep.id
            self._deps[dep.id] = dep.to_item()
            return dep, True

    def _load(self, dep_id: str) -> Deployment | None:
        item = self._deps.get(dep_id)
        return Deployment.from_item(copy.deepcopy(item)) if item else None

    def get(self, dep_id: str) -> Deployment | None:
        with self._mutex:
            return self._load(dep_id)

    def save(self, dep: Deployment, pointers: tuple[str, ...] = ()) -> None:
        with self._mutex:
            stored = self._deps.get(dep.id)
            if stored is None or stored["lock_version"] != dep.lock_version:
                raise ConcurrentUpdate(f"deployment {dep.id} changed meanwhile")
            holder = self._locks.get(dep.service)
            if dep.busy and holder not in (None, dep.id):
                raise Conflict(f"{dep.service} is busy with deployment {holder}; "
                               "try again when it has finished", code="service_locked")
            dep.lock_version += 1
            self._deps[dep.id] = copy.deepcopy(dep.to_item())
            for pointer in pointers:
                self._pointers[pointer] = dep.id
            if dep.busy:
                self._locks[dep.service] = dep.id
            elif dep.state.terminal and holder == dep.id:
                del self._locks[dep.service]
            dep.releases_lock = False

    def release_lock(self, service: str, dep_id: str) -> None:
        with self._mutex:
            if self._locks.get(service) == dep_id:
                del self._locks[service]

    def find(self, pointer: str) -> Deployment | None:
        with self._mutex:
            dep_id = self._pointers.get(pointer)
            return self._load(dep_id) if dep_id else None

    def lock_holder(self, service: str) -> str | None:
        return self._locks.get(service)

    def list(self, service: str | None = None, state: str | None = None,
             limit: int = 50) -> list[Deployment]:
        with self._mutex:
            deps = [self._load(i) for i in self._deps]
        deps = [d for d in deps if (not service or d.service == service)
                and (not state or d.state.value == state)]
        deps.sort(key=lambda d: (d.created_at, d.id), reverse=True)
        return deps[:limit]

    def unfinished(self) -> list[Deployment]:
        return [d for d in self.list(limit=10**9) if not d.state.terminal]

    def get_job(self, name: str) -> dict | None:
        return copy.deepcopy(self._jobs.get(name))

    def put_job(self, name: str, job: dict | None) -> None:
        if job is None:
            self._jobs.pop(name, None)
        else:
            self._jobs[name] = copy.deepcopy(job)
