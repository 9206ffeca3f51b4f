"""`slipway`, the operator CLI, end to end: real HTTP and SigV4 against `python -m devstack serve`.

GIVEN the devstack and its own credentials (GET /_devstack/aws) in the CLI's environment, WHEN an
operator runs `slipway …`, THEN they read tables and timelines, `watch` ends with the deployment
(exit 0 SUCCEEDED, 1 otherwise), and refusals say Slipway's message with exit 3 — never a traceback.
The "day in the life" of docs/cli.md is run from the doc itself, command by command.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from botocore.parsers import ResponseParserError

from tests.e2e.helpers import release

pytestmark = pytest.mark.timeout(180)
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
DOC = ROOT / "docs" / "cli.md"
WORKER = "better-chatbot-worker"
FOLLOW = re.compile(r"follow it: slipway watch (\S+)")


def operator_env(stack, bin_dir: Path) -> dict:
    """The environment an operator's shell would have, pointing at ``stack``: `slipway` on PATH
    runs this checkout's CLI; the AWS credentials are the devstack's own."""
    info = stack.get_json("/_devstack/aws")
    shim = bin_dir / "slipway"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m slipway_cli "$@"\n')
    shim.chmod(0o755)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("AWS_") and k not in ("SLIPWAY_URL", "NO_COLOR")}
    env.update(PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", PYTHONPATH=str(ROOT),
               SLIPWAY_URL=stack.url, AWS_DEFAULT_REGION=info["region"],
               AWS_ACCESS_KEY_ID=info.get("access_key_id", "e2e-operator"),
               AWS_SECRET_ACCESS_KEY=info.get("secret_access_key", "e2e-operator-secret"),
               AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    return env


@pytest.fixture(scope="module")
def cli_env(devstack, tmp_path_factory):
    return operator_env(devstack, tmp_path_factory.mktemp("cli-bin"))


def slipway(env: dict, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(["slipway", *args], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def no_traceback(result: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in result.stderr + result.stdout, result.stderr


def push_worker(devstack) -> dict:
    """A worker release (no approval needed), carried to its end."""
    sha, version = release()
    dep = devstack.deployment_of(WORKER, devstack.push(WORKER, sha, version))
    return devstack.wait_finished(dep["id"])


def pending_failing_migration(devstack) -> dict:
    """A better-chatbot release waiting for approval, whose migration will exit 1."""
    devstack.set_ecs(migration_exit_code=1)
    sha, version = release()
    return devstack.deployment_of("better-chatbot", devstack.push("better-chatbot", sha, version))


def doc_commands(heading: str) -> list[tuple[str, int]]:
    """(command, expected exit code) of the first sh block under ``heading`` in docs/cli.md."""
    section = DOC.read_text().split(heading + "\n", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    commands = []
    for line in block.splitlines():
        command, _, comment = line.partition("#")
        if command.strip():
            expected = re.search(r"exit (\d)", comment)
            commands.append((command.strip(), int(expected.group(1)) if expected else 0))
    return commands


def run_doc_commands(commands, env: dict, tmp_path: Path, started=None) -> list[str]:
    """Run each command with bash as written; check its exit code; ``started(command, first
    line)`` runs once a command has printed its first line (someone acts while it watches)."""
    transcript = []
    for index, (command, expected) in enumerate(commands):
        errors = tmp_path / f"stderr-{index}"
        with errors.open("w+") as stderr:
            proc = subprocess.Popen(["bash", "-c", command], env=env, cwd=ROOT, text=True,
                                    stdout=subprocess.PIPE, stderr=stderr)
            out = ""
            if started is not None and started.wants(command):
                out = proc.stdout.readline()
                started(command, out)
            out += proc.stdout.read()
            proc.wait(timeout=90)
        err = errors.read_text()
        transcript.append(f"$ {command}\n{out}{err}")
        assert proc.returncode == expected, f"{command} → {proc.returncode}\n{out}\n{err}"
        assert "Traceback" not in out + err
        follow = FOLLOW.search(out)
        if follow:  # `slipway rollback …` sets $ROLLBACK, `slipway promote …` $PROMOTION
            env[{"rollback": "ROLLBACK", "promote": "PROMOTION"}[command.split()[1]]] = follow.group(1)
    return transcript


class ApproveWhileWatching:
    """Approves ``dep_id`` through its Slack link once `slipway watch $DEPLOYMENT` has begun."""

    def __init__(self, stack, dep_id: str):
        self.stack, self.dep_id = stack, dep_id

    def wants(self, command: str) -> bool:
        return command.startswith("slipway watch $DEPLOYMENT")

    def __call__(self, command: str, first_line: str) -> None:
        assert self.dep_id in first_line, first_line
        self.stack.approve(self.stack.approval_link(self.dep_id))


def test_the_day_in_the_life_of_the_docs_runs_as_written(devstack, cli_env, tmp_path):
    """Each command of docs/cli.md's day, run by bash as written, ends with the exit code it says."""
    good, later = devstack.deploy(), devstack.deploy()  # each ran its migration
    assert (good["state"], later["state"]) == ("SUCCEEDED", "SUCCEEDED")
    failing = pending_failing_migration(devstack)
    env = {**cli_env, "DEPLOYMENT": failing["id"], "GOOD": good["id"]}
    commands = doc_commands("## A day in the life")
    assert any(c.startswith("slipway watch $DEPLOYMENT") for c, _ in commands)
    transcript = run_doc_commands(commands, env, tmp_path,
                                  ApproveWhileWatching(devstack, failing["id"]))
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "cli-day-in-the-life.txt").write_text("\n".join(transcript))
    said = {t.split("\n", 1)[0][2:]: t for t in transcript}  # command → what it printed

    def of(start: str, *also: str, without: str = "") -> str:
        return next(out for command, out in said.items() if command.startswith(start)
                    and all(a in command for a in also) and not (without and without in command))
    watched = of("slipway watch $DEPLOYMENT")
    assert "MIGRATING" in watched and "=> FAILED" in watched
    assert "not_known_good" in of("slipway rollback", "--to $DEPLOYMENT")
    guarded = of("slipway rollback", "--to $GOOD", without="--force")
    assert "migrations_since_target" in guarded
    assert f"migration since the target: {later['id']}" in guarded
    forced = of("slipway rollback", "--to $GOOD", "--force")
    assert "FORCED by " in forced and later["id"] in forced
    assert "=> SUCCEEDED" in of("slipway watch $ROLLBACK")
    assert devstack.service()["taskDefinition"] == good["task_definition_arn"]


def test_tables_and_json_say_what_the_api_says(devstack, cli_env):
    """`services`, `deployments` and `show` print readable tables; --json is the API's own JSON."""
    done = push_worker(devstack)
    services = slipway(cli_env, "services")
    assert services.returncode == 0, services.stderr
    assert services.stdout.splitlines()[0].split()[:3] == ["SERVICE", "RUNNING", "LAST"]
    assert any(line.startswith(WORKER) and done["image_tag"] in line
               for line in services.stdout.splitlines())
    as_json = slipway(cli_env, "--json", "services")
    assert json.loads(as_json.stdout) == devstack.get_json("/services")

    listed = slipway(cli_env, "deployments", "--service", WORKER, "--state", "succeeded",
                     "--limit", "1")
    assert listed.returncode == 0, listed.stderr
    (row,) = listed.stdout.splitlines()[1:]
    assert row.split()[:4] == [done["id"], WORKER, "deploy", "SUCCEEDED"]

    shown = slipway(cli_env, "show", done["id"])
    assert shown.returncode == 0, shown.stderr
    for entry in done["timeline"]:
        assert entry["note"] in shown.stdout
    assert json.loads(slipway(cli_env, "show", done["id"], "--json").stdout)["id"] == done["id"]


def test_watch_of_a_finished_deployment_ends_at_once(devstack, cli_env):
    """`watch` of a deployment that already ended prints its timeline and exits by its state."""
    done = push_worker(devstack)
    watched = slipway(cli_env, "watch", done["id"], "--interval", "0.5", timeout=20)
    assert watched.returncode == 0, watched.stderr
    assert watched.stdout.rstrip().endswith("=> SUCCEEDED")


def test_refusals_exit_3_with_slipways_message_and_change_nothing(devstack, cli_env):
    """A rollback to an unknown deployment and one with an unknown state: exit 3, message, no
    traceback, no deployment created."""
    before = devstack.get_json(f"/deployments?service={WORKER}&limit=200")["deployments"]
    refused = slipway(cli_env, "rollback", WORKER, "--to", "d-20200101T000000-00000000",
                      "--reason", "typo")
    assert refused.returncode == 3, refused.stderr
    assert refused.stderr.startswith("slipway: ") and "unknown_deployment" in refused.stderr
    no_traceback(refused)
    as_json = slipway(cli_env, "rollback", WORKER, "--to", "d-20200101T000000-00000000",
                      "--reason", "typo", "--json")
    assert as_json.returncode == 3 and json.loads(as_json.stdout)["error"] == "unknown_deployment"
    assert devstack.get_json(f"/deployments?service={WORKER}&limit=200")["deployments"] == before
    bad_state = slipway(cli_env, "deployments", "--state", "SHIPPED")
    assert bad_state.returncode == 3 and "bad_parameter" in bad_state.stderr


def test_stack_option_reads_the_api_url_from_cloudformation(devstack, cli_env):
    """--stack NAME finds the API in the stack's ApiUrl output (CloudFormation on the embedded AWS)."""
    info = devstack.get_json("/_devstack/aws")
    template = {"Resources": {"Marker": {"Type": "AWS::SQS::Queue"}},
                "Outputs": {"ApiUrl": {"Value": devstack.url}}}
    create_stack(devstack.aws("cloudformation"), "slipway-cli-e2e", template)
    env = {k: v for k, v in cli_env.items() if k != "SLIPWAY_URL"}
    env["AWS_ENDPOINT_URL_CLOUDFORMATION"] = info["endpoint_url"]
    found = slipway(env, "--stack", "slipway-cli-e2e", "services")
    assert found.returncode == 0, found.stderr
    assert "better-chatbot" in found.stdout
    missing = slipway(env, "--stack", "no-such-stack", "services")
    assert missing.returncode == 2 and "no CloudFormation stack 'no-such-stack'" in missing.stderr
    no_traceback(missing)


def create_stack(cloudformation, name: str, template: dict) -> None:
    """Set-up, not the behaviour under test: moto's CloudFormation has once answered a create on
    a loaded machine with a body botocore could not parse, so try again (once created, done)."""
    for attempt in range(3):
        try:
            cloudformation.create_stack(StackName=name, TemplateBody=json.dumps(template))
            return
        except ResponseParserError:
            if attempt == 2:
                raise
        except cloudformation.exceptions.AlreadyExistsException:
            return


def test_a_signature_the_devstack_refuses_exits_4(devstack, cli_env):
    """Wrong secret key: the IAM route refuses the signature; exit 4, no traceback."""
    if "secret_access_key" not in devstack.get_json("/_devstack/aws"):
        pytest.skip("this devstack does not check SigV4 on its IAM routes yet")
    env = {**cli_env, "AWS_SECRET_ACCESS_KEY": "not-the-devstack-secret"}
    refused = slipway(env, "services")
    assert refused.returncode == 4, refused.stderr
    assert "refused the request's AWS signature (403)" in refused.stderr
    no_traceback(refused)


def test_promote_prints_slipways_refusal(devstack, cli_env):
    """Promoting into a service without [service.promote]: Slipway says no, exit 3, its message."""
    status, body = devstack.post_json("/services/better-chatbot/promote",
                                      {"deployment": "d-20200101T000000-00000000"})
    if not (isinstance(body, dict) and "error" in body):
        pytest.skip("this devstack has no promote route yet")
    refused = slipway(cli_env, "promote", "better-chatbot", "--deployment",
                      "d-20200101T000000-00000000")
    assert refused.returncode == 3, refused.stderr
    assert body["message"] in refused.stderr
    no_traceback(refused)


@pytest.fixture(scope="module")
def ops_cli_env(opstack, tmp_path_factory):
    return operator_env(opstack, tmp_path_factory.mktemp("ops-cli-bin"))


def test_the_promotion_of_the_docs_runs_as_written(opstack, ops_cli_env, tmp_path):
    """docs/cli.md's promotion: the same digest proposed by hand to better-chatbot-eu, refused
    while one waits and for a service that is not promoted; each exit code as the doc says."""
    from tests.e2e.test_promotion_e2e import proposal_of, reject
    source = opstack.deploy("better-chatbot")
    assert source["state"] == "SUCCEEDED", source["timeline"]
    reject(opstack, proposal_of(opstack, source)["id"])  # the automatic proposal: "not yet"
    env = {**ops_cli_env, "SOURCE": source["id"]}
    transcript = run_doc_commands(doc_commands("### Promotion"), env, tmp_path)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "cli-promotion.txt").write_text("\n".join(transcript))
    promoted = opstack.get_json(f"/deployments/{env['PROMOTION']}")
    assert (promoted["kind"], promoted["state"]) == ("promote", "PENDING_APPROVAL")
    assert promoted["image_digest"] == source["image_digest"]
    assert any("already_proposed" in t for t in transcript)
    assert any(re.search(rf"promoted from: +better-chatbot {source['id']}", t) for t in transcript)
