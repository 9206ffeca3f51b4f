"""The service page: what ``GET /services/{name}`` shows a browser (API clients keep the JSON).
Live state, the last deployments on a time axis, and the DORA figures with a small chart each."""
from __future__ import annotations

from datetime import datetime
from html import escape

from chalicelib.entrypoints import charts
from chalicelib.entrypoints.pages import page, revision, when

#: Where a service page (/services/{name}) finds a deployment's page.
DEPLOYMENTS = "../deployments/"
_FIGURES = (  # (key, label, how to show one value, colour)
    ("deployments", "Deployments", lambda v: f"{v:g}", "#1a7f37"),
    ("lead_time_seconds", "Lead time (commit → deployed)", lambda v: _time(v), "#0969da"),
    ("change_failure_rate", "Change failure rate", lambda v: f"{100 * v:.0f} %", "#cf222e"),
    ("restore_seconds", "Time to restore", lambda v: _time(v), "#bf8700"),
    ("approval_wait_seconds", "Approval wait", lambda v: _time(v), "#8250df"),
)


def _time(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _figures(dora: dict) -> str:
    rows = []
    for key, label, show, colour in _FIGURES:
        value = dora.get(key)
        series = [row.get(key) for row in dora.get("series") or []]
        shown = "—" if value is None else show(value)
        extra = f" ({dora['per_day']:.2f} a day)" if key == "deployments" else ""
        chart = charts.sparkline(series, f"{label} over {len(series)} slices of the window",
                                 colour)
        rows.append(f"<tr><th scope='row'>{escape(label)}</th><td><strong>{escape(shown)}"
                    f"</strong>{escape(extra)}</td><td>{chart}</td></tr>")
    return (f"<h2>DORA figures, last {dora.get('days', 30):g} days</h2>"
            "<table class='dora'><thead><tr><th scope='col'>Figure</th><th scope='col'>Value</th>"
            "<th scope='col'>Over time</th></tr></thead><tbody>" + "".join(rows) +
            "</tbody></table><p class='muted'>Failures: FAILED, ROLLED_BACK or rolled back later, "
            "over all releases that reached ECS. Bars: the window in equal slices, oldest first."
            "</p>")


def _recent(recent: list[dict], now: datetime) -> str:
    items = "".join(
        f"<li><a href='{DEPLOYMENTS}{escape(d['id'])}'>"
        f"{escape(d.get('version') or d.get('image_tag') or d['id'])}</a> "
        f"<code>{escape(d['state'])}</code> {escape(d['kind'])}, {when(d['created_at'])}</li>"
        for d in recent)
    return (f"<h2>Last deployments</h2>{charts.history(recent, now)}"
            f"<ol class='recent' aria-label='last deployments'>{items}</ol>")


def service_page(status: dict, now: datetime) -> str:
    name = str(status.get("name"))
    good = status.get("last_good_deployment") or {}
    rows = [("ECS service", f"<code>{escape(str(status.get('cluster')))}/"
                            f"{escape(str(status.get('service')))}</code>"),
            ("Runs", f"<code>{escape(revision(status.get('running_task_definition')) or '—')}"
                     "</code>"),
            ("Busy with", escape(str(status.get("busy_with") or "nothing"))),
            ("Last good", escape(str(good.get("version") or good.get("id") or "—")))]
    facts = "<table class='facts'>" + "".join(
        f"<tr><th scope='row'>{k}</th><td>{v}</td></tr>" for k, v in rows) + "</table>"
    return page(f"{name}", f"<h1>{escape(name)}</h1>{facts}"
                           f"{_recent(status.get('recent') or [], now)}"
                           f"{_figures(status.get('dora') or {})}")
