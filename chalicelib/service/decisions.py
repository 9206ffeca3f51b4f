"""One decision path for every channel: Slack buttons, signed links and the API all end here."""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

from chalicelib.domain import approval, links
from chalicelib.domain.model import Deployment, State
from chalicelib.errors import Conflict
from chalicelib.service import freezes
from chalicelib.service.deps import Deps, retrying

log = logging.getLogger("slipway.decisions")


@dataclass(frozen=True)
class Outcome:
    deployment: Deployment
    message: str


def decide(deps: Deps, dep_id: str, *, identity: str, via: str, decision: str,
           comment: str = "", link_nonce: str | None = None, break_glass: str = "") -> Outcome:
    """Record a verified identity's decision with a conditional write; start the work if approved.

    Raises Conflict (409) when already decided/superseded/expired/locked or the link was used,
    Forbidden (403) for someone who may not decide, NotFound (404) for an unknown deployment.
    """
    comment = (comment or "").strip()[:500]

    def step_with(deps: Deps) -> Outcome:
        dep = deps.load(dep_id)
        svc = deps.service(dep.service)
        if link_nonce and link_nonce in dep.used_tokens:
            raise Conflict("this approval link was already used", code="link_used")
        authors, unknown = who_wrote(deps, dep, svc)
        hold = None
        if decision == approval.APPROVE and dep.state is State.PENDING_APPROVAL:
            hold = freezes.check(deps, dep, identity, break_glass)  # 409 frozen unless glass
        message = approval.decide(dep, svc.approval, identity=identity, via=via,
                                  decision=decision, comment=comment, now=deps.clock(),
                                  authors=authors, authors_unknown=unknown,
                                  person=deps.config.same_person)
        if hold is not None and dep.changes:
            freezes.record_break_glass(deps, dep, identity, break_glass, hold)
        if link_nonce and dep.changes:
            dep.used_tokens.append(link_nonce)
        if dep.changes:
            deps.commit(dep)
        return Outcome(dep, message)

    told: list[str] = []
    collecting = dataclasses.replace(deps, notifier=_Collect(told))
    outcome = retrying(lambda: step_with(collecting))
    dep = outcome.deployment
    if told or dep.state is State.APPROVED:
        hand_over(deps, dep, told)
    return outcome


class _Collect:
    """A notifier that only remembers what changed (the worker tells people: see hand_over)."""

    def __init__(self, told: list[str]) -> None:
        self.told = told

    def changed(self, dep: Deployment, changes: list[str]) -> None:
        self.told.extend(c for c in changes if c not in self.told)


def hand_over(deps: Deps, dep: Deployment, changes: list[str]) -> None:
    """One work message tells people about the decision and starts the work (the worker reads
    the deployment once for both, and the write that claims the next step proves Slack shows the
    truth: no read here after telling). The request answers without waiting for Slack or GitHub;
    if the queue cannot take it, people are told from here and the reconciler starts the work."""
    try:
        deps.dispatcher.advance_later(dep.id, notify=changes or None)
    except Exception:
        log.exception("could not queue %s; telling from here, the reconciler will advance it",
                      dep.id)
        if changes:
            deps.tell(dep, changes)


def who_wrote(deps: Deps, dep: Deployment, svc) -> tuple[frozenset[str], str | None]:
    """(every identity of the people who wrote the change, why that is not known yet). With
    prevent_self_review nobody may approve until GitHub has said (adapters/github_notifier.py)."""
    hold = approval.authors_hold(dep, svc.approval)
    authors = dep.notifications.get("authors")
    if hold or not svc.approval.prevent_self_review or not isinstance(authors, list):
        return frozenset(), hold
    return frozenset().union(*(deps.config.same_person(a) for a in authors)), None


def _key(deps: Deps) -> bytes:
    return links.check_key(str(deps.secrets().get("link_signing_key") or "").encode())


def link_for(deps: Deps, dep: Deployment, identity: str) -> str:
    """A signed, single-use approval link for one approver, valid until the request expires."""
    key = _key(deps)
    expires = approval.parse_iso(dep.expires_at).timestamp() if dep.expires_at else \
        deps.clock().timestamp() + 86_400
    token = links.sign(key, dep.id, identity, int(expires))
    return f"{deps.settings.public_url.rstrip('/')}/approvals/{dep.id}?token={token}"


def verify_link(deps: Deps, dep_id: str, token: str) -> links.LinkClaims:
    return links.verify(_key(deps), token, dep_id, deps.clock().timestamp())


def view_token(deps: Deps, dep_id: str) -> str:
    """A read-only token for the page of one deployment (``?view=``), valid for 30 days."""
    expires = deps.clock().timestamp() + links.VIEW_SECONDS
    return links.sign(_key(deps), dep_id, "", int(expires), scope=links.SCOPE_VIEW)


def view_url(deps: Deps, dep_id: str) -> str:
    """The address of a deployment's read-only page that anyone holding it may open."""
    return (f"{deps.settings.public_url.rstrip('/')}/deployments/{dep_id}/page"
            f"?view={view_token(deps, dep_id)}")


def verify_view(deps: Deps, dep_id: str, token: str) -> links.LinkClaims:
    return links.verify(_key(deps), token, dep_id, deps.clock().timestamp(),
                        scope=links.SCOPE_VIEW)
