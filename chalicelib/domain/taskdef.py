"""Task-definition edits: pin the new image by digest, drop what RegisterTaskDefinition refuses,
and describe the change as data for Slack, the pages and the API, secrets redacted by meaning
(``chalicelib.domain.redact``: by where they sit and by what they look like).
"""
from __future__ import annotations

import copy
import functools
import json
import re
from typing import Any

from chalicelib.domain import redact
from chalicelib.errors import ConfigError

#: Keys RegisterTaskDefinition accepts; everything else DescribeTaskDefinition returns is read-only
#: (taskDefinitionArn, revision, status, requiresAttributes, compatibilities, registeredAt, …).
REGISTER_KEYS = frozenset({
    "family", "taskRoleArn", "executionRoleArn", "networkMode", "containerDefinitions", "volumes",
    "placementConstraints", "requiresCompatibilities", "cpu", "memory", "tags", "pidMode",
    "ipcMode", "proxyConfiguration", "inferenceAccelerators", "ephemeralStorage",
    "runtimePlatform", "enableFaultInjection",
})
READ_ONLY_KEYS = frozenset({
    "taskDefinitionArn", "revision", "status", "requiresAttributes", "compatibilities",
    "registeredAt", "registeredBy", "deregisteredAt", "deleteRequestedAt",
})
REDACTED = redact.REDACTED


def validate_template(body: Any, container: str) -> None:
    """Raise ConfigError unless ``body`` looks like a task definition holding ``container``."""
    if not isinstance(body, dict):
        raise ConfigError("is not a JSON object")
    unknown = set(body) - REGISTER_KEYS - READ_ONLY_KEYS
    if unknown:
        raise ConfigError(f"has keys a task definition does not have: {', '.join(sorted(unknown))}")
    if not isinstance(body.get("family"), str) or not body["family"]:
        raise ConfigError("has no 'family'")
    containers = body.get("containerDefinitions")
    if not isinstance(containers, list) or not containers:
        raise ConfigError("has no 'containerDefinitions'")
    names = [c.get("name") for c in containers if isinstance(c, dict)]
    if container not in names:
        raise ConfigError(f"has no container named {container!r} (it has {names})")


def pin_image(base: dict, container: str, image: str) -> dict:
    """Return a registrable copy of ``base`` whose ``container`` runs ``image`` (``uri@sha256:…``)."""
    body = {k: copy.deepcopy(v) for k, v in base.items() if k in REGISTER_KEYS}
    if not body.get("tags"):
        body.pop("tags", None)
    for definition in body.get("containerDefinitions", []):
        if definition.get("name") == container:
            definition["image"] = image
            return body
    raise ConfigError(f"task definition {base.get('family')!r} has no container {container!r}")


def diff(old: dict | None, new: dict) -> list[dict]:
    """What changes between two task definitions, as ``[{path, old, new}]``; values redacted."""
    changes: list[dict] = []
    _diff_value("", _normalise(old or {}), _normalise(new), changes)
    return changes


def _normalise(body: dict) -> dict:
    """Key containers by name and env/secrets by name so the diff reads like a person would."""
    out = {k: v for k, v in body.items() if k in REGISTER_KEYS and k != "containerDefinitions"}
    for c in body.get("containerDefinitions", []) or []:
        entry = dict(c)
        entry["environment"] = {e.get("name"): e.get("value") for e in c.get("environment") or []}
        entry["secrets"] = {s.get("name"): s.get("valueFrom") for s in c.get("secrets") or []}
        out[f"container[{c.get('name')}]"] = entry
    return out


def _diff_value(path: str, old: Any, new: Any, out: list[dict]) -> None:
    if isinstance(old, dict) and isinstance(new, dict) or \
            isinstance(old, dict) and new is None or old is None and isinstance(new, dict):
        old, new = old or {}, new or {}  # a container added whole is still shown field by field
        for key in sorted(set(old) | set(new), key=str):
            sub = f"{path}.{key}" if path else str(key)
            _diff_value(sub, old.get(key), new.get(key), out)
    elif old != new and not (_unset(path, old) and _unset(path, new)):
        show = _redacted if redact.secret_path(path) else _show
        out.append({"path": path, "old": show(old), "new": show(new)})


def _unset(path: str, value: Any) -> bool:
    """Absent, or the default DescribeTaskDefinition fills in for it ([], {}, a container's cpu 0)."""
    return value is None or value == [] or value == {} or (
        value == 0 and path.startswith("container[") and path.endswith("].cpu"))


def _redacted(value: Any) -> str | None:
    return None if value is None else REDACTED


def _show(value: Any) -> str | None:
    """The value as people see it: secret-looking parts (flags, headers, URL passwords) ***."""
    if value is None:
        return None
    value = redact.scrub_value(value)
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


@functools.cache
def _secret_text() -> tuple:
    """Text that names a secret and gives its value (``DB_PASSWORD=…``, ``"api_key": "…"``),
    credentials inside URLs, bearer tokens and AWS access key ids. Compiled on first use (~2 ms):
    only log lines need it, not every cold start."""
    return (
        (re.compile(r"(?i)(\b[\w.-]*(?:password|passwd|secret|token|api[_-]?key|access[_-]?key|"
                    r"private[_-]?key|credentials?)[\w.-]*\"?\s*[=:]\s*)(\"[^\"]*\"|'[^']*'|"
                    r"[^\s,;]+)"), r"\1" + REDACTED),
        (re.compile(r"(\b[a-z][a-z0-9+.-]*://[^/\s:@]+:)[^/\s@]+@"), r"\1" + REDACTED + "@"),
        (re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9._~+/=-]+"), r"\1" + REDACTED),
        (re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), REDACTED),
    )


def redact_text(text: str, body: dict | None = None) -> str:
    """``text`` (a log line) with what the diff hides hidden too: every value of ``body``'s secret
    paths (env values, secret references, log-driver options, …) and text that looks like a
    credential."""
    for value in sorted(_secret_values(body or {}), key=len, reverse=True):
        text = text.replace(value, REDACTED)
    for pattern, replacement in _secret_text():
        text = pattern.sub(replacement, text)
    return redact.scrub(text)


def _secret_values(body: dict) -> set[str]:
    out: set[str] = set()

    def walk(path: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, sub in value.items():
                if not str(key).startswith("awslogs-"):  # where logs go is no secret
                    walk(f"{path}.{key}", sub)
        elif isinstance(value, list):
            for index, sub in enumerate(value):
                walk(f"{path}.{index}", sub)
        elif isinstance(value, str) and len(value) >= 4 and redact.secret_path(path):
            out.add(value)

    for path, entry in _normalise(body).items():
        walk(path, entry)
    return out

