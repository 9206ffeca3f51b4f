"""docker/build-push.sh, run for real with a stand-in `docker` on PATH (and real git).

GIVEN an application repository (package.json, docker/Dockerfile, a commit), WHEN CI runs the
script, THEN it builds once with the three tags and pushes exactly those tags of that one image —
or, for bad input, says what is wrong and runs no docker command at all.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "docker" / "build-push.sh"
REPO = "123456789012.dkr.ecr.us-east-1.amazonaws.com/better-chatbot"
DIGEST = "sha256:" + "ab" * 32

# Records each call's arguments, one JSON line per call, and answers `push` as docker does.
STAND_IN = f"""#!{sys.executable}
import json, os, sys
with open(os.environ["STANDIN_LOG"], "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
if sys.argv[1:2] == ["push"]:
    name, tag = sys.argv[2].rsplit(":", 1)
    if tag in os.environ.get("STANDIN_FAIL_TAGS", "").split():
        sys.exit("denied: not authorized to perform ecr:PutImage")
    digest = json.loads(os.environ.get("STANDIN_DIGESTS", "{{}}")).get(tag, "{DIGEST}")
    print(f"The push refers to repository [{{name}}]")
    print(f"{{tag}}: digest: {{digest}} size: 1573")
"""


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=CI", "-c", "user.email=ci@example.com", *args],
                          cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def app(tmp_path):
    """An application repository with one commit: package.json 1.22.0 and docker/Dockerfile."""
    repo = tmp_path / "app"
    (repo / "docker").mkdir(parents=True)
    (repo / "package.json").write_text(json.dumps({"name": "better-chatbot", "version": "1.22.0"}))
    (repo / "docker" / "Dockerfile").write_text("FROM scratch\n")
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "first")
    return repo


@pytest.fixture
def run(app, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(STAND_IN)
    (bin_dir / "docker").chmod(0o755)
    log = tmp_path / "docker-calls.jsonl"

    def _run(*args: str, **env: str) -> subprocess.CompletedProcess:
        environ = {k: v for k, v in os.environ.items() if k != "GITHUB_OUTPUT"}
        environ.update(PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", STANDIN_LOG=str(log), **env)
        result = subprocess.run(["bash", str(SCRIPT), *args], cwd=app, env=environ,
                                capture_output=True, text=True, timeout=60)
        result.calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
        return result
    return _run


def test_builds_once_and_pushes_the_three_tags_of_one_digest(app, run, tmp_path):
    """One build with all three tags, then one push per tag, `latest` last; it prints image@digest."""
    sha = git(app, "rev-parse", "HEAD")
    outputs = tmp_path / "github-output"
    result = run(REPO, GITHUB_OUTPUT=str(outputs))
    assert result.returncode == 0, result.stderr
    sha7 = sha[:7]
    assert result.calls == [
        ["build", "--file", "docker/Dockerfile",
         "--label", f"org.opencontainers.image.revision={sha}",
         "--label", "org.opencontainers.image.version=1.22.0",
         "--tag", f"{REPO}:{sha7}", "--tag", f"{REPO}:1.22.0-{sha7}", "--tag", f"{REPO}:latest", "."],
        ["push", f"{REPO}:{sha7}"],
        ["push", f"{REPO}:1.22.0-{sha7}"],
        ["push", f"{REPO}:latest"],
    ]
    assert result.stdout == f"{REPO}@{DIGEST}\n"
    assert outputs.read_text().splitlines() == [
        f"image={REPO}@{DIGEST}", f"image-name={REPO}", f"image-tag=1.22.0-{sha7}", f"digest={DIGEST}"]


def test_version_from_a_plain_file_or_a_command(app, run):
    """--version-file reads a VERSION file's first line; --version-command runs a command."""
    (app / "VERSION").write_text("2.0.1\n")
    git(app, "add", "VERSION")
    git(app, "commit", "-qm", "version file")
    sha7 = git(app, "rev-parse", "HEAD")[:7]
    from_file = run("--version-file", "VERSION", REPO)
    assert from_file.returncode == 0, from_file.stderr
    assert ["push", f"{REPO}:2.0.1-{sha7}"] in from_file.calls
    from_command = run("--version-command", "echo 3.4.5", REPO)
    assert from_command.returncode == 0, from_command.stderr
    assert ["push", f"{REPO}:3.4.5-{sha7}"] in from_command.calls


def test_arguments_after_double_dash_go_to_docker_build(app, run):
    """`-- --platform linux/arm64` reaches `docker build`, before the context."""
    result = run(REPO, "--", "--platform", "linux/arm64")
    assert result.returncode == 0, result.stderr
    assert result.calls[0][-3:] == ["--platform", "linux/arm64", "."]


@pytest.mark.parametrize("package, message", [
    ({"name": "better-chatbot"}, 'no version in ./package.json (package.json needs "version"'),
    ({"version": "1.0.0+build.5"},
     "version '1.0.0+build.5' from ./package.json cannot be part of an image tag"),
], ids=["no-version", "not-a-tag"])
def test_a_missing_or_unusable_version_is_refused_before_any_build(app, run, package, message):
    """No "version" in package.json, or one a Docker tag cannot hold: exit 1 saying so; nothing runs."""
    (app / "package.json").write_text(json.dumps(package))
    git(app, "commit", "-qam", "version changed")
    result = run(REPO)
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert result.calls == []


def test_uncommitted_changes_are_refused_unless_allowed(app, run):
    """A dirty work tree would make an image that is not <sha7>: exit 1 naming the file, no build."""
    (app / "package.json").write_text(json.dumps({"version": "9.9.9"}))
    (app / "notes.txt").write_text("untracked\n")
    result = run(REPO)
    assert result.returncode == 1
    assert "M package.json" in result.stderr and "?? notes.txt" in result.stderr
    assert "the image would not be commit" in result.stderr
    assert result.calls == []
    allowed = run("--allow-dirty", REPO)
    assert allowed.returncode == 0, allowed.stderr
    assert allowed.calls[0][0] == "build"


def test_outside_a_git_work_tree_is_refused(run, tmp_path):
    """No commit, no <sha7>: exit 1 with the reason."""
    bare = tmp_path / "not-a-repo"
    (bare / "docker").mkdir(parents=True)
    (bare / "docker" / "Dockerfile").write_text("FROM scratch\n")
    (bare / "package.json").write_text(json.dumps({"version": "1.0.0"}))
    result = run("--context", str(bare), "--dockerfile", str(bare / "docker" / "Dockerfile"), REPO)
    assert result.returncode == 1
    assert "is not a git work tree with a commit" in result.stderr
    assert result.calls == []


def test_different_digests_per_tag_fail_the_push(app, run):
    """If a tag ends up on another digest, Slipway would see two images: the script fails loudly."""
    other = "sha256:" + "cd" * 32
    result = run(REPO, STANDIN_DIGESTS=json.dumps({"latest": other}))
    assert result.returncode == 1
    assert f"{REPO}:latest was pushed as {other}" in result.stderr
    assert "Slipway would see two images" in result.stderr


def test_a_refused_push_stops_the_script(app, run):
    """ECR refuses the first push: exit 1, and the other tags are not pushed."""
    sha7 = git(app, "rev-parse", "HEAD")[:7]
    result = run(REPO, STANDIN_FAIL_TAGS=sha7)
    assert result.returncode == 1
    assert "not authorized to perform ecr:PutImage" in result.stderr
    assert f"docker push {REPO}:{sha7} failed" in result.stderr
    assert [c for c in result.calls if c[0] == "push"] == [["push", f"{REPO}:{sha7}"]]


@pytest.mark.parametrize("args, message", [
    ((), "which image repository?"),
    ((f"{REPO}:latest",), "give the repository without a tag or digest"),
    ((REPO, "--bogus"), "unknown option --bogus"),
    ((REPO, "--version-file", "VERSION", "--version-command", "echo 1"), "not both"),
    (("Not/Valid",), "is not an image repository name"),
])
def test_usage_errors_exit_2(app, run, args, message):
    """Bad arguments: exit 2, the problem and the usage, nothing runs."""
    result = run(*args)
    assert result.returncode == 2
    assert message in result.stderr and "usage: build-push.sh" in result.stderr
    assert result.calls == []
