"""Count the AWS API calls Slipway makes, with botocore's event hooks on the clients it builds.

Every Slipway client comes from ``chalicelib.adapters.aws.client(name)`` (lru-cached). ``install``
wraps that function so each client gets a ``provide-client-params`` hook the moment it is built
(also after ``bootstrap.reset()``, which rebuilds them): one record per API call as Slipway asked
for it, before retries. Clients a benchmark builds itself are not counted.

Stdlib-only at import time: the cold-start child imports this module.
"""
from __future__ import annotations

import json
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

#: The services DESIGN.md's call budget is about (the ECS control plane and what it needs).
CONTROL_PLANE = ("ecs", "ecr", "secretsmanager")


@dataclass
class Call:
    service: str  # the name Slipway passed to aws.client ("ecs", "dynamodb", …)
    operation: str  # the API name ("DescribeServices")
    params: str  # JSON of the parameters, so a bare process can replay the call
    phase: str


@dataclass
class Recorder:
    calls: list[Call] = field(default_factory=list)
    phase: str = "run"
    paused: bool = False
    build_s: float = 0.0  # time spent inside aws.client building clients
    _hooked: set = field(default_factory=set)

    def hook(self, name: str, client) -> None:
        if id(client) in self._hooked:
            return
        self._hooked.add(id(client))

        def record(params, model, **_):  # must return None: a value would replace the params
            if not self.paused:
                self.calls.append(Call(name, model.name, json.dumps(params, default=str),
                                       self.phase))

        client.meta.events.register("provide-client-params.*.*", record)

    @contextmanager
    def during(self, phase: str):
        before, self.phase = self.phase, phase
        try:
            yield
        finally:
            self.phase = before

    @contextmanager
    def off(self):
        """The benchmark's own look-ups through Slipway's clients (not part of the deployment)."""
        before, self.paused = self.paused, True
        try:
            yield
        finally:
            self.paused = before

    def count(self, phase: str | None = None, services=None) -> int:
        return len(self.select(phase, services))

    def select(self, phase: str | None = None, services=None) -> list[Call]:
        return [c for c in self.calls if (phase is None or c.phase == phase)
                and (services is None or c.service in services)]


def install() -> tuple[Recorder, callable]:
    """Wrap ``aws.client``; return the recorder and a function that puts the original back."""
    from chalicelib.adapters import aws

    recorder = Recorder()
    original = aws.client

    def client(name: str):
        started = time.perf_counter()
        built = original(name)
        recorder.build_s += time.perf_counter() - started
        recorder.hook(name, built)
        return built

    client.cache_clear = original.cache_clear  # aws.reset() calls client.cache_clear()
    client.cache_info = original.cache_info
    aws.client = client

    def uninstall() -> None:
        aws.client = original

    return recorder, uninstall


def tally(calls: list[Call]) -> str:
    """``DescribeServices×2, RunTask`` in first-seen order."""
    counts: dict[str, int] = {}
    for c in calls:
        counts[c.operation] = counts.get(c.operation, 0) + 1
    return ", ".join(f"{op}×{n}" if n > 1 else op for op, n in counts.items()) or "none"
