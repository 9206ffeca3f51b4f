"""Hostile HTTP on every route of the app: never a 5xx, nothing written (issue 7, row 9).

GIVEN a devstack of its own (the reconciler asleep, so nothing but these requests could write) with
one deployment waiting for approval, WHEN every route the app declares receives malformed bodies,
absurd or oddly encoded headers, unicode and huge ids and broken query strings — sent as raw bytes,
as any client on the internet can — THEN no answer is a 5xx and the ledger, the idempotency table
and what Slack received are exactly as before.
"""
from __future__ import annotations

import http.client
import json
import socket
import time
import urllib.parse
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from tests.e2e.helpers import Devstack, release

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(600)
EXAMPLES = 200


@pytest.fixture(scope="module")
def quiet():
    """An in-process devstack whose reconciler never runs on its own, with a pending deployment."""
    from devstack.ecs_emulator import EcsSettings
    from devstack.stack import Stack

    with pytest.MonkeyPatch.context() as env:
        for name in OUTSIDE:  # another test's stand-ins, not this devstack's
            env.delenv(name, raising=False)
        yield from _quiet_stack(Stack, EcsSettings)


OUTSIDE = ("SLACK_API_URL", "GITHUB_API_URL", "AWS_ENDPOINT_URL")


def _quiet_stack(Stack, EcsSettings):
    stack = Stack(ROOT / "ecs" / "production", ecs=EcsSettings(task_seconds=0.2),
                  reconcile_every=3600).start()
    try:
        client = Devstack(stack.url)
        sha, version = release()
        dep = client.deployment_of("better-chatbot", client.push("better-chatbot", sha, version))
        client.approval_link(dep["id"])  # the notifier has written what it writes
        yield stack, client, dep["id"]
    finally:
        stack.stop()


def snapshot(stack) -> tuple:
    """Every item of the ledger and the idempotency table, and every Slack message."""
    from devstack import aws as aws_mod

    dynamodb = stack.aws.client("dynamodb")
    tables = []
    for table in (aws_mod.TABLE, aws_mod.IDEMPOTENCY_TABLE):
        items = dynamodb.scan(TableName=table, ConsistentRead=True)["Items"]
        tables.append(sorted(json.dumps(i, sort_keys=True) for i in items))
    return tuple(tables), json.dumps(stack.slack.messages(), sort_keys=True, default=str)


def settled_snapshot(stack) -> tuple:
    before = snapshot(stack)
    for _ in range(20):
        time.sleep(0.5)
        now = snapshot(stack)
        if now == before:
            return now
        before = now
    raise AssertionError("the devstack kept writing with no request coming in")


def send(url: str, method: str, target: bytes, headers: list[tuple[bytes, bytes]],
         body: bytes) -> int:
    """One request as raw bytes (no client library tidying it up); the answer's status."""
    parts = urllib.parse.urlsplit(url)
    head = [method.encode() + b" " + target + b" HTTP/1.1",
            b"Host: " + parts.netloc.encode(), b"Connection: close",
            b"Content-Length: " + str(len(body)).encode()]
    head += [name + b": " + value for name, value in headers]
    with socket.create_connection((parts.hostname, parts.port), timeout=60) as sock:
        try:
            sock.sendall(b"\r\n".join(head) + b"\r\n\r\n" + body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered early (a request too large) and closed: read its answer
        response = http.client.HTTPResponse(sock, method=method)
        response.begin()
        response.read()
        return response.status


# -- what a hostile client sends ----------------------------------------------------------------
SAFE = st.characters(blacklist_characters="\r\n\x00")  # CR/LF would be a second header, not a value
HUGE = st.sampled_from(["9" * 309, "9" * 5000, "1e309", "-" + "9" * 400, "nan", "inf", "٣" * 50,
                        "x" * 9000, "%" * 300, "\u202e" * 100, "0x" + "f" * 80, "1" * 20])
TEXT = st.one_of(HUGE, st.text(SAFE, max_size=80), st.text(SAFE, min_size=200, max_size=3000))


def _bytes(text: str, encoding: str) -> bytes:
    """``text`` encoded (lone surrogates too), without the bytes that would end the header line."""
    raw = text.encode(encoding, "surrogatepass")
    return raw.replace(b"\r", b"").replace(b"\n", b"").replace(b"\x00", b"")


VALUE = st.one_of(TEXT.map(lambda t: _bytes(t, "utf-8")), TEXT.map(lambda t: _bytes(t, "utf-16")),
                  st.binary(max_size=300).map(lambda b: _bytes(b.decode("latin-1"), "latin-1")))
HEADER_NAMES = [b"Accept", b"Content-Type", b"X-Slack-Request-Timestamp", b"X-Slack-Signature",
                b"Authorization", b"X-Amz-Date", b"X-Amz-Security-Token",
                b"X-Amz-Content-Sha256", b"Cookie", b"User-Agent", b"Origin", b"Referer",
                b"X-Forwarded-For", b"Accept-Language", b"Accept-Encoding", b"If-None-Match",
                b"Range", b"X-Requested-With", b"Forwarded"]
HEADERS = st.lists(st.tuples(st.one_of(st.sampled_from(HEADER_NAMES),
                                       st.from_regex(rb"X-[A-Za-z0-9-]{1,40}", fullmatch=True)),
                             VALUE), max_size=6)
CONTENT_TYPES = [b"application/json", b"application/x-www-form-urlencoded", b"text/html",
                 b"multipart/form-data; boundary=x", b"application/json; charset=utf-16",
                 b"application/x-www-form-urlencoded; charset=latin-1", b"*/*", b"\xff\xfe"]
JSONISH = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(),
                                 st.text(max_size=40)),
                       lambda kids: st.one_of(st.lists(kids, max_size=5),
                                              st.dictionaries(st.text(max_size=10), kids,
                                                              max_size=5)), max_leaves=20)
FORM_KEYS = st.sampled_from(["token", "decision", "comment", "payload", "break_glass", "to",
                             "reason", "x"])
FORMS = st.dictionaries(FORM_KEYS, st.one_of(TEXT, JSONISH.map(json.dumps)), max_size=5)
BODIES = st.one_of(
    st.just(b""), st.binary(max_size=2000),
    JSONISH.map(lambda v: json.dumps(v).encode()),
    FORMS.map(lambda f: urllib.parse.urlencode(f, errors="surrogatepass").encode()),
    st.sampled_from([b"[" * 50_000 + b"]" * 50_000, b"{\"to\": " * 3000, b"a=" + b"%" * 5000,
                     b"payload=" + urllib.parse.quote(json.dumps({"type": "block_actions",
                                                                  "actions": [{}] * 500})).encode(),
                     b"&" * 10_000, "payload=ü\udcff".encode("utf-8", "surrogatepass"),
                     b"x" * 2_000_000]))
QUERIES = st.one_of(
    st.just(b""),
    st.lists(st.tuples(st.sampled_from(["token", "limit", "service", "state", "view", "x"]),
                       TEXT), max_size=4).map(lambda q: urllib.parse.urlencode(q, errors="surrogatepass").encode()),
    st.sampled_from([b"limit=-1", b"limit=99999999999999999999999", b"limit=1e3", b"%zz=%",
                     b"token=%ff%fe", b"&&&==&", b"state=" + b"a" * 5000, b"limit=\xd9\xa3",
                     b"&".join(b"x%d=1" % i for i in range(2000))]))


def _segment(real_id: str):
    raw = st.one_of(st.just(real_id), st.just(real_id + "x"), st.just(real_id.upper()), TEXT,
                    st.from_regex(r"d-\d{8}T\d{6}-[0-9a-f]{8}", fullmatch=True),
                    st.sampled_from(["better-chatbot", "better-chatbot-worker", "..", "%2e%2e"]))
    return st.one_of(raw.map(lambda s: urllib.parse.quote(s, safe="", errors="surrogatepass").encode()),
                     raw.map(lambda s: s.encode("utf-8", "surrogatepass")
                             .replace(b" ", b"%20").replace(b"/", b"%2F")
                             .replace(b"?", b"%3F").replace(b"#", b"%23")))


def requests(routes: list[tuple[str, str]], real_id: str):
    @st.composite
    def one(draw):
        method, path = draw(st.sampled_from(routes))
        target = path.encode()
        for name in ("{dep_id}", "{name}"):
            if name.encode() in target:
                target = target.replace(name.encode(), draw(_segment(real_id)))
        query = draw(QUERIES)
        headers = draw(HEADERS)
        if method == "POST" or draw(st.booleans()):
            headers.append((b"Content-Type", draw(st.one_of(  # mostly what the route accepts
                st.just(CONTENT_TYPES[1]), st.just(CONTENT_TYPES[0]),
                st.sampled_from(CONTENT_TYPES)))))
        body = draw(BODIES) if method == "POST" or draw(st.integers(0, 9)) == 0 else b""
        return method, target + (b"?" + query if query else b""), headers, body
    return one()


def app_routes(stack) -> list[tuple[str, str]]:
    """Every (method, path) the app declares: a route added later is fuzzed too."""
    return sorted((method, path) for path, methods in stack.app_module.app.routes.items()
                  for method in methods)


def test_every_route_survives_hostile_input_without_a_5xx_or_a_write(quiet):
    stack, _, real_id = quiet
    routes = app_routes(stack)
    assert len(routes) >= 9, routes
    before = settled_snapshot(stack)
    seen: dict[tuple[str, str], set[int]] = {}
    bad: list[str] = []

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(requests(routes, real_id))
    def hostile(request):
        method, target, headers, body = request
        status = send(stack.url, method, target, headers, body)
        seen.setdefault((method, target.split(b"?")[0][:40].decode("latin-1")), set()).add(status)
        if status >= 500:
            bad.append(f"{status} for {method} {target[:200]!r} headers={headers!r:.300} "
                       f"body={body[:200]!r}")
        assert status < 500, bad[-1]

    hostile()
    assert not bad
    assert settled_snapshot(stack) == before, "a hostile request changed what Slipway stored"


@pytest.mark.parametrize("timestamp", [b"9" * 309, b"9" * 5000, b"1e309", b"-" + b"9" * 400,
                                       b"nan", b"\xd9\xa3" * 10, b"1" * 13, b" 1700000000"])
def test_an_absurd_slack_timestamp_is_a_401_not_a_500(quiet, timestamp):
    """Row 9: no signature needed to send it, so it must cost nothing: 401, nothing changed."""
    stack, _, _ = quiet
    before = snapshot(stack)
    status = send(stack.url, "POST", b"/slack/interactions",
                  [(b"Content-Type", b"application/x-www-form-urlencoded"),
                   (b"X-Slack-Request-Timestamp", timestamp), (b"X-Slack-Signature", b"v0=00")],
                  b"payload=%7B%7D")
    assert status == 401
    assert snapshot(stack) == before


@pytest.mark.parametrize("length", [b"-5", b"abc", b"99999999999999999999", b"\xd9\xa3"])
def test_a_body_the_gateway_cannot_frame_is_refused_as_api_gateway_does(quiet, length):
    """A Content-Length that is not a size (or beyond API Gateway's 10 MB) is a 4xx at once."""
    stack, _, _ = quiet
    parts = urllib.parse.urlsplit(stack.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(b"POST /approvals/x HTTP/1.1\r\nHost: h\r\nContent-Length: " + length
                     + b"\r\n\r\n")
        response = http.client.HTTPResponse(sock, method="POST")
        response.begin()
        assert response.status in (400, 413)


ABSURD = [b"9" * 309, b"9" * 9000, b"1e309", b"-" + b"9" * 400, b"nan", b"\xd9\xa3" * 40,
          "\u202e\U0001f4a5".encode() * 500, b"\xff\xfe\xfd", b"%" * 3000, b"v0=" + b"0" * 64,
          b"AWS4-HMAC-SHA256 Credential=" + b"/" * 2000, b"\t \t"]


@pytest.mark.parametrize("value", ABSURD, ids=range(len(ABSURD)))
def test_every_header_at_once_at_an_absurd_value_on_every_route(quiet, value):
    """Each route with every header a client can set carrying the same absurd value (and once
    per header the app reads): 4xx or a normal answer, never a 5xx, nothing written."""
    stack, _, real_id = quiet
    before = snapshot(stack)
    failures = []
    for method, path in app_routes(stack):
        target = path.replace("{dep_id}", real_id).replace("{name}", "better-chatbot").encode()
        form = [(b"Content-Type", b"application/x-www-form-urlencoded")]
        sets = [[(name, value) for name in HEADER_NAMES],
                form + [(name, value) for name in HEADER_NAMES if name != b"Content-Type"]]
        sets += [(form if name != b"Content-Type" else []) + [(name, value)]
                 for name in HEADER_NAMES[:8]]
        for headers in sets:
            status = send(stack.url, method, target, headers, b"payload=%7B%7D&token=x")
            if status >= 500:
                failures.append((status, method, path, [h for h, _ in headers]))
    assert not failures
    assert snapshot(stack) == before
