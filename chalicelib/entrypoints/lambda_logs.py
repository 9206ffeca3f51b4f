"""Every log line of an invocation carries Lambda's context: function, request id, cold start.

powertools' ``inject_lambda_context`` as Chalice middleware for every kind of event (AWS-FACTS.md).
Handlers called without a Lambda context (a test calling one directly) run as they are.
"""
from __future__ import annotations

from typing import Any, Callable


def with_lambda_context(logger: Any) -> Callable[[Any, Callable[[Any], Any]], Any]:
    from chalice import ConvertToMiddleware

    inject = ConvertToMiddleware(logger.inject_lambda_context)

    def middleware(event: Any, get_response: Callable[[Any], Any]) -> Any:
        context = getattr(event, "lambda_context", None) or getattr(event, "context", None)
        if not hasattr(context, "aws_request_id"):
            return get_response(event)
        return inject(event, get_response)

    return middleware
