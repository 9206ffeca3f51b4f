"""HTTP plumbing: domain errors become statuses here and nowhere else; JSON and HTML responses."""
from __future__ import annotations

import json
import logging
import re
from typing import Any, Callable
from urllib.parse import parse_qs

from chalice import Response

from chalicelib.errors import BadRequest, SlipwayError, Throttled

log = logging.getLogger("slipway.http")
JSON = {"Content-Type": "application/json"}
HTML = {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store",
        "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer",
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                                   "form-action 'self'; base-uri 'none'"}


def json_response(body: Any, status: int = 200) -> Response:
    return Response(body=json.dumps(body, default=str), status_code=status, headers=JSON)


def html_response(body: str, status: int = 200) -> Response:
    return Response(body=body, status_code=status, headers=HTML)


def error_status(exc: Exception) -> tuple[int, str, str]:
    """(status, code, message) for any exception; unknown ones are 500s with no detail leaked."""
    if isinstance(exc, SlipwayError):
        return exc.status, exc.code, exc.message
    log.exception("unexpected error")
    return 500, "internal", "Slipway hit an unexpected error; it has been logged."


def json_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a route so every error is ``{"error", "message"}`` with the right status."""
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # mapped in exactly one place
            status, code, message = error_status(exc)
            details = getattr(exc, "details", None) if isinstance(exc, SlipwayError) else None
            return json_response({"error": code, "message": message, **(details or {})}, status)

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


FORM_MAX_BYTES = 16_384  # an approval form is a token, a decision and a comment of ≤ 500 characters


def form(raw_body: bytes | None, max_bytes: int = FORM_MAX_BYTES) -> dict[str, str]:
    """Decode an ``application/x-www-form-urlencoded`` body (first value of each field); anything
    larger than a form of ours could be is refused before it is parsed (256 MB Lambdas)."""
    raw = raw_body or b""
    if len(raw) > max_bytes:
        raise BadRequest("the form is too large", code="too_large")
    try:
        fields = parse_qs(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=20)
    except UnicodeDecodeError as exc:
        raise BadRequest("the form is not UTF-8") from exc
    except ValueError as exc:  # more fields than any form of ours has
        raise BadRequest("the form has too many fields", code="too_large") from exc
    return {k: v[0] for k, v in fields.items()}


def json_body(raw_body: bytes | None) -> dict:
    if len(raw_body or b"") > FORM_MAX_BYTES:
        raise BadRequest("the body is too large", code="too_large")
    try:
        data = json.loads(raw_body or b"{}")
    except (ValueError, RecursionError) as exc:
        raise BadRequest("the body is not valid JSON", code="bad_json") from exc
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object", code="bad_json")
    return data


def int_param(params: dict | None, name: str, default: int, low: int, high: int) -> int:
    raw = (params or {}).get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise BadRequest(f"'{name}' must be a whole number", code="bad_parameter") from exc
    if not low <= value <= high:
        raise BadRequest(f"'{name}' must be between {low} and {high}", code="bad_parameter")
    return value


#: On every answer (L5): no content sniffing, HTTPS only for a year (API Gateway serves HTTPS only).
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff",
                    "Strict-Transport-Security": "max-age=31536000; includeSubDomains"}


def secured(response: Response) -> Response:
    """The response with the security headers set (headers copied, never shared)."""
    response.headers = {**(response.headers or {}), **SECURITY_HEADERS}
    return response


def contract_error(response: Response, path: str) -> Response:
    """Chalice answers a wrong method or content type itself, as ``{"Code", "Message"}``: give
    those the contract's shape (``{"error", "message"}``; an HTML page under /approvals). Every
    503 (AWS throttled us; nothing changed) gets ``Retry-After``."""
    body = response.body
    if response.status_code == Throttled.status:  # every 503 says when to come back
        response.headers = {**(response.headers or {}), "Retry-After": str(Throttled.retry_after)}
    if response.status_code < 400 or not isinstance(body, dict) or "Code" not in body:
        return response
    code = re.sub(r"(?<!^)(?=[A-Z])", "_", str(body["Code"])).lower().removesuffix("_error")
    message = str(body.get("Message") or "this request is not supported here")
    if path.startswith("/approvals/"):
        from chalicelib.entrypoints.pages import error_page

        return html_response(error_page(response.status_code, message), response.status_code)
    return json_response({"error": code, "message": message}, response.status_code)
