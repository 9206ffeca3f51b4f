"""Slack follows a deployment: one channel message kept up to date, details in its thread, and a
personal approval link sent privately to each Slack approver.

The channel message never carries a token that can approve: its buttons post to
``/slack/interactions`` (a signed request names the clicker) and "Review in browser" opens the
read-only page of this one deployment (a ``?view=`` token). Personal signed links go by direct message (``chat.postMessage`` to the user
id), one per ``slack:U…`` approver, and work even when the buttons cannot.

Concurrent changes can reach Slack out of order, so after each update the message is compared with
the ledger and rendered again if the ledger moved on: the message converges on the truth.
"""
from __future__ import annotations

import functools
import re
from typing import Any, Callable

from chalicelib.adapters import slack_message
from chalicelib.domain.model import Deployment, State
from chalicelib.domain.redact import scrub
from chalicelib.service.deps import Deps
from chalicelib.service.notify import (clear_pending, is_pending, mark_pending, needs_resync,
                                       owe_check, remember)
from chalicelib.service.ports import NotificationError

CHANNEL = "slack"
#: Changes that alter what the message shows (new states, an approval, a new tag).
VISIBLE = frozenset({s.value for s in State} | {"APPROVAL_RECORDED", "TAGGED", "AUTHORS"})
#: Changes whose timeline note is worth a thread reply.
THREADED = frozenset({"BREAK_GLASS", "MIGRATION_STARTED", "ROLLOUT_STARTED", "NOTE", "VERIFYING",
                      "SUCCEEDED", "FAILED", "ROLLED_BACK"})
CONVERGE_ROUNDS = 3
FINAL = frozenset(s.value for s in State if s.terminal)
_SLACK_USER = re.compile(r"^slack:([UW][A-Z0-9]{2,30})$")


class SlackNotifier:
    """Posts, updates and threads the deployment's Slack message; DMs approvers their links."""

    channel = CHANNEL

    def __init__(self, deps: Deps, client_factory: Callable[[], Any]):
        self._deps = deps
        self._client = functools.cache(client_factory)  # built on first use, once per container

    def channels(self, svc) -> list[str]:
        return [CHANNEL] if svc.notify.slack_channel else []

    # -- the Notifier port ---------------------------------------------------------------------
    def changed(self, dep: Deployment, changes: list[str]) -> None:
        svc = self._deps.config.service(dep.service)
        if svc is None or not svc.notify.slack_channel:
            return
        try:
            if "CREATED" in changes or needs_resync(self._deps, dep, CHANNEL):
                self._sync(dep, svc, just_created="CREATED" in changes)
            else:
                self._follow(dep, svc, changes)
        except Exception as exc:  # NotificationError, or a bug: never break the pipeline
            mark_pending(self._deps, dep, CHANNEL, exc)

    def resync(self, dep: Deployment) -> bool:
        """Bring the message (and approvers' DMs) up to date; True when Slack is in sync."""
        svc = self._deps.config.service(dep.service)
        if svc is None or not svc.notify.slack_channel:
            remember(self._deps, dep, clear_pending(CHANNEL))
            return True
        try:
            self._sync(dep, svc)
        except Exception as exc:
            mark_pending(self._deps, dep, CHANNEL, exc)
            return False
        return not is_pending(dep, CHANNEL)

    # -- steps ---------------------------------------------------------------------------------
    def _sync(self, dep: Deployment, svc, just_created: bool = False) -> None:
        """Post the message if it was never posted, else update it; DM approvers not yet told.
        ``just_created``: ``dep`` is the copy its creator has just written, so nobody else can
        have posted yet (others wait ``claim_seconds`` for the creator; see ``needs_resync``):
        no read first. Any other caller reads, as another invocation may have posted meanwhile."""
        client = self._client()
        slack = dict(dep.notifications.get(CHANNEL) or {})
        if not slack.get("ts") and not just_created:
            fresh = self._deps.ledger.get(dep.id)
            slack = dict((fresh.notifications if fresh else {}).get(CHANNEL) or {})
        text, blocks = self._render(dep, svc, first=not slack.get("ts"))
        gone = None
        if slack.get("ts"):
            try:
                client.update_message(slack["channel"], slack["ts"], text, blocks)
            except NotificationError as exc:
                if exc.error != "message_not_found":  # someone deleted it: post it again
                    raise
                gone = slack.pop("ts")
        if not slack.get("ts"):
            slack["channel"], slack["ts"] = client.post_message(svc.notify.slack_channel, text,
                                                                blocks)
        failure = self._direct_messages(dep, svc, slack)

        def update(notes: dict) -> bool:
            stored = notes.get(CHANNEL) or {}
            merged = {**slack, "dms": sorted(set(stored.get("dms", [])) | set(slack["dms"]))}
            if stored.get("ts") and stored["ts"] != gone:  # first post wins (a rare race)
                merged.update(channel=stored["channel"], ts=stored["ts"])
            changed = merged != stored
            notes[CHANNEL] = merged
            if failure is None and CHANNEL in (notes.get("pending") or {}):
                clear_pending(CHANNEL)(notes)
                changed = True
            return changed

        fresh = remember(self._deps, dep, update)
        if failure is not None:
            raise failure
        self._converge(fresh, _shown(dep), svc, merged_ref(fresh))

    def _follow(self, dep: Deployment, svc, changes: list[str]) -> None:
        ref = merged_ref(dep)
        if ref is None:
            fresh = self._deps.ledger.get(dep.id)
            if fresh is None:
                return
            if needs_resync(self._deps, fresh, CHANNEL):
                self._sync(fresh, svc)
            # else: the CREATED post is still on its way; it converges on the ledger when done
            return
        client = self._client()
        if VISIBLE & set(changes):
            text, blocks = self._render(dep, svc, first=False)
            client.update_message(*ref, text, blocks)
            shown = _shown(dep)
            if shown[1] not in FINAL and not owe_check(
                    dep, lambda fresh: self._converge(fresh, shown, svc, ref)):
                self._converge(None, shown, svc, ref)
        note = self._thread_note(dep, changes)
        if note:
            client.post_thread(*ref, note)

    def _converge(self, fresh: Deployment | None, shown: tuple, svc, ref) -> None:
        """Render again while the ledger shows something newer than what Slack shows. A message
        showing a final state is not checked: after it, the only change the message shows is a
        tag added (a late ECR event), and that event's own update converges; an older state
        landing after ours is put right by its own writer's check (one read saved per ending)."""
        if fresh is None and shown[1] in FINAL:
            return
        for _ in range(CONVERGE_ROUNDS):
            fresh = fresh or self._deps.ledger.get(shown[0])
            if fresh is None or ref is None or _shown(fresh) == shown:
                return
            text, blocks = self._render(fresh, svc, first=False)
            self._client().update_message(*ref, text, blocks)
            shown, fresh = _shown(fresh), None

    def _direct_messages(self, dep: Deployment, svc, slack: dict) -> Exception | None:
        """Send each Slack approver a personal signed link, once; return the first failure."""
        from chalicelib.service.decisions import link_for

        slack["dms"] = list(slack.get("dms") or [])
        if not awaiting_people(dep, svc):
            return None
        view = self._view(dep, svc)
        for identity in svc.approval.approvers:
            # A `github:` approver gets the link on Slack through their [identities] alias.
            inbox = next((m for i in sorted(self._deps.config.same_person(identity))
                          if (m := _SLACK_USER.match(i))), None)
            if not inbox or identity in slack["dms"]:
                continue
            try:
                text, blocks = direct_message(view, link_for(self._deps, dep, identity))
                self._client().post_message(inbox.group(1), text, blocks)
            except Exception as exc:  # keep the channel message's ts: report, do not raise
                return exc
            slack["dms"].append(identity)
        return None

    # -- rendering -----------------------------------------------------------------------------
    def _view(self, dep: Deployment, svc) -> dict:
        from chalicelib.service.views import deployment_json

        from chalicelib.service.decisions import view_url

        view = deployment_json(dep, svc)
        view["approval_url"] = view_url(self._deps, dep.id)  # read-only: it cannot approve
        return view

    def _render(self, dep: Deployment, svc, first: bool) -> tuple[str, list[dict]]:
        view = self._view(dep, svc)
        if first and dep.state is State.PENDING_APPROVAL and not dep.approvals:
            text, blocks = slack_message.request_message(view)
        else:
            text, blocks = slack_message.status_message(view)
        if not awaiting_people(dep, svc):  # nobody decides: no buttons
            blocks = [b for b in blocks if b.get("type") != "actions"]
        return text, blocks

    @staticmethod
    def _thread_note(dep: Deployment, changes: list[str]) -> str | None:
        """The thread reply for these changes (escaped and bounded), if any."""
        wanted = set(THREADED & set(changes))
        if dep.state is State.DEPLOYING and "DEPLOYING" in changes and dep.migration:
            wanted.add("DEPLOYING")  # "migration exited 0; updating the service"
        if not wanted or not dep.timeline:
            return None
        note = dep.timeline[-1]["note"]
        if "BREAK_GLASS" in wanted:  # announced even when told late (the deployment moved on)
            note = next((t["note"] for t in reversed(dep.timeline)
                         if t["note"].startswith("BREAK GLASS")), note)
        note = scrub(note)  # notes quote commands: secrets stay ***
        migration = dep.migration or {}
        failed = dep.state is State.FAILED and (dep.reason or "").startswith("migration")
        if ("log_tail" in migration or "log_note" in migration) and (
                failed or dep.state is State.DEPLOYING and "DEPLOYING" in wanted):
            # the migration's own words: all we have on failure, the last 10 lines on success
            lines = list(migration.get("log_tail") or [])
            return slack_message.thread_with_log(note, lines if failed else lines[-10:],
                                                 migration.get("log_note"))
        return slack_message.thread_text(note)


def awaiting_people(dep: Deployment, svc) -> bool:
    """True while a person's decision is what this deployment waits for."""
    return dep.state is State.PENDING_APPROVAL and dep.kind != "rollback" and svc.approval.required


def merged_ref(dep: Deployment | None) -> tuple[str, str] | None:
    slack = (dep.notifications.get(CHANNEL) if dep else None) or {}
    return (slack["channel"], slack["ts"]) if slack.get("ts") and slack.get("channel") else None


def _shown(dep: Deployment) -> tuple:
    """What the message shows of a deployment (its id first): equal tuples render the same."""
    approvals = tuple((a.get("by"), a.get("decision"), a.get("via")) for a in dep.approvals)
    return (dep.id, dep.state.value, approvals, tuple(dep.tags), dep.reason,
            dep.task_definition_arn, dep.finished_at)


def direct_message(view: dict, link: str) -> tuple[str, list[dict]]:
    """The private message carrying one approver's personal, single-use link."""
    title = slack_message.escape_mrkdwn(
        f"{view.get('service')} {view.get('version') or view.get('image_tag') or ''}".strip())
    text = f"Your approval is requested: deploy {title}"
    body = (f"*Deploy {title}* is waiting for your decision: <{link}|open your approval page>.\n"
            f"This link is yours alone and works once; do not forward it. The buttons in the "
            f"channel message work too.")
    return text, [
        {"type": "section", "text": {"type": "mrkdwn", "text": body}},
        {"type": "actions", "elements": [{
            "type": "button", "text": {"type": "plain_text", "text": "Review and decide"},
            "action_id": slack_message.ACTION_REVIEW, "url": link}]},
    ]
