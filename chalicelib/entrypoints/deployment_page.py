"""The read-only deployment page: what ``GET /deployments/{id}`` shows a browser (API clients keep
the JSON). Facts, diff, approvals, migration, timeline and reason; it decides nothing."""
from __future__ import annotations

from datetime import datetime, timezone
from html import escape

from chalicelib.entrypoints import charts
from chalicelib.entrypoints.pages import (Linker, approvals, diff, facts, href, page, revision,
                                          state_sentence, text, title_of, when)

#: Where a deployment page (/deployments/{id}) finds another deployment's page.
HERE = "./"


def _migration(view: dict) -> str:
    command, ran = view.get("migration_command"), view.get("migration")
    if view.get("kind") == "rollback":
        return "<h2>Migration</h2><p>A rollback runs no migration.</p>"
    if not command:
        return "<h2>Migration</h2><p>This service has no migration.</p>"
    said = f"<p>Command: <code>{escape(' '.join(map(str, command)))}</code></p>"
    if not ran:
        state = view.get("state")
        later = "It runs once the deployment is approved." if state == "PENDING_APPROVAL" \
            else "It did not run." if state in ("REJECTED", "EXPIRED", "SUPERSEDED") \
            else "It has not started yet."
        return f"<h2>Migration</h2>{said}<p>{later}</p>"
    rows = [("Task", revision(ran.get("task_arn")) or "—"),
            ("Exit code", "—" if ran.get("exit_code") is None else ran["exit_code"]),
            ("Stop code", ran.get("stop_code") or "—"), ("Reason", ran.get("reason") or "—")]
    table = "<table class='facts'>" + "".join(
        f"<tr><th scope='row'>{k}</th><td>{text(v)}</td></tr>" for k, v in rows) + "</table>"
    return f"<h2>Migration</h2>{said}{table}{_output(ran)}"


def _output(ran: dict) -> str:
    """The migration's last lines (already redacted), or why there are none."""
    lines = ran.get("log_tail") or []
    if not lines:
        return f"<p class='muted'>{escape(ran.get('log_note') or 'No output was read.')}</p>"
    return (f"<h3>Output (last {len(lines)} lines)</h3><pre class='log' tabindex='0' "
            f"aria-label='migration output'>{escape(chr(10).join(lines))}</pre>")


def _timeline(view: dict, links: Linker) -> str:
    entries = "".join(
        f"<li>{when(t.get('at'), seconds=True)} <code>{escape(str(t.get('state')))}</code> "
        f"{text(t.get('note') or '', links)}</li>" for t in view.get("timeline") or [])
    return f"<h2>Timeline</h2><ol aria-label='timeline'>{entries}</ol>"


def deployment_page(view: dict, links: Linker = HERE) -> str:
    """Everything a person needs to follow one deployment; links to the deployments it names
    (``links``: where their pages are, by id)."""
    title = f"{title_of(view)}: {str(view.get('state')).lower().replace('_', ' ')}"
    lines = [escape(state_sentence(view))]
    if view.get("reason"):
        lines.append(f"Reason: {text(view['reason'], links)}")
    if view.get("state") == "VERIFYING" and view.get("verify"):
        bake = view["verify"]
        lines.append(f"Baking until {when(bake.get('ends_at'), seconds=True)}, watching alarms "
                     f"{escape(', '.join(bake.get('alarms') or []))}: an alarm in ALARM rolls "
                     "back automatically.")
    if view.get("rollback_of"):
        lines.append(f"Rolls back to deployment <a href='{href(view['rollback_of'], links)}'>"
                     f"{escape(str(view['rollback_of']))}</a>.")
    if view.get("state") == "PENDING_APPROVAL":
        lines.append("This page only shows the deployment: approvers decide with the buttons in "
                     "Slack or their personal approval link.")
    status = "".join(f"<p>{line}</p>" if i else f"<p class='note' role='status'>{line}</p>"
                     for i, line in enumerate(lines))
    return page(title, f"<h1>{escape(title_of(view))}</h1>"
                       f"<p class='muted'>Deployment <code>{escape(view['id'])}</code>, "
                       f"{escape(str(view.get('kind')))}, pushed {when(view['created_at'])}</p>"
                       f"{status}{charts.phase_bar(view, datetime.now(timezone.utc))}"
                       f"{facts(view)}{diff(view)}{approvals(view, links)}"
                       f"{_migration(view)}{_timeline(view, links)}")


def deployment_error_page(status: int, message: str) -> str:
    title = {404: "Unknown deployment", 400: "This address is not valid"}.get(
        status, "Something went wrong")
    return page(title, f"<h1>{escape(title)}</h1><p class='note alert' role='alert'>"
                       f"{text(message)}</p>")
