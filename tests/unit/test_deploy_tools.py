"""The commands docs/deploying.md gives for the Slack app and the secret, run as written."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from deploy import secret, slack_manifest
from tests.conftest import ROOT

URL = "https://abc123.execute-api.eu-west-1.amazonaws.com/api"


def test_the_slack_manifest_is_one_paste_for_the_stage(tmp_path):
    out = tmp_path / "manifest.json"
    done = subprocess.run([sys.executable, "-m", "deploy.slack_manifest", "prod", URL, str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    got = json.loads(out.read_text())
    assert got["settings"]["interactivity"] == {"is_enabled": True,
                                                "request_url": f"{URL}/slack/interactions"}
    assert got["oauth_config"]["scopes"] == {"bot": ["chat:write"]}
    assert got["features"]["bot_user"]["display_name"] == "slipway"
    assert slack_manifest.manifest("dev", URL)["display_information"]["name"] == "Slipway (dev)"


@pytest.mark.parametrize("url", ["http://abc.execute-api.eu-west-1.amazonaws.com/api",
                                 "https://slipway.example.com", ""])
def test_no_manifest_for_a_placeholder_or_plain_http_url(url):
    with pytest.raises(ValueError):
        slack_manifest.manifest("prod", url)


def test_the_secret_takes_tokens_from_the_environment_and_makes_a_32_byte_link_key():
    env = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s", "GITHUB_TOKEN": "ghp_1",
           "PATH": "/usr/bin"}
    done = subprocess.run([sys.executable, "-m", "deploy.secret"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    value = json.loads(done.stdout)
    assert {k: v for k, v in value.items() if k != "link_signing_key"} == {
        "slack_bot_token": "xoxb-1", "slack_signing_secret": "s", "github_token": "ghp_1"}
    assert len(bytes.fromhex(value["link_signing_key"])) == 32
    assert secret.value(env)["link_signing_key"] != value["link_signing_key"]


def test_the_secret_refuses_to_guess_a_missing_token():
    with pytest.raises(SystemExit, match="GITHUB_TOKEN"):
        secret.value({"SLACK_BOT_TOKEN": "x", "SLACK_SIGNING_SECRET": "y"})
