"""Load and validate ``ecs/<stage>/services.toml``: fail at load time, naming file, service and key.

    [[service]]
    name = "web"                       # the API's key for this service
    repository = "web"                 # ECR repository whose pushes deploy it
    cluster = "prod"; service = "web"; container = "app"
    task_definition = "task-definition.json"   # optional template beside this file
    deploy_tags = '^[0-9a-f]{7}$'      # optional regex (full match); `latest` never deploys
    rollout_timeout_minutes = 60       # optional: a rollout ECS never settles is FAILED after this
    task_roles = ["arn:aws:iam::…:role/…"]  # without task_definition: the roles its revisions carry
    [service.migration]  command = ["pnpm", "db:migrate"]; timeout_minutes = 30
    [service.approval]   required, approvers, quorum, wait_minutes, expires_hours, prevent_self_review
    [service.notify]     slack_channel, github_repository, github_environment
    [service.prune]      keep = 10; only_tags = '^\\d+\\.\\d+\\.\\d+-[0-9a-f]{7}$'
    [service.promote]    from = "web-staging"   # see config_ops.py (also [[freeze]] windows)
    [service.verify]     bake_minutes = 10; alarms = ["<CloudWatch alarm name>", ...]

    [identities]                        # optional: who is who across channels (self-review)
    "github:octocat" = ["slack:U0123"]
"""
from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chalicelib import config_approval, config_ops
from chalicelib.domain.freeze import Window
from chalicelib.domain.taskdef import validate_template
from chalicelib.errors import ConfigError

DEFAULT_DEPLOY_TAGS = r"(?!latest$).+"
_IDENTITY = re.compile(r"(slack:U[A-Z0-9]+|slack:W[A-Z0-9]+|github:[A-Za-z0-9-]+)")


@dataclass(frozen=True)
class Migration:
    command: tuple[str, ...]
    timeout_minutes: float = 30


@dataclass(frozen=True)
class Approval:
    required: bool = True
    approvers: tuple[str, ...] = ()
    quorum: int = 1
    wait_minutes: float = 0
    expires_hours: float = 24
    prevent_self_review: bool = False


@dataclass(frozen=True)
class Notify:
    slack_channel: str | None = None
    github_repository: str | None = None
    github_environment: str = "production"


@dataclass(frozen=True)
class Prune:
    keep: int = 10
    only_tags: re.Pattern[str] | None = None


@dataclass(frozen=True)
class Verify:
    """The bake after ECS reports COMPLETED; the alarms are ECS's deployment alarms too."""
    bake_minutes: float = 10
    alarms: tuple[str, ...] = ()


@dataclass(frozen=True)
class ServiceConfig:
    name: str
    repository: str
    cluster: str
    service: str
    container: str
    deploy_tags: re.Pattern[str]
    template: dict | None = None
    task_definition: str | None = None
    migration: Migration | None = None
    approval: Approval = field(default_factory=Approval)
    notify: Notify = field(default_factory=Notify)
    prune: Prune = field(default_factory=Prune)
    verify: Verify | None = None
    rollout_timeout_minutes: float = 60
    promote: config_ops.Promote | None = None  # deployed only by promotion (and rollback)
    task_roles: tuple[str, ...] = ()  # roles a cloned task definition carries (IAM PassRole)


@dataclass(frozen=True)
class Config:
    path: str
    services: tuple[ServiceConfig, ...]
    identities: dict[str, frozenset[str]] = field(default_factory=dict)
    freezes: tuple[Window, ...] = ()

    def service(self, name: str) -> ServiceConfig | None:
        return next((s for s in self.services if s.name == name), None)

    def for_repository(self, repository: str) -> list[ServiceConfig]:
        return [s for s in self.services if s.repository == repository]

    def same_person(self, identity: str) -> frozenset[str]:
        """Every identity known to belong to whoever ``identity`` is (itself included)."""
        for main, aliases in self.identities.items():
            group = aliases | {main}
            if identity in group:
                return frozenset(group)
        return frozenset({identity})


_SECTIONS: dict[str, tuple[type, dict[str, Any]]] = {
    "migration": (Migration, {"command": list, "timeout_minutes": (int, float)}),
    "approval": (Approval, {"required": bool, "approvers": list, "quorum": int,
                            "wait_minutes": (int, float), "expires_hours": (int, float),
                            "prevent_self_review": bool}),
    "notify": (Notify, {"slack_channel": str, "github_repository": str,
                        "github_environment": str}),
    "prune": (Prune, {"keep": int, "only_tags": str}),
    "verify": (Verify, {"bake_minutes": (int, float), "alarms": list}),
}
_TOP = {"name": str, "repository": str, "cluster": str, "service": str, "container": str,
        "task_definition": str, "deploy_tags": str, "rollout_timeout_minutes": (int, float),
        "task_roles": list}
_ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+")
_REQUIRED = ("name", "repository", "cluster", "service", "container")


def load(path: str | Path) -> Config:
    """Read and validate services.toml; raise ConfigError naming file, service and key."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: file not found") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    unknown = set(raw) - {"service", "identities", "freeze"}
    if unknown:
        raise ConfigError(f"{path}: unknown top-level key(s): {', '.join(sorted(unknown))}")
    entries = raw.get("service")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{path}: no [[service]] tables")
    services = tuple(_service(path, i, entry) for i, entry in enumerate(entries))
    names = [s.name for s in services]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"{path}: service name(s) used twice: {', '.join(dupes)}")
    config_ops.check_promotions(path, services)
    cfg = Config(str(path), services, _identities(path, raw.get("identities", {})),
                 config_ops.freezes(path, raw.get("freeze"), set(names)))
    config_approval.check_approvals(path, services, cfg.same_person)
    return cfg


def _service(path: Path, index: int, entry: Any) -> ServiceConfig:
    label = f"{path}: service #{index + 1}"
    if not isinstance(entry, dict):
        raise ConfigError(f"{label}: must be a table")
    if isinstance(entry.get("name"), str):
        label = f"{path}: service {entry['name']!r}"
    sections = {k: entry[k] for k in _SECTIONS if k in entry}
    top = {k: v for k, v in entry.items() if k not in _SECTIONS and k != "promote"}
    _check_keys(label, top, _TOP)
    for key in _REQUIRED:
        if not top.get(key):
            raise ConfigError(f"{label}: missing required key '{key}'")
    values: dict[str, Any] = {k: top[k] for k in _REQUIRED}
    values["deploy_tags"] = _regex(label, "deploy_tags", top.get("deploy_tags", DEFAULT_DEPLOY_TAGS))
    if "rollout_timeout_minutes" in top:
        _positive(label, top, "rollout_timeout_minutes")
        values["rollout_timeout_minutes"] = top["rollout_timeout_minutes"]
    if "task_roles" in top:
        bad = [r for r in top["task_roles"] if not isinstance(r, str) or not _ROLE_ARN.fullmatch(r)]
        if bad or not top["task_roles"]:
            raise ConfigError(f"{label}: key 'task_roles' must list IAM role ARNs")
        values["task_roles"] = tuple(top["task_roles"])
    if "task_definition" in top:
        values["task_definition"] = top["task_definition"]
        values["template"] = _template(label, path.parent / top["task_definition"], top["container"])
    for name, body in sections.items():
        values[name] = _section(f"{label}: [service.{name}]", name, body)
    if "promote" in entry:
        values["promote"] = config_ops.promote(label, entry["promote"])
    return ServiceConfig(**values)


def _check_keys(label: str, table: dict, schema: dict[str, Any]) -> None:
    for key, value in table.items():
        if key not in schema:
            raise ConfigError(f"{label}: unknown key '{key}' (known: {', '.join(sorted(schema))})")
        if isinstance(value, bool) and schema[key] is not bool:
            raise ConfigError(f"{label}: key '{key}' has the wrong type")
        if not isinstance(value, schema[key]):
            raise ConfigError(f"{label}: key '{key}' has the wrong type ({type(value).__name__})")


def _section(label: str, name: str, body: Any) -> Any:
    if not isinstance(body, dict):
        raise ConfigError(f"{label}: must be a table")
    cls, schema = _SECTIONS[name]
    _check_keys(label, body, schema)
    values = dict(body)
    if name == "migration":
        command = values.get("command")
        if not command or not all(isinstance(c, str) and c for c in command):
            raise ConfigError(f"{label}: key 'command' must be a non-empty list of strings")
        values["command"] = tuple(command)
        _positive(label, values, "timeout_minutes")
    elif name == "approval":
        approvers = values.get("approvers", [])
        bad = [a for a in approvers if not isinstance(a, str) or
               not (_IDENTITY.fullmatch(a) or a == config_approval.ANYONE)]
        if bad:
            raise ConfigError(f"{label}: key 'approvers' has invalid identities {bad} "
                              "(use 'slack:U…', 'github:login', or \"*\" alone for anyone)")
        values["approvers"] = tuple(approvers)
        _positive(label, values, "quorum", "expires_hours")
        if values.get("wait_minutes", 0) < 0:
            raise ConfigError(f"{label}: key 'wait_minutes' must not be negative")
    elif name == "prune":
        _positive(label, values, "keep")
        if "only_tags" in values:
            values["only_tags"] = _regex(label, "only_tags", values["only_tags"])
    elif name == "verify":
        alarms = values.get("alarms", [])
        if not all(isinstance(a, str) and 0 < len(a) <= 255 for a in alarms) or \
                len(set(alarms)) != len(alarms):
            raise ConfigError(f"{label}: key 'alarms' must list distinct CloudWatch alarm names")
        values["alarms"] = tuple(alarms)
        _positive(label, values, "bake_minutes")
    return cls(**values)


def _positive(label: str, values: dict, *keys: str) -> None:
    for key in keys:
        if key in values and values[key] <= 0:
            raise ConfigError(f"{label}: key '{key}' must be positive")


def _regex(label: str, key: str, pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ConfigError(f"{label}: key '{key}' is not a valid regex: {exc}") from exc


def _template(label: str, file: Path, container: str) -> dict:
    try:
        body = json.loads(file.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"{label}: key 'task_definition': {file.name} not found") from exc
    except ValueError as exc:
        raise ConfigError(f"{label}: key 'task_definition': {file.name} is not JSON: {exc}") from exc
    try:
        validate_template(body, container)
    except ConfigError as exc:
        raise ConfigError(f"{label}: key 'task_definition': {file.name} {exc.message}") from exc
    return body


def _identities(path: Path, table: Any) -> dict[str, frozenset[str]]:
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [identities] must be a table")
    out = {}
    for main, aliases in table.items():
        ids = [main, *aliases] if isinstance(aliases, list) else None
        if not ids or not all(isinstance(i, str) and _IDENTITY.fullmatch(i) for i in ids):
            raise ConfigError(f"{path}: [identities] key '{main}': use "
                              "\"github:login\" = [\"slack:U…\"]")
        out[main] = frozenset(aliases)
    config_approval.check_identities(path, out)
    return out
