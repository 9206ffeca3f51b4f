"""boto3 clients built once per process, lazily, with botocore's adaptive retry mode.

``AWS_ENDPOINT_URL`` (boto3's own variable) points every client at an emulator such as the devstack.
"""
from __future__ import annotations

import functools
import os

import boto3
from botocore.config import Config

RETRIES = Config(
    retries={"mode": "adaptive", "max_attempts": 10},  # throttle-safe pruning and bursts
    connect_timeout=5, read_timeout=20,
)


@functools.lru_cache(maxsize=None)
def client(name: str):
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    return boto3.session.Session().client(name, region_name=region, config=RETRIES)


def reset() -> None:
    """Forget cached clients (tests that change the endpoint)."""
    client.cache_clear()
