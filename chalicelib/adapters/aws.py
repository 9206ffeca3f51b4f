"""boto3 clients built once per process, lazily, with botocore's adaptive retry mode.

``AWS_ENDPOINT_URL`` (boto3's own variable) points every client at an emulator such as the devstack.
"""
from __future__ import annotations

import functools
import os
import threading

import boto3
from botocore.config import Config

RETRIES = Config(
    retries={"mode": "adaptive", "max_attempts": 10},  # throttle-safe pruning and bursts
    connect_timeout=5, read_timeout=20,
)


_lock = threading.Lock()  # sessions are not thread-safe; the devstack calls from several threads


@functools.lru_cache(maxsize=None)
def _session() -> boto3.session.Session:
    # One session for every client: each new session reloads botocore's data files (~70 ms a
    # client at cold start, measured by bench/cold_start.py).
    return boto3.session.Session()


@functools.lru_cache(maxsize=None)
def client(name: str):
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    with _lock:
        return _session().client(name, region_name=region, config=RETRIES)


class Lazy:
    """``client(name)``, built on first use: a handler never pays for loading the model of a
    service it does not call (the ECR push handler never sends to SQS)."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str):
        return getattr(client(self._name), attr)

    def __repr__(self) -> str:
        return f"aws.Lazy({self._name!r})"


def reset() -> None:
    """Forget cached clients and the session (tests that change the endpoint)."""
    client.cache_clear()
    _session.cache_clear()
