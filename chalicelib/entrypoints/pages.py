"""The approval pages: plain, accessible HTML that works without JavaScript. GET shows, POST
decides.

Shared pieces (layout, readable times, facts, the task-definition diff, approvals) live here too;
the read-only deployment page is in ``deployment_page``. Everything shown is escaped; the only
styles are the ``<style>`` element the CSP of ``http.HTML`` allows.
"""
from __future__ import annotations

import re
from datetime import timezone
from html import escape
from typing import Callable
from urllib.parse import quote

from chalicelib.domain.model import parse_iso

STYLE = """*{box-sizing:border-box}body{font:16px/1.5 system-ui,sans-serif;max-width:48rem;
margin:1.5rem auto;padding:0 1rem;color:#1b1b1b}h1{font-size:1.5rem;line-height:1.25}
h2{font-size:1.15rem;margin:1.75rem 0 .5rem}h1,p,li,td,code{overflow-wrap:anywhere}
a{color:#0a58ca}table{border-collapse:collapse;width:100%}th,td{text-align:left;
padding:.3rem .5rem;border-bottom:1px solid #ddd;vertical-align:top}th{width:10rem;font-weight:600}
code{font-family:ui-monospace,monospace;font-size:.9rem}ul,ol{padding-left:1.25rem}
.diff{list-style:none;padding:0;border:1px solid #ddd;border-radius:4px}
.diff li{padding:.5rem .75rem;border-top:1px solid #eee}.diff li:first-child{border-top:0}
.mark{font:700 1rem ui-monospace,monospace;display:inline-block;width:1.25rem}
.old,.new{display:grid;grid-template-columns:1.25rem minmax(0,1fr);margin-left:1.25rem}
del,ins{text-decoration:none}del code{background:#ffebe9}ins code{background:#dafbe1}
.vh{position:absolute;width:1px;height:1px;overflow:hidden;clip-path:inset(50%);white-space:nowrap}
button{font-size:1rem;padding:.5rem 1.25rem;margin:.25rem .5rem .25rem 0;cursor:pointer}
.approve{background:#1a7f37;color:#fff;border:0}.reject{background:#cf222e;color:#fff;border:0}
.note{padding:.75rem;border-left:4px solid #888;background:#f6f8fa}.alert{border-left-color:#cf222e}
textarea{width:100%;font:inherit}.muted{color:#555}
.log{font:.85rem/1.4 ui-monospace,monospace;background:#f6f8fa;border:1px solid #ddd;padding:.5rem;
overflow-x:auto;white-space:pre;max-height:30rem}
.bar{display:block;width:100%;height:2.5rem}.history{display:block;width:100%;height:auto;max-height:5rem}
.legend{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:.25rem 1.25rem}
.swatch{display:inline-block;width:.8rem;height:.8rem;margin-right:.35rem;vertical-align:-.05rem}
.spark{display:block;width:8rem;height:2rem}.dora th{width:auto}
@media (max-width:40rem){.spark{width:4.5rem}.dora th,.dora td{padding:.3rem .25rem}}
@media (max-width:40rem){.facts th,.facts td{display:block;width:auto;border:0;padding:0}
.facts tr{display:block;padding:.4rem 0;border-bottom:1px solid #ddd}
.facts th{font-size:.85rem;color:#555}.old,.new{margin-left:0}}"""

_ISO = re.compile(r"\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})")
_DEP_ID = re.compile(r"\bd-\d{8}T\d{6}-[0-9a-f]{8}\b")
_HEX = re.compile(r"^[0-9a-f]{7,40}$")
_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_STATES = {
    "PENDING_APPROVAL": "is waiting for approval", "APPROVED": "was approved and is starting",
    "MIGRATING": "was approved and is running its migration",
    "DEPLOYING": "was approved and is rolling out", "SUCCEEDED": "was deployed",
    "VERIFYING": "is rolled out and baking (watching its alarms)",
    "FAILED": "failed", "REJECTED": "was rejected", "EXPIRED": "expired before it was approved",
    "SUPERSEDED": "was superseded by a newer push", "ROLLED_BACK": "was rolled back",
}
#: Where approval pages (/approvals/{id}) find the read-only page of a deployment.
FROM_APPROVAL = "../deployments/"


def page(title: str, body: str) -> str:
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<meta name="robots" content="noindex"><title>{escape(title)} · Slipway</title>'
            f'<style>{STYLE}</style></head><body><main>{body}</main></body></html>')


# -- words ---------------------------------------------------------------------------------------
def fmt_time(value, seconds: bool = False) -> str:
    """``2026-11-27T11:22:28.421522Z`` → ``2026-11-27 11:22 UTC`` (anything else as given)."""
    try:
        moment = parse_iso(str(value))
    except ValueError:
        return str(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime(
        "%Y-%m-%d %H:%M:%S UTC" if seconds else "%Y-%m-%d %H:%M UTC")


def when(value, seconds: bool = False) -> str:
    return f"<time datetime='{escape(str(value))}'>{escape(fmt_time(value, seconds))}</time>"


def text(value, href_prefix: str | None = None) -> str:
    """Free text (reasons, notes, messages) escaped, its ISO times made readable, and, given a
    prefix, each deployment id in it linked to that deployment's page."""
    out = escape(_ISO.sub(lambda m: fmt_time(m.group(0)), str(value)))
    if href_prefix is not None:
        out = _DEP_ID.sub(lambda m: f"<a href='{href(m.group(0), href_prefix)}'>{m.group(0)}</a>",
                          out)
    return out


#: Where a page links another deployment: a prefix for its id, or a function of the id (the
#: read-only pages need a ``?view=`` token of the deployment they open).
Linker = str | Callable[[str], str]


def href(dep_id: str, prefix: Linker = FROM_APPROVAL) -> str:
    if callable(prefix):
        return escape(prefix(str(dep_id)))
    return escape(prefix + quote(str(dep_id), safe=""))


def revision(arn) -> str | None:
    """``arn:…:task-definition/better-chatbot:6`` → ``better-chatbot:6``."""
    return str(arn).rsplit("/", 1)[-1] if arn else None


def state_sentence(view: dict) -> str:
    state = str(view.get("state"))
    return f"This deployment {_STATES.get(state, 'is ' + state.lower())} ({state})."


def title_of(view: dict) -> str:
    return f"{view['service']} {view.get('version') or view.get('image_tag') or ''}".strip()


# -- blocks --------------------------------------------------------------------------------------
def _code(value) -> str:
    return f"<code>{escape(str(value))}</code>"


def _commit(view: dict) -> str:
    sha, repo = str(view.get("commit") or ""), str(view.get("github_repository") or "")
    if _HEX.match(sha) and _REPO.match(repo):
        return f"<a href='https://github.com/{escape(repo)}/commit/{sha}'>{_code(sha)}</a>"
    return _code(sha) if sha else "—"


def _seconds(value) -> str:
    minutes, secs = divmod(round(float(value)), 60)
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def facts(view: dict) -> str:
    state = view.get("state")
    now = state in ("PENDING_APPROVAL", "APPROVED", "MIGRATING")
    command = view.get("migration_command")
    rows = [("Service", _code(view["service"])), ("Version", _code(view.get("version") or "—")),
            ("Commit", _commit(view)),
            ("Tags", ", ".join(_code(t) for t in view.get("tags") or []) or "—"),
            ("Image", _code(view.get("image") or "—"))]
    source = view.get("promoted_from")
    if isinstance(source, dict):  # kind "promote": the very image another service ran
        rows.append(("Promoted from", f"{_code(source.get('service'))} "
                     f"{_code(source.get('deployment'))} ({escape(str(source.get('state')))} "
                     f"{when(source.get('finished_at'))})"))
    forced = view.get("forced")
    if isinstance(forced, dict):  # a rollback past migrations, on someone's word
        rows.append(("Forced", f"by {_code(forced.get('by'))}: “{text(forced.get('reason'))}”"))
    if view.get("previous_task_definition_arn"):
        rows.append(("Runs now" if now else "Running when pushed",
                     _code(revision(view["previous_task_definition_arn"]))))
    if view.get("task_definition_arn"):
        rows.append(("New revision", _code(revision(view["task_definition_arn"]))))
    rows.append(("State", f"{_code(state)} <span class='muted'>"
                          f"{escape(_STATES.get(str(state), ''))}</span>"))
    if view.get("kind") != "rollback":
        rows.append(("Migration", _code(" ".join(command)) if command else "none"))
    rows.append(("Pushed", when(view["created_at"])))
    if state == "PENDING_APPROVAL" and view.get("not_before"):
        rows.append(("Approvals open", when(view["not_before"])))
    if state == "PENDING_APPROVAL" and view.get("expires_at"):
        rows.append(("Expires", when(view["expires_at"])))
    if view.get("finished_at"):
        took = view.get("duration_seconds")
        rows.append(("Finished", when(view["finished_at"]) +
                     (f" (took {_seconds(took)})" if took is not None else "")))
    return "<table class='facts'>" + "".join(
        f"<tr><th scope='row'>{k}</th><td>{v}</td></tr>" for k, v in rows) + "</table>"


def _value(value) -> str:
    return "<span aria-hidden='true'>∅</span><span class='vh'>absent</span>" if value is None \
        else _code(value)


def diff(view: dict) -> str:
    """Each change as ``~ path`` with its old value, then ``→ new`` (``+``/``-`` when a side is
    absent, shown as ∅); long values wrap instead of scrolling."""
    items = []
    for change in view.get("diff") or []:
        old, new = change.get("old"), change.get("new")
        mark, said = ("+", "added") if old is None else ("-", "removed") if new is None \
            else ("~", "changed")
        items.append(
            f"<li><span class='mark' aria-hidden='true'>{mark}</span><span class='vh'>{said}: "
            f"</span>{_code(change.get('path'))}"
            f"<div class='old'><span aria-hidden='true'></span><span class='vh'>old value: </span>"
            f"<del>{_value(old)}</del></div>"
            f"<div class='new'><span aria-hidden='true'>→</span><span class='vh'>new value: "
            f"</span><ins>{_value(new)}</ins></div></li>")
    body = (f"<ul class='diff' aria-label='task definition diff'>{''.join(items)}</ul>" if items
            else "<p>No change besides the image.</p>")
    return f"<h2>Task definition changes</h2>{body}"


def approvals(view: dict, href_prefix: Linker = FROM_APPROVAL) -> str:
    """Who may approve, how many it takes, and every decision so far."""
    people = view.get("approvers") or []
    quorum = int(view.get("quorum") or 1)
    done = {a.get("by") for a in view.get("approvals") or [] if a.get("decision") == "approve"}
    named = ", ".join(_code(p) for p in people)
    rows = [("Approvers", "anyone (approvers = [\"*\"])" if people == ["*"] else
             named or "nobody (no approvers are configured)"),
            ("Needed", f"{quorum} approval{'s from different people' if quorum != 1 else ''}"),
            ("So far", f"{len(done)} of {quorum} approval{'s' if quorum != 1 else ''}")]
    table = "<table class='facts'>" + "".join(
        f"<tr><th scope='row'>{k}</th><td>{v}</td></tr>" for k, v in rows) + "</table>"
    decisions = []
    for a in view.get("approvals") or []:
        verb = "approved" if a.get("decision") == "approve" else "rejected"
        comment = f": “{text(a['comment'], href_prefix)}”" if a.get("comment") else ""
        if a.get("break_glass"):  # approved during a freeze window
            comment += f" — <strong>broke glass</strong>: “{text(a['break_glass'], href_prefix)}”"
        decisions.append(f"<li>{_code(a.get('by'))} {verb} via {escape(str(a.get('via')))}, "
                         f"{when(a.get('at'))}{comment}</li>")
    listed = f"<ul aria-label='decisions so far'>{''.join(decisions)}</ul>" if decisions else ""
    hold = (f"<p class='note alert' role='alert'>Approvals are on hold: "
            f"{text(view['approval_hold'])}. Slipway asks GitHub again every few minutes.</p>"
            if view.get("approval_hold") else "")
    return f"<h2>Approval</h2>{hold}{table}{listed}"


def details_link(view: dict, prefix: Linker = FROM_APPROVAL) -> str:
    return (f"<p>Details, timeline and progress: <a href='{href(view['id'], prefix)}'>"
            f"deployment {escape(view['id'])}</a></p>")


# -- approval pages ------------------------------------------------------------------------------
def confirm_page(view: dict, token: str, identity: str, action_url: str, *,
                 problem: str = "", comment: str = "", links: Linker = FROM_APPROVAL) -> str:
    """What will ship, and a form whose buttons POST the decision (GET itself changes nothing).
    ``problem``: the form came back incomplete; say so above it, keeping the comment."""
    title = "The form was incomplete" if problem else f"Deploy {title_of(view)}"
    alert = f"<p class='note alert' role='alert'>{text(problem)}</p>" if problem else ""
    form = (
        f"<h2>Your decision</h2><form method='post' action='{escape(action_url)}'>"
        f"<input type='hidden' name='token' value='{escape(token)}'>"
        f"<p>You are deciding as <strong>{escape(identity)}</strong>.</p>"
        f"<label for='comment'>Comment (optional; say why if you reject)</label>"
        f"<textarea id='comment' name='comment' rows='3' maxlength='500'>{escape(comment)}"
        f"</textarea>{_break_glass(view.get('frozen'))}"
        f"<p><button class='approve' type='submit' name='decision' value='approve'>Approve</button>"
        f"<button class='reject' type='submit' name='decision' value='reject'>Reject</button></p>"
        f"</form>"
    )
    heading = f"<h1>{escape(title)}</h1>{alert}" + (f"<h2>Deploy {escape(title_of(view))}</h2>"
                                                     if problem else "")
    return page(title, f"{heading}{details_link(view, links)}{facts(view)}{diff(view)}"
                       f"{approvals(view, links)}{form}")


def _break_glass(frozen: dict | None) -> str:
    """During a freeze: say so, and give those who may break glass the field for their reason."""
    if not frozen:
        return ""
    out = f"<p class='note alert' role='alert'>{text(frozen.get('message', ''))}</p>"
    if frozen.get("may_break_glass"):
        out += ("<label for='break_glass'>Break glass: why this cannot wait (required to approve "
                "during the freeze; recorded and announced)</label>"
                "<textarea id='break_glass' name='break_glass' rows='2' maxlength='500'>"
                "</textarea>")
    return out


def result_page(title: str, message: str, view: dict | None = None, status: str = "status",
                links: Linker = FROM_APPROVAL) -> str:
    """After a decision, or when there is nothing (left) to decide: what happened, where to look."""
    body = f"<h1>{escape(title)}</h1><p class='note' role='{status}'>{text(message)}</p>"
    if view:
        reason = (f"<p>Reason: {text(view['reason'], links)}</p>"
                  if view.get("reason") else "")
        body += f"{reason}{details_link(view, links)}{facts(view)}{approvals(view, links)}"
    return page(title, body)


def settled_page(view: dict, *, used: bool = False, expired_at: str | None = None,
                 links: Linker = FROM_APPROVAL) -> str:
    """A link that can decide nothing: the same words on GET and POST, and the deployment's
    state."""
    state = state_sentence(view)
    if used:
        title, said = "This link was already used", f"You already decided with this link; " \
                                                     f"nothing was changed. {state}"
    elif expired_at:
        title, said = "Nothing to decide", f"Nothing was changed: this approval request " \
                                           f"expired at {expired_at}."
    else:
        title, said = "Nothing to decide", f"Nothing was changed: {state[0].lower()}{state[1:]}"
    return result_page(title, said, view, links=links)


ERROR_TITLES = {"bad_decision": "The form was incomplete", "bad_token": "This link is not valid",
                "link_expired": "This link has expired", "too_early": "Too early to approve",
                "authors_unknown": "Approvals are on hold",
                "self_review": "Someone else must approve", "self_review_unknown":
                "Slipway cannot tell whether you wrote this"}
STATUS_TITLES = {400: "The request could not be read", 401: "This link cannot be used",
                 403: "You may not decide this deployment", 404: "Unknown deployment",
                 409: "Nothing was changed"}


def error_page(status: int, message: str, code: str = "", view: dict | None = None,
               links: Linker = FROM_APPROVAL) -> str:
    title = ERROR_TITLES.get(code) or STATUS_TITLES.get(status, "Something went wrong")
    more = details_link(view, links) if view else ""
    return page(title, f"<h1>{escape(title)}</h1><p class='note alert' role='alert'>"
                       f"{text(message)}</p>{more}")
