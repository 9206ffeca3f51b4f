"""GitHub follows a deployment: a GitHub Deployment per Slipway deployment, and its statuses.

    PENDING_APPROVAL                 queued       (log_url: the Slipway deployment)
    APPROVED, MIGRATING, DEPLOYING   in_progress
    VERIFYING (the bake)             in_progress  ("Baking until …, watching alarms …")
    SUCCEEDED                        success
    FAILED, ROLLED_BACK              failure
    REJECTED, SUPERSEDED, EXPIRED    inactive

On creation it also asks GitHub who wrote the commit and records ``github:<login>`` as the
deployment's author, which the approval policy uses for ``prevent_self_review``. When GitHub cannot
say (unknown commit, no GitHub user, GitHub down), nobody is treated as the author: self-review is
then not prevented for that deployment, and the failure is logged.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

from chalicelib.domain.model import Deployment, State
from chalicelib.service.deps import Deps
from chalicelib.service.notify import (clear_pending, is_pending, mark_pending, needs_resync,
                                       remember)
from chalicelib.service.ports import NotificationError

CHANNEL = "github"
S = State
STATUS: dict[State, str] = {
    S.PENDING_APPROVAL: "queued", S.APPROVED: "in_progress", S.MIGRATING: "in_progress",
    S.DEPLOYING: "in_progress", S.VERIFYING: "in_progress", S.SUCCEEDED: "success",
    S.FAILED: "failure",
    S.ROLLED_BACK: "failure", S.REJECTED: "inactive", S.SUPERSEDED: "inactive",
    S.EXPIRED: "inactive",
}


class GitHubNotifier:
    """Creates the GitHub Deployment, records the commit author, posts a status per state."""

    channel = CHANNEL

    def __init__(self, deps: Deps, client_factory: Callable[[], Any]):
        self._deps = deps
        self._client = functools.cache(client_factory)  # built on first use, once per container

    def channels(self, svc) -> list[str]:
        return [CHANNEL] if svc.notify.github_repository else []

    def changed(self, dep: Deployment, changes: list[str]) -> None:
        svc = self._deps.config.service(dep.service)
        if svc is None or not svc.notify.github_repository:
            return
        try:
            if "CREATED" in changes or needs_resync(self._deps, dep, CHANNEL):
                self._sync(dep, svc)
            elif dep.state.value in changes:
                self._status(dep, svc, _deployment_id(dep) or self._stored_id(dep, svc))
        except Exception as exc:  # NotificationError, or a bug: never break the pipeline
            mark_pending(self._deps, dep, CHANNEL, exc)

    def resync(self, dep: Deployment) -> bool:
        """Create what is missing and post the current status; True when GitHub is in sync."""
        svc = self._deps.config.service(dep.service)
        try:
            if svc is None or not svc.notify.github_repository:
                remember(self._deps, dep, clear_pending(CHANNEL))
                return True
            self._sync(dep, svc)
        except Exception as exc:
            mark_pending(self._deps, dep, CHANNEL, exc)
            return False
        return True

    # -- steps ---------------------------------------------------------------------------------
    def _sync(self, dep: Deployment, svc) -> None:
        client = self._client()
        repo = svc.notify.github_repository
        found: dict[str, Any] = {}
        if dep.kind == "deploy" and dep.commit and "author" not in dep.notifications:
            login, committed = client.commit_info(repo, dep.commit)
            if login:
                found["author"] = f"github:{login}"
            if committed:
                found["commit_time"] = committed  # the DORA lead time starts here
        gh_id, failure = _deployment_id(dep), None
        if gh_id is None:
            environment = svc.notify.github_environment
            try:
                gh_id = client.create_deployment(
                    repo, ref=dep.commit or dep.image_tag or dep.image_digest,
                    environment=environment,
                    payload={"slipway_id": dep.id, "digest": dep.image_digest, "image": dep.image,
                             **({"forced": dep.forced} if dep.forced else {})},
                    description=_title(dep), production=environment == "production")
                found["github"] = {"id": gh_id, "repository": repo}
            except NotificationError as exc:
                failure = exc
        # The author and the GitHub id reach the ledger before the status is posted: if a later
        # call fails, the retry neither creates a second GitHub deployment nor forgets the author.
        if found:
            remember(self._deps, dep, _merge(found))
        if failure is not None:
            raise failure
        self._status(dep, svc, gh_id)
        if is_pending(dep, CHANNEL):
            remember(self._deps, dep, clear_pending(CHANNEL))

    def _status(self, dep: Deployment, svc, gh_id: int | None) -> None:
        if gh_id is None:
            return  # creation is still on its way (or failed and is pending)
        from chalicelib.service.decisions import view_url

        self._client().create_status(
            svc.notify.github_repository, gh_id, STATUS[dep.state], describe(dep),
            log_url=view_url(self._deps, dep.id))  # the read-only page, with its view token

    def _stored_id(self, dep: Deployment, svc) -> int | None:
        """The GitHub id as the ledger has it (the caller's copy may predate its creation)."""
        fresh = self._deps.ledger.get(dep.id)
        if fresh is not None and needs_resync(self._deps, fresh, CHANNEL) and \
                _deployment_id(fresh) is None:
            self._sync(fresh, svc)
            return None
        return _deployment_id(fresh) if fresh else None


def _merge(found: dict) -> Callable[[dict], bool]:
    def update(notes: dict) -> bool:
        notes.update(found)
        return True

    return update


def _deployment_id(dep: Deployment) -> int | None:
    github = dep.notifications.get(CHANNEL) or {}
    return int(github["id"]) if isinstance(github, dict) and github.get("id") else None


def _title(dep: Deployment) -> str:
    what = dep.version or dep.image_tag or dep.image_digest[:19]
    verb = {"rollback": "Roll back", "promote": "Promote"}.get(dep.kind, "Deploy")
    if dep.forced:  # past migrations, on someone's word: GitHub keeps who and why
        verb = f"FORCED by {dep.forced.get('by')} ({dep.forced.get('reason')}): {verb}"
    source = f" from {dep.promoted_from.get('service')}" if dep.promoted_from else ""
    return f"{verb} {dep.service} {what}{source} (Slipway {dep.id})"


def _baking(dep: Deployment) -> str:
    bake = dep.verify or {}
    return (f"Baking until {str(bake.get('ends_at', ''))[11:19]} UTC, watching alarms "
            f"{', '.join(bake.get('alarms') or [])}")


def describe(dep: Deployment) -> str:
    """One line for the status (the client cuts it to GitHub's 140 characters)."""
    approvers = ", ".join(dict.fromkeys(a["by"] for a in dep.approvals
                                        if a.get("decision") == "approve"))
    lines = {
        S.PENDING_APPROVAL: "Waiting for approval in Slipway",
        S.APPROVED: f"Approved by {approvers}" if approvers else "Approved",
        S.MIGRATING: "Running the database migration",
        S.DEPLOYING: "Rolling out the new task definition",
        S.VERIFYING: _baking(dep),
        S.SUCCEEDED: "Deployed" + (f" in {round(dep.duration_seconds())} s"
                                   if dep.duration_seconds() is not None else ""),
    }
    return lines.get(dep.state) or (dep.reason or dep.state.value.lower().replace("_", " "))
