"""On the devstack, the IAM routes are checked as API Gateway checks them (SigV4, M1).

Unsigned or badly signed requests get API Gateway's 403 and read or change nothing; the devstack's
own keys (``GET /_devstack/aws``) sign the way boto3 and the ``slipway`` CLI do; a person with the
"Review in browser" link from Slack (or GitHub's status link) sees that one deployment's page.
"""
from __future__ import annotations

import pytest

from devstack import sigv4
from devstack.client import Client
from tests.e2e.helpers import release

pytestmark = pytest.mark.timeout(120)
SERVICE = "better-chatbot"
ROLLBACK = {"to": "previous", "reason": "unsigned callers must not roll back"}


def _reads(dep_id: str) -> list[str]:
    return ["/deployments", f"/deployments?service={SERVICE}", f"/deployments/{dep_id}",
            "/services", f"/services/{SERVICE}"]


def test_unsigned_requests_to_iam_routes_get_403_and_read_nothing(devstack):
    """Without a signature: API Gateway's 403 and not a byte of the ledger or the services."""
    dep = devstack.deployment_of(SERVICE, devstack.push(SERVICE, *release()))
    anonymous = Client(devstack.url, sign=False)
    for path in _reads(dep["id"]):
        got = anonymous.get(path)
        assert got.status == 403, (path, got.text)
        assert got.json() == {"message": "Missing Authentication Token"}
        assert dep["id"] not in got.text and "better-chatbot" not in got.text
    assert devstack.get_json(f"/deployments/{dep['id']}")["id"] == dep["id"]  # signed: read


def test_an_unsigned_or_forged_rollback_changes_nothing(devstack):
    """POST /services/{name}/rollback unsigned, or signed with the wrong secret: 403, and no
    rollback deployment exists afterwards; ECS still runs what it ran."""
    running = devstack.service()["taskDefinition"]
    before = [d["id"] for d in devstack.get_json("/deployments?limit=200")["deployments"]]
    info = devstack.get_json("/_devstack/aws")
    wrong = sigv4.Keys(info["access_key_id"], "not-the-devstack-secret", info["region"])
    for client, message in ((Client(devstack.url, sign=False), sigv4.MISSING),
                            (Client(devstack.url, keys=wrong), sigv4.MISMATCH)):
        got = client.post(f"/services/{SERVICE}/rollback", ROLLBACK)
        assert got.status == 403 and got.json() == {"message": message}, got.text
    after = [d["id"] for d in devstack.get_json("/deployments?limit=200")["deployments"]]
    assert after == before and devstack.service()["taskDefinition"] == running


def test_a_request_signed_with_the_devstack_keys_is_served(devstack):
    """The keys from GET /_devstack/aws sign requests exactly as boto3's SigV4 does."""
    info = devstack.get_json("/_devstack/aws")
    assert info["access_key_id"] and info["secret_access_key"]
    keys = sigv4.Keys(info["access_key_id"], info["secret_access_key"], info["region"])
    got = Client(devstack.url, keys=keys).get(f"/services/{SERVICE}")
    assert got.status == 200 and got.json()["name"] == SERVICE


def test_the_review_link_from_slack_opens_that_deployment_without_aws_credentials(devstack):
    """A person clicks "Review in browser": the page shows; the link opens no other deployment."""
    first = devstack.deployment_of(SERVICE, devstack.push(SERVICE, *release()))
    link = devstack.review_link(first["id"])
    browser = Client(devstack.url, sign=False)
    page = browser.request("GET", link)
    assert page.status == 200 and first["image_digest"] in page.text
    assert page.headers.get("X-Content-Type-Options") == "nosniff"
    token = link.split("?view=", 1)[1]
    other = browser.get(f"/deployments/d-20200101T000000-00000000/page?view={token}")
    assert other.status == 401 and first["image_digest"] not in other.text
