"""M2: secrets in a task definition are *** in the diff (Slack, pages, API), wherever they sit and
whatever their field is called; the change itself stays visible. One row per shape."""
from __future__ import annotations

import json

import pytest

from chalicelib.domain import redact, taskdef

S1, S2 = "hunter2-old-Secret", "s3cr3t-new-Value"  # never shown


def _container(**fields) -> dict:
    return {"family": "web", "containerDefinitions": [{"name": "app", "image": "x", **fields}]}


def _volume(**config) -> dict:
    return {"family": "web", "containerDefinitions": [{"name": "app", "image": "x"}],
            "volumes": [{"name": "data", "dockerVolumeConfiguration": config}]}


# (name, task definition holding the secret S, path of the change, what must still show)
SHAPES = [
    ("env value", lambda s: _container(environment=[{"name": "DB_URL", "value": s}]),
     "container[app].environment.DB_URL", None),
    ("secret reference", lambda s: _container(secrets=[{"name": "K", "valueFrom": s}]),
     "container[app].secrets.K", None),
    ("--password=", lambda s: _container(command=["serve", f"--password={s}"]),
     "container[app].command", "--password=***"),
    ("--db-password value", lambda s: _container(command=["migrate", "--db-password", s]),
     "container[app].command", "--db-password"),
    ("-p value", lambda s: _container(command=["mysql", "-u", "root", "-p", s]),
     "container[app].command", "-u"),
    ("--token= in entryPoint", lambda s: _container(entryPoint=["run", f"--api-token={s}"]),
     "container[app].entryPoint", "--api-token=***"),
    ("--client-secret value", lambda s: _container(entryPoint=["oauth", "--client-secret", s]),
     "container[app].entryPoint", "--client-secret"),
    ("Authorization: Bearer in healthCheck", lambda s: _container(healthCheck={"command": [
        "CMD-SHELL", f"curl -fsS -H 'Authorization: Bearer {s}' http://localhost/health"]}),
     "container[app].healthCheck.command", "Authorization: Bearer ***"),
    ("X-Api-Key header", lambda s: _container(healthCheck={"command": [
        "CMD", "curl", "-H", f"X-Api-Key: {s}", "http://localhost/"]}),
     "container[app].healthCheck.command", "X-Api-Key: ***"),
    ("Basic auth header", lambda s: _container(command=["sh", "-c", f"wget --header="
                                                        f"'Authorization: Basic {s}' http://h"]),
     "container[app].command", "Basic ***"),
    ("URL with credentials in command", lambda s: _container(
        command=["migrate", f"postgres://app:{s}@db.internal:5432/app"]),
     "container[app].command", "postgres://app:***@db.internal"),
    ("URL with credentials in a plain field", lambda s: _container(
        workingDirectory=f"https://bot:{s}@git.example/repo"), "container[app].workingDirectory",
     "https://bot:***@git.example"),
    ("NAME=value in a shell line", lambda s: _container(command=[
        "sh", "-c", f"DB_PASSWORD={s} ./start"]), "container[app].command", "DB_PASSWORD=***"),
    ("volume driverOpts", lambda s: _volume(driver="cifs", driverOpts={"password": s}),
     "volumes", None),
    ("volume driverOpts under another key", lambda s: _volume(driver="x", driverOpts={"o": s}),
     "volumes", None),
    ("dockerLabels", lambda s: _container(dockerLabels={"com.example.x": s}),
     "container[app].dockerLabels.com.example.x", None),
    ("repositoryCredentials", lambda s: _container(repositoryCredentials={"credentialsParameter":
                                                                          s}),
     "container[app].repositoryCredentials.credentialsParameter", None),
    ("log driver options", lambda s: _container(logConfiguration={
        "logDriver": "awsfirelens", "options": {"Name": "datadog", "apikey": s}}),
     "container[app].logConfiguration.options.apikey", None),
    ("log secretOptions", lambda s: _container(logConfiguration={
        "logDriver": "splunk", "secretOptions": [{"name": "splunk-token", "valueFrom": s}]}),
     "container[app].logConfiguration.secretOptions", None),
    ("firelens options", lambda s: _container(firelensConfiguration={
        "type": "fluentbit", "options": {"config-file-value": s}}),
     "container[app].firelensConfiguration.options.config-file-value", None),
    ("any key naming a password", lambda s: _container(
        linuxParameters={"tmpfs": [{"containerPath": "/x", "size": 1}], "dbPassword": s}),
     "container[app].linuxParameters.dbPassword", None),
    ("any key naming a token, nested", lambda s: {**_container(), "proxyConfiguration": {
        "containerName": "app", "properties": [{"name": "AuthToken", "value": s}]}},
     "proxyConfiguration.properties", None),
    ("a key named key", lambda s: _container(systemControls=[{"namespace": "key",
                                                                "value": "1"}], key=s),
     "container[app].key", None),
    ("env value of a dotted name", lambda s: _container(environment=[{"name": "spring.datasource"
                                                                      ".password", "value": s}]),
     "container[app].environment.spring.datasource.password", None),
]


@pytest.mark.parametrize("name,build,path,visible", SHAPES, ids=[s[0] for s in SHAPES])
def test_a_changed_secret_shows_as_a_change_never_as_its_value(name, build, path, visible):
    changes = taskdef.diff(build(S1), build(S2))
    shown = json.dumps(changes)
    assert S1 not in shown and S2 not in shown, shown
    hit = [c for c in changes if c["path"].startswith(path)]
    assert hit, f"the change at {path} disappeared: {changes}"  # the change stays visible
    assert all("***" in json.dumps(c) for c in hit)
    if visible:
        assert visible in shown


def test_at_least_twenty_shapes():
    assert len(SHAPES) >= 20


def test_what_is_not_secret_stays_readable():
    """Ports, plain flags, URLs without credentials and ordinary values are shown as they are."""
    old = _container(command=["serve", "--port", "8080", "-v", "--author=ann"],
                     healthCheck={"command": ["CMD", "curl", "-f", "http://localhost:8080/"]})
    new = _container(command=["serve", "--port", "9090", "-v", "--author=bob"],
                     healthCheck={"command": ["CMD", "curl", "-f", "http://localhost:9090/"]})
    shown = json.dumps(taskdef.diff(old, new))
    assert "9090" in shown and "--author=bob" in shown and "http://localhost:9090/" in shown
    assert "***" not in shown


def test_scrub_leaves_the_command_shape():
    assert redact.scrub_args(["app", "--password", "x", "--port", "1"]) == \
        ["app", "--password", "***", "--port", "1"]


def test_the_migration_command_and_notes_quoting_it_are_scrubbed_in_the_view():
    """The migration command (Slack, pages, API) and timeline notes that quote it hide secrets."""
    import dataclasses
    from datetime import datetime, timezone

    from chalicelib import config
    from chalicelib.domain.model import Deployment, State
    from chalicelib.service.views import deployment_json
    from tests.conftest import CONFIG_DIR

    svc = config.load(CONFIG_DIR / "services.toml").service("better-chatbot")
    svc = dataclasses.replace(svc, migration=dataclasses.replace(
        svc.migration, command=("migrate", "--db-password", S1, f"--url=postgres://u:{S2}@db")))
    dep = Deployment(id="d-20261128T000000-00000000", service=svc.name, kind="deploy",
                     state=State.PENDING_APPROVAL, created_at="2026-11-28T00:00:00Z")
    dep.log(f"migration task t1 started: migrate --db-password {S1}",
            datetime(2026, 11, 28, tzinfo=timezone.utc))
    shown = json.dumps(deployment_json(dep, svc))
    assert S1 not in shown and S2 not in shown
    assert "--db-password" in shown and "postgres://u:***@db" in shown
