"""A config dir for promotion and freeze tests: ecs/production plus a promoted service and a freeze.

    better-chatbot      pushes to the `better-chatbot` repository deploy it (as shipped)
    better-chatbot-eu   [service.promote] from better-chatbot: the same repository, deployed only by
                        promotion; approvers slack:U0APPROVER1 and github:octocat (Slack U0OCTOCAT1)
    [[freeze]] #1       better-chatbot-eu, from ``freeze_start`` for an hour; only github:octocat
                        may break glass
"""
from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

from tests.conftest import CONFIG_DIR

TARGET = "better-chatbot-eu"
OCTOCAT_SLACK = "slack:U0OCTOCAT1"

EXTRA = """
[[service]]
name = "{target}"
repository = "better-chatbot"             # the same repository as its source
cluster = "production-cluster"
service = "{target}"
container = "app"
task_definition = "task-definition-eu.json"

[service.promote]
from = "better-chatbot"                   # a SUCCEEDED deployment there proposes its digest here

[service.migration]
command = ["pnpm", "db:migrate"]

[service.approval]
approvers = ["slack:U0APPROVER1", "github:octocat"]
prevent_self_review = false

[service.notify]
slack_channel = "#deploys-eu"
github_repository = "acme/better-chatbot"
github_environment = "production-eu"


[[freeze]]
services = ["{target}"]
start = "{start}"
end = "{end}"
reason = "EU launch"
break_glass = ["github:octocat"]
"""


def write_config(into: Path, freeze_start: datetime | None = None) -> Path:
    """Copy ecs/production into ``into`` and add the promoted service and its freeze window."""
    start = freeze_start or datetime.now(timezone.utc) + timedelta(hours=2)
    shutil.copytree(CONFIG_DIR, into, dirs_exist_ok=True)
    template = json.loads((into / "task-definition.json").read_text())
    template["family"] = TARGET
    (into / "task-definition-eu.json").write_text(json.dumps(template, indent=2))
    stamp = "%Y-%m-%dT%H:%M:%SZ"
    shipped = (into / "services.toml").read_text()  # octocat joins the shipped [identities]
    (into / "services.toml").write_text(shipped.replace(
        "[identities]\n", f'[identities]\n"github:octocat" = ["{OCTOCAT_SLACK}"]\n'))
    with (into / "services.toml").open("a") as out:
        out.write(EXTRA.format(target=TARGET, octocat=OCTOCAT_SLACK,
                               start=start.strftime(stamp),
                               end=(start + timedelta(hours=1)).strftime(stamp)))
    return into
