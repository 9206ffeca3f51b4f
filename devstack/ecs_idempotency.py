"""ECS EMULATION, continued: RunTask's ``clientToken`` and ListTasks' default filter, as AWS does them.

moto 5.2 ignores ``clientToken`` (every retry starts another task) and lists every task, stopped or
not, when ListTasks has no ``desiredStatus``. Real ECS (API reference, "Ensuring idempotency"):

* RunTask with a ``clientToken`` already used *in the same cluster* within 24 hours and the same
  parameters returns the original result (the same tasks, nothing new started); the same token
  with different parameters fails with ``ConflictException``. Tokens are case-sensitive, up to 64
  ASCII characters 33-126.
* ListTasks filters on ``desiredStatus`` RUNNING unless told otherwise; STOPPED tasks are listed
  only with ``desiredStatus=STOPPED``. Code that looks for a task a previous attempt started must
  ask for both, as it must in AWS.

Installed by ``EcsEmulator.install`` on moto's response class and backend (this process only).
"""
from __future__ import annotations

import json
import threading
import time
from typing import Any, Callable

TOKEN_TTL = 24 * 3600.0
TOKEN_CHARS = range(33, 127)


class RunTaskTokens:
    """RunTask results by (cluster, clientToken), for 24 hours (real time: this is AWS's clock)."""

    def __init__(self, backend: Any, lock: threading.RLock, clock: Callable[[], float] = time.time):
        self._backend = backend
        self._lock = lock  # the emulator's: a retry waits for the first call to finish
        self._clock = clock
        self._seen: dict[tuple[str, str], tuple[float, str, list[str]]] = {}
        self._undo: list[Callable[[], None]] = []

    def install(self) -> "RunTaskTokens":
        from moto.ecs.responses import EC2ContainerServiceResponse

        original = EC2ContainerServiceResponse.run_task
        tokens = self

        def run_task(response: Any) -> Any:
            return tokens.run_task(response, lambda: original(response))

        EC2ContainerServiceResponse.run_task = run_task
        self._undo.append(lambda: setattr(EC2ContainerServiceResponse, "run_task", original))
        list_tasks = self._backend.list_tasks

        def listed(cluster_str=None, container_instance=None, family=None, started_by=None,
                   service_name=None, desiredStatus=None):  # noqa: N803 (moto's name)
            return list_tasks(cluster_str, container_instance, family, started_by, service_name,
                              desiredStatus or "RUNNING")

        self._backend.list_tasks = listed
        self._undo.append(lambda: self._backend.__dict__.pop("list_tasks", None))
        return self

    def uninstall(self) -> None:
        while self._undo:
            self._undo.pop()()

    def run_task(self, response: Any, original: Callable[[], Any]) -> Any:
        from moto.core.responses import ActionResult
        from moto.ecs.exceptions import EcsClientException

        token = response._get_param("clientToken")
        if token is None:
            return original()
        if not (isinstance(token, str) and 1 <= len(token) <= 64
                and all(ord(c) in TOKEN_CHARS for c in token)):
            raise EcsClientException("clientToken must be 1-64 ASCII characters 33-126")
        cluster = self._cluster_name(response._get_param("cluster", "default"))
        params = _canonical(response)
        with self._lock:
            now = self._clock()
            self._seen = {k: v for k, v in self._seen.items() if now - v[0] < TOKEN_TTL}
            seen = self._seen.get((cluster, token))
            if seen is not None:
                if seen[1] != params:
                    raise _conflict()
                tasks = [self._backend.tasks.get(cluster, {}).get(arn) for arn in seen[2]]
                return ActionResult({"tasks": [t for t in tasks if t is not None], "failures": []})
            before = set(self._backend.tasks.get(cluster, {}))
            result = original()
            started = [arn for arn in self._backend.tasks.get(cluster, {}) if arn not in before]
            self._seen[(cluster, token)] = (now, params, started)
            return result

    def _cluster_name(self, cluster: str) -> str:
        return cluster.rsplit("/", 1)[-1] if cluster.startswith("arn:") else cluster


def _canonical(response: Any) -> str:
    """The request's parameters but the token, in one comparable form."""
    try:
        body = json.loads(response.body or "{}")
    except ValueError:
        body = {}
    body.pop("clientToken", None)
    return json.dumps(body, sort_keys=True, default=str)


def _conflict() -> Exception:
    from moto.core.exceptions import JsonRESTError

    return JsonRESTError("ConflictException", "The clientToken was already used with different "
                         "parameters for a RunTask request in this cluster.")
