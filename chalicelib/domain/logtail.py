"""Where a migration's output is (the awslogs driver's stream) and how it is shown. Pure.

The awslogs driver writes a Fargate container's output to group ``awslogs-group``, stream
``<awslogs-stream-prefix>/<container name>/<task id>``. Anything else (another driver, no prefix:
the stream is named after a container id Slipway never learns) has no stream Slipway can read.
"""
from __future__ import annotations

from chalicelib.domain.taskdef import redact_text

TAIL = 50  # lines read from the end of the stream
LINE_LIMIT = 500  # characters kept of one line


def location(body: dict | None, container: str, task_arn: str) -> tuple[str, str] | str:
    """(group, stream) of ``container``'s output in the task ``task_arn``, or why there is none."""
    spec = next((c for c in (body or {}).get("containerDefinitions", [])
                 if c.get("name") == container), None)
    if spec is None:
        return f"no logs: the task definition has no container {container}"
    cfg = spec.get("logConfiguration") or {}
    driver, options = cfg.get("logDriver"), cfg.get("options") or {}
    if driver != "awslogs":
        return (f"no logs: container {container} logs with the {driver} driver, not awslogs"
                if driver else f"no logs: container {container} has no log configuration")
    if not options.get("awslogs-group") or not options.get("awslogs-stream-prefix"):
        return (f"no logs: container {container}'s awslogs options lack awslogs-group or "
                "awslogs-stream-prefix")
    task_id = task_arn.rsplit("/", 1)[-1]
    return options["awslogs-group"], f"{options['awslogs-stream-prefix']}/{container}/{task_id}"


def shown(lines: list[str], body: dict | None) -> list[str]:
    """The lines as people see them: secrets redacted as in diffs, each cut to LINE_LIMIT."""
    out = []
    for line in lines[-TAIL:]:
        text = redact_text(str(line).rstrip("\r\n"), body)
        out.append(text if len(text) <= LINE_LIMIT else text[:LINE_LIMIT - 1] + "…")
    return out
