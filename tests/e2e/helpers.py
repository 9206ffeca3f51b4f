"""A user's-eye client of a running devstack: its HTTP API, its stand-ins, and boto3 on its AWS."""
from __future__ import annotations

import json
import re
import secrets
import time
from datetime import datetime, timezone
import urllib.error
import urllib.parse
import urllib.request
from itertools import count
from pathlib import Path

import boto3

from devstack.client import Client as HttpClient

FINISHED = {"SUCCEEDED", "FAILED", "REJECTED", "EXPIRED", "SUPERSEDED", "ROLLED_BACK"}
_minor = count(30)


def release() -> tuple[str, str]:
    """A fresh (short sha, version) pair, as CI would tag a new build."""
    return secrets.token_hex(4)[:7], f"1.{next(_minor)}.0"


CLOCK_LINE = re.compile(r"^  (\d\d:\d\d:\d\d\.\d{3})  (.*)$", re.M)


def clocked(text: str) -> list[tuple[str, str]]:
    """The timestamped lines of terminal output: ``(HH:MM:SS.mmm, the rest)``."""
    return CLOCK_LINE.findall(text)


class Devstack:
    def __init__(self, url: str, terminal: Path | None = None):
        self.url = url.rstrip("/")
        self._http = HttpClient(self.url)
        self.port = int(urllib.parse.urlsplit(self.url).port)
        self._terminal = terminal

    # -- what its terminal shows ----------------------------------------------------------------
    def terminal(self, since: int = 0) -> str:
        """What ``serve`` printed (stdout and stderr), from character ``since`` on."""
        assert self._terminal is not None, "this devstack's terminal is not captured"
        return self._terminal.read_text(errors="replace")[since:]

    def mark(self) -> int:
        """A position in the terminal output: pass it to ``terminal`` / ``wait_for_output``."""
        return len(self.terminal())

    def wait_for_output(self, text: str, since: int = 0, timeout: float = 10) -> str:
        """The terminal output from ``since`` once it contains ``text``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = self.terminal(since)
            if text in out:
                return out
            time.sleep(0.2)
        raise AssertionError(f"the terminal never printed {text!r}; it printed:\n"
                             f"{self.terminal(since)[-3000:]}")

    # -- HTTP -------------------------------------------------------------------------------------
    def call(self, method: str, path: str, body=None, form: dict | None = None):
        """(status, text) of one request, through the devstack's own HTTP client."""
        got = self._http.request(method, path, json_body=body, form=form)
        return got.status, got.text

    def post_raw(self, path: str, data: bytes) -> tuple[int, dict]:
        """POST a body as-is (JSON or not); the answer parsed as JSON."""
        request = urllib.request.Request(self.url + path, data=data, method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def get_json(self, path: str):
        status, text = self.call("GET", path)
        assert status == 200, f"GET {path} → {status}: {text[:300]}"
        return json.loads(text)

    def post_json(self, path: str, body) -> tuple[int, dict]:
        status, text = self.call("POST", path, body=body)
        return status, json.loads(text or "null")

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.call("GET", "/health")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"{self.url}/health did not answer within {timeout:g} s")

    # -- the devstack's controls ----------------------------------------------------------------
    def set_ecs(self, **settings) -> dict:
        status, got = self.post_json("/_devstack/ecs", settings)
        assert status == 200, got
        return got

    def fault(self, service: str, operation: str, error: str, when: str = "before",
              times: int | None = 1, match: dict | None = None) -> dict:
        """Make the app's next AWS call(s) fail (devstack/faults.py); times=None: until cleared."""
        return self._http.inject_fault(service, operation, error, when, times, match)

    def clear_faults(self) -> dict:
        return self._http.clear_faults()

    def faults(self) -> dict:
        return self._http.faults()

    def advance_clock(self, seconds: float) -> dict:
        """Move the app's clock (expiry, waits, stale thresholds, claims) forward."""
        return self._http.advance_clock(seconds)

    def clock_offset(self) -> float:
        return self._http.clock_offset()

    def aws(self, service: str):
        info = self.get_json("/_devstack/aws")
        return boto3.session.Session().client(
            service, region_name=info["region"], endpoint_url=info["endpoint_url"],
            aws_access_key_id="e2e", aws_secret_access_key="e2e")

    def push(self, repository: str, sha: str, version: str) -> str:
        status, got = self.post_json("/_devstack/push", {
            "repository": repository, "tags": [sha, f"{version}-{sha}", "latest"]})
        assert status == 200 and got["events"] == 3, got
        return got["digest"]

    def approval_link(self, dep_id: str, timeout: float = 10) -> str:
        """The signed link Slack delivered to an approver for this deployment."""
        return self.slack_link(r"/approvals/" + re.escape(dep_id) + r"\?token=", timeout)

    def review_link(self, dep_id: str, timeout: float = 10) -> str:
        """The read-only "Review in browser" link of this deployment's Slack message."""
        return self.slack_link(r"/deployments/" + re.escape(dep_id) + r"/page\?view=", timeout)

    def slack_link(self, path_pattern: str, timeout: float = 10) -> str:
        """The first link whose path and query start as ``path_pattern`` in what Slack got."""
        pattern = re.compile(r"https?://[^\s\"'<>|]+" + path_pattern + r"[A-Za-z0-9._~%-]+")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = pattern.findall(json.dumps(self.get_json("/_devstack/slack/messages")))
            if found:
                return found[0]
            time.sleep(0.2)
        raise AssertionError(f"no link like {path_pattern} reached the Slack stand-in")

    # -- the app's API ----------------------------------------------------------------------------
    def deployment_of(self, service: str, digest: str, timeout: float = 10) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for dep in self.get_json(f"/deployments?service={service}&limit=20")["deployments"]:
                if dep["image_digest"] == digest:
                    return dep
            time.sleep(0.2)
        raise AssertionError(f"no deployment of {service} for {digest}")

    def approve(self, link: str) -> str:
        """Open the link's page (GET) and press Approve (POST); return the result page."""
        status, page = self.call("GET", link)
        assert status == 200, page[:500]
        token = urllib.parse.parse_qs(urllib.parse.urlsplit(link).query)["token"][0]
        status, result = self.call("POST", urllib.parse.urlsplit(link).path,
                                   form={"token": token, "decision": "approve", "comment": ""})
        assert status == 200, result[:500]
        return result

    def wait_finished(self, dep_id: str, timeout: float = 30) -> dict:
        """The deployment once finished and settled (a success's pruning note written)."""
        deadline = time.monotonic() + timeout
        dep: dict = {}
        while time.monotonic() < deadline:
            dep = self.get_json(f"/deployments/{dep_id}")
            if dep["state"] in FINISHED:
                if dep["state"] != "SUCCEEDED" or any("prun" in t["note"] for t in dep["timeline"]):
                    return dep
                if _age(dep, self.clock_offset()) > 1.5:  # nothing (more) to prune
                    return dep
            time.sleep(0.2)
        raise AssertionError(f"{dep_id} still {dep.get('state')} after {timeout:g} s: "
                             f"{dep.get('timeline')}")

    def deploy(self, service: str = "better-chatbot", repository: str | None = None) -> dict:
        """Push a new release, approve it through its Slack link, return the finished deployment."""
        sha, version = release()
        digest = self.push(repository or service, sha, version)
        dep = self.deployment_of(service, digest)
        self.approve(self.approval_link(dep["id"]))
        return self.wait_finished(dep["id"])

    def service(self, cluster: str = "production-cluster", name: str = "better-chatbot") -> dict:
        return self.aws("ecs").describe_services(cluster=cluster, services=[name])["services"][0]


def _age(dep: dict, offset: float = 0.0) -> float:
    """Seconds since the deployment finished, on the app's clock (the devstack's may be ahead)."""
    finished = datetime.fromisoformat(dep["finished_at"].replace("Z", "+00:00"))
    return (datetime.now(timezone.utc) - finished).total_seconds() + offset
