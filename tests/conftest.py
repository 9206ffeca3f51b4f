"""Shared test helpers: real-shaped AWS events from tests/events/, with ids substituted."""
from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path

import pytest

EVENTS = Path(__file__).parent / "events"
ROOT = Path(__file__).parent.parent
CONFIG_DIR = ROOT / "ecs" / "production"


def load_event(name: str, **detail) -> dict:
    """Load tests/events/<name>.json; ``detail`` keys override fields of ``detail``."""
    event = json.loads((EVENTS / f"{name}.json").read_text())
    event = copy.deepcopy(event)
    for key, value in detail.items():
        event["detail"][key.replace("_", "-") if key in ("image_tag", "image_digest",
                                                           "repository_name") else key] = value
    return event


def fresh_id(event: dict) -> dict:
    """The same event as another delivery would carry (EventBridge gives every event its own id)."""
    event = copy.deepcopy(event)
    event["id"] = str(uuid.uuid4())
    return event


@pytest.fixture
def event():
    return load_event
