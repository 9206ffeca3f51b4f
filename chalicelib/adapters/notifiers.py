"""Which notifiers run, from the environment and config. Slack and GitHub arrive with issue 3."""
from __future__ import annotations


def build(deps) -> list:
    return []
