"""The devstack's own endpoints under ``/_devstack``: steer and inspect the stack (never the app).

    GET  /_devstack                    this list
    GET  /_devstack/aws                {"endpoint_url", "region", "secret_id", "access_key_id",
                                       "secret_access_key"}: those keys sign the IAM routes
    POST /_devstack/push               {"repository", "tags": [...]} → {"digest", "events"}
    POST /_devstack/events             any EventBridge event (or a list) → {"handlers", "results"};
                                       source, detail-type and detail are enough (EventBridge's
                                       envelope is filled in); 502 if a handler kept failing
    POST /_devstack/ecs                how emulated ECS behaves next → the settings in force
    GET  /_devstack/ecs                the settings in force and how many events were withheld
    POST /_devstack/reconcile          run the scheduled reconciler now → what it did
    POST /_devstack/faults             {"service", "operation", "error", "when", "times", "match"}:
                                       make the app's next AWS calls fail (devstack/faults.py)
    GET  /_devstack/faults             the faults in force and the ones that fired
    DELETE /_devstack/faults           remove every fault
    POST /_devstack/clock              {"advance_seconds"}: move the app's clock forward
    GET  /_devstack/clock              {"offset_seconds", "now"}
    GET  /_devstack/slack/messages     what the Slack stand-in received
    GET  /_devstack/github/deployments what the GitHub stand-in received
    POST /_devstack/github/commits     {"repository", "commits": [{"sha", "author", "committer",
                                       "parents"}]}: what GitHub answers for commits and compares
                                       (a push of a commit it was not told about adds one by
                                       "devstack-dev" on top of the repository's last commit)
    POST /_devstack/slack/response     the response_url the Slack stand-in hands out
"""
from __future__ import annotations

import hashlib
import json
import os
from typing import TYPE_CHECKING, Any

from devstack import aws as aws_mod
from devstack.ecs_emulator import SettingsError
from devstack.events import BadEvent, envelope, failed, push_image
from devstack.standins.github_commits import BadCommits
from devstack.faults import FaultSpecError

if TYPE_CHECKING:
    from devstack.server import DevstackServer
    from devstack.stack import Stack


def _json(body: bytes) -> Any:
    try:
        return json.loads(body or b"{}")
    except ValueError:
        return None


_NOT_JSON = object()


def _bad(message: str) -> tuple[int, dict]:
    return 400, {"error": "bad_request", "message": message}


def register_control(server: "DevstackServer", stack: "Stack") -> None:
    def index(_: bytes):
        return 200, {"endpoints": sorted(f"{m} {p}" for m, p in server.control),
                     "doc": (__doc__ or "").strip(), "clock": stack.clock.status(),
                     "faults": len(stack.faults.status()["faults"])}

    def aws_info(_: bytes):
        return 200, {"endpoint_url": stack.aws.endpoint_url, "region": aws_mod.REGION,
                     "secret_id": stack.provisioned.secret_id,
                     "access_key_id": stack.api_keys.access_key_id,
                     "secret_access_key": stack.api_keys.secret_access_key}

    def push(body: bytes):
        data = _json(body)
        if not isinstance(data, dict) or not isinstance(data.get("repository"), str):
            return _bad('send {"repository": "<ECR repository>", "tags": ["<tag>", ...]}')
        tags = data.get("tags")
        if not isinstance(tags, list) or not tags or not all(isinstance(t, str) and t for t in tags):
            return _bad("'tags' must be a non-empty list of tags")
        ecr = stack.aws.client("ecr")
        try:  # moto's PutImage answers an unknown repository with a bare 500
            ecr.describe_repositories(repositoryNames=[data["repository"]])
        except ecr.exceptions.RepositoryNotFoundException:
            return 404, {"error": "unknown_repository",
                         "message": f"no ECR repository {data['repository']!r} in the devstack"}
        digest, events = push_image(ecr, data["repository"], tags, aws_mod.ACCOUNT, aws_mod.REGION)
        _known_commit(stack, data["repository"], tags)
        results = stack.bus.publish_and_wait(events)
        return 200, {"digest": digest, "events": len(events), "results": results}

    def events(body: bytes):
        try:
            data = json.loads(body or b"null")
        except ValueError:
            data = _NOT_JSON
        batch = data if isinstance(data, list) else [data]
        try:
            if not body.strip():
                raise BadEvent("the body is empty")
            if data is _NOT_JSON or not batch:
                raise BadEvent("the body is not JSON" if batch else "the list is empty")
            batch = [envelope(e, aws_mod.ACCOUNT, aws_mod.REGION) for e in batch]
        except BadEvent as exc:
            return _bad(f"{exc}; send an EventBridge event (an object with source, detail-type "
                        "and detail; the rest of the envelope is filled in) or a list of them")
        reached = [stack.bus.targets(e) for e in batch]
        results = stack.bus.publish_and_wait(batch)
        reply = {"handlers": sorted({n for names in reached for n in names}),
                 "per_event": reached, "results": results,
                 "events": [{"id": e["id"], "detail-type": e["detail-type"]} for e in batch]}
        broken = sorted({name for name, outcomes in results.items()
                         if any(failed(o) for o in outcomes)})
        if broken:  # the handler raised on every attempt: a 502, as a gateway would answer
            return 502, {**reply, "error": "handler_failed", "message": (
                f"{', '.join(broken)} raised on every attempt ({stack.log_hint()})")}
        return 200, reply

    def ecs_set(body: bytes):
        try:
            stack.emulator.configure(_json(body))
        except SettingsError as exc:
            return _bad(str(exc))
        return 200, stack.emulator.status()

    def ecs_get(_: bytes):
        return 200, stack.emulator.status()

    def reconcile(_: bytes):
        return 200, {"result": stack.reconciler.run_now()}

    def faults_add(body: bytes):
        try:
            return 201, stack.faults.add(_json(body))
        except FaultSpecError as exc:
            return _bad(str(exc))

    def clock_advance(body: bytes):
        try:
            return 200, stack.clock.advance(_json(body))
        except FaultSpecError as exc:
            return _bad(str(exc))

    def standin(name: str):
        if os.environ.get(f"{name.upper()}_API_URL") != getattr(stack, name).url:
            return 409, {"error": "not_in_use", "message": f"{name.upper()}_API_URL points "
                         f"elsewhere, so the built-in {name} stand-in receives nothing"}
        return None

    def slack_messages(_: bytes):
        return standin("slack") or (200, {"messages": stack.slack.messages(),
                                          "responses": stack.slack.responses()})

    def github_deployments(_: bytes):
        return standin("github") or (200, {"deployments": stack.github.deployments()})

    def github_commits(body: bytes):
        data = _json(body)
        if not isinstance(data, dict):
            return _bad('send {"repository": "owner/name", "commits": [{"sha", "author", '
                        '"committer", "parents"}]}')
        try:
            count = stack.github.history.add(data.get("repository"), data.get("commits"))
        except BadCommits as exc:
            return _bad(str(exc))
        return 200, {"repository": data["repository"], "commits": count}

    def slack_response(body: bytes):
        return stack.slack.record_response(body)

    for method, path, fn in (
            ("GET", "/_devstack", index), ("GET", "/_devstack/aws", aws_info),
            ("POST", "/_devstack/push", push), ("POST", "/_devstack/events", events),
            ("POST", "/_devstack/ecs", ecs_set), ("GET", "/_devstack/ecs", ecs_get),
            ("POST", "/_devstack/reconcile", reconcile),
            ("POST", "/_devstack/faults", faults_add),
            ("GET", "/_devstack/faults", lambda _: (200, stack.faults.status())),
            ("DELETE", "/_devstack/faults", lambda _: (200, stack.faults.clear())),
            ("POST", "/_devstack/clock", clock_advance),
            ("GET", "/_devstack/clock", lambda _: (200, stack.clock.status())),
            ("GET", "/_devstack/slack/messages", slack_messages),
            ("GET", "/_devstack/github/deployments", github_deployments),
            ("POST", "/_devstack/github/commits", github_commits),
            ("POST", "/_devstack/slack/response", slack_response)):
        server.route(method, path, fn)


def _known_commit(stack: "Stack", repository: str, tags: list[str]) -> None:
    """GitHub knows the commit of every push the devstack plays (who wrote it decides who may
    approve): one it was not told about is added, by "devstack-dev", on top of the last one."""
    from chalicelib import config as config_mod
    from chalicelib.domain.tags import describe

    commit = describe(tags)[1].commit
    repos = {s.notify.github_repository for s in config_mod.load(stack.config_file).services
             if s.repository == repository and s.notify.github_repository}
    for repo in sorted(repos):
        if commit and not stack.github.history.knows(repo, commit):
            last = stack.github.history.newest(repo)
            full = (commit + hashlib.sha1(commit.encode()).hexdigest())[:40]
            stack.github.history.add(repo, [{"sha": full, "author": "devstack-dev",
                                             "committer": "devstack-dev",
                                             "parents": [last] if last else []}])
