"""The `slipway` CLI's own rules, without a network: arguments, `watch`'s polling, what it prints.

`watch` runs against a fake API (a scripted list of answers), so the test can count its requests
and its sleeps; the output tests read the text a person would read.
"""
from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from slipway_cli import main as cli, render
from slipway_cli.errors import Failed, Unreachable


class FakeApi:
    """Answers GET /deployments/{id} from a script: a dict is an answer, an exception is raised."""

    def __init__(self, *script):
        self.script = list(script)
        self.requests: list[str] = []

    def get(self, path, query=None):
        self.requests.append(path)
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        return type("Answer", (), {"body": step})()


def dep(state: str, *notes: tuple[str, str]) -> dict:
    return {"id": "d-1", "service": "web", "kind": "deploy", "image_tag": "1.2.0-abc123d",
            "state": state, "reason": "migration failed: app exited 1" if state == "FAILED" else None,
            "timeline": [{"at": f"2026-11-28T10:00:0{i}Z", "state": s, "note": n}
                         for i, (s, n) in enumerate(notes)]}


def watch(api: FakeApi, **options) -> tuple[int, str, list[float]]:
    args = argparse.Namespace(id="d-1", interval=options.get("interval", 2.0),
                              timeout=options.get("timeout"), json=options.get("json", False))
    out, sleeps, now = io.StringIO(), [], [0.0]

    def sleep(seconds):
        sleeps.append(seconds)
        now[0] += seconds

    code = cli.watch(api, args, out, render.Style(out), sleep=sleep, clock=lambda: now[0])
    return code, out.getvalue(), sleeps


PENDING = ("PENDING_APPROVAL", "image pushed")
APPROVED = ("APPROVED", "approved by slack:U1")
MIGRATING = ("MIGRATING", "migration task started")


def test_watch_makes_one_request_per_poll_and_prints_each_line_once():
    """Three polls → three GETs, two sleeps of the interval; every timeline line printed once."""
    api = FakeApi(dep("PENDING_APPROVAL", PENDING), dep("MIGRATING", PENDING, APPROVED, MIGRATING),
                  dep("SUCCEEDED", PENDING, APPROVED, MIGRATING, ("SUCCEEDED", "rollout completed")))
    code, out, sleeps = watch(api)
    assert code == 0
    assert api.requests == ["/deployments/d-1"] * 3
    assert sleeps == [2.0, 2.0]
    assert [out.count(note) for note in ("image pushed", "approved by", "migration task started",
                                         "rollout completed")] == [1, 1, 1, 1]
    assert out.rstrip().endswith("=> SUCCEEDED")


def test_watch_exits_1_for_any_other_end_with_the_reason():
    """A FAILED deployment: exit 1, and the last line says why."""
    code, out, _ = watch(FakeApi(dep("FAILED", PENDING, ("FAILED", "migration failed"))))
    assert code == 1
    assert out.rstrip().endswith("=> FAILED (migration failed: app exited 1)")


def test_watch_rides_out_a_few_failed_polls_then_gives_up():
    """Up to three polls in a row may fail (printed, retried); the fourth failure ends the watch."""
    lost = Unreachable("cannot reach http://slipway: timed out")
    code, _, sleeps = watch(FakeApi(lost, lost, lost, dep("SUCCEEDED", ("SUCCEEDED", "done"))))
    assert code == 0 and len(sleeps) == 3
    with pytest.raises(Unreachable):
        watch(FakeApi(lost, lost, lost, lost))


def test_watch_timeout_stops_watching_not_the_deployment():
    """--timeout: exit 1 with a message saying the deployment goes on."""
    api = FakeApi(*[dep("DEPLOYING", ("DEPLOYING", "updating"))] * 10)
    with pytest.raises(Failed, match="still DEPLOYING after 5 s; it goes on"):
        watch(api, timeout=5, interval=2.0)
    assert len(api.requests) == 4  # at 0, 2, 4 and 6 s


def test_watch_json_prints_the_final_deployment_only():
    code, out, _ = watch(FakeApi(dep("MIGRATING", MIGRATING), dep("SUCCEEDED", ("SUCCEEDED", "ok"))),
                         json=True)
    assert code == 0
    assert json.loads(out)["state"] == "SUCCEEDED"


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_colours_only_on_a_terminal_and_never_with_no_color(monkeypatch):
    """A TTY gets coloured states; a pipe, NO_COLOR or TERM=dumb get plain text."""
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert render.Style(Terminal()).state("FAILED") == "\x1b[31mFAILED\x1b[0m"
    assert render.Style(io.StringIO()).state("FAILED") == "FAILED"
    monkeypatch.setenv("NO_COLOR", "1")
    assert render.Style(Terminal()).state("FAILED") == "FAILED"
    monkeypatch.delenv("NO_COLOR")
    monkeypatch.setenv("TERM", "dumb")
    assert render.Style(Terminal()).state("FAILED") == "FAILED"


def test_tables_line_up_even_with_colours(monkeypatch):
    """Colour codes take no width: the columns of a coloured table line up as a plain one's."""
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    items = [dict(dep("FAILED"), id="d-1"), dict(dep("SUCCEEDED"), id="d-22", service="api")]
    plain = render.deployments(items, render.Style(io.StringIO())).splitlines()
    coloured = render.deployments(items, render.Style(Terminal())).splitlines()
    assert [render.plain(line) for line in coloured] == plain
    assert len({line.index("deploy") for line in plain[1:]}) == 1


@pytest.mark.parametrize("argv, message", [
    ([], "required: COMMAND"),
    (["rollback", "web", "--to", "previous"], "required: --reason"),
    (["watch", "d-1", "--interval", "0.1"], "at least 0.5 seconds"),
    (["--url", "http://a", "--stack", "s", "services"], "not allowed with argument"),
    (["deployments", "--limit", "0"], "must be 1 or more"),
])
def test_usage_errors_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as stopped:
        cli.main(argv)
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("url", ["notaurl", "ftp://slipway/api", "http://127.0.0.1:99999",
                                 "https://api.example.com/api?x=1"])
def test_a_bad_url_is_a_usage_error(url, capsys, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    assert cli.main(["--url", url, "services"]) == 2
    assert "is not the API's URL" in capsys.readouterr().err


def test_the_region_comes_from_an_execute_api_url(monkeypatch):
    """No --region and no AWS_REGION: an execute-api host name says which region to sign for."""
    from slipway_cli.api import Api
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    api = Api.connect("https://abc123.execute-api.eu-west-1.amazonaws.com/api/", None, None)
    assert (api.url, api.region) == ("https://abc123.execute-api.eu-west-1.amazonaws.com/api",
                                     "eu-west-1")


def test_make_installs_the_slipway_console_script():
    """`make venv` (pip install -e .) puts `slipway` beside the venv's python, and it runs."""
    script = Path(sys.executable).parent / "slipway"
    assert script.exists(), "run `make venv`: it installs the project (pyproject.toml)"
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "rollback" in result.stdout
