"""Who may read (M1): the JSON API is IAM; a deployment's page opens with its own view link only.

API Gateway checks the IAM routes before the Lambda runs (the devstack does the same, see
tests/e2e/test_auth.py); here: which routes are declared IAM, and what the view link opens.
"""
from __future__ import annotations

import re

import pytest
from chalice import IAMAuthorizer

import app as app_module
from chalicelib.domain import links
from chalicelib.service import decisions
from tests.integration.api_kit import client, get, push
from tests.integration.test_pages import NEWER, TAGS, _link, _title

__all__ = ["client"]  # a fixture, imported for pytest


def _authorizer(path: str, method: str = "GET"):
    return app_module.app.routes[path][method].authorizer


@pytest.mark.parametrize("path", ["/deployments", "/deployments/{dep_id}", "/services",
                                  "/services/{name}"])
def test_every_read_of_the_ledger_or_the_services_is_iam(path):
    """The routes that reveal the ledger, the services or task definitions are AWS_IAM."""
    assert isinstance(_authorizer(path), IAMAuthorizer)


def test_only_health_and_the_link_pages_are_open():
    """Everything without IAM is /health, or checks a signature of its own (links, Slack)."""
    open_routes = sorted(f"{m} {p}" for p, methods in app_module.app.routes.items()
                         for m, entry in methods.items() if entry.authorizer is None)
    assert open_routes == ["GET /approvals/{dep_id}", "GET /deployments/{dep_id}/page",
                           "GET /health", "POST /approvals/{dep_id}",
                           "POST /slack/interactions"]


def test_the_view_link_opens_its_deployment_read_only(stack, client):
    """The link Slack and GitHub carry shows the page; it changes nothing."""
    dep = push(stack, client)
    url = decisions.view_url(stack.deps(), dep["id"])
    res = client.http.get(url.split("127.0.0.1:9", 1)[1])
    html = res.body.decode()
    assert res.status_code == 200 and res.headers["Content-Type"].startswith("text/html")
    assert dep["id"] in html and "<form" not in html
    assert get(client, dep["id"])["state"] == "PENDING_APPROVAL"


def test_a_view_link_opens_no_other_deployment_and_no_page_without_one(stack, client):
    """No token: 403; another deployment's token, an approval token, a forged or cut one: 401;
    an expired one: 409. None of them shows a thing of the deployment."""
    first = push(stack, client, TAGS)
    second = push(stack, client, NEWER)
    other = decisions.view_token(stack.deps(), second["id"])
    forged = links.sign(b"f" * 32, first["id"], "", 2_000_000_000, scope=links.SCOPE_VIEW)
    page = f"/deployments/{first['id']}/page"
    cases = {f"{page}": 403, f"{page}?view=": 403, f"{page}?view={other}": 401,
             f"{page}?view={_link(stack, first['id'])}": 401, f"{page}?view={forged}": 401,
             f"{page}?view={other[:-3]}": 401, f"{page}?view=%00%ff": 400}
    for path, status in cases.items():
        res = client.http.get(path)
        html = res.body.decode()
        assert res.status_code == status, (path, html)
        assert first["image_digest"] not in html and "task definition" not in html.lower()
    token = decisions.view_token(stack.deps(), first["id"])
    stack.clock.advance(days=31)
    res = client.http.get(f"{page}?view={token}")
    assert res.status_code == 409 and "expired" in res.body.decode()


def test_the_page_links_other_deployments_with_their_own_view_links(stack, client):
    """From one page, the deployment that superseded it opens too (its own token)."""
    first = push(stack, client, TAGS)
    second = push(stack, client, NEWER)
    html = client.http.get(decisions.view_url(stack.deps(), first["id"])
                           .split("127.0.0.1:9", 1)[1]).body.decode()
    found = re.search(rf"href='\.\./{second['id']}/page\?view=([^']+)'", html)
    assert found and decisions.verify_view(stack.deps(), second["id"], found.group(1))
    res = client.http.get(f"/deployments/{second['id']}/page?view={found.group(1)}")
    assert res.status_code == 200 and second["id"] in res.body.decode()
