"""Event entry points: one place that turns a Lambda event into a service call and decides what an
error means. Bad input is logged, counted and dropped (a retry would fail the same way); unknown
errors propagate so that Lambda/EventBridge/SQS retry them.
"""
from __future__ import annotations

import logging
from typing import Any, Callable

from chalicelib.adapters.errors import AwsError
from chalicelib.entrypoints import bootstrap
from chalicelib.errors import BadRequest, ConcurrentUpdate, Conflict, NotFound

log = logging.getLogger("slipway.events")


def _raw(event: Any) -> Any:
    return event.to_dict() if hasattr(event, "to_dict") else event


def handle_event(kind: str, fn: Callable[[Any, Any], Any], event: Any) -> dict:
    deps = bootstrap.deps()
    try:
        result = fn(deps, _raw(event))
    except ConcurrentUpdate:
        raise  # lost a race eight times: let EventBridge/SQS deliver it again, do not drop it
    except (BadRequest, NotFound, Conflict) as exc:
        log.warning("dropped %s event: %s", kind, exc.message,
                    extra={"event_kind": kind, "error": exc.code})
        _count("EventsRejected", kind)
        return {"ok": False, "error": exc.code, "message": exc.message}
    except AwsError as exc:
        if exc.retryable:
            raise  # EventBridge / SQS try again later
        log.error("%s event failed for good: %s", kind, exc.message,
                  extra={"event_kind": kind, "error": exc.code})
        _count("EventsFailed", kind)
        return {"ok": False, "error": "aws_refused", "message": exc.message}
    log.info("%s event handled: %s", kind, result, extra={"event_kind": kind})
    return {"ok": True, "result": result}


def _count(name: str, kind: str) -> None:
    """A CloudWatch metric via powertools' embedded metric format (a log line, no API call)."""
    try:
        from aws_lambda_powertools.metrics import MetricUnit, single_metric

        with single_metric(name=name, unit=MetricUnit.Count, value=1,
                           namespace="Slipway") as metric:
            metric.add_dimension(name="event", value=kind)
    except Exception:  # metrics must never break event handling
        log.debug("metric %s not emitted", name, exc_info=True)
