"""``POST /slack/interactions``: the Approve and Reject buttons of Slipway's Slack messages.

Order matters: the v0 signature is checked on the raw body (slack_sdk's ``SignatureVerifier``,
5-minute window, imported only here, when a Slack request comes) before anything of the request
is parsed; a forged, stale, replayed-with-a-new-timestamp or tampered request gets 401 and changes
nothing. Headers no Slack request carries (a timestamp that is not 1–12 ASCII digits, a signature
that is not ``v0=`` and 64 hex digits) are refused before the verifier sees them: they get 401,
never a 500. The identity is the Slack user id Slack signed (``slack:U…``), never a value taken
from the message.

Slack wants an answer within 3 seconds: ``decisions.decide`` only records the decision (one
conditional write) and queues both the ECS work and the Slack/GitHub updates on SQS (``deps.kick``,
``DeferredNotifier``; see adapters/queue.py). Anything
the user should read (not an approver, too early, already decided) goes back as an ephemeral
message through the interaction's ``response_url``; the HTTP answer itself is an empty 200.

Reject from Slack is immediate, with the comment "rejected in Slack"; the button asks for
confirmation first (Slack's confirm dialog). Approvers who want to give a reason use their
personal link, whose page takes a comment.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import re
import time
from typing import Callable, Mapping

from chalice import Chalice

from chalicelib.adapters.queue import DeferredNotifier
from chalicelib.adapters.slack_message import ACTION_APPROVE, ACTION_REJECT
from chalicelib.entrypoints import bootstrap
from chalicelib.entrypoints.http import error_status, form, json_response
from chalicelib.entrypoints.lazy import LazyModule
from chalicelib.errors import BadRequest, SlipwayError
from chalicelib.service.deps import Deps

decisions = LazyModule("chalicelib.service.decisions")  # imported by the first Slack request

log = logging.getLogger("slipway.slack")
FORM = ["application/x-www-form-urlencoded"]
DECISIONS = {ACTION_APPROVE: "approve", ACTION_REJECT: "reject"}
REJECT_COMMENT = "rejected in Slack"
SLACK_MAX_BYTES = 1_000_000  # a block_actions payload carries the whole message: a few KB to ~100 KB
_USER = re.compile(r"^[UW][A-Z0-9]{2,30}$")
# The only shapes Slack sends (ASCII only: ``\d`` would take any Unicode digit).
TIMESTAMP = re.compile(r"[0-9]{1,12}", re.ASCII)  # Unix seconds, as Slack sends them
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}", re.ASCII)


def register(app: Chalice, deps: Callable[[], Deps] | None = None,
             clock: Callable[[], float] = time.time) -> None:
    """Add ``POST /slack/interactions`` to ``app`` (``deps``/``clock`` are injectable for tests)."""
    get_deps = deps or bootstrap.deps

    @app.route("/slack/interactions", methods=["POST"], content_types=FORM)
    def slack_interactions():
        request = app.current_request
        try:
            d = get_deps()
            if not verified(d.secrets().get("slack_signing_secret"), request.raw_body,
                            request.headers, clock):
                return json_response({"error": "bad_signature", "message":
                                      "this request is not signed by Slack (or is too old)"}, 401)
            answer(d, parse(request.raw_body))
            return json_response({})
        except Exception as exc:  # mapped in one place: http.error_status
            status, code, message = error_status(exc)
            return json_response({"error": code, "message": message}, status)


def verified(secret: str | None, raw_body: bytes | str | None, headers: Mapping[str, str],
             clock: Callable[[], float]) -> bool:
    """True only for a body Slack signed with our signing secret in the last 5 minutes."""
    if not secret:
        log.error("the secret has no slack_signing_secret: refusing every Slack request")
        return False
    timestamp = headers.get("x-slack-request-timestamp")
    signature = headers.get("x-slack-signature")
    # A 309-digit timestamp would overflow the verifier's float arithmetic (a 500): refuse here.
    if not (isinstance(timestamp, str) and TIMESTAMP.fullmatch(timestamp)
            and isinstance(signature, str) and _SIGNATURE.fullmatch(signature)):
        return False
    # Imported here: slack_sdk costs ~130 ms to import, which no other Lambda should pay.
    from slack_sdk.signature import Clock, SignatureVerifier

    class InjectedClock(Clock):
        def now(self) -> float:
            return clock()

    try:
        return SignatureVerifier(secret, clock=InjectedClock()).is_valid(
            body=raw_body or b"", timestamp=timestamp, signature=signature)
    except (ValueError, TypeError, UnicodeDecodeError, OverflowError):  # a non-UTF-8 body
        return False


def parse(raw_body: bytes | str | None) -> dict:
    """The interaction payload (JSON in the form field ``payload``), once the signature held."""
    body = raw_body.encode() if isinstance(raw_body, str) else raw_body
    try:
        payload = json.loads(form(body, max_bytes=SLACK_MAX_BYTES).get("payload", ""))
    except ValueError as exc:
        raise BadRequest("the form field 'payload' is not JSON", code="bad_payload") from exc
    if not isinstance(payload, dict):
        raise BadRequest("the form field 'payload' must be a JSON object", code="bad_payload")
    return payload


def answer(deps: Deps, payload: dict) -> None:
    """Decide for the Slack user who clicked; tell them privately what happened."""
    if payload.get("type") != "block_actions":
        return  # other interaction types (shortcuts, views) are not Slipway's
    actions = [a for a in payload.get("actions") or []
               if isinstance(a, dict) and a.get("action_id") in DECISIONS]
    if not actions:
        return  # e.g. "Review in browser": a link button still sends block_actions
    user = (payload.get("user") or {}).get("id")
    if not isinstance(user, str) or not _USER.match(user):
        raise BadRequest("the payload names no Slack user", code="bad_payload")
    action = actions[0]
    decision = DECISIONS[action["action_id"]]
    # Tell Slack/GitHub from the worker, not here: Slack wants this answer within 3 seconds.
    deferred = dataclasses.replace(deps, notifier=DeferredNotifier(deps.dispatcher))
    try:
        outcome = decisions.decide(
            deferred, str(action.get("value") or ""), identity=f"slack:{user}", via="slack",
            decision=decision, comment=REJECT_COMMENT if decision == "reject" else "")
        text = outcome.message
    except SlipwayError as exc:  # not an approver, too early, already decided: nothing changed
        text = f":warning: {exc.message}"
    tell_user(deps, payload, user, text)


def tell_user(deps: Deps, payload: dict, user: str, text: str) -> None:
    """An ephemeral reply: through ``response_url`` when Slack gave one, else chat.postEphemeral."""
    from chalicelib.adapters.notifiers import slack_client

    try:
        client = slack_client(deps)
        url = payload.get("response_url")
        channel = (payload.get("channel") or {}).get("id")
        if client.may_respond(url):  # Slack's own hosts only (L4)
            client.respond(url, text)
        elif channel:
            client.post_ephemeral(channel, user, text)
    except Exception:  # the decision stands; the message shows it anyway
        log.warning("could not tell %s: %s", user, text, exc_info=True)

