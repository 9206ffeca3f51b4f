"""GitHub adapter: deployments, deployment statuses and who wrote a change, over REST.

``change_authors(repo, base, head)`` names the authors and committers of every commit from ``base``
(the last successful deployment's commit; None for a first deployment) to ``head``, with the
compare API (``GET /repos/{o}/{r}/compare/{base}...{head}``; ``GET commits/{sha}`` without a
base). When GitHub cannot say, it raises ``AuthorsUnknown`` with the reason a person can act on:
an unknown commit, a commit whose author or committer GitHub maps to no account, more commits than
it will list. Self-review rules fail closed on it.

A few endpoints do not justify a client library (cold start, package size):
plain HTTP with the ``urllib3`` that botocore already ships. Every failure
(non-2xx, refused connection, timeout, unreadable answer) becomes one
``NotificationError`` carrying the status and GitHub's message, never the token.
Calls time out quickly and are not retried here; the caller records the failure and the
reconciler asks again.
"""
from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

import urllib3

from chalicelib.adapters.errors import NotificationError

DEFAULT_API_URL = "https://api.github.com"
DEFAULT_TIMEOUT = 3.0
API_VERSION = "2022-11-28"
DESCRIPTION_LIMIT = 140
STATES = frozenset({"error", "failure", "inactive", "in_progress", "queued", "pending", "success"})
COMPARE_PAGES = 10  # 100 commits a page: a release of more than 1,000 commits is refused


class AuthorsUnknown(NotificationError):
    """GitHub answered, but who wrote the change cannot be told from its answer."""

_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


class GitHubClient:
    """The few GitHub REST calls Slipway makes, with errors translated."""

    def __init__(self, token: str, api_url: str = DEFAULT_API_URL, timeout: float = DEFAULT_TIMEOUT):
        self._token = token
        self._api_url = api_url.rstrip("/")
        self._http = urllib3.PoolManager(timeout=urllib3.Timeout(total=timeout), retries=False)

    def __repr__(self) -> str:
        return f"GitHubClient(api_url={self._api_url!r})"

    def create_deployment(
        self,
        repo: str,
        ref: str,
        environment: str,
        payload: dict[str, Any],
        description: str,
        production: bool,
    ) -> int:
        """Create a deployment of ``ref`` to ``environment``; return its id."""
        body = {
            "ref": ref,
            "environment": environment,
            "payload": payload,
            "description": _truncate(description),
            "auto_merge": False,  # GitHub defaults to merging the default branch first
            "required_contexts": [],  # omitted would mean "all checks must pass"
            "transient_environment": False,
            "production_environment": bool(production),
        }
        data = self._request("POST", f"{_repo_path(repo)}/deployments", body)
        try:
            return int(data["id"])
        except (KeyError, TypeError, ValueError) as exc:
            raise NotificationError("github create deployment: answer has no id") from exc

    def create_status(
        self,
        repo: str,
        deployment_id: int,
        state: str,
        description: str,
        log_url: str | None = None,
        environment_url: str | None = None,
    ) -> None:
        """Post a deployment status; ``description`` is cut to GitHub's 140 chars."""
        if state not in STATES:
            raise ValueError(f"unknown GitHub deployment state {state!r}; expected one of {sorted(STATES)}")
        body: dict[str, Any] = {"state": state, "description": _truncate(description)}
        if log_url:
            body["log_url"] = log_url
        if environment_url:
            body["environment_url"] = environment_url
        path = f"{_repo_path(repo)}/deployments/{int(deployment_id)}/statuses"
        self._request("POST", path, body)

    def commit_author(self, repo: str, sha: str) -> str | None:
        """The GitHub login of a commit's author; None when GitHub does not know it."""
        return self.commit_info(repo, sha)[0]

    def commit_info(self, repo: str, sha: str) -> tuple[str | None, str | None]:
        """(author's login, committer date ISO) of a commit, from one call; Nones when unknown."""
        try:
            data = self._request("GET", f"{_repo_path(repo)}/commits/{quote(sha, safe='')}")
        except NotificationError as exc:
            if exc.status in (404, 422):  # no such commit (422: not a valid SHA)
                return None, None
            raise
        author = data.get("author")
        login = author.get("login") if isinstance(author, dict) else None
        committer = (data.get("commit") or {}).get("committer") if isinstance(
            data.get("commit"), dict) else None
        date = committer.get("date") if isinstance(committer, dict) else None
        return (str(login) if login else None), (date if isinstance(date, str) else None)

    def change_authors(self, repo: str, base: str | None, head: str) -> list[str]:
        """Logins of the authors and committers of every commit in ``base...head`` (just ``head``
        without a base, or when ``head`` is not ahead of it); AuthorsUnknown if any is unknown."""
        commits = self._compare(repo, base, head) if base and base != head else []
        if not commits:
            commits = [self._commit(repo, head)]
        logins: list[str] = []
        for commit in commits:
            for role in ("author", "committer"):
                logins.append(_login(commit, role))
        return sorted(set(logins))

    def _commit(self, repo: str, sha: str) -> dict:
        try:
            return self._request("GET", f"{_repo_path(repo)}/commits/{quote(sha, safe='')}")
        except NotificationError as exc:
            if exc.status in (404, 422):
                raise AuthorsUnknown(f"GitHub does not know commit {sha[:12]} in {repo}",
                                     status=exc.status) from exc
            raise

    def _compare(self, repo: str, base: str, head: str) -> list[dict]:
        path = f"{_repo_path(repo)}/compare/{quote(base, safe='')}...{quote(head, safe='')}"
        commits: list[dict] = []
        for page in range(1, COMPARE_PAGES + 1):
            try:
                data = self._request("GET", f"{path}?per_page=100&page={page}")
            except NotificationError as exc:
                if exc.status in (404, 422):
                    raise AuthorsUnknown(f"GitHub cannot compare {base[:12]}...{head[:12]} in "
                                         f"{repo} (it does not know one of them)",
                                         status=exc.status) from exc
                raise
            got = data.get("commits")
            if not isinstance(got, list):
                raise AuthorsUnknown(f"GitHub's compare of {base[:12]}...{head[:12]} lists no "
                                     "commits")
            commits += [c for c in got if isinstance(c, dict)]
            total = data.get("total_commits")
            if not isinstance(total, int) or len(commits) >= total or not got:
                return commits
        raise AuthorsUnknown(f"{base[:12]}...{head[:12]} has more than "
                             f"{COMPARE_PAGES * 100} commits; Slipway will not guess who wrote them")

    def _headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self._token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": "slipway",
        }

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """One call; a 2xx JSON object comes back, anything else raises."""
        what = f"github {method} {path}"
        encoded = json.dumps(body).encode("utf-8") if body is not None else None
        headers = self._headers()  # urllib3 replaces, not merges, per-request headers
        if encoded is not None:
            headers["Content-Type"] = "application/json"
        try:
            resp = self._http.request(method, self._api_url + path, body=encoded, headers=headers)
        except urllib3.exceptions.HTTPError as exc:
            raise NotificationError(self._scrub(f"{what} failed: {type(exc).__name__}: {exc}"[:400])) from exc
        data = _json(resp.data)
        if not 200 <= resp.status < 300:
            message = str(data.get("message") or "no message")[:200]
            raise NotificationError(
                self._scrub(f"{what} failed: HTTP {resp.status}: {message}"), status=resp.status, error=message
            )
        return data

    def _scrub(self, message: str) -> str:
        """Belt and braces: never let the token reach a message or a log line."""
        return message.replace(self._token, "***") if self._token else message


def _login(commit: dict, role: str) -> str:
    """The GitHub login of a commit's author or committer, or AuthorsUnknown saying whose."""
    who = commit.get(role)
    login = who.get("login") if isinstance(who, dict) else None
    if isinstance(login, str) and login:
        return login
    sha = str(commit.get("sha") or "?")[:12]
    raise AuthorsUnknown(f"the {role} of commit {sha} has no GitHub account Slipway can "
                         "match (its e-mail is linked to no GitHub user)")


def _repo_path(repo: str) -> str:
    """``/repos/owner/name``, refusing anything that could escape the path."""
    if not isinstance(repo, str) or not _REPO.match(repo) or ".." in repo:
        raise ValueError(f"not a GitHub repository 'owner/name': {repo!r}")
    return f"/repos/{repo}"


def _truncate(text: str | None, limit: int = DESCRIPTION_LIMIT) -> str:
    """Cut to ``limit`` characters, ending with an ellipsis when cut."""
    text = text or ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _json(raw: bytes) -> dict[str, Any]:
    """Decode a JSON object; anything else becomes an empty dict."""
    try:
        data = json.loads(raw.decode("utf-8")) if raw else {}
    except (UnicodeDecodeError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
