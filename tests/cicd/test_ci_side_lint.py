"""docker/ is linted as an application's CI would lint it, with no registry and no Docker engine.

shellcheck (Debian's package; .ci/run installs it) on the push script, hadolint on the example
Dockerfile, the workflow example against the GitHub workflow schema and through zizmor's audits, and
the push role's policies read for least privilege.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
VENV_BIN = Path(sys.executable).parent


def tool(name: str, install: str) -> str:
    found = shutil.which(name, path=f"{VENV_BIN}:{os.environ.get('PATH', '')}")
    if not found:
        pytest.fail(f"{name} is not installed: {install}")
    return found


VENV_TOOL = "make venv (requirements-lint.txt)"


@pytest.mark.parametrize("name, install, args", [
    # shellcheck finds nothing in the push script (nor in .ci/run), style notes included.
    ("shellcheck", "apt-get install shellcheck (.ci/run does)",
     ["--severity=style", "docker/build-push.sh", ".ci/run"]),
    # hadolint finds nothing in the example Dockerfile, not even at info level.
    ("hadolint", VENV_TOOL, ["--failure-threshold", "info", "--no-color", "docker/example/Dockerfile"]),
    # The workflow example is a valid GitHub Actions workflow (check-jsonschema's vendored schema).
    ("check-jsonschema", VENV_TOOL, ["--builtin-schema", "vendor.github-workflows", "docker/build-push.yml"]),
    # zizmor's offline audits (pinned actions, permissions, injection, credentials) find nothing.
    ("zizmor", VENV_TOOL, ["--offline", "--persona=pedantic", "--no-progress", "docker/build-push.yml"]),
], ids=["shellcheck", "hadolint", "workflow-schema", "zizmor"])
def test_linter_finds_nothing(name, install, args):
    """Each linter exits 0 on its docker/ file."""
    result = subprocess.run([tool(name, install), *args], cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_push_role_may_push_to_one_repository_and_nothing_else():
    """Only GetAuthorizationToken (account-wide by AWS's design) on *; ECR push actions on one repo."""
    policy = json.loads((DOCKER / "ecr-push-policy.json").read_text())
    allowed: dict[str, set[str]] = {}
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        for action in actions:
            allowed.setdefault(action, set()).add(statement["Resource"])
    assert allowed.pop("ecr:GetAuthorizationToken") == {"*"}
    push = {"ecr:BatchCheckLayerAvailability", "ecr:InitiateLayerUpload", "ecr:UploadLayerPart",
            "ecr:CompleteLayerUpload", "ecr:PutImage", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"}
    assert set(allowed) == push
    resources = set().union(*allowed.values())
    assert len(resources) == 1
    (arn,) = resources
    assert arn.startswith("arn:aws:ecr:") and ":repository/" in arn and "*" not in arn


def test_push_role_trusts_only_this_repositorys_main_branch_through_oidc():
    """The trust policy pins GitHub's audience and one repository's ref: no wildcard subject."""
    (statement,) = json.loads((DOCKER / "github-oidc-trust-policy.json").read_text())["Statement"]
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Principal"]["Federated"].endswith(":oidc-provider/token.actions.githubusercontent.com")
    condition = statement["Condition"]
    assert set(condition) == {"StringEquals"}
    assert condition["StringEquals"]["token.actions.githubusercontent.com:aud"] == "sts.amazonaws.com"
    subject = condition["StringEquals"]["token.actions.githubusercontent.com:sub"]
    assert subject.startswith("repo:") and subject.endswith(":ref:refs/heads/main") and "*" not in subject


def test_example_app_has_the_migration_script_slipway_runs():
    """The command in services.toml's [service.migration] is a script of the example package.json."""
    config = tomllib.loads((ROOT / "ecs" / "production" / "services.toml").read_text())
    commands = [s["migration"]["command"] for s in config["service"] if "migration" in s]
    assert ["pnpm", "db:migrate"] in commands
    scripts = json.loads((DOCKER / "example" / "package.json").read_text())["scripts"]
    assert "db:migrate" in scripts
