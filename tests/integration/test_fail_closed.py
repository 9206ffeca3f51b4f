"""Fail-closed keys and settings (issue 8, L1-L4): what cannot be enforced is refused up front."""
from __future__ import annotations

import json

import pytest

from chalicelib.domain import links
from chalicelib.entrypoints import bootstrap
from chalicelib.errors import ConfigError
from tests.integration.api_kit import client, push

__all__ = ["client"]  # a fixture, imported for pytest


@pytest.mark.parametrize("key", ["", "short", "x" * 31])
def test_a_link_signing_key_under_32_bytes_is_refused_at_start_up(stack, client, key):
    """L1: a stage whose secret holds an empty or short key signs no link and opens no page; the
    error says what is wrong and how to make a good key (and never shows the key)."""
    dep = push(stack, client)
    secret = {**stack.secret, "link_signing_key": key}
    stack.client("secretsmanager").put_secret_value(SecretId="slipway/test",
                                                    SecretString=json.dumps(secret))
    bootstrap.reset()
    with pytest.raises(ConfigError) as refused:
        bootstrap.load_secret("slipway/test")
    assert "at least 32 bytes" in refused.value.message and "secrets.token_urlsafe" in \
        refused.value.message
    with pytest.raises(ConfigError):
        links.sign(key.encode(), dep["id"], "slack:U0APPROVER1", 2_000_000_000)
    forged = links.sign(b"k" * 32, dep["id"], "slack:U0APPROVER1", 2_000_000_000)
    res = client.http.get(f"/approvals/{dep['id']}?token={forged}")
    assert res.status_code >= 400 and "at least 32 bytes" in res.body.decode()
    assert not key or key not in res.body.decode()


@pytest.mark.parametrize("value", ["not json", '["a", "list"]'])
def test_a_secret_that_is_not_a_json_object_is_refused_clearly(stack, value):
    """A secret stored as plain text or a JSON list is a clear configuration error, never a
    traceback from deep inside the secret's parsing."""
    stack.client("secretsmanager").put_secret_value(SecretId="slipway/test", SecretString=value)
    bootstrap.reset()
    with pytest.raises(ConfigError) as refused:
        bootstrap.load_secret("slipway/test")
    assert "is not a JSON object" in refused.value.message
