"""Newest wins under faults (issue 7 rows 1-3): order by ECR push time, ties by version then
digest, supersede in the same write as the newer push, retried (never guessed) when ECR throttles."""
from __future__ import annotations

import itertools

import pytest

from chalicelib.adapters.errors import AwsError
from chalicelib.domain.model import State
from chalicelib.errors import Conflict
from chalicelib.service import intake, reconcile
from tests.conftest import fresh_id, load_event
from tests.unit.pipeline_kit import WEB, approve, world

__all__ = ["world"]  # the fixture, imported for pytest
DIGEST = (f"sha256:{i:064x}" for i in itertools.count(50_000))


def event(deps, digest, tag, service=WEB):
    svc = deps.config.service(service)
    e = fresh_id(load_event("ecr_push_sha"))
    e["detail"].update({"repository-name": svc.repository, "image-digest": digest, "image-tag": tag})
    return e


def image(deps, tag, pushed_at, digest=None, service=WEB):
    """Store an image in the fake ECR (pushed at ``pushed_at``); return its digest."""
    digest = digest or next(DIGEST)
    deps.ecs.images[(deps.config.service(service).repository, digest)] = [tag]
    deps.ecs.pushed_at[digest] = pushed_at
    return digest


def state_of(deps, digest, service=WEB):
    return deps.ledger.find(f"key#{service}#{digest}").state


def test_a_supersede_write_that_fails_once_still_ends_superseded(world):
    """GIVEN an older pending push WHEN the newer push's write fails once THEN nothing is half
    done: the redelivered event supersedes the older one, which can no longer be approved."""
    old = image(world, "1.0.0-aaaaaaa", "2026-11-26T08:00:00Z")
    new = image(world, "1.1.0-bbbbbbb", "2026-11-26T08:05:00Z")
    intake.on_image_pushed(world, event(world, old, "1.0.0-aaaaaaa"))
    real, failures = world.ledger.create, iter([AwsError("500 after the call", code=None)])

    def create_failing_once(*args, **kwargs):
        for exc in failures:
            raise exc
        return real(*args, **kwargs)

    world.ledger.create = create_failing_once
    with pytest.raises(AwsError):
        intake.on_image_pushed(world, event(world, new, "1.1.0-bbbbbbb"))
    assert state_of(world, old) is State.PENDING_APPROVAL  # nothing half-written
    assert world.ledger.seen(f"key#{WEB}#{new}") is None
    intake.on_image_pushed(world, event(world, new, "1.1.0-bbbbbbb"))  # EventBridge's retry
    assert state_of(world, old) is State.SUPERSEDED
    assert state_of(world, new) is State.PENDING_APPROVAL
    with pytest.raises(Conflict):
        approve(world, world.ledger.find(f"key#{WEB}#{old}"))


def test_the_reconciler_finishes_a_supersede_cut_short(world):
    """A pending deployment older than the service's newest push (written before supersede was
    one transaction) is superseded by the next reconcile."""
    old = image(world, "1.0.0-aaaaaaa", "2026-11-26T08:00:00Z")
    new = image(world, "1.1.0-bbbbbbb", "2026-11-26T08:05:00Z")
    intake.on_image_pushed(world, event(world, old, "1.0.0-aaaaaaa"))
    real = world.ledger.create
    world.ledger.create = lambda dep, key, **kw: real(dep, key, expect_head=kw.get(
        "expect_head"))  # the older one is left out of the write, as if cut short
    intake.on_image_pushed(world, event(world, new, "1.1.0-bbbbbbb"))
    world.ledger.create = real
    assert state_of(world, old) is State.PENDING_APPROVAL
    reconcile.reconcile(world)
    assert state_of(world, old) is State.SUPERSEDED
    assert state_of(world, new) is State.PENDING_APPROVAL


@pytest.mark.parametrize("newer_first", [True, False])
def test_order_is_ecr_push_time_whatever_arrives_first(world, newer_first):
    """Events arrive in either order: the image ECR got last waits; the other is SUPERSEDED."""
    old = image(world, "2.0.0-aaaaaaa", "2026-11-26T08:00:00Z")  # a higher version, pushed first
    new = image(world, "1.9.0-bbbbbbb", "2026-11-26T09:00:01+01:00")  # 08:00:01Z: a second later
    for digest, tag in ([(new, "1.9.0-bbbbbbb"), (old, "2.0.0-aaaaaaa")] if newer_first else
                        [(old, "2.0.0-aaaaaaa"), (new, "1.9.0-bbbbbbb")]):
        intake.on_image_pushed(world, event(world, digest, tag))
    assert state_of(world, new) is State.PENDING_APPROVAL
    assert state_of(world, old) is State.SUPERSEDED


def test_a_describe_images_throttle_is_retried_not_guessed(world):
    """ECR throttles DescribeImages: the event fails retryably and nothing is written; the retry
    orders the push by its real push time (the older image heard of last is SUPERSEDED)."""
    new = image(world, "1.1.0-bbbbbbb", "2026-11-26T08:05:00Z")
    old = image(world, "1.0.0-aaaaaaa", "2026-11-26T08:00:00Z")
    intake.on_image_pushed(world, event(world, new, "1.1.0-bbbbbbb"))
    real = world.ecs.image_info

    def throttled(*args):
        raise AwsError("Rate exceeded", code="ThrottlingException")

    world.ecs.image_info = throttled
    with pytest.raises(AwsError) as err:
        intake.on_image_pushed(world, event(world, old, "1.0.0-aaaaaaa"))
    assert err.value.retryable and world.ledger.seen(f"key#{WEB}#{old}") is None
    world.ecs.image_info = real
    intake.on_image_pushed(world, event(world, old, "1.0.0-aaaaaaa"))
    assert state_of(world, old) is State.SUPERSEDED
    assert state_of(world, new) is State.PENDING_APPROVAL


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("tags, winner", [
    (("1.9.0-aaaaaaa", "1.10.0-bbbbbbb"), 1),  # semantic, not text, order: 1.10.0 > 1.9.0
    (("1.2.10-aaaaaaa", "1.2.9-bbbbbbb"), 0),
    (("ccccccc", "ddddddd"), None),  # no version: the digest decides, the same way every time
])
def test_pushes_in_the_same_second_are_ordered_by_version_then_digest(world, tags, winner,
                                                                      reverse):
    """Two pushes with the same push time: the same one wins whichever event arrives first."""
    digests = [next(DIGEST), next(DIGEST)]
    for digest, tag in zip(digests, tags):
        image(world, tag, "2026-11-26T08:00:00Z", digest=digest)
    order = list(zip(digests, tags))
    for digest, tag in (reversed(order) if reverse else order):
        intake.on_image_pushed(world, event(world, digest, tag))
    expected = digests[winner] if winner is not None else max(digests)
    waiting = [d for d in digests if state_of(world, d) is State.PENDING_APPROVAL]
    assert waiting == [expected]


def test_an_image_deleted_before_its_event_is_ignored(world):
    """ECR no longer has the image: nothing is created (there is nothing to deploy)."""
    out = intake.on_image_pushed(world, event(world, "sha256:" + "9" * 64, "1.0.0-aaaaaaa"))
    assert out[0].startswith("ignored") and world.ledger.list() == []


def test_semantic_version_order():
    """1.10.0 > 1.9.0; a release > its release candidates; rc.10 > rc.9; no version is oldest."""
    from chalicelib.domain.model import version_key as v

    assert v("1.10.0") > v("1.9.0") > v("1.9.0-rc.10") > v("1.9.0-rc.9") > v("0.1") > v(None)
    assert v("v2.0.0+build.5") == v("2.0.0")


def test_a_newer_image_that_was_rejected_does_not_block_an_older_one(world):
    """The newest push was rejected (it never ran): an older image heard of later is proposed."""
    new = image(world, "1.1.0-bbbbbbb", "2026-11-26T08:05:00Z")
    old = image(world, "1.0.0-aaaaaaa", "2026-11-26T08:00:00Z")
    intake.on_image_pushed(world, event(world, new, "1.1.0-bbbbbbb"))
    from chalicelib.service import decisions
    decisions.decide(world, world.ledger.find(f"key#{WEB}#{new}").id, identity="slack:U0APPROVER1",
                     via="slack", decision="reject")
    intake.on_image_pushed(world, event(world, old, "1.0.0-aaaaaaa"))
    assert state_of(world, old) is State.PENDING_APPROVAL
