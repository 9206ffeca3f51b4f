"""Slack Block Kit payloads for a deployment: pure functions over plain dicts.

``request_message`` builds the approval request, ``status_message`` the same message as the
deployment moves (for ``chat.update``), ``thread_text`` a threaded detail. Every string that comes
from outside (tags, versions, commits, comments, reasons, diff values, service names) goes through
``escape_mrkdwn``, so a hostile tag such as ``<!channel>`` shows as text and pings nobody. Users are
mentioned (``<@U…>``) only for identities Slipway produced itself (``slack:U…`` approvers and
approvals), never from raw input.
"""
from __future__ import annotations

import re
import shlex
from datetime import datetime, timezone
from typing import Any

from chalicelib.adapters.slack_blocks import FIELD_LIMIT, HEADER_LIMIT, SECTION_LIMIT  # noqa: F401
from chalicelib.adapters.slack_blocks import button as _button
from chalicelib.adapters.slack_blocks import code as _code
from chalicelib.adapters.slack_blocks import escape_mrkdwn
from chalicelib.adapters.slack_blocks import fit as _fit
from chalicelib.adapters.slack_blocks import joined as _joined
from chalicelib.adapters.slack_blocks import mrkdwn as _mrkdwn
from chalicelib.adapters.slack_blocks import section as _section
from chalicelib.adapters.slack_blocks import unfence as _unfence
from chalicelib.adapters.slack_blocks import who as _who

DIFF_LINE_LIMIT = 300  # keep one change readable
ACTION_APPROVE = "slipway_approve"
ACTION_REJECT = "slipway_reject"
ACTION_REVIEW = "slipway_review"  # a link button still sends block_actions: ignore it

_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_SHA = re.compile(r"^[0-9a-fA-F]{7,40}$")
_HEX = re.compile(r"^[0-9a-f]+$")


def request_message(dep: dict) -> tuple[str, list[dict]]:
    """The approval request: what will ship, who may approve, and the buttons."""
    text = f"{_title(dep)} is waiting for approval"
    return escape_mrkdwn(text), _body(dep) + [_actions(dep)]


def status_message(dep: dict) -> tuple[str, list[dict]]:
    """The same message as the deployment moves; buttons stay only while pending."""
    blocks = _body(dep) + [_section(_status_line(dep))]
    if dep.get("state") == "PENDING_APPROVAL":
        blocks.append(_actions(dep))
    return escape_mrkdwn(f"{_title(dep)}: {str(dep.get('state', '')).lower()}"), blocks


def thread_text(note: Any) -> str:
    """A threaded detail (migration or rollout reason), escaped and bounded."""
    return _fit(note, SECTION_LIMIT)


LOG_LINE_LIMIT = 300  # one log line in Slack


def thread_with_log(note: Any, lines: list[str], missing: str | None) -> str:
    """A threaded detail followed by the migration's last lines as a code block (the newest kept
    when they do not all fit one message), or the plain reason there are none."""
    head = _fit(note, 1000)
    if not lines:
        return head + (f"\n_{_fit(missing, 500)}_" if missing else "")
    shown = [_unfence(_fit(line, LOG_LINE_LIMIT)) or " " for line in lines]
    title = f"\n*Migration output (last {{n}} line{{s}})*\n```\n"
    budget = SECTION_LIMIT - len(head) - len(title) - 10
    kept: list[str] = []
    for line in reversed(shown):
        if sum(len(k) + 1 for k in kept) + len(line) + 1 > budget:
            break
        kept.insert(0, line)
    n = len(kept)
    return head + title.format(n=n, s="" if n == 1 else "s") + "\n".join(kept) + "\n```"


def _title(dep: dict) -> str:
    version = dep.get("version") or dep.get("image_tag") or _short_digest(dep.get("image_digest")) or "?"
    if dep.get("kind") == "rollback":
        return f"Rollback {dep.get('service', '?')} to {version}"
    if dep.get("kind") == "promote":
        source = (dep.get("promoted_from") or {}).get("service", "?")
        return f"Promote {dep.get('service', '?')} {version} from {source}"
    return f"Deploy {dep.get('service', '?')} {version}"


def _body(dep: dict) -> list[dict]:
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": _fit(_title(dep), HEADER_LIMIT)}},
        {"type": "section", "fields": [_mrkdwn(field) for field in _fields(dep)]},
    ]
    blocks += [_section(line) for line in (_promotion(dep), _forced(dep)) if line]
    if dep.get("approval_hold") and dep.get("state") == "PENDING_APPROVAL":
        blocks.append(_section(f":warning: *Approvals are on hold:* "
                               f"{_fit(dep['approval_hold'], 1000)}. Slipway asks GitHub again "
                               "every few minutes."))
    blocks += [_section(diff)] if (diff := _diff_section(dep.get("diff"))) else []
    blocks.append({"type": "context", "elements": [_mrkdwn(_footer(dep))]})
    return blocks


def _fields(dep: dict) -> list[str]:
    quorum = dep.get("quorum") or 1
    fields = [
        ("Commit", _commit(dep)),
        ("Tags", _joined(dep.get("tags") or [dep.get("image_tag")], FIELD_LIMIT - 10, _code)),
        ("Digest", _code(_short_digest(dep.get("image_digest")) or "unknown")),
        ("Migration", _migration(dep.get("migration_command"))),
        ("Approvers", "anyone (approvers = [\"*\"])" if dep.get("approvers") == ["*"] else
         _joined(dep.get("approvers") or [], FIELD_LIMIT - 15, _who) or "nobody is listed"),
        ("Quorum", f"{int(quorum)} distinct approval{'s' if int(quorum) != 1 else ''}"),
        ("Expires", _expiry(dep.get("expires_at"))),
    ]
    if dep.get("kind") == "rollback":  # rollbacks are operator-initiated, not approved
        fields = fields[:4]
    return [f"*{name}*\n{value}" for name, value in fields]


def _promotion(dep: dict) -> str | None:
    """"promote 1.22.0-abc123d from web-staging (SUCCEEDED 14:02 UTC, approved by …)"."""
    source = dep.get("promoted_from")
    if dep.get("kind") != "promote" or not isinstance(source, dict):
        return None
    version = dep.get("image_tag") or dep.get("version") or _short_digest(dep.get("image_digest"))
    when = _clock(source.get("finished_at"))
    by = _joined(source.get("approved_by") or [], 600, _who) or "policy"
    return (f":arrow_double_up: *Promote* {_code(version)} from {_code(source.get('service'))} "
            f"({escape_mrkdwn(source.get('state') or 'SUCCEEDED')}{' ' + when if when else ''}, "
            f"approved by {by}): the very same image, no rebuild")


def _forced(dep: dict) -> str | None:
    """A rollback forced past migrations: who, why, and past which."""
    forced = dep.get("forced")
    if not isinstance(forced, dict):
        return None
    past = ", ".join(_code(str(m.get("version") or m.get("id"))[:60])
                     + (f" ({_code(' '.join(map(str, m['command']))[:200])})"
                        if m.get("command") else "")
                     for m in (forced.get("migrations") or [])[:5]) or "unknown migrations"
    return (f":warning: *Forced* past migrations since the target ({past}) by "
            f"{_who(forced.get('by'))}: “{_fit(forced.get('reason'), 500)}”")


def _clock(value: Any) -> str:
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return ""
    return moment.astimezone(timezone.utc).strftime("%H:%M UTC") if moment.tzinfo else ""


def _footer(dep: dict) -> str:
    repository = f" · repository {_code(dep['repository'])}" if dep.get("repository") else ""
    return f"Slipway deployment {_code(dep.get('id'))}{repository}"


def _commit(dep: dict) -> str:
    sha, repo = dep.get("commit"), dep.get("github_repository")
    if not sha:
        return "unknown"
    if repo and _REPO.match(str(repo)) and _SHA.match(str(sha)):
        return f"<https://github.com/{repo}/commit/{sha}|{str(sha)[:7]}>"
    return _code(sha)


def _migration(command: Any) -> str:
    if not command:
        return "none"
    text = shlex.join(str(part) for part in command) if isinstance(command, (list, tuple)) else str(command)
    return _code(text[: FIELD_LIMIT // 6])


def _expiry(expires_at: Any) -> str:
    """A Slack date token (shown in each reader's time zone) with a UTC fallback."""
    if not expires_at:
        return "never"
    try:
        moment = datetime.fromisoformat(str(expires_at))
    except ValueError:
        return escape_mrkdwn(expires_at)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    fallback = moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} at {{time}}|{fallback}>"


def _short_digest(digest: Any) -> str | None:
    """First 12 hex characters after ``sha256:``."""
    hexpart = str(digest or "").split(":", 1)[-1].lower()
    return hexpart[:12] if _HEX.match(hexpart) else None


def _diff_section(diff: Any) -> str | None:
    """The task-definition diff as a code block that fits one section."""
    if diff is None:
        return None
    title = "*Task definition changes*"
    if not diff:
        return f"{title}\nnone besides the image"
    lines = [_diff_line(change) for change in diff]
    budget = SECTION_LIMIT - len(f"{title}\n```\n\n```\n… {len(lines)} more changes")
    kept, size = [], 0
    for line in lines:
        if size + len(line) + 1 > budget:
            break
        kept.append(line)
        size += len(line) + 1
    dropped = len(lines) - len(kept)
    return f"{title}\n```\n" + "\n".join(kept) + "\n```" + (f"\n… {dropped} more changes" if dropped else "")


def _diff_line(change: dict) -> str:
    path, old, new = change.get("path"), change.get("old"), change.get("new")
    raw = f"+ {path} = {new}" if old is None else f"- {path} = {old}" if new is None else f"~ {path}: {old} → {new}"
    raw = raw.replace("\r", "\\r").replace("\n", "\\n")
    return _unfence(_fit(raw, DIFF_LINE_LIMIT))


def _status_line(dep: dict) -> str:
    """One line for the state (each part bounded, so the whole fits a section)."""
    state = dep.get("state")
    build = _STATUS.get(state)
    line = build(dep) if build else f"State: {escape_mrkdwn(state)}"
    if state in _SHOW_APPROVALS and _approvals(dep):
        line += f"\n:white_check_mark: Approved by {_people(dep)}"
    return line


def _approvals(dep: dict) -> list[str]:
    """Each distinct approver once, in order, with channel and comment."""
    seen: dict[str, str] = {}
    for approval in dep.get("approvals") or []:
        who = approval.get("by")
        if approval.get("decision") != "approve" or who in seen:
            continue
        text = _who(who)
        if approval.get("via") and approval.get("via") != "slack":
            text += f" (via {escape_mrkdwn(approval['via'])})"
        if approval.get("comment"):
            text += f": “{_fit(approval['comment'], 300)}”"
        if approval.get("break_glass"):
            text += f" :rotating_light: broke glass: “{_fit(approval['break_glass'], 300)}”"
        seen[who] = text
    return list(seen.values())


def _people(dep: dict) -> str:
    return _joined(_approvals(dep), 1200, str)


def _pending(dep: dict) -> str:
    quorum, got = int(dep.get("quorum") or 1), len(_approvals(dep))
    if not got:
        return f":hourglass_flowing_sand: Waiting for {quorum} approval{'s' if quorum != 1 else ''}"
    return f":hourglass_flowing_sand: {got} of {quorum} approvals: {_people(dep)}"


def _rejected(dep: dict) -> str:
    rejections = [a for a in dep.get("approvals") or [] if a.get("decision") == "reject"]
    if not rejections:
        return _with_reason(":no_entry_sign: Rejected", dep)
    last = rejections[-1]
    line = f":no_entry_sign: Rejected by {_who(last.get('by'))}"
    return line + (f": “{_fit(last['comment'], 1000)}”" if last.get("comment") else "")


def _succeeded(dep: dict) -> str:
    seconds = dep.get("duration_seconds")
    bake = dep.get("verify") or {}
    quiet = f"; bake of {bake['bake_minutes']:g} min quiet" if bake.get("bake_minutes") else ""
    return ":tada: Deployed" + (f" in {round(float(seconds))} s" if seconds is not None else "") \
        + quiet


def _with_reason(line: str, dep: dict) -> str:
    return line + (f": {_fit(dep['reason'], 1500)}" if dep.get("reason") else "")


def _verifying(dep: dict) -> str:
    """The bake: until when, which alarms."""
    bake = dep.get("verify") or {}
    alarms = _joined(bake.get("alarms") or [], 1000, _code) or "none"
    return (f":hourglass_flowing_sand: Baking until {_expiry(bake.get('ends_at'))}: watching "
            f"alarms {alarms}; an alarm in ALARM rolls back automatically")


def _deploying(dep: dict) -> str:
    arn = dep.get("task_definition_arn")
    return f":rocket: Rolling out {_code(str(arn).rsplit('/', 1)[-1]) if arn else 'the new task definition'}"


_STATUS = {
    "PENDING_APPROVAL": _pending,
    "APPROVED": lambda dep: f":white_check_mark: Approved by {_people(dep) or 'policy'}",
    "MIGRATING": lambda dep: f":hammer_and_wrench: Running migration {_migration(dep.get('migration_command'))}",
    "DEPLOYING": _deploying,
    "VERIFYING": _verifying,
    "SUCCEEDED": _succeeded,
    "FAILED": lambda dep: _with_reason(":x: Failed", dep),
    "REJECTED": _rejected,
    "SUPERSEDED": lambda dep: _with_reason(":fast_forward: Superseded by a newer image", dep),
    "EXPIRED": lambda dep: f":hourglass: Expired with {len(_approvals(dep))} of {dep.get('quorum') or 1} approvals",
    "ROLLED_BACK": lambda dep: _with_reason(":leftwards_arrow_with_hook: Rolled back", dep),
}
_SHOW_APPROVALS = {"MIGRATING", "DEPLOYING", "VERIFYING", "SUCCEEDED", "FAILED", "ROLLED_BACK"}


def _actions(dep: dict) -> dict:
    dep_id = str(dep.get("id"))
    elements: list[dict] = [
        _button("Approve", ACTION_APPROVE, value=dep_id, style="primary"),
        _button("Reject", ACTION_REJECT, value=dep_id, style="danger", confirm=_REJECT_CONFIRM),
    ]
    if dep.get("approval_url"):
        elements.append(_button("Review in browser", ACTION_REVIEW, url=str(dep["approval_url"])))
    return {"type": "actions", "elements": elements}


# A Slack reject is final (comment "rejected in Slack"), so Slack asks first; reasons go by link.
_REJECT_CONFIRM = {"title": {"type": "plain_text", "text": "Reject this deployment?"},
                   "text": {"type": "plain_text", "text": "It will not be deployed; this cannot be "
                            "undone. To give a reason, reject from your personal link."},
                   "confirm": {"type": "plain_text", "text": "Reject"},
                   "deny": {"type": "plain_text", "text": "Cancel"}, "style": "danger"}
