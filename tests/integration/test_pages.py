"""The HTML pages: approval links and the read-only deployment page a browser gets.

Browsers (Accept ranks text/html first) get HTML; API clients keep the JSON byte for byte. Times are
readable, the diff reads old → new, superseded deployments name the newer one, nothing typed by a
person reaches the page unescaped, and GET never changes anything.
"""
from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from html import escape
from urllib.parse import urlencode

import pytest

from chalicelib.entrypoints import pages
from chalicelib.entrypoints.routes import prefers_html
from chalicelib.service import decisions, queries
from tests.integration.api_kit import FORM, TAGS, client, get, push, run_to_success
from tests.integration.helpers import link_token

__all__ = ["client"]  # a fixture, imported for pytest

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,"
                     "image/webp,image/apng,*/*;q=0.8"}
NEWER = ["def456a", "1.23.0-def456a", "latest"]


def _utc(value: str) -> str:
    """What a person should read for an ISO time: ``2026-11-27 11:22 UTC``."""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _visible(html: str) -> str:
    """The page without the machine-readable datetime attributes of its <time> elements."""
    return re.sub(r"datetime='[^']*'", "", html)


def _link(stack, dep_id: str, identity: str = "slack:U0APPROVER1") -> str:
    url = decisions.link_for(stack.deps(), stack.deps().load(dep_id), identity)
    return link_token(url)[1]


def _links_page(stack, html: str, prefix: str, dep_id: str, text: str | None = None) -> bool:
    """Does ``html`` link the read-only page of ``dep_id`` with a genuine view token of it?"""
    pattern = (re.escape(f"<a href='{prefix}{dep_id}/page?view=") + r"([A-Za-z0-9_.-]+)'>"
               + re.escape(text if text is not None else ""))
    found = re.findall(pattern, html)
    return bool(found) and all(decisions.verify_view(stack.deps(), dep_id, t) for t in found)


def _post(client, dep_id: str, **fields):
    return client.http.post(f"/approvals/{dep_id}", headers=FORM, body=urlencode(fields))


def _title(html: str) -> str:
    return re.search(r"<h1>(.*?)</h1>", html).group(1)


def _note(html: str) -> str:
    return re.search(r"<p class='note'[^>]*>(.*?)</p>", html).group(1)


@pytest.mark.parametrize("accept,html", [
    (None, False), ("*/*", False), ("application/json", False),
    ("application/json, text/html", False),  # a tie keeps the API's JSON
    ("text/html;q=0.5, */*", False), ("text/html;q=0", False), ("TEXT/HTML", True),
    (BROWSER["Accept"], True), ("text/html", True), ("application/json;q=0.4, text/*", True),
])
def test_who_prefers_html(accept, html):
    assert prefers_html(accept) is html


def test_a_browser_gets_a_page_and_api_clients_keep_the_json(stack, client):
    """Same URL: JSON (unchanged bytes) unless Accept ranks text/html first; GET changes nothing."""
    dep = push(stack, client)
    path = f"/deployments/{dep['id']}"
    before = queries.get_deployment(stack.deps(), dep["id"])
    contract = json.dumps(before, default=str).encode()
    for accept in (None, "*/*", "application/json", "text/html;q=0.5, */*"):
        res = client.http.get(path, headers={"Accept": accept} if accept else {})
        assert res.status_code == 200 and res.headers["Content-Type"] == "application/json"
        assert res.body == contract and res.headers["Vary"] == "Accept"
    for _ in range(2):
        res = client.http.get(path, headers=BROWSER)
        assert res.status_code == 200 and res.headers["Content-Type"].startswith("text/html")
        assert "default-src 'none'" in res.headers["Content-Security-Policy"]
        assert res.headers["Vary"] == "Accept"
    html = res.body.decode()
    assert html.startswith("<!doctype html>") and "<h1>better-chatbot 1.22.0</h1>" in html
    assert "is waiting for approval (PENDING_APPROVAL)" in html and "<script" not in html
    assert queries.get_deployment(stack.deps(), dep["id"]) == before


def test_the_deployment_page_shows_what_happened_with_readable_times(stack, client):
    """Facts, diff, approvals, migration and timeline, every time as YYYY-MM-DD HH:MM UTC."""
    dep = run_to_success(stack, client)
    html = client.http.get(f"/deployments/{dep['id']}", headers=BROWSER).body.decode()
    visible = _visible(html)
    assert not re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d", visible), "a raw ISO time is shown"
    assert _utc(dep["created_at"]) in visible and _utc(dep["finished_at"]) in visible
    assert f"datetime='{dep['finished_at']}'" in html
    running_before = dep["previous_task_definition_arn"].rsplit("/", 1)[-1]
    new_revision = dep["task_definition_arn"].rsplit("/", 1)[-1]
    assert running_before.startswith("better-chatbot:") and running_before in html
    assert f"<code>{new_revision}</code>" in html
    assert "was deployed (SUCCEEDED)" in html and "container[app].image" in html
    assert "<code>slack:U0APPROVER1</code> approved via link" in html
    assert "1 of 1 approval" in html and "<code>pnpm db:migrate</code>" in html
    timeline = re.search(r"<ol aria-label='timeline'>(.*?)</ol>", html).group(1)
    assert timeline.count("<li>") == len(dep["timeline"]) >= 4
    for entry in dep["timeline"]:
        assert f"<code>{entry['state']}</code>" in timeline


def test_the_approval_page_shows_old_to_new_what_runs_now_and_who_decides(stack, client):
    """The diff reads ~ path, old → new (wrapping, not a one-line <pre>); times are readable."""
    dep = push(stack, client)
    token = _link(stack, dep["id"])
    html = client.http.get(f"/approvals/{dep['id']}?token={token}").body.decode()
    change = next(c for c in dep["diff"] if c["path"] == "container[app].image")
    item = re.search(r"<li>(?:(?!</li>).)*container\[app\]\.image.*?</li>", html).group(0)
    old, new = item.index(escape(change["old"])), item.index(escape(change["new"]))
    assert old < item.index("→") < new and ">~</span>" in item
    assert "<del>" in item[:new] and "<ins>" in item[new - 20:] and "<pre" not in html
    assert dep["image_digest"] in item
    visible = _visible(html)
    assert _utc(dep["expires_at"]) in visible and dep["expires_at"] not in visible
    runs_now = dep["previous_task_definition_arn"].rsplit("/", 1)[-1]
    assert re.search(rf"Runs now</th><td><code>{re.escape(runs_now)}</code>", html)
    assert "<code>slack:U0APPROVER1</code>, <code>github:octocat</code>" in html
    assert "0 of 1 approval" in html and "Needed</th><td>1 approval<" in html
    assert _links_page(stack, html, "../deployments/", dep["id"])
    assert get(client, dep["id"])["state"] == "PENDING_APPROVAL"


def test_absent_values_show_as_empty_set_with_a_change_mark():
    """Added and removed fields are marked + and -, their missing side shown as ∅."""
    html = pages.diff({"diff": [{"path": "cpu", "old": "256", "new": "512"},
                                {"path": "container[app].command", "old": None, "new": "[\"x\"]"},
                                {"path": "container[app].user", "old": "<root>", "new": None}]})
    items = re.findall(r"<li>.*?</li>", html)
    assert [re.search(r"'mark' aria-hidden='true'>(.)<", i).group(1) for i in items] == \
        ["~", "+", "-"]
    assert "<del><span aria-hidden='true'>∅</span>" in items[1] and "[&quot;x&quot;]" in items[1]
    assert "<ins><span aria-hidden='true'>∅</span>" in items[2] and "&lt;root&gt;" in items[2]


def test_a_superseded_deployment_names_the_newer_one(stack, client):
    """Its page and its old approval link both link the deployment that replaced it."""
    first = push(stack, client, TAGS)
    second = push(stack, client, NEWER)
    assert get(client, first["id"])["state"] == "SUPERSEDED"
    html = client.http.get(f"/deployments/{first['id']}", headers=BROWSER).body.decode()
    assert _links_page(stack, html, "./", second["id"], f"{second['id']}</a> (1.23.0-def456a)")
    token = _link(stack, first["id"])
    shown = client.http.get(f"/approvals/{first['id']}?token={token}")
    posted = _post(client, first["id"], token=token, decision="approve")
    assert shown.status_code == posted.status_code == 409
    for res in (shown, posted):
        page = res.body.decode()
        assert _title(page) == "Nothing to decide" and "(SUPERSEDED)" in _note(page)
        assert _links_page(stack, page, "../deployments/", second["id"], f"{second['id']}</a>")
    assert _note(shown.body.decode()) == _note(posted.body.decode())


def test_a_used_link_says_the_same_on_get_and_post(stack, client):
    """After deciding, the page links the deployment; the link then says it was used, and what
    state the deployment is in, whichever way it is opened."""
    dep = push(stack, client)
    token = _link(stack, dep["id"])
    decided = _post(client, dep["id"], token=token, decision="approve")
    assert decided.status_code == 200
    assert _links_page(stack, decided.body.decode(), "../deployments/", dep["id"])
    shown = client.http.get(f"/approvals/{dep['id']}?token={token}")
    again = _post(client, dep["id"], token=token, decision="reject")
    assert shown.status_code == again.status_code == 409
    for res in (shown, again):
        page = res.body.decode()
        assert _title(page) == "This link was already used"
        assert "nothing was changed" in _note(page) and "(APPROVED)" in _note(page)
    assert _note(shown.body.decode()) == _note(again.body.decode())
    assert get(client, dep["id"])["state"] == "APPROVED"


@pytest.mark.parametrize("fields", [{"comment": "<i>hm</i>"},
                                    {"comment": "<i>hm</i>", "decision": "maybe"}])
def test_a_form_without_a_decision_is_incomplete_and_the_link_still_works(stack, client, fields):
    """A 400 that says the form was incomplete (not that the link is bad), with the form again."""
    dep = push(stack, client)
    token = _link(stack, dep["id"])
    res = _post(client, dep["id"], token=token, **fields)
    html = res.body.decode()
    assert res.status_code == 400 and _title(html) == "The form was incomplete"
    assert "not valid" not in html and "Choose Approve or Reject" in html
    assert "&lt;i&gt;hm&lt;/i&gt;</textarea>" in html and "value='approve'" in html
    assert get(client, dep["id"])["state"] == "PENDING_APPROVAL"
    assert _post(client, dep["id"], token=token, decision="approve").status_code == 200


def test_hostile_text_is_escaped_on_every_page(stack, client):
    """A comment (and so the reason and the timeline) cannot inject markup."""
    dep = push(stack, client)
    hostile = "<script>alert(1)</script><img src=x onerror=alert(2)> ' \" &"
    res = _post(client, dep["id"], token=_link(stack, dep["id"]), decision="reject",
                comment=hostile)
    html = client.http.get(f"/deployments/{dep['id']}", headers=BROWSER).body.decode()
    for page in (res.body.decode(), html):
        assert "<script" not in page and "<img" not in page and "onerror=alert(2)> '" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x" in page
    assert html.count("&lt;script&gt;") >= 3  # the reason, the decision, the timeline
    assert get(client, dep["id"])["reason"].endswith(hostile)


def test_an_unknown_deployment_is_an_html_404_for_a_browser(stack, client):
    res = client.http.get("/deployments/d-nope", headers=BROWSER)
    assert res.status_code == 404 and res.headers["Content-Type"].startswith("text/html")
    assert _title(res.body.decode()) == "Unknown deployment"
    res = client.http.get("/deployments/d-nope")
    assert res.status_code == 404 and res.json_body["error"] == "unknown_deployment"


def test_the_state_filter_takes_any_case(stack, client):
    """?state=superseded is SUPERSEDED; an unknown state is still a 400."""
    first = push(stack, client, TAGS)
    second = push(stack, client, NEWER)
    for state in ("superseded", "Superseded", "SUPERSEDED"):
        found = client.http.get(f"/deployments?state={state}").json_body["deployments"]
        assert [d["id"] for d in found] == [first["id"]]
    found = client.http.get("/deployments?state=pending_approval").json_body["deployments"]
    assert [d["id"] for d in found] == [second["id"]]
    assert client.http.get("/deployments?state=failed").json_body == {"deployments": []}
    assert client.http.get("/deployments?state=done").status_code == 400


def test_refusals_say_why_and_link_the_deployment(stack, client):
    """Someone who may not decide gets a 403 naming the deployment's page; an expired link a 409
    that says it expired (not that it is invalid)."""
    dep = push(stack, client)
    res = _post(client, dep["id"], token=_link(stack, dep["id"], "slack:U0NOBODY"),
                decision="approve")
    html = res.body.decode()
    assert res.status_code == 403 and _title(html) == "You may not decide this deployment"
    assert _links_page(stack, html, "../deployments/", dep["id"])
    token = _link(stack, dep["id"])
    stack.clock.advance(hours=25)
    res = client.http.get(f"/approvals/{dep['id']}?token={token}")
    assert res.status_code == 409 and _title(res.body.decode()) == "This link has expired"
    assert get(client, dep["id"])["state"] == "PENDING_APPROVAL"
