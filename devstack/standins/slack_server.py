"""A Slack Web API stand-in: the chat methods Slipway uses, over real HTTP.

Accepts what slack_sdk sends (JSON bodies for the chat methods; form-encoded
bodies with ``blocks`` as a JSON string also work), checks the bearer token
(401 ``invalid_auth``), the channel, the text/blocks and Slack's Block Kit
limits, and records every message with its history of updates and its thread
replies. ``#name`` channels map to stable ids ``C`` + upper-case hex.

Routes (under ``url`` = ``http://127.0.0.1:<port>/api/``): ``chat.postMessage``,
``chat.update``, ``chat.postEphemeral``, ``auth.test``. ``POST /response``
(``response_url``) feeds ``record_response``, which the devstack may also call
directly for ``POST /_devstack/slack/response``.
"""
from __future__ import annotations

import copy
import hashlib
import hmac
import json
import re
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs, urlsplit

from devstack.standins import Reply, StandIn, bearer

_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{6,}$")
_LIMITS = {"blocks": 50, "section": 3000, "field": 2000, "fields": 10, "header": 150, "elements": 25}


def channel_id(channel: str) -> str:
    """Slack ids pass through; ``#name`` (or ``name``) maps to a stable ``C…`` id."""
    if _CHANNEL_ID.match(channel):
        return channel
    name = channel.lstrip("#")
    return "C" + hashlib.sha1(name.encode("utf-8")).hexdigest()[:10].upper()


class SlackStandIn(StandIn):
    """Slack's chat API on loopback, recording messages, updates, threads and responses."""

    def __init__(self, token: str = "xoxb-standin", host: str = "127.0.0.1", port: int = 0,
                 clock=None):
        super().__init__(token, host, port)
        self._clock = clock  # the devstack's app clock: received times line up with the timeline
        self._messages: list[dict] = []
        self._ephemerals: list[dict] = []
        self._responses: list[dict] = []
        self._counter = 0

    @property
    def url(self) -> str:
        """The ``SLACK_API_URL`` to use (ends with ``/api/`` as Slack's does)."""
        return self.root_url + "/api/"

    @property
    def response_url(self) -> str:
        """A ``response_url`` that lands in ``responses()``."""
        return self.root_url + "/response"

    def messages(self) -> list[dict]:
        """Posted messages: channel, ts, text, blocks, history (every version), replies, and
        ``received_at`` (``updated_at`` after a chat.update)."""
        with self._lock:
            return copy.deepcopy(self._messages)

    def ephemerals(self) -> list[dict]:
        """Ephemeral messages: channel, user, text, blocks."""
        with self._lock:
            return copy.deepcopy(self._ephemerals)

    def responses(self) -> list[dict]:
        """Bodies received on the response_url, in order."""
        with self._lock:
            return copy.deepcopy(self._responses)

    def record_response(self, body: bytes | str | dict) -> Reply:
        """Take a response_url body; answer (status, text) as Slack would."""
        if self.is_down:
            return 503, "service_unavailable"
        try:
            data = body if isinstance(body, dict) else json.loads(body or b"")
        except ValueError:
            return 400, "invalid_payload"
        if not isinstance(data, dict) or not (data.get("text") or data.get("blocks") or data.get("delete_original")):
            return 400, "no_text"
        with self._lock:
            self._responses.append(copy.deepcopy(data))
        return 200, "ok"

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        if self.is_down:
            return 503, {"ok": False, "error": "service_unavailable"}
        route = urlsplit(path)
        if route.path == "/response" and method == "POST":
            return self.record_response(body)
        if not route.path.startswith("/api/"):
            return 404, {"ok": False, "error": "unknown_method"}
        try:
            params = _params(headers, body, route.query)
        except ValueError:
            return 200, {"ok": False, "error": "invalid_json"}
        token = bearer(headers) or params.get("token")
        if not token or not hmac.compare_digest(str(token), self.token):
            return 401, {"ok": False, "error": "invalid_auth"}
        api = route.path[len("/api/"):]
        action = {
            "chat.postMessage": self._post_message,
            "chat.update": self._update,
            "chat.postEphemeral": self._post_ephemeral,
            "auth.test": lambda _: {"ok": True, "user_id": "USLIPWAYBOT", "team_id": "TSTANDIN"},
        }.get(api)
        if action is None:
            return 404, {"ok": False, "error": "unknown_method"}
        return 200, action(params)

    def _post_message(self, params: dict) -> dict:
        error = _check_content(params)
        if error:
            return {"ok": False, "error": error}
        channel = channel_id(str(params["channel"]))
        with self._lock:
            ts = self._next_ts()
            version = {"text": params.get("text"), "blocks": params.get("blocks")}
            if params.get("thread_ts"):
                parent = self._find(channel, str(params["thread_ts"]))
                if parent is None:
                    return {"ok": False, "error": "thread_not_found"}
                parent["replies"].append({"ts": ts, "thread_ts": parent["ts"], **version,
                                          "received_at": _now(self._clock)})
            else:
                self._messages.append({
                    "channel": channel, "channel_name": str(params["channel"]), "ts": ts,
                    **version, "history": [copy.deepcopy(version)], "replies": [],
                    "received_at": _now(self._clock),
                })
        return {"ok": True, "channel": channel, "ts": ts, "message": {"ts": ts, **version}}

    def _update(self, params: dict) -> dict:
        error = _check_content(params)
        if error:
            return {"ok": False, "error": error}
        channel = channel_id(str(params["channel"]))
        with self._lock:
            message = self._find(channel, str(params.get("ts") or ""))
            if message is None:
                return {"ok": False, "error": "message_not_found"}
            message["text"] = params.get("text")
            if "blocks" in params:  # Slack keeps the old blocks when none are sent
                message["blocks"] = params["blocks"]
            message["history"].append({"text": message["text"], "blocks": copy.deepcopy(message["blocks"])})
            message["updated_at"] = _now(self._clock)
            return {"ok": True, "channel": channel, "ts": message["ts"], "text": message["text"]}

    def _post_ephemeral(self, params: dict) -> dict:
        error = _check_content(params) or (None if params.get("user") else "user_not_found")
        if error:
            return {"ok": False, "error": error}
        channel = channel_id(str(params["channel"]))
        with self._lock:
            ts = self._next_ts()
            self._ephemerals.append({
                "channel": channel, "user": params["user"], "ts": ts,
                "text": params.get("text"), "blocks": params.get("blocks"),
            })
        return {"ok": True, "message_ts": ts}

    def _find(self, channel: str, ts: str) -> dict | None:
        for message in self._messages:
            if message["channel"] == channel and message["ts"] == ts:
                return message
        return None

    def _next_ts(self) -> str:
        """Increasing Slack-style timestamps: 1700000000.000100, .000200, …"""
        self._counter += 1
        return f"{1700000000 + self._counter // 10000}.{(self._counter % 10000) * 100:06d}"


def _now(clock=None) -> str:
    """When the stand-in received something (UTC, ISO 8601): the devstack orders its output by it."""
    return (clock() if clock else datetime.now(timezone.utc)).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _params(headers: dict[str, str], body: bytes, query: str) -> dict[str, Any]:
    """Merge query, then a JSON or form body; ``blocks`` may arrive as a JSON string."""
    params: dict[str, Any] = {key: values[-1] for key, values in parse_qs(query).items()}
    if "json" in headers.get("content-type", ""):
        data = json.loads(body.decode("utf-8") or "{}")
        if not isinstance(data, dict):
            raise ValueError("JSON body is not an object")
        params.update(data)
    elif body:
        params.update({key: values[-1] for key, values in parse_qs(body.decode("utf-8")).items()})
    if isinstance(params.get("blocks"), str):
        params["blocks"] = json.loads(params["blocks"])
    return params


def _check_content(params: dict) -> str | None:
    """Slack's error code for a message without channel, content or valid blocks."""
    if not params.get("channel"):
        return "channel_not_found"
    if not params.get("text") and not params.get("blocks"):
        return "no_text"
    if "blocks" in params and params["blocks"] is not None and not _blocks_ok(params["blocks"]):
        return "invalid_blocks"
    return None


def _blocks_ok(blocks: Any) -> bool:
    if not isinstance(blocks, list) or len(blocks) > _LIMITS["blocks"]:
        return False
    return all(isinstance(block, dict) and _block_ok(block) for block in blocks)


def _block_ok(block: dict) -> bool:
    kind = block.get("type")
    if kind == "header":
        return _text_ok(block.get("text"), _LIMITS["header"], plain=True)
    if kind == "section":
        fields = block.get("fields")
        if fields is not None and (len(fields) > _LIMITS["fields"]
                                   or not all(_text_ok(f, _LIMITS["field"]) for f in fields)):
            return False
        return fields is not None or _text_ok(block.get("text"), _LIMITS["section"])
    if kind == "actions":
        elements = block.get("elements") or []
        ids = [e.get("action_id") for e in elements if isinstance(e, dict)]
        return 0 < len(elements) <= _LIMITS["elements"] and len(ids) == len(set(ids)) == len(elements)
    if kind == "context":
        elements = block.get("elements") or []
        return 0 < len(elements) <= 10 and all(_text_ok(e, _LIMITS["section"]) for e in elements)
    return kind in {"divider", "image", "rich_text", "input", "file", "video", "markdown"}


def _text_ok(obj: Any, limit: int, plain: bool = False) -> bool:
    if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
        return False
    allowed = {"plain_text"} if plain else {"plain_text", "mrkdwn"}
    return obj.get("type") in allowed and 0 < len(obj["text"]) <= limit
