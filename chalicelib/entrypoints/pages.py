"""The approval pages: plain, accessible HTML that works without JavaScript. GET shows, POST decides."""
from __future__ import annotations

from html import escape

STYLE = """body{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;
color:#1b1b1b}h1{font-size:1.5rem}table{border-collapse:collapse;width:100%}th,td{text-align:left;
padding:.25rem .5rem;border-bottom:1px solid #ddd;vertical-align:top}code,pre{font-family:ui-monospace,
monospace;font-size:.9rem}pre{background:#f4f4f4;padding:.75rem;overflow-x:auto}
button{font-size:1rem;padding:.5rem 1.25rem;margin:.25rem .5rem .25rem 0;cursor:pointer}
.approve{background:#1a7f37;color:#fff;border:0}.reject{background:#cf222e;color:#fff;border:0}
.note{padding:.75rem;border-left:4px solid #888;background:#f6f8fa}textarea{width:100%}"""


def _page(title: str, body: str) -> str:
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<meta name="robots" content="noindex"><title>{escape(title)} · Slipway</title>'
            f'<style>{STYLE}</style></head><body><main>{body}</main></body></html>')


def _facts(dep: dict) -> str:
    rows = [("Service", dep["service"]), ("Version", dep.get("version") or "—"),
            ("Commit", dep.get("commit") or "—"), ("Tags", ", ".join(dep.get("tags") or [])),
            ("Image", dep.get("image") or "—"), ("State", dep["state"])]
    if dep.get("migration_command"):
        rows.append(("Migration", " ".join(dep["migration_command"])))
    if dep.get("expires_at"):
        rows.append(("Expires", dep["expires_at"]))
    return "<table>" + "".join(f"<tr><th scope='row'>{escape(k)}</th><td><code>{escape(str(v))}"
                               f"</code></td></tr>" for k, v in rows) + "</table>"


def _diff(dep: dict) -> str:
    lines = [f"{d['path']}: {d['old'] if d['old'] is not None else '∅'} → "
             f"{d['new'] if d['new'] is not None else '∅'}" for d in dep.get("diff") or []]
    text = "\n".join(lines) or "(no change besides the image)"
    return f"<h2>Task definition changes</h2><pre aria-label='task definition diff'>{escape(text)}</pre>"


def confirm_page(dep: dict, token: str, identity: str, action_url: str) -> str:
    """What will ship, and a form whose buttons POST the decision (GET itself changes nothing)."""
    title = f"Deploy {dep['service']} {dep.get('version') or dep.get('image_tag') or ''}".strip()
    form = (
        f"<form method='post' action='{escape(action_url)}'>"
        f"<input type='hidden' name='token' value='{escape(token)}'>"
        f"<p>You are deciding as <strong>{escape(identity)}</strong>.</p>"
        f"<label for='comment'>Comment (optional; say why if you reject)</label>"
        f"<textarea id='comment' name='comment' rows='3' maxlength='500'></textarea>"
        f"<p><button class='approve' type='submit' name='decision' value='approve'>Approve</button>"
        f"<button class='reject' type='submit' name='decision' value='reject'>Reject</button></p>"
        f"</form>"
    )
    return _page(title, f"<h1>{escape(title)}</h1>{_facts(dep)}{_diff(dep)}{form}")


def result_page(title: str, message: str, dep: dict | None = None) -> str:
    facts = _facts(dep) if dep else ""
    return _page(title, f"<h1>{escape(title)}</h1><p class='note' role='status'>{escape(message)}"
                        f"</p>{facts}")


def error_page(status: int, message: str) -> str:
    titles = {400: "This link is not valid", 401: "This link cannot be used",
              403: "You may not decide this deployment", 404: "Unknown deployment",
              409: "Nothing was changed"}
    return _page(titles.get(status, "Something went wrong"),
                 f"<h1>{escape(titles.get(status, 'Something went wrong'))}</h1>"
                 f"<p class='note' role='alert'>{escape(message)}</p>")
