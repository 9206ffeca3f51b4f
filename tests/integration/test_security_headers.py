"""L5: every answer of the API carries nosniff and HSTS, whatever route, status or content type."""
from __future__ import annotations

from tests.integration.api_kit import FORM, client

__all__ = ["client"]  # a fixture, imported for pytest


CASES = [
    ("GET", "/health", None, {}),
    ("GET", "/deployments", None, {}),
    ("GET", "/deployments?limit=0", None, {}),  # 400
    ("GET", "/deployments/d-20200101T000000-00000000", None, {}),  # 404 JSON
    ("GET", "/deployments/d-20200101T000000-00000000", None, {"Accept": "text/html"}),
    ("GET", "/deployments/d-20200101T000000-00000000/page?view=x.y", None, {}),  # 401 HTML
    ("GET", "/services", None, {}),
    ("PUT", "/services", None, {}),  # Chalice's own 405
    ("GET", "/approvals/d-20200101T000000-00000000?token=x.y", None, {}),
    ("POST", "/approvals/d-20200101T000000-00000000", "token=x.y", FORM),
    ("POST", "/slack/interactions", "payload=%7B%7D", FORM),  # unsigned: 401
    ("POST", "/services/better-chatbot/rollback", "{}", {"Content-Type": "application/json"}),
]


def test_every_answer_says_nosniff_and_https_only(stack, client):
    """Health, JSON and HTML errors, the pages, Chalice's own 405, Slack's 401: all of them."""
    for method, path, body, headers in CASES:
        res = client.http.request(method, path, headers=headers, body=body or b"")
        seen = (method, path, res.status_code, res.headers)
        assert res.headers.get("X-Content-Type-Options") == "nosniff", seen
        assert res.headers.get("Strict-Transport-Security", "").startswith("max-age=3153"), seen
