"""The event plane: EventBridge rules, the SQS trigger and the schedule, stood in for locally.

* ``EventBus``: one FIFO queue and ONE delivery thread. Each event goes to every app handler whose
  ``@app.on_cw_event`` pattern matches, decided by moto's own EventBridge matcher (the same rules
  AWS applies), and a handler that raises is retried twice, as Lambda's async invoke does; if it
  still fails, the outcome says so and the traceback goes to the log, not the terminal.
  Handlers never run on a moto request thread.
* ``envelope``: an event as EventBridge delivers it, the fields it always sets filled in.
* ``QueueWorker``: drains the SQS work queue into the ``@app.on_sqs_message`` handler, one record at
  a time as the Lambda trigger delivers it; deletes on success, leaves it for redelivery on error.
* ``Reconciler``: calls the ``@app.schedule`` handler every ``interval`` seconds (5 minutes in AWS),
  and keeps what it recovered (a lost ECS event it made up for) for the terminal to show.
* ``push_image``: what ``docker push`` + ECR do: store one manifest under every tag, emit one
  "ECR Image Action" per tag.
"""
from __future__ import annotations

import hashlib
import json
import logging
import queue
import threading
import time
import uuid
from contextlib import nullcontext
from datetime import datetime, timezone
from typing import Any, Callable

from chalice.app import CloudWatchEventConfig, ScheduledEventConfig, SQSEventConfig
from chalice.local import LambdaContext
from moto.events.models import EventPattern

from devstack.faults import SimulatedCrash

log = logging.getLogger("devstack.events")
RETRIES = 2  # Lambda retries a failed asynchronous invocation twice
Invocation = Callable[[], Any]  # a context manager per Lambda invocation (devstack.faults)


def _context(name: str, seconds: int = 60) -> LambdaContext:
    return LambdaContext(function_name=name, memory_size=256, max_runtime_ms=seconds * 1000)


def _time() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_iso(clock: Callable[[], datetime] | None = None) -> str:
    """Now (on ``clock``, the app's), in UTC with milliseconds (the timeline's clock)."""
    return (clock() if clock else datetime.now(timezone.utc)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class BadEvent(ValueError):
    """Not something EventBridge would deliver (answered with 400)."""


_STRINGS = ("version", "id", "account", "time", "region")


def envelope(event: Any, account: str, region: str) -> dict:
    """``event`` as EventBridge delivers it: ``version``, ``id``, ``account``, ``time``, ``region``
    and ``resources`` filled in where missing (PutEvents callers send only source, detail-type and
    detail; EventBridge always sets the rest). Raises BadEvent for what PutEvents would refuse."""
    if not isinstance(event, dict):
        raise BadEvent("an event must be a JSON object")
    for key in ("source", "detail-type"):
        if not isinstance(event.get(key), str) or not event[key]:
            raise BadEvent(f"an event needs {key!r} (a non-empty string)")
    if not isinstance(event.get("detail"), dict):
        raise BadEvent("an event needs 'detail', a JSON object (it may be empty: {})")
    for key in _STRINGS:
        if key in event and not isinstance(event[key], str):
            raise BadEvent(f"{key!r} must be a string")
    resources = event.get("resources", [])
    if not isinstance(resources, list) or not all(isinstance(r, str) for r in resources):
        raise BadEvent("'resources' must be a list of ARNs (strings)")
    filled = {"version": "0", "id": str(uuid.uuid4()), "account": account, "time": _time(),
              "region": region, "resources": []}
    return {**filled, **event}


def handlers(app_module: Any, kind: type) -> list[tuple[Any, Callable]]:
    """``(event source config, handler function)`` pairs of one kind, from the Chalice app."""
    return [(cfg, getattr(app_module, cfg.name)) for cfg in app_module.app.event_sources
            if isinstance(cfg, kind)]


class _Batch:
    """Results of events published together, and a flag set once the last one is delivered."""

    def __init__(self) -> None:
        self.results: dict[str, list] = {}
        self.done = threading.Event()


class EventBus:
    """EventBridge for the app's ``on_cw_event`` handlers: match, queue, deliver in order."""

    def __init__(self, app_module: Any, invocation: Invocation = nullcontext):
        self._invocation = invocation
        self._rules = [(cfg.name, EventPattern.load(json.dumps(cfg.event_pattern)), fn)
                       for cfg, fn in handlers(app_module, CloudWatchEventConfig)]
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="devstack-eventbus", daemon=True)

    def start(self) -> "EventBus":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)

    def targets(self, event: dict) -> list[str]:
        """Names of the handlers whose rule matches ``event``."""
        return [name for name, pattern, _ in self._rules if pattern.matches_event(event)]

    def publish(self, event: dict) -> list[str]:
        """Queue ``event`` for delivery (as PutEvents does); return the handlers it will reach."""
        names = self.targets(event)
        if names:
            self._queue.put((event, names, None, False))
        return names

    def publish_and_wait(self, events: list[dict], timeout: float = 60) -> dict[str, list]:
        """Queue ``events`` in order and wait until all are delivered; handler name → results."""
        batch = _Batch()
        routed = [(e, names) for e in events if (names := self.targets(e))]
        for i, (event, names) in enumerate(routed):
            self._queue.put((event, names, batch, i == len(routed) - 1))
        if routed:
            batch.done.wait(timeout)
        return batch.results

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            event, names, batch, last = item
            for name in names:
                outcome = self._deliver(name, event)
                if batch is not None:
                    batch.results.setdefault(name, []).append(outcome)
            if batch is not None and last:
                batch.done.set()

    def _deliver(self, name: str, event: dict) -> Any:
        fn = next(f for n, _, f in self._rules if n == name)
        for attempt in range(RETRIES + 1):
            try:
                with self._invocation():
                    return fn(event, _context(name))
            except (Exception, SimulatedCrash) as exc:  # retried, then given up (logged)
                if attempt < RETRIES:
                    log.info("%s raised %s on %s %s (attempt %d); retrying", name,
                             type(exc).__name__, event.get("detail-type"), event.get("id"),
                             attempt + 1)
                    time.sleep(0.5 * (attempt + 1))
                    continue
                # One line for a person; the traceback only where tracebacks are kept (the log file).
                log.warning("%s failed on %s %s after %d attempts: %s", name,
                            event.get("detail-type"), event.get("id"), attempt + 1,
                            _short(exc), exc_info=True)
                return {"ok": False, "error": "handler_failed", "attempts": attempt + 1,
                        "message": f"{name} raised {_short(exc)} on each of {attempt + 1} attempts"}
        raise AssertionError("unreachable")


def failed(outcome: Any) -> bool:
    """Whether a delivery outcome is a handler that raised on every attempt."""
    return isinstance(outcome, dict) and outcome.get("error") == "handler_failed"


def _short(exc: BaseException, limit: int = 300) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= limit else text[:limit - 1] + "…"


class QueueWorker:
    """The SQS event source mapping: receive, invoke with one record, delete on success."""

    def __init__(self, app_module: Any, sqs: Any, queue_url: str, queue_arn: str, region: str,
                 invocation: Invocation = nullcontext):
        self._invocation = invocation
        found = handlers(app_module, SQSEventConfig)
        if not found:
            raise RuntimeError("the app has no @app.on_sqs_message handler")
        (self._cfg, self._fn), = found
        self._sqs, self._url, self._arn, self._region = sqs, queue_url, queue_arn, region
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="devstack-worker", daemon=True)

    def start(self) -> "QueueWorker":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                got = self._sqs.receive_message(QueueUrl=self._url, MaxNumberOfMessages=1,
                                                WaitTimeSeconds=1, AttributeNames=["All"])
            except Exception as exc:  # the embedded AWS is going away, or a hiccup
                if not self._stopping.is_set():
                    log.warning("receive_message failed: %r", exc)
                    time.sleep(0.5)
                continue
            for message in got.get("Messages", []):
                self._handle(message)

    def _handle(self, message: dict) -> None:
        record = {
            "messageId": message["MessageId"], "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"], "attributes": message.get("Attributes", {}),
            "messageAttributes": {}, "md5OfBody": message.get("MD5OfBody", ""),
            "eventSource": "aws:sqs", "eventSourceARN": self._arn, "awsRegion": self._region,
        }
        try:
            with self._invocation():
                self._fn({"Records": [record]}, _context(self._cfg.name))
        except (Exception, SimulatedCrash) as exc:  # left on the queue: SQS redelivers it after the visibility timeout
            log.warning("work message %s failed, will be redelivered: %r", message["MessageId"], exc)
            self._sqs.change_message_visibility(QueueUrl=self._url, VisibilityTimeout=1,
                                                ReceiptHandle=message["ReceiptHandle"])
            return
        self._sqs.delete_message(QueueUrl=self._url, ReceiptHandle=message["ReceiptHandle"])


class Reconciler:
    """The ``@app.schedule`` rule, every ``interval`` seconds; also run on demand (``run_now``)."""

    def __init__(self, app_module: Any, account: str, region: str, interval: float = 1.0,
                 invocation: Invocation = nullcontext,
                 clock: Callable[[], datetime] | None = None):
        self._invocation, self._clock = invocation, clock
        self._targets = handlers(app_module, ScheduledEventConfig)
        self._account, self._region, self._interval = account, region, interval
        self._lock = threading.Lock()
        self._recovered: list[dict] = []
        self._recovered_lock = threading.Lock()  # readers never wait for a reconcile in progress
        self.running_since: str | None = None  # a run in progress: what it recovers dates from then
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="devstack-reconciler", daemon=True)

    def start(self) -> "Reconciler":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=30)

    def run_now(self) -> dict[str, Any]:
        out = {}
        with self._lock:  # one reconcile at a time, as one scheduled Lambda would
            self.running_since = started = now_iso(self._clock)
            try:
                for cfg, fn in self._targets:
                    event = {"version": "0", "id": str(uuid.uuid4()),
                             "detail-type": "Scheduled Event", "source": "aws.events",
                             "account": self._account, "time": _time(), "region": self._region,
                             "detail": {}, "resources": [f"arn:aws:events:{self._region}:"
                                                         f"{self._account}:rule/"
                                                         f"slipway-devstack-{cfg.name}"]}
                    try:
                        with self._invocation():
                            out[cfg.name] = fn(event, _context(cfg.name, 300))
                    except SimulatedCrash as exc:  # the next scheduled run starts afresh
                        log.warning("%s crashed: %s", cfg.name, exc)
                        out[cfg.name] = {"ok": False, "error": "crashed", "message": str(exc)}
                    self._note(out[cfg.name], started)
            finally:
                self.running_since = None
        return out

    def recovered(self, start: int = 0) -> list[dict]:
        """What the reconciler made up for, oldest first: ``{"at", "deployment", "what", "text"}``
        (``what`` is e.g. "recovered lost task event: d-… DEPLOYING"; ``text`` a terminal line;
        ``at`` when that run began). Read ``running_since`` first: a run in progress may add more."""
        with self._recovered_lock:
            return [dict(r) for r in self._recovered[start:]]

    def _note(self, result: Any, at: str) -> None:
        """Keep each "recovered lost … event: …" outcome, dated from the run's start (the steps it
        took follow it)."""
        if not isinstance(result, dict):
            return
        for dep_id, outcome in result.items():
            if not (isinstance(outcome, str) and outcome.startswith("recovered ")):
                continue
            head, _, detail = outcome.partition(": ")
            if detail.startswith(("duplicate", "ignored")):  # the event itself came in meanwhile
                continue
            now = detail.removeprefix(dep_id).strip()
            with self._recovered_lock:
                self._recovered.append({
                    "at": at, "deployment": dep_id, "what": outcome,
                    "text": f"reconciler: {head} for {dep_id}" + (f" → {now}" if now else "")})

    def _run(self) -> None:
        while not self._stopping.wait(self._interval):
            try:
                self.run_now()
            except Exception:
                log.exception("scheduled reconcile failed")


def push_image(ecr: Any, repository: str, tags: list[str], account: str,
               region: str) -> tuple[str, list[dict]]:
    """Store one new image under every tag; return its digest and one ECR event per tag."""
    layer = hashlib.sha256(uuid.uuid4().bytes).hexdigest()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 1469,
                   "digest": f"sha256:{layer}"},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "size": 2811478, "digest": f"sha256:{hashlib.sha256(layer.encode()).hexdigest()}"}],
    })
    digest = ""
    events = []
    for tag in tags:
        image = ecr.put_image(repositoryName=repository, imageManifest=manifest, imageTag=tag)
        digest = image["image"]["imageId"]["imageDigest"]
        events.append({
            "version": "0", "id": str(uuid.uuid4()), "detail-type": "ECR Image Action",
            "source": "aws.ecr", "account": account, "time": _time(), "region": region,
            "resources": [],
            "detail": {"result": "SUCCESS", "repository-name": repository, "image-digest": digest,
                       "action-type": "PUSH", "image-tag": tag,
                       "manifest-media-type": "application/vnd.docker.distribution.manifest.v2+json",
                       "artifact-media-type": "application/vnd.docker.container.image.v1+json"},
        })
    return digest, events
