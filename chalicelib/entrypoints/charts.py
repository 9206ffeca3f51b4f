"""Pictures for the pages, as inline SVG drawn on the server: no JavaScript, no outside request,
nothing the pages' strict CSP would refuse. Each picture scales to its box (``viewBox``, width
100%), carries an accessible name, and leaves its words to HTML beside it (they wrap on a phone).

    phases(view)      the deployment's phases from its timeline, each as long as it took
    phase_bar(view)   those phases as one bar, the failing one marked
    history(views)    the last deployments on a time axis, coloured by outcome
    sparkline(values) a small bar chart of one figure over time
"""
from __future__ import annotations

from datetime import datetime
from html import escape

from chalicelib.domain.model import parse_iso

COLOURS = {"wait": "#8c959f", "migration": "#8250df", "rollout": "#0969da", "bake": "#bf8700",
           "SUCCEEDED": "#1a7f37", "FAILED": "#cf222e", "ROLLED_BACK": "#d1242f",
           "other": "#8c959f"}
LABELS = {"wait": "waiting for approval", "migration": "migration", "rollout": "rollout",
          "bake": "bake"}
FAILED = ("FAILED", "ROLLED_BACK", "EXPIRED")
_STARTS = (("MIGRATING", "migration"), ("DEPLOYING", "rollout"), ("VERIFYING", "bake"))


def _at(value) -> datetime | None:
    try:
        return parse_iso(str(value)) if value else None
    except ValueError:
        return None


def phases(view: dict, now: datetime) -> list[dict]:
    """``[{"name", "start", "end", "seconds", "failed"}]`` in order, from the timeline: the wait
    runs from the push to the approval; each later phase from its first timeline entry (the first
    from the approval) to the next phase, the end, or now."""
    timeline = [(e.get("state"), t) for e in view.get("timeline") or [] if (t := _at(e.get("at")))]
    approved = next((t for state, t in timeline if state == "APPROVED"), None)
    marks: list[tuple[str, datetime]] = []
    created = _at(view.get("created_at"))
    if created and view.get("kind") != "rollback":
        marks.append(("wait", created))
    for start, name in _STARTS:
        at = next((t for state, t in timeline if state == start), None)
        if at is not None:
            marks.append((name, at))
    if approved and len(marks) > 1 and marks[0][0] == "wait":
        marks[1] = (marks[1][0], approved)  # the moment between approval and the first step
    end = _at(view.get("finished_at")) or now
    out = []
    for i, (name, start) in enumerate(marks):
        stop = marks[i + 1][1] if i + 1 < len(marks) else (approved if name == "wait" and approved
                                                           else end)
        out.append({"name": name, "start": start, "end": stop,
                    "seconds": max((stop - start).total_seconds(), 0.0), "failed": False})
    if out and view.get("state") in FAILED:
        out[-1]["failed"] = True
    return out


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def phase_bar(view: dict, now: datetime) -> str:
    """The bar and its legend (HTML list), or "" when nothing has happened yet."""
    parts = phases(view, now)
    total = sum(p["seconds"] for p in parts)
    if not parts or total <= 0:
        return ""
    rects, x = [], 0.0
    for p in parts:
        width = max(p["seconds"] / total * 1000, 4)  # a phase of a second stays visible
        colour = COLOURS["FAILED"] if p["failed"] else COLOURS[p["name"]]
        hatch = " stroke='#fff' stroke-width='3' stroke-dasharray='6 4'" if p["failed"] else ""
        rects.append(f"<rect x='{x:.1f}' y='0' width='{width:.1f}' height='40' fill='{colour}'"
                     f"{hatch}><title>{escape(LABELS[p['name']])}: "
                     f"{_duration(p['seconds'])}</title></rect>")
        x += width
    summary = ", ".join(f"{LABELS[p['name']]} {_duration(p['seconds'])}"
                        + (" (failed here)" if p["failed"] else "") for p in parts)
    legend = "".join(
        f"<li><span class='swatch' style='background:"
        f"{COLOURS['FAILED'] if p['failed'] else COLOURS[p['name']]}'></span>"
        f"{escape(LABELS[p['name']])} <strong>{_duration(p['seconds'])}</strong>"
        f"{' <em>failed here</em>' if p['failed'] else ''}</li>" for p in parts)
    return (f"<h2>Phases</h2><svg class='bar' viewBox='0 0 {x:.0f} 40' preserveAspectRatio='none'"
            f" role='img' aria-label='phases: {escape(summary)}'>{''.join(rects)}</svg>"
            f"<ul class='legend' aria-label='phase durations'>{legend}</ul>")


def history(views: list[dict], now: datetime) -> str:
    """The deployments as dots on a time axis (oldest left), coloured by how they ended."""
    points = [(v, t) for v in views if (t := _at(v.get("finished_at") or v.get("created_at")))]
    if not points:
        return "<p class='muted'>No deployments yet.</p>"
    first = min(t for _, t in points)
    span = max((now - first).total_seconds(), 1.0)
    dots = []
    for v, t in sorted(points, key=lambda p: p[1]):
        x = 10 + (t - first).total_seconds() / span * 380
        state = str(v.get("state"))
        shape = "rect" if v.get("kind") == "rollback" else "circle"
        colour = COLOURS.get(state, COLOURS["other"])
        tip = escape(f"{v.get('version') or v.get('image_tag') or v.get('id')}: {state.lower()} "
                     f"({v.get('kind')})")
        dots.append(f"<circle cx='{x:.1f}' cy='20' r='7' fill='{colour}' stroke='#fff'>"
                    f"<title>{tip}</title></circle>" if shape == "circle" else
                    f"<rect x='{x - 6:.1f}' y='14' width='12' height='12' fill='{colour}' "
                    f"stroke='#fff'><title>{tip}</title></rect>")
    return (f"<svg class='history' viewBox='0 0 400 40' role='img' aria-label='last "
            f"{len(points)} deployments, oldest first'><line x1='0' y1='20' x2='400' y2='20' "
            f"stroke='#ddd' stroke-width='2'/>{''.join(dots)}</svg>")


def sparkline(values: list[float | None], label: str, colour: str = "#0969da") -> str:
    """A small bar per value (None: no bar, a tick on the axis), scaled to the largest."""
    top = max((v for v in values if v is not None), default=0) or 1
    width = 100 / max(len(values), 1)
    bars = []
    for i, v in enumerate(values):
        x = i * width + width * 0.15
        if v is None:
            bars.append(f"<rect x='{x:.1f}' y='38' width='{width * 0.7:.1f}' height='2' "
                        "fill='#ccc'/>")
            continue
        h = max(v / top * 38, 1)
        bars.append(f"<rect x='{x:.1f}' y='{40 - h:.1f}' width='{width * 0.7:.1f}' "
                    f"height='{h:.1f}' fill='{colour}'/>")
    return (f"<svg class='spark' viewBox='0 0 100 40' preserveAspectRatio='none' role='img' "
            f"aria-label='{escape(label)}'>{''.join(bars)}</svg>")
