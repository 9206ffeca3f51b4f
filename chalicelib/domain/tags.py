"""Image tags: which ones may start a deployment, and what they say about version and commit.

The seed's CI pushes every build under three tags: ``<sha>``, ``<version>-<sha>`` and ``latest``.
``latest`` moves with every push, so it never starts a deployment; the other two describe one image.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

_SHA = re.compile(r"[0-9a-f]{7,40}")
MOVING_TAGS = frozenset({"latest"})


@dataclass(frozen=True)
class TagInfo:
    version: str | None
    commit: str | None


def parse_tag(tag: str) -> TagInfo:
    """``1.22.0-abc123d`` → (1.22.0, abc123d); ``abc123d`` → (None, abc123d); else nothing."""
    if _SHA.fullmatch(tag):
        return TagInfo(None, tag)
    head, sep, tail = tag.rpartition("-")
    if sep and head and _SHA.fullmatch(tail) and head[0].isalnum():
        return TagInfo(head, tail)
    return TagInfo(None, None)


def may_deploy(tag: str | None, deploy_tags: re.Pattern[str]) -> bool:
    """A tag starts a deployment only if it is present, not a moving tag, and matches deploy_tags."""
    return bool(tag) and tag not in MOVING_TAGS and deploy_tags.fullmatch(tag) is not None


def describe(tags: list[str]) -> tuple[str | None, TagInfo]:
    """Pick the most telling tag of an image (version-sha over sha over others) and what it says."""
    best, best_rank, info = None, -1, TagInfo(None, None)
    for tag in sorted(tags):
        parsed = parse_tag(tag)
        rank = 2 if parsed.version else 1 if parsed.commit else 0 if tag not in MOVING_TAGS else -1
        if rank > best_rank:
            best, best_rank, info = tag, rank, parsed
    return best, info
