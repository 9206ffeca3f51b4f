"""A single timer thread: run small callables at a given time, in order. Stops cleanly (joined).

The ECS emulation uses it so that nothing it does later (stopping a task, finishing a rollout,
emitting an event) runs on one of moto's request threads, and so shutdown is one join, not a
scatter of ``threading.Timer`` objects.
"""
from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from typing import Callable

log = logging.getLogger("devstack.scheduler")


class Scheduler:
    def __init__(self, name: str = "devstack-scheduler"):
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._cv = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> "Scheduler":
        self._thread.start()
        return self

    def call_later(self, delay: float, fn: Callable[[], None]) -> None:
        with self._cv:
            heapq.heappush(self._heap, (time.monotonic() + max(delay, 0), next(self._order), fn))
            self._cv.notify()

    def stop(self) -> None:
        with self._cv:
            self._stopping = True
            self._cv.notify()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._stopping and (not self._heap or self._heap[0][0] > time.monotonic()):
                    self._cv.wait(timeout=(self._heap[0][0] - time.monotonic()) if self._heap else None)
                if self._stopping:
                    return
                _, _, fn = heapq.heappop(self._heap)
            try:
                fn()
            except Exception:  # one failed step must not stop the clock for everything else
                log.exception("scheduled step failed")
