"""GitHub follows a deployment: a GitHub Deployment per Slipway deployment, and its statuses.

    PENDING_APPROVAL                 queued       (log_url: the Slipway deployment)
    APPROVED, MIGRATING, DEPLOYING   in_progress
    VERIFYING (the bake)             in_progress  ("Baking until …, watching alarms …")
    SUCCEEDED                        success
    FAILED, ROLLED_BACK              failure
    REJECTED, SUPERSEDED, EXPIRED    inactive

For a service with ``prevent_self_review`` it also asks GitHub who wrote the change: the authors
and committers of every commit since the service's last SUCCEEDED deployment (the commit itself
for a first one), recorded as ``notifications["authors"]`` (``github:<login>``s), which nobody of
them may approve. When GitHub cannot say (unknown commit, an author GitHub maps to no account,
GitHub down), the reason goes to ``notifications["authors_unknown"]``: approvals are refused with it
(fail closed) and the channel stays pending, so the reconciler asks again; once it succeeds, the
hold is lifted and the Slack message is told ("AUTHORS").
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
AUTHORS = "AUTHORS"  # the change told when who wrote a deployment became known
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
        if changes == [AUTHORS]:
            return  # our own announcement, for the Slack message
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
            held = "authors_unknown" in dep.notifications
            try:
                self._sync(dep, svc)
            finally:
                if held and "authors_unknown" not in dep.notifications:
                    self._deps.tell(dep, [AUTHORS])  # approvals are open again: say so
        except Exception as exc:
            mark_pending(self._deps, dep, CHANNEL, exc)
            return False
        return True

    # -- steps ---------------------------------------------------------------------------------
    def _sync(self, dep: Deployment, svc) -> None:
        client = self._client()
        repo = svc.notify.github_repository
        found: dict[str, Any] = {}
        unknown = self._authors(dep, svc, client, found)
        if dep.kind == "deploy" and dep.commit and "commit_time" not in dep.notifications:
            try:
                committed = client.commit_info(repo, dep.commit)[1]
            except NotificationError:  # best effort: asked again at the next sync
                committed = None
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
        if unknown is not None:
            raise unknown  # pending: the reconciler asks GitHub again
        if is_pending(dep, CHANNEL):
            remember(self._deps, dep, clear_pending(CHANNEL))

    def _authors(self, dep: Deployment, svc, client, found: dict) -> Exception | None:
        """Ask GitHub who wrote the change (once known, never again); put the answer, or why
        there is none, in ``found``; return the failure."""
        if not needs_authors(dep, svc) or "authors" in dep.notifications:
            return None
        from chalicelib.adapters.github import AuthorsUnknown

        try:
            base = self._base_commit(dep)
            logins = client.change_authors(svc.notify.github_repository, base, dep.commit)
        except NotificationError as exc:
            found["authors_unknown"] = exc.message if isinstance(exc, AuthorsUnknown) else \
                f"GitHub could not be asked who wrote it ({exc.message})"
            return exc
        found["authors"] = [f"github:{login}" for login in logins]
        return None

    def _base_commit(self, dep: Deployment) -> str | None:
        """The commit the service runs now: its newest SUCCEEDED deployment's (None: first). The
        head item read when the push was decided says it (``dep.base``); when it could not (a
        head written before it kept this, or a later re-sync), the ledger is asked."""
        from chalicelib.adapters.github import AuthorsUnknown

        if dep.base is not None:
            last = dep.base or None
        else:
            done = self._deps.ledger.list(service=dep.service, state=State.SUCCEEDED.value,
                                          limit=1)
            last = {"id": done[0].id, "commit": done[0].commit} if done else None
        if not last:
            return None
        if not last.get("commit"):
            raise AuthorsUnknown(f"the last successful deployment {last.get('id')} names no "
                                 "commit, so the commits since then cannot be listed")
        return last["commit"]

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


def needs_authors(dep: Deployment, svc) -> bool:
    """Does approving this deployment depend on who wrote it?"""
    return bool(svc.approval.prevent_self_review and dep.kind in ("deploy", "promote")
                and dep.state is State.PENDING_APPROVAL and dep.commit
                and svc.notify.github_repository)


def _merge(found: dict) -> Callable[[dict], bool]:
    def update(notes: dict) -> bool:
        notes.update(found)
        if "authors" in found:
            notes.pop("authors_unknown", None)
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
