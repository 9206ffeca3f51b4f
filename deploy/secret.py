"""The stage's Secrets Manager value (JSON), printed for `aws secretsmanager create-secret`:
the Slack and GitHub tokens from the environment, and a fresh 32-byte link-signing key.

    SLACK_BOT_TOKEN=xoxb-… SLACK_SIGNING_SECRET=… GITHUB_TOKEN=… python -m deploy.secret \\
        | aws secretsmanager create-secret --name slipway/prod --secret-string file:///dev/stdin

Read from the environment, so no token is typed on a command line (shell history, ps).
"""
from __future__ import annotations

import json
import os
import secrets
import sys

FROM_ENV = {"slack_bot_token": "SLACK_BOT_TOKEN", "slack_signing_secret": "SLACK_SIGNING_SECRET",
            "github_token": "GITHUB_TOKEN"}


def value(env: dict[str, str]) -> dict[str, str]:
    missing = [v for v in FROM_ENV.values() if not env.get(v)]
    if missing:
        raise SystemExit(f"set {', '.join(missing)} first (see docs/deploying.md)")
    return {**{k: env[v] for k, v in FROM_ENV.items()},
            "link_signing_key": secrets.token_hex(32)}  # 32 random bytes, hex


if __name__ == "__main__":
    print(json.dumps(value(dict(os.environ))))
    sys.exit(0)
