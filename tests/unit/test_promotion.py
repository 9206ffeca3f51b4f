"""Promotion: the same digest from one service to the next (config rules and the domain's choices)."""
from __future__ import annotations

import pytest

from chalicelib import config
from chalicelib.errors import ConfigError

PAIR = """
[[service]]
name = "web-staging"
repository = "web"
cluster = "staging"
service = "web"
container = "app"
{staging}

[[service]]
name = "web"
repository = "web"
cluster = "prod"
service = "web"
container = "app"
[service.promote]
{promote}
"""


def load(tmp_path, promote: str = 'from = "web-staging"', staging: str = ""):
    path = tmp_path / "services.toml"
    path.write_text(PAIR.format(promote=promote, staging=staging))
    return config.load(path)


def test_promote_from_names_the_source_service(tmp_path):
    """[service.promote] from = "web-staging" loads; the source itself has no promotion."""
    cfg = load(tmp_path)
    assert cfg.service("web").promote.source == "web-staging"
    assert cfg.service("web-staging").promote is None


@pytest.mark.parametrize("promote, staging, words", [
    ('from = "web-stagin"', "", "no service named 'web-stagin'"),
    ('from = "web"', "", "cannot promote from itself"),
    ('from = ""', "", "key 'from' must name a service"),
    ('from = "web-staging"\nauto = true', "", "unknown key 'auto'"),
    ('from = "web-staging"', '[service.promote]\nfrom = "web"', "circle"),
])
def test_bad_promotions_fail_naming_file_service_and_key(tmp_path, promote, staging, words):
    """Unknown, self or circular sources and unknown keys fail at load time."""
    with pytest.raises(ConfigError) as err:
        load(tmp_path, promote, staging)
    assert "services.toml: service" in err.value.message and words in err.value.message
