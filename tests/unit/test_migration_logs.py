"""A migration's last log lines: read from its awslogs stream when the task stops, redacted, shown."""
from __future__ import annotations

import copy

from chalicelib.adapters import slack_message
from chalicelib.adapters.slack_notifier import SlackNotifier
from chalicelib.domain import logtail
from chalicelib.domain.model import State
from chalicelib.service import pipeline
from chalicelib.service.views import deployment_json
from tests.unit.pipeline_kit import approve, push, stopped, world

__all__ = ["world"]  # the fixture, imported for pytest
GROUP = "/ecs/better-chatbot"  # the template's awslogs-group, prefix "ecs", container "app"


def migrating(deps):
    dep = push(deps)
    approve(deps, dep)
    return deps.load(dep.id)


def stream_of(dep):
    return f"ecs/app/{dep.migration['task_arn'].rsplit('/', 1)[-1]}"


def test_a_failed_migration_keeps_its_last_lines_redacted_in_json_and_slack(world):
    """Exit 1: the last 50 lines land in migration.log_tail with secrets hidden, and the Slack
    thread reply carries them."""
    dep = migrating(world)
    lines = [f"applying 00{i}_step.sql" for i in range(60)] + [
        "connecting to postgres://chatbot:hunter2@db.internal/chatbot",
        "DB_PASSWORD=s3cr3t-value api_key: abcdef123456",
        "Error: relation \"users\" already exists"]
    world.logs.streams[(GROUP, stream_of(dep))] = lines
    pipeline.migration_stopped(world, stopped(dep, exit_code=1))
    dep = world.load(dep.id)
    tail = deployment_json(dep)["migration"]["log_tail"]
    assert dep.state is State.FAILED and len(tail) == 50
    assert tail[-1] == 'Error: relation "users" already exists'
    assert "hunter2" not in " ".join(tail) and "s3cr3t-value" not in " ".join(tail)
    assert "abcdef123456" not in " ".join(tail) and "postgres://chatbot:***@db" in tail[-3]
    text = SlackNotifier._thread_note(dep, ["FAILED"])
    assert 'relation "users" already exists' in text
    assert "hunter2" not in text and len(text) <= slack_message.SECTION_LIMIT


def test_a_successful_migration_threads_its_last_ten_lines(world):
    """Exit 0: the JSON keeps 50 lines, Slack shows the last 10 under "updating the service"."""
    dep = migrating(world)
    world.logs.streams[(GROUP, stream_of(dep))] = [f"line {i}" for i in range(30)]
    pipeline.migration_stopped(world, stopped(dep))
    dep = world.load(dep.id)
    assert dep.state is State.DEPLOYING and len(dep.migration["log_tail"]) == 30
    text = SlackNotifier._thread_note(dep, ["DEPLOYING"])
    assert "line 29" in text and "line 20" in text and "line 19" not in text


def test_no_logs_is_said_plainly_never_an_error(world):
    """A missing stream, or a container logging elsewhere: an empty tail and a plain note."""
    dep = migrating(world)
    pipeline.migration_stopped(world, stopped(dep, exit_code=1))
    view = deployment_json(world.load(dep.id))["migration"]
    assert view["log_tail"] == [] and view["log_note"].startswith("no logs: log stream ecs/app/")
    assert "no logs" in SlackNotifier._thread_note(world.load(dep.id), ["FAILED"])
    body = copy.deepcopy(dep.task_definition)
    body["containerDefinitions"][0]["logConfiguration"] = {"logDriver": "fluentd"}
    assert logtail.location(body, "app", "arn:t/1") == \
        "no logs: container app logs with the fluentd driver, not awslogs"


def test_lines_are_cut_to_fit_slack():
    """A 5,000-character line and hundreds of lines still make one valid Slack reply."""
    lines = ["x" * 5000] + [f"row {i} " + "y" * 200 for i in range(300)]
    shown = logtail.shown(lines, None)
    assert len(shown) == 50 and all(len(line) <= logtail.LINE_LIMIT for line in shown)
    text = slack_message.thread_with_log("migration failed: app exited 1", shown, None)
    assert len(text) <= slack_message.SECTION_LIMIT and text.endswith("```")
    assert "row 299" in text
