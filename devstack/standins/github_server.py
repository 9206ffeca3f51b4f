"""A GitHub REST stand-in: deployments, deployment statuses and commits, over real HTTP.

Checks the bearer token (401 ``Bad credentials``) and the payloads the way
GitHub does (422 ``Validation Failed`` with the offending fields), and insists
on what Slipway must send: ``auto_merge: false`` and a ``required_contexts``
list. Records every deployment with its statuses in order. Commits and compares
come from ``history`` (``github_commits.History``, fed by ``POST
/_devstack/github/commits`` or ``set_commit_author``); unknown commits are 404.

Routes (under ``url`` = ``http://127.0.0.1:<port>``, the ``GITHUB_API_URL``):
``POST /repos/{o}/{r}/deployments``, ``POST|GET /repos/{o}/{r}/deployments/{id}/statuses``,
``GET /repos/{o}/{r}/commits/{sha}``, ``GET /repos/{o}/{r}/compare/{base}...{head}``.
"""
from __future__ import annotations

import copy
import hmac
import json
import re
from typing import Any, Callable
from urllib.parse import parse_qs, unquote, urlsplit

from devstack.standins import Reply, StandIn, bearer
from devstack.standins.github_commits import History

STATES = ("error", "failure", "inactive", "in_progress", "queued", "pending", "success")
_REPO = r"/repos/(?P<repo>[^/]+/[^/]+)"
_NOT_FOUND: Reply = (404, {"message": "Not Found"})


class GitHubStandIn(StandIn):
    """GitHub's deployments API on loopback, recording deployments and statuses."""

    def __init__(self, token: str = "ghp_standin", host: str = "127.0.0.1", port: int = 0):
        super().__init__(token, host, port)
        self._deployments: list[dict] = []
        self.history = History()
        self._routes: list[tuple[str, re.Pattern, Callable[..., Reply]]] = [
            ("POST", re.compile(_REPO + r"/deployments$"), self._create_deployment),
            ("POST", re.compile(_REPO + r"/deployments/(?P<dep_id>\d+)/statuses$"), self._create_status),
            ("GET", re.compile(_REPO + r"/deployments/(?P<dep_id>\d+)/statuses$"), self._list_statuses),
            ("GET", re.compile(_REPO + r"/commits/(?P<sha>[^/]+)$"), self._commit),
            ("GET", re.compile(_REPO + r"/compare/(?P<base>[^/.]+)\.\.\.(?P<head>[^/.]+)$"),
             self._compare),
        ]

    def deployments(self) -> list[dict]:
        """Deployments received, oldest first, each with ``statuses`` in order."""
        with self._lock:
            return copy.deepcopy(self._deployments)

    def set_commit_author(self, repo: str, sha: str, login: str | None) -> None:
        """A root commit written and committed by ``login`` (None: an e-mail GitHub cannot map);
        ``sha`` is padded to 40 characters if short."""
        self.history.add(repo, [{"sha": sha.lower().ljust(40, "0"), "author": login,
                                 "committer": login, "parents": []}])

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        if self.is_down:
            return 503, {"message": "Service Unavailable"}
        token = bearer(headers)
        if not token or not hmac.compare_digest(token, self.token):
            return 401, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}
        route_path = unquote(urlsplit(path).path)
        for verb, pattern, action in self._routes:
            match = pattern.match(route_path)
            if match and verb == method:
                data: Any = None
                if method == "POST":
                    try:
                        data = json.loads(body.decode("utf-8") or "null")
                    except ValueError:
                        return 400, {"message": "Problems parsing JSON"}
                    if not isinstance(data, dict):
                        return 400, {"message": "Body should be a JSON object"}
                if method == "GET":
                    data = parse_qs(urlsplit(path).query)
                return action(data=data, **match.groupdict())
        return _NOT_FOUND

    def _create_deployment(self, data: dict, repo: str) -> Reply:
        errors = _deployment_errors(data)
        if errors:
            return _invalid(errors)
        with self._lock:
            deployment = {
                "id": len(self._deployments) + 1,
                "repo": repo,
                "ref": data["ref"],
                "sha": data["ref"] if re.fullmatch(r"[0-9a-fA-F]{40}", data["ref"]) else None,
                "environment": data["environment"],
                "payload": data.get("payload", {}),
                "description": data.get("description"),
                "production_environment": data.get("production_environment", False),
                "transient_environment": data.get("transient_environment", False),
                "statuses": [],
            }
            self._deployments.append(deployment)
            answer = {k: v for k, v in deployment.items() if k not in ("repo", "statuses")}
        answer["url"] = f"{self.url}/repos/{repo}/deployments/{answer['id']}"
        return 201, answer

    def _create_status(self, data: dict, repo: str, dep_id: str) -> Reply:
        with self._lock:
            deployment = self._find(repo, int(dep_id))
            if deployment is None:
                return _NOT_FOUND
            errors = _status_errors(data)
            if errors:
                return _invalid(errors)
            status = {
                "id": sum(len(d["statuses"]) for d in self._deployments) + 1,
                "state": data["state"],
                "description": data.get("description", ""),
                "log_url": data.get("log_url"),
                "environment_url": data.get("environment_url"),
            }
            deployment["statuses"].append(status)
        return 201, dict(status)

    def _list_statuses(self, data: dict, repo: str, dep_id: str) -> Reply:
        with self._lock:
            deployment = self._find(repo, int(dep_id))
            if deployment is None:
                return _NOT_FOUND
            # GitHub lists the newest status first
            return 200, copy.deepcopy(list(reversed(deployment["statuses"])))

    def _commit(self, data: dict, repo: str, sha: str) -> Reply:
        return self.history.commit(repo, sha)

    def _compare(self, data: dict, repo: str, base: str, head: str) -> Reply:
        try:
            page = max(1, int((data.get("page") or ["1"])[0]))
            per_page = min(100, max(1, int((data.get("per_page") or ["30"])[0])))
        except ValueError:
            return 422, {"message": "Validation Failed"}
        return self.history.compare(repo, base, head, page, per_page)

    def _find(self, repo: str, dep_id: int) -> dict | None:
        for deployment in self._deployments:
            if deployment["id"] == dep_id and deployment["repo"].lower() == repo.lower():
                return deployment
        return None


def _deployment_errors(data: dict) -> list[dict]:
    errors = []
    if not isinstance(data.get("ref"), str) or not data["ref"]:
        errors.append(_error("ref", "missing_field"))
    if not isinstance(data.get("environment"), str) or not data["environment"]:
        errors.append(_error("environment", "missing_field"))
    if data.get("auto_merge", True) is not False:  # GitHub's default would merge first
        errors.append(_error("auto_merge", "invalid", "Slipway must send auto_merge: false"))
    contexts = data.get("required_contexts")
    if not isinstance(contexts, list) or not all(isinstance(c, str) for c in contexts):
        errors.append(_error("required_contexts", "invalid", "must be a list (omitted = all checks)"))
    if "payload" in data and not isinstance(data["payload"], (dict, str)):
        errors.append(_error("payload", "invalid"))
    for flag in ("production_environment", "transient_environment"):
        if flag in data and not isinstance(data[flag], bool):
            errors.append(_error(flag, "invalid"))
    if data.get("description") is not None and not isinstance(data["description"], str):
        errors.append(_error("description", "invalid"))
    return errors


def _status_errors(data: dict) -> list[dict]:
    errors = []
    if data.get("state") not in STATES:
        errors.append(_error("state", "invalid", f"state must be one of {', '.join(STATES)}"))
    description = data.get("description", "")
    if not isinstance(description, str) or len(description) > 140:
        errors.append(_error("description", "invalid", "description is too long (maximum is 140 characters)"))
    for field in ("log_url", "environment_url"):
        if data.get(field) is not None and not isinstance(data[field], str):
            errors.append(_error(field, "invalid"))
    return errors


def _error(field: str, code: str, message: str | None = None) -> dict:
    error = {"resource": "Deployment", "field": field, "code": code}
    return {**error, "message": message} if message else error


def _invalid(errors: list[dict]) -> Reply:
    return 422, {"message": "Validation Failed", "errors": errors}
