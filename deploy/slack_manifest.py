"""The Slack app for a stage, as an app manifest: creating the app is one paste at
https://api.slack.com/apps → "Create New App" → "From an app manifest".

Slipway posts and updates messages (chat.postMessage, chat.update, chat.postEphemeral: the one
bot scope ``chat:write``; invite the bot to each channel services.toml names) and receives button
clicks at ``<public URL>/slack/interactions``. No events, no slash commands, no socket mode.

    python -m deploy.slack_manifest STAGE PUBLIC_URL [OUT]   # default build/slack-manifest-STAGE.json
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from urllib.parse import urlparse

SCOPES = ["chat:write"]


def manifest(stage: str, public_url: str) -> dict:
    url = urlparse(public_url)
    if url.scheme != "https" or not url.netloc or "example.com" in url.netloc:
        raise ValueError(f"the public URL must be the stack's https URL, not {public_url!r}")
    name = "Slipway" if stage == "prod" else f"Slipway ({stage})"
    return {
        "_metadata": {"major_version": 1, "minor_version": 1},
        "display_information": {
            "name": name, "background_color": "#1d3557",
            "description": "Approves, migrates and rolls out ECS deployments",
            "long_description": "Slipway asks for approval before a new image is deployed to ECS, "
                                "runs the database migration, rolls the service out and reports "
                                "each step here. Buttons record who approved; nothing deploys "
                                "without the approvals its service requires."},
        "features": {"bot_user": {"display_name": "slipway", "always_online": False}},
        "oauth_config": {"scopes": {"bot": SCOPES}},
        "settings": {"interactivity": {"is_enabled": True, "request_url":
                                       public_url.rstrip("/") + "/slack/interactions"},
                     "org_deploy_enabled": False, "socket_mode_enabled": False,
                     "token_rotation_enabled": False},
    }


def main(argv: list[str]) -> int:
    stage, public_url, *rest = argv
    out = Path(rest[0] if rest else f"build/slack-manifest-{stage}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(manifest(stage, public_url), indent=2) + "\n")
    print(f"{out}: paste it at https://api.slack.com/apps → Create New App → From an app manifest")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
