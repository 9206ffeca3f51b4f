"""FAULT INJECTION and THE APP'S CLOCK: make the app's own AWS calls fail as AWS fails, move its time.

Faults (``POST /_devstack/faults``) apply to the clients the app builds through
``chalicelib.adapters.aws.client`` only: the devstack's provisioning, its queue poller and the ECS
emulator use clients (or moto objects) of their own and are never affected. Each client gets three
botocore hooks when it is built (also after ``bootstrap.reset()``):

* ``before-parameter-build``: keeps the call's parameters, so a fault can match on them (``match``);
* ``before-call``, for ``when: "before"``: answers with the error at once, so the call never
  reaches moto;
* ``after-call``, for ``when: "after"``: the call took effect in moto, then its answer is replaced
  by the error (the answer was lost on the way back).

The error is what botocore raises *after* its own retries (a fault is consumed once per API call as
the app sees it, whatever ``retries`` are configured): ``throttle`` is the service's throttling
error (DynamoDB ``ProvisionedThroughputExceededException``, a ``TransactionCanceledException`` with
``ThrottlingError`` reasons for ``TransactWriteItems``, ``ThrottlingException`` for ECS/ECR,
``RequestThrottled`` for SQS); ``internal`` is the service's HTTP 500 (``InternalServerError``,
``ServerException``, ``InternalFailure``); any other error code (``AccessDeniedException``,
``InvalidParameterException`` …) is answered as that code with HTTP 400.

``crash`` is a dedicated kind: the *process* dies at that point (``SimulatedCrash``, a
BaseException, so no ``except Exception`` in the app can handle it). From then on every AWS call
of the same invocation dies too (a dead process reaches nothing), until the devstack's invocation
boundary (HTTP gateway, event bus, queue poller, scheduler: ``invocation()``) reports the
invocation as crashed, as Lambda does: asynchronous events are retried, the work message is
redelivered, an HTTP caller gets API Gateway's 502. With ``when: "after"`` the call took effect
first: "the worker crashed between the ECS call and its ledger write".

The clock (``POST /_devstack/clock``) is ``Deps.clock`` plus an offset: every Slipway rule that
reads it (expiry, wait timers, stale thresholds and claims, freeze windows, bake time) moves;
request signatures (Slack's, SigV4) keep real time.
"""
from __future__ import annotations

import json
import re
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterator

WHEN = ("before", "after")
MAX_ADVANCE = 10 * 366 * 86_400  # ten years: enough for any expiry, far from datetime's limits
_CODE = re.compile(r"[A-Za-z][A-Za-z0-9.]{0,99}")
_THROTTLE = {"dynamodb": "ProvisionedThroughputExceededException", "sqs": "RequestThrottled"}
_INTERNAL = {"dynamodb": "InternalServerError", "ecs": "ServerException", "ecr": "ServerException",
             "secretsmanager": "InternalServiceError"}
_STATUS = {"InternalServerError": 500, "ServerException": 500, "InternalFailure": 500,
           "InternalServiceError": 500, "ServiceUnavailable": 503}
_MESSAGES = {
    "ProvisionedThroughputExceededException": (
        "The level of configured provisioned throughput for the table was exceeded. Consider "
        "increasing your provisioning level with the UpdateTable API."),
    "ThrottlingException": "Rate exceeded",
    "RequestThrottled": "Request is throttled.",
    "RequestLimitExceeded": "Throughput exceeds the current throughput limit for your account.",
}


class FaultSpecError(ValueError):
    """A ``POST /_devstack/faults`` or ``/_devstack/clock`` body that cannot be used (a 400)."""


class SimulatedCrash(BaseException):
    """The process running the app died here (injected); nothing in the app may catch it."""


@dataclass
class Fault:
    service: str
    operation: str  # API name ("RunTask") or "*"
    error: str  # "throttle", "internal", "crash" or an AWS error code
    when: str
    times: int | None  # None: until DELETE /_devstack/faults
    match: dict = field(default_factory=dict)
    fired: int = 0

    def applies(self, service: str, operation: str, params: dict) -> bool:
        return (self.times is None or self.fired < self.times) and self.service == service \
            and self.operation in ("*", operation) \
            and all(params.get(k) == v for k, v in self.match.items())

    def as_dict(self) -> dict:
        return {"service": self.service, "operation": self.operation, "error": self.error,
                "when": self.when, "times": self.times, "match": self.match, "fired": self.fired}


def parse_fault(data: Any) -> Fault:
    """A Fault from a request body; raises FaultSpecError saying what is wrong."""
    if not isinstance(data, dict):
        raise FaultSpecError("the body must be a JSON object")
    unknown = set(data) - {"service", "operation", "error", "when", "times", "match"}
    if unknown:
        raise FaultSpecError(f"unknown field(s): {', '.join(sorted(unknown))}")
    service, operation = data.get("service"), data.get("operation", "*")
    error, when, times = data.get("error"), data.get("when", "before"), data.get("times", 1)
    match = data.get("match", {})
    if not (isinstance(service, str) and re.fullmatch(r"[a-z0-9-]{2,40}", service)):
        raise FaultSpecError("'service' must be a boto3 client name such as ecs, ecr, dynamodb, sqs")
    if not (isinstance(operation, str) and (operation == "*" or _CODE.fullmatch(operation))):
        raise FaultSpecError("'operation' must be an API name such as RunTask, or '*'")
    if not (isinstance(error, str) and (error in ("throttle", "internal", "crash")
                                        or _CODE.fullmatch(error))):
        raise FaultSpecError("'error' must be throttle, internal, crash or an AWS error code")
    if when not in WHEN:
        raise FaultSpecError("'when' must be 'before' (the call never reaches AWS) or 'after' "
                             "(it takes effect, the answer is lost)")
    if times is not None and not (isinstance(times, int) and not isinstance(times, bool)
                                  and 1 <= times <= 10_000):
        raise FaultSpecError("'times' must be 1-10000, or null for every call until DELETE")
    if not isinstance(match, dict) or len(json.dumps(match, default=str)) > 2000:
        raise FaultSpecError("'match' must be an object of request parameters to compare")
    return Fault(service, operation, error, when, times, dict(match))


def error_code(fault: Fault, service: str, operation: str) -> str:
    """The AWS error code ``fault`` stands for on this call (``crash`` is no AWS error)."""
    if fault.error == "throttle":
        return ("TransactionCanceledException" if operation == "TransactWriteItems"
                else _THROTTLE.get(service, "ThrottlingException"))
    if fault.error == "internal":
        return _INTERNAL.get(service, "InternalFailure")
    return fault.error


def error_response(fault: Fault, service: str, operation: str, params: dict) -> tuple[int, dict]:
    """(HTTP status, botocore's parsed error) for ``fault`` on this call."""
    code = error_code(fault, service, operation)
    status = _STATUS.get(code, 400)
    message = _MESSAGES.get(code, f"{code} (injected by the devstack)")
    parsed: dict[str, Any] = {}
    if code == "TransactionCanceledException":
        reasons = [{"Code": "ThrottlingError", "Message": "Throughput exceeds the current capacity "
                    "of your table or index. DynamoDB is automatically scaling your table or "
                    "index so please try again shortly."}
                   for _ in params.get("TransactItems") or [None]]
        message = ("Transaction cancelled, please refer cancellation reasons for specific reasons "
                   f"[{', '.join('ThrottlingError' for _ in reasons)}]")
        parsed["CancellationReasons"] = reasons
    parsed.update({"Error": {"Code": code, "Message": message}, "message": message,
                   "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": {},
                                        "RetryAttempts": 9, "RequestId": "devstack-fault"}})
    return status, parsed


class Faults:
    """The faults in force (thread-safe) and the hooks that apply them to the app's clients."""

    def __init__(self, clock: Callable[[], datetime] | None = None) -> None:
        self._clock = clock or (lambda: datetime.now(timezone.utc))  # dates what fired
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._log: list[dict] = []
        self._local = threading.local()  # .dead: this thread's invocation has crashed
        self._hooked: set[int] = set()

    # -- control ------------------------------------------------------------------------------
    def add(self, data: Any) -> dict:
        fault = parse_fault(data)
        with self._lock:
            self._faults.append(fault)
        return fault.as_dict()

    def clear(self) -> dict:
        with self._lock:
            removed, self._faults = len(self._faults), []
        return {"removed": removed}

    def status(self) -> dict:
        with self._lock:
            return {"faults": [f.as_dict() for f in self._faults], "fired": list(self._log[-200:]),
                    "fired_total": len(self._log)}

    # -- invocations --------------------------------------------------------------------------
    @contextmanager
    def invocation(self) -> Iterator[None]:
        """One Lambda invocation on this thread: a crash inside it ends with it."""
        self._local.dead = False
        try:
            yield
        finally:
            self._local.dead = False

    def _take(self, service: str, operation: str, params: dict, when: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.when == when and fault.applies(service, operation, params):
                    fault.fired += 1
                    self._log.append({"service": service, "operation": operation,
                                      "error": fault.error, "when": when,
                                      "code": error_code(fault, service, operation),
                                      "at": self._clock().isoformat()})
                    return fault
        return None

    # -- hooks --------------------------------------------------------------------------------
    def hook(self, service: str, client: Any) -> None:
        if id(client) in self._hooked:
            return
        self._hooked.add(id(client))
        events = client.meta.events

        def keep_params(params, context, **_):  # returns None: the params stay as they are
            context["devstack_params"] = params

        def before(model, context, **_):
            if getattr(self._local, "dead", False):
                raise SimulatedCrash(f"the process already died before {model.name}")
            params = context.get("devstack_params") or {}
            fault = self._take(service, model.name, params, "before")
            if fault is None:
                return None
            return self._answer(fault, service, model.name, params)

        def after(http_response, parsed, model, context, **_):
            if http_response.status_code >= 300:
                return
            params = context.get("devstack_params") or {}
            fault = self._take(service, model.name, params, "after")
            if fault is None:
                return
            self._crash_if(fault)
            status, error = error_response(fault, service, model.name, params)
            http_response.status_code = status
            parsed.clear()
            parsed.update(error)

        events.register("before-parameter-build.*.*", keep_params)
        events.register("before-call.*.*", before)
        events.register("after-call.*.*", after)

    def _crash_if(self, fault: Fault) -> None:
        if fault.error == "crash":
            self._local.dead = True
            raise SimulatedCrash(f"injected crash {fault.when} {fault.service} {fault.operation}")

    def _answer(self, fault: Fault, service: str, operation: str, params: dict) -> tuple:
        self._crash_if(fault)
        from botocore.awsrequest import AWSResponse

        status, parsed = error_response(fault, service, operation, params)
        return AWSResponse("http://devstack-fault", status, {}, None), parsed

    def install(self, aws_module: Any) -> Callable[[], None]:
        """Wrap ``aws_module.client`` (chalicelib.adapters.aws) so every client it builds is hooked;
        return a function that puts the original back."""
        original = aws_module.client

        def client(name: str):
            built = original(name)
            self.hook(name, built)
            return built

        client.cache_clear = original.cache_clear  # aws.reset() calls client.cache_clear()
        client.cache_info = original.cache_info
        aws_module.client = client

        def uninstall() -> None:
            aws_module.client = original

        return uninstall


class AppClock:
    """Real UTC time plus an offset that only moves forward; ``Deps.clock`` in the devstack."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._offset = 0.0

    def __call__(self) -> datetime:
        return datetime.now(timezone.utc) + timedelta(seconds=self.offset)

    @property
    def offset(self) -> float:
        with self._lock:
            return self._offset

    def advance(self, data: Any) -> dict:
        seconds = data.get("advance_seconds") if isinstance(data, dict) else None
        if not isinstance(data, dict) or set(data) != {"advance_seconds"} or isinstance(
                seconds, bool) or not isinstance(seconds, (int, float)) \
                or not 0 < seconds <= MAX_ADVANCE:
            raise FaultSpecError('send {"advance_seconds": N} with 0 < N <= 316224000 '
                                 "(the clock only moves forward)")
        with self._lock:
            self._offset += float(seconds)
        return self.status()

    def status(self) -> dict:
        return {"offset_seconds": self.offset, "now": self().isoformat(timespec="milliseconds")}
