"""services.toml loading: the shipped config is valid; every mistake fails naming file, service, key."""
from __future__ import annotations

import json
import shutil

import pytest

from chalicelib import config
from chalicelib.errors import ConfigError
from tests.conftest import CONFIG_DIR

BASE = """
[[service]]
name = "web"
repository = "web"
cluster = "prod"
service = "web"
container = "app"
{extra}
"""


def write(tmp_path, extra: str = "", template: object | None = None):
    if template is not None:
        (tmp_path / "td.json").write_text(template if isinstance(template, str)
                                          else json.dumps(template))
    path = tmp_path / "services.toml"
    path.write_text(BASE.format(extra=extra))
    return path


def test_the_shipped_production_config_loads():
    """ecs/production/services.toml is valid and describes the seed's service."""
    cfg = config.load(CONFIG_DIR / "services.toml")
    web = cfg.service("better-chatbot")
    assert web.cluster == "production-cluster" and web.container == "app"
    assert web.migration.command == ("pnpm", "db:migrate")
    assert web.template["family"] == "better-chatbot"
    assert web.deploy_tags.fullmatch("1.22.0-abc123d") and web.deploy_tags.fullmatch("abc123d")
    assert not web.deploy_tags.fullmatch("latest")
    assert cfg.service("better-chatbot-worker").template is None
    assert cfg.for_repository("better-chatbot") == [web]


def test_defaults_apply(tmp_path):
    """A minimal service needs approval, keeps 10 revisions and runs no migration."""
    svc = config.load(write(tmp_path, '[service.approval]\napprovers = ["*"]')).service("web")
    assert svc.approval.required and svc.approval.quorum == 1 and svc.prune.keep == 10
    assert svc.migration is None and svc.template is None


@pytest.mark.parametrize("extra,message", [
    ('colour = "blue"', "service 'web': unknown key 'colour'"),
    ('deploy_tags = "(unclosed"', "service 'web': key 'deploy_tags' is not a valid regex"),
    ('[service.approval]\nquorum = 0', "[service.approval]: key 'quorum' must be positive"),
    ('[service.approval]\napprovers = ["bob"]', "key 'approvers' has invalid identities"),
    ('[service.approval]\napprovers = ["slack:U1"]\nquorum = 2', "quorum' (2) exceeds"),
    ('[service.approval]\nrequired = "yes"', "key 'required' has the wrong type"),
    ('[service.migration]\ncommand = []', "key 'command' must be a non-empty list"),
    ('[service.prune]\nkeep = 0', "key 'keep' must be positive"),
    ('[service.prune]\nonly_tags = "["', "key 'only_tags' is not a valid regex"),
    ('[service.notify]\nslack = "#x"', "[service.notify]: unknown key 'slack'"),
    ('task_definition = "missing.json"', "key 'task_definition': missing.json not found"),
])
def test_bad_values_name_file_service_and_key(tmp_path, extra, message):
    """Each invalid value is refused at load time with a message pointing at it."""
    path = write(tmp_path, extra)
    with pytest.raises(ConfigError) as err:
        config.load(path)
    assert message in err.value.message and str(path) in err.value.message


def test_missing_required_key(tmp_path):
    """A service without a cluster is refused, naming the key."""
    path = tmp_path / "services.toml"
    path.write_text('[[service]]\nname = "web"\nrepository = "web"\nservice = "w"\ncontainer = "a"\n')
    with pytest.raises(ConfigError, match="service 'web': missing required key 'cluster'"):
        config.load(path)


@pytest.mark.parametrize("template,message", [
    ("{not json", "is not JSON"),
    ({"family": "web"}, "has no 'containerDefinitions'"),
    ({"family": "web", "containerDefinitions": [{"name": "other", "image": "x"}]},
     "has no container named 'app'"),
    (["a", "list"], "is not a JSON object"),
])
def test_a_template_that_is_not_a_task_definition_is_refused(tmp_path, template, message):
    """The template named by task_definition must be a task definition with the container."""
    path = write(tmp_path, 'task_definition = "td.json"', template)
    with pytest.raises(ConfigError, match=message):
        config.load(path)


def test_not_toml_and_duplicate_names(tmp_path):
    """Broken TOML and two services with one name both fail loudly."""
    bad = tmp_path / "services.toml"
    bad.write_text("[[service]\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.load(bad)
    bad.write_text(BASE.format(extra="") * 2)
    with pytest.raises(ConfigError, match="used twice: web"):
        config.load(bad)


def test_identities_map_people_across_channels(tmp_path):
    """[identities] tells Slipway that a Slack user and a GitHub login are one person."""
    path = write(tmp_path, '[service.approval]\napprovers = ["github:octocat"]')
    path.write_text(path.read_text() + '\n[identities]\n"github:octocat" = ["slack:U0OCTO"]\n')
    cfg = config.load(path)
    assert cfg.same_person("slack:U0OCTO") == {"github:octocat", "slack:U0OCTO"}
    assert cfg.same_person("slack:U0OTHER") == {"slack:U0OTHER"}


def test_copy_of_the_production_dir_still_loads(tmp_path):
    """Templates are found beside the config file wherever the folder is copied (packaging)."""
    shutil.copytree(CONFIG_DIR, tmp_path / "prod")
    assert config.load(tmp_path / "prod" / "services.toml").service("better-chatbot").template


NOTIFY = '[service.notify]\ngithub_repository = "acme/web"\n'


@pytest.mark.parametrize("extra,identities,message", [
    ("", "", "required = true but key 'approvers' is empty"),  # L2: no section at all
    ('[service.approval]\nrequired = true', "", "required = true but key 'approvers' is empty"),
    ('[service.approval]\napprovers = ["*", "slack:U1"]', "", '"*" means anyone; list it alone'),
    (f'[service.approval]\napprovers = ["slack:U1"]\nprevent_self_review = true\n{NOTIFY}', "",
     "prevent_self_review needs to know who ['slack:U1'] are on GitHub"),  # H2
    ('[service.approval]\napprovers = ["github:a"]\nprevent_self_review = true', "",
     "prevent_self_review needs [service.notify] github_repository"),
    ('[service.approval]\napprovers = ["slack:U1"]', '"github:a" = ["slack:U1"]\n'
     '"github:b" = ["slack:U1"]', "'slack:U1' is listed under both 'github:a' and 'github:b'"),
    ('[service.approval]\napprovers = ["slack:U1"]', '"github:a" = ["github:b"]\n'
     '"github:b" = ["slack:U2"]', "'github:b' is listed under both"),  # L3: a key is an alias
    ('[service.approval]\napprovers = ["slack:U1", "github:a"]\nquorum = 2',
     '"github:a" = ["slack:U1"]', "quorum' (2) exceeds the 1 distinct people"),  # L3
])
def test_settings_slipway_could_not_enforce_fail_at_load(tmp_path, extra, identities, message):
    """Unsafe combinations are refused naming the file and the service, before anything ships."""
    path = write(tmp_path, extra)
    if identities:
        path.write_text(path.read_text() + f"\n[identities]\n{identities}\n")
    with pytest.raises(ConfigError) as err:
        config.load(path)
    assert message in err.value.message and str(path) in err.value.message


def test_anyone_is_said_out_loud_and_mapped_slack_approvers_may_review(tmp_path):
    """approvers = ["*"] loads; prevent_self_review loads once every Slack approver is mapped."""
    assert config.load(write(tmp_path, '[service.approval]\napprovers = ["*"]')).service(
        "web").approval.approvers == ("*",)
    path = write(tmp_path, '[service.approval]\napprovers = ["slack:U1", "github:b"]\n'
                           f'prevent_self_review = true\nquorum = 2\n{NOTIFY}')
    path.write_text(path.read_text() + '\n[identities]\n"github:a" = ["slack:U1"]\n')
    assert config.load(path).service("web").approval.prevent_self_review
