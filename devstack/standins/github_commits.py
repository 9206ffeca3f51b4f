"""The GitHub stand-in's commit history: what ``GET commits/{sha}`` and ``GET compare/{b}...{h}``
answer, as GitHub shapes them.

Fed by ``POST /_devstack/github/commits {"repository", "commits": [{"sha", "author", "committer",
"parents"}]}``: ``author``/``committer`` are GitHub logins, or null for an e-mail GitHub links to
no account (GitHub then answers ``"author": null``); ``parents`` are full SHAs. Lookups accept a
unique prefix of at least 7 characters, as GitHub does. ``compare`` lists the commits reachable
from head and not from base, oldest first, paginated with ``per_page``/``page``.
"""
from __future__ import annotations

import re
import threading
from datetime import datetime, timezone
from typing import Any

_SHA = re.compile(r"^[0-9a-f]{7,40}$")
_LOGIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$")
Reply = tuple[int, Any]


class BadCommits(ValueError):
    """The body does not describe commits the way the contract says."""


class History:
    """Commits per repository (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._commits: dict[str, dict[str, dict]] = {}  # repo (lower) → sha → commit

    def add(self, repo: Any, commits: Any) -> int:
        """Store commits (a later one with the same SHA replaces the earlier); return how many."""
        if not isinstance(repo, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", repo):
            raise BadCommits("'repository' must be 'owner/name'")
        if not isinstance(commits, list) or not commits:
            raise BadCommits("'commits' must be a non-empty list")
        clean = [_commit(c) for c in commits]
        with self._lock:
            known = self._commits.setdefault(repo.lower(), {})
            for commit in clean:
                known[commit["sha"]] = commit
        return len(clean)

    def knows(self, repo: str, sha: str) -> bool:
        return self._find(repo, sha) is not None

    def newest(self, repo: str) -> str | None:
        """The SHA added last for ``repo`` (the devstack's pushes extend a linear history)."""
        with self._lock:
            known = self._commits.get(repo.lower()) or {}
            return next(reversed(known), None) if known else None

    def commit(self, repo: str, sha: str) -> Reply:
        found = self._find(repo, sha)
        if found is None:
            return 404 if _SHA.match(sha.lower()) else 422, {
                "message": f"No commit found for SHA: {sha}"}
        return 200, _shape(found)

    def compare(self, repo: str, base: str, head: str, page: int, per_page: int) -> Reply:
        old, new = self._find(repo, base), self._find(repo, head)
        if old is None or new is None:
            return 404, {"message": "Not Found"}
        ahead = self._ancestors(repo, new["sha"]) - self._ancestors(repo, old["sha"])
        behind = self._ancestors(repo, old["sha"]) - self._ancestors(repo, new["sha"])
        status = ("identical" if not ahead and not behind else "ahead" if not behind
                  else "behind" if not ahead else "diverged")
        ordered = [c for c in self._order(repo, new["sha"]) if c in ahead]
        chunk = ordered[(page - 1) * per_page: page * per_page]
        with self._lock:
            known = self._commits[repo.lower()]
            commits = [_shape(known[sha]) for sha in chunk]
        return 200, {"status": status, "ahead_by": len(ahead), "behind_by": len(behind),
                     "total_commits": len(ahead), "commits": commits,
                     "base_commit": _shape(old)}

    # -- helpers --------------------------------------------------------------------------------
    def _find(self, repo: str, sha: str) -> dict | None:
        sha = sha.lower()
        with self._lock:
            known = self._commits.get(repo.lower()) or {}
            hits = [full for full in known if full == sha or (len(sha) >= 7 and
                                                              full.startswith(sha))]
            return dict(known[hits[0]]) if len(hits) == 1 else None

    def _ancestors(self, repo: str, sha: str) -> set[str]:
        """``sha`` and every commit reachable through parents (unknown parents end the walk)."""
        with self._lock:
            known = self._commits.get(repo.lower()) or {}
            seen, todo = set(), [sha]
            while todo:
                current = todo.pop()
                if current in seen or current not in known:
                    continue
                seen.add(current)
                todo.extend(known[current]["parents"])
            return seen

    def _order(self, repo: str, head: str) -> list[str]:
        """Ancestors of ``head``, parents before children (GitHub lists oldest first)."""
        with self._lock:
            known = self._commits.get(repo.lower()) or {}
        out: list[str] = []
        done: set[str] = set()

        def visit(sha: str) -> None:
            stack = [(sha, False)]
            while stack:
                current, expanded = stack.pop()
                if current in done or current not in known:
                    continue
                if expanded:
                    done.add(current)
                    out.append(current)
                    continue
                stack.append((current, True))
                stack.extend((p, False) for p in reversed(known[current]["parents"]))

        visit(head)
        return out


def _commit(raw: Any) -> dict:
    if not isinstance(raw, dict) or not isinstance(raw.get("sha"), str):
        raise BadCommits('each commit is {"sha", "author", "committer", "parents"}')
    sha = raw["sha"].lower()
    if not re.fullmatch(r"[0-9a-f]{40}", sha):
        raise BadCommits(f"commit sha {raw['sha']!r} is not 40 hex characters")
    people = {}
    for role in ("author", "committer"):
        who = raw.get(role)
        if who is not None and (not isinstance(who, str) or not _LOGIN.match(who)):
            raise BadCommits(f"commit {sha[:12]}: '{role}' must be a GitHub login or null")
        people[role] = who
    parents = raw.get("parents", [])
    if not isinstance(parents, list) or not all(isinstance(p, str) and
                                                re.fullmatch(r"[0-9a-fA-F]{40}", p)
                                                for p in parents):
        raise BadCommits(f"commit {sha[:12]}: 'parents' must be a list of 40-character SHAs")
    return {"sha": sha, **people, "parents": [p.lower() for p in parents],
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}


def _shape(commit: dict) -> dict:
    """A commit as GitHub's REST API shows it (the fields Slipway reads, and a few more)."""
    def person(login: str | None) -> dict:
        name = login or "someone"
        return {"name": name, "email": f"{name}@users.noreply.example", "date": commit["date"]}

    return {"sha": commit["sha"],
            "author": {"login": commit["author"]} if commit["author"] else None,
            "committer": {"login": commit["committer"]} if commit["committer"] else None,
            "commit": {"author": person(commit["author"]),
                       "committer": person(commit["committer"]), "message": ""},
            "parents": [{"sha": p} for p in commit["parents"]]}
