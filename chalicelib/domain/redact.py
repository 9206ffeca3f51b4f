"""Redaction by meaning: what in a task definition (or a command, a note) is a secret, shown as ***.

Two ways a value is secret:
- by **where** it is (``secret_path``): environment and ``secrets`` values, registry credentials,
  docker labels, log-driver and firelens options, volume ``driverOpts``, and anything under a key
  that names a password, secret, token, key, credential or auth; the whole value becomes ***;
- by **what it looks like** (``scrub``), wherever it is: command-line flags that name a secret
  (``--password=…``, ``--db-password …``, ``-p …``), ``NAME=value`` pairs whose name does, HTTP
  header values (``Authorization: Bearer …``, ``X-Api-Key: …``, cookies) and URLs with credentials
  (``postgres://user:***@host``); only the secret part becomes ***, so the rest stays readable.

Whether something changed is decided on the real values; only what is shown is redacted, so a
changed secret still shows as a change.
"""
from __future__ import annotations

import re
from typing import Any

REDACTED = "***"
_WORD = r"(?:pass(?:word|wd|phrase)|secret|token|api[-_]?key|access[-_]?key|private[-_]?key|" \
        r"credentials?|auth(?:orization)?(?![a-z])|session[-_]?key|signing[-_]?key)"
#: A key (path segment) that names a secret: DB_PASSWORD, apiKey, x-auth-token, key, …
_SECRET_KEY = re.compile(rf"(?i)({_WORD}|(?:^|[-_.])key$|^key|pwd$)")
_SECRET_PLACES = re.compile(
    r"container\[[^\]]*\]\.(environment|secrets|repositoryCredentials|dockerLabels|"
    r"logConfiguration\.(options|secretOptions)|firelensConfiguration\.options)(\.|$)|"
    r"(^|\.)(driverOpts|secretOptions)(\.|$)")
#: Keys whose whole content is secret wherever they appear (volume and log driver options, …).
_WHOLE = re.compile(r"^(driverOpts|secretOptions|dockerLabels|repositoryCredentials|secrets|"
                    r"environment|options)$")
_FLAG = re.compile(rf"(?i)^(--?[\w.-]*{_WORD}[\w.-]*)$")
_FLAG_EQ = re.compile(rf"(?i)(--?[\w.-]*{_WORD}[\w.-]*=)(\S+)")
_FLAG_SPACE = re.compile(rf"(?i)((?:^|\s)--?[\w.-]*{_WORD}[\w.-]*\s+)([^\s-]\S*)")
_SHORT_P = re.compile(r"((?:^|\s)-p\s+)(\S+)")
_PAIR = re.compile(rf"(?i)\b([\w.-]*{_WORD}[\w.-]*)=((?:\"[^\"]*\"|'[^']*'|\S)+)")
_HEADER = re.compile(r"(?i)\b((?:proxy-)?authorization|cookie|set-cookie|"
                     rf"x-[\w-]*(?:{_WORD}|key)[\w-]*)(\s*:\s*)((?:bearer|basic|token|digest)\s+)?"
                     r"([^\s'\"]+)")
_URL_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s/:@'\"]*:)([^\s@/'\"]+)(@)")


def secret_path(path: str) -> bool:
    """Is the value at this diff path secret as a whole (by where it is)?"""
    if _SECRET_PLACES.search(path):
        return True
    return any(_SECRET_KEY.search(part) for part in _segments(path))


def _segments(path: str) -> list[str]:
    """``container[app].healthCheck.command`` → ``["healthCheck", "command"]`` (the container's
    own name says nothing about secrets)."""
    return [p for p in re.sub(r"container\[[^\]]*\]", "", path).split(".") if p]


def scrub(text: str) -> str:
    """``text`` with every secret-looking part replaced by *** (the rest left as it was)."""
    out = _URL_CREDENTIALS.sub(lambda m: m.group(1) + REDACTED + m.group(3), text)
    out = _HEADER.sub(lambda m: m.group(1) + m.group(2) + (m.group(3) or "") + REDACTED, out)
    out = _FLAG_EQ.sub(lambda m: m.group(1) + REDACTED, out)
    out = _FLAG_SPACE.sub(lambda m: m.group(1) + REDACTED, out)
    out = _SHORT_P.sub(lambda m: m.group(1) + REDACTED, out)
    return _PAIR.sub(lambda m: m.group(1) + "=" + REDACTED, out)


def scrub_args(args: list) -> list:
    """An argv (command, entryPoint, healthCheck command) with secrets hidden: values of flags
    that name a secret (``--password x``, ``-p x``) and secret-looking parts of each argument."""
    out: list = []
    hide_next = False
    for arg in args:
        if not isinstance(arg, str):
            out.append(scrub_value(arg))
            hide_next = False
            continue
        if hide_next and not arg.startswith("-"):
            out.append(REDACTED)
        else:
            out.append(scrub(arg))
        hide_next = bool(_FLAG.match(arg)) or arg == "-p"
    return out


def scrub_value(value: Any) -> Any:
    """Any JSON value with secret-looking strings scrubbed, and whatever sits under a key that
    names a secret replaced whole."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, list):
        return scrub_args(value) if all(isinstance(v, str) for v in value) else \
            [scrub_value(v) for v in value]
    if isinstance(value, dict):
        if isinstance(value.get("name"), str) and _SECRET_KEY.search(value["name"]):
            # {"name": "AuthToken", "value": …}: environment-like pairs anywhere
            return {k: REDACTED if k in ("value", "valueFrom") and v is not None
                    else scrub_value(v) for k, v in value.items()}
        return {k: _whole(v) if isinstance(k, str) and (_SECRET_KEY.search(k) or
                                                        _WHOLE.match(k)) and v is not None
                else scrub_value(v) for k, v in value.items()}
    return value


def _whole(value: Any) -> Any:
    """Everything under a secret key hidden; a table keeps its keys (which option changed)."""
    return {k: REDACTED for k in value} if isinstance(value, dict) else REDACTED
