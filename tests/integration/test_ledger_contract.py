"""ONE contract suite for the ledger port, run against the in-memory fake and DynamoDB (on moto),
so the fake the unit tests use cannot drift from the real thing."""
from __future__ import annotations

import threading

import pytest

from chalicelib.adapters.ledger_dynamodb import DynamoLedger
from chalicelib.adapters.ledger_memory import MemoryLedger
from chalicelib.domain.model import Deployment, State
from chalicelib.errors import Conflict, ConcurrentUpdate


def make(dep_id: str, service: str = "web", created: str = "2026-11-26T10:00:00Z",
         state: State = State.PENDING_APPROVAL) -> Deployment:
    return Deployment(id=dep_id, service=service, kind="deploy", state=state, created_at=created)


@pytest.fixture(params=["memory", "dynamodb"])
def ledger(request):
    if request.param == "memory":
        return MemoryLedger()
    stack = request.getfixturevalue("stack")
    return DynamoLedger(stack.client("dynamodb"), "slipway-test")


def test_create_is_once_per_dedupe_key(ledger):
    """A second deployment with the same key is not stored; the first one comes back."""
    first, created = ledger.create(make("d-1"), "key#web#sha256:1")
    again, created_again = ledger.create(make("d-2"), "key#web#sha256:1")
    assert created and not created_again and again.id == "d-1"
    assert ledger.get("d-2") is None and ledger.get("d-1").lock_version == 1


def test_save_bumps_the_version_and_refuses_stale_writers(ledger):
    """Two writers read the same version: the second write is refused, the first one stays."""
    ledger.create(make("d-1"), "k1")
    a, b = ledger.get("d-1"), ledger.get("d-1")
    a.transition(State.APPROVED, "a", a_time())
    ledger.save(a)
    b.transition(State.REJECTED, "b", a_time())
    with pytest.raises(ConcurrentUpdate):
        ledger.save(b)
    stored = ledger.get("d-1")
    assert stored.state is State.APPROVED and stored.lock_version == 2
    assert b.lock_version == 1  # a refused write leaves the caller's copy as it was


def a_time():
    from datetime import datetime, timezone

    return datetime(2026, 11, 26, 11, tzinfo=timezone.utc)


def test_many_concurrent_writers_exactly_one_wins(ledger):
    """Twenty threads race to approve the same version; exactly one write lands."""
    ledger.create(make("d-1"), "k1")
    copies = [ledger.get("d-1") for _ in range(20)]
    wins, barrier = [], threading.Barrier(20)

    def write(dep):
        dep.transition(State.APPROVED, "race", a_time())
        barrier.wait()
        try:
            ledger.save(dep)
            wins.append(dep)
        except (ConcurrentUpdate, Conflict):
            pass

    threads = [threading.Thread(target=write, args=(c,)) for c in copies]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert len(wins) == 1 and ledger.get("d-1").lock_version == 2


def test_pointers_find_their_deployment(ledger):
    """A task ARN or ECS deployment id written with a save leads back to the deployment."""
    ledger.create(make("d-1"), "k1")
    dep = ledger.get("d-1")
    dep.log("x", a_time())
    ledger.save(dep, pointers=("task#arn:task/1", "ecsdep#ecs-svc/9"))
    assert ledger.find("task#arn:task/1").id == "d-1"
    assert ledger.find("ecsdep#ecs-svc/9").id == "d-1"
    assert ledger.find("task#unknown") is None


def test_a_busy_deployment_holds_its_service_until_it_finishes(ledger):
    """While one deployment is being worked on, another of the same service cannot start."""
    ledger.create(make("d-1"), "k1")
    ledger.create(make("d-2", created="2026-11-26T10:00:01Z"), "k2")
    ledger.create(make("d-3", service="other"), "k3")
    one = ledger.get("d-1")
    one.transition(State.APPROVED, "go", a_time())
    ledger.save(one)
    assert ledger.lock_holder("web") == "d-1"
    two = ledger.get("d-2")
    two.transition(State.APPROVED, "go", a_time())
    with pytest.raises(Conflict) as err:
        ledger.save(two)
    assert err.value.code == "service_locked" and ledger.get("d-2").state is State.PENDING_APPROVAL
    three = ledger.get("d-3")  # another service is not affected
    three.transition(State.APPROVED, "go", a_time())
    ledger.save(three)
    one = ledger.get("d-1")
    one.transition(State.FAILED, "boom", a_time())
    ledger.save(one)
    assert ledger.lock_holder("web") is None
    two = ledger.get("d-2")
    two.transition(State.APPROVED, "go", a_time())
    ledger.save(two)
    assert ledger.lock_holder("web") == "d-2"


def test_a_busy_deployment_cannot_be_created_while_the_service_is_locked(ledger):
    """A rollback created straight into APPROVED is refused while another one is busy."""
    ledger.create(make("d-1", state=State.APPROVED), "k1")
    with pytest.raises(Conflict):
        ledger.create(make("d-2", state=State.APPROVED), "k2")
    assert ledger.get("d-2") is None


def test_list_is_newest_first_and_filters(ledger):
    """Listing by service and state returns the newest first, up to the limit."""
    for i in range(5):
        ledger.create(make(f"d-{i}", service="web" if i % 2 == 0 else "api",
                           created=f"2026-11-26T10:00:0{i}Z"), f"k{i}")
    assert [d.id for d in ledger.list()] == ["d-4", "d-3", "d-2", "d-1", "d-0"]
    assert [d.id for d in ledger.list(service="web", limit=2)] == ["d-4", "d-2"]
    done = ledger.get("d-2")
    done.transition(State.REJECTED, "no", a_time())
    ledger.save(done)
    assert [d.id for d in ledger.list(service="web", state="REJECTED")] == ["d-2"]
    assert sorted(d.id for d in ledger.unfinished(["web", "api"])) == ["d-0", "d-1", "d-3", "d-4"]
    assert sorted(d.id for d in ledger.unfinished(["api"])) == ["d-1", "d-3"]


def test_jobs_store_and_clear(ledger):
    """A pruning job's progress survives between invocations and can be cleared."""
    assert ledger.get_job("prune#web") is None
    ledger.put_job("prune#web", {"revisions": [1, 2, 3]})
    assert ledger.get_job("prune#web") == {"revisions": [1, 2, 3]}
    ledger.put_job("prune#web", None)
    assert ledger.get_job("prune#web") is None


def test_release_lock_frees_only_for_its_holder(ledger):
    """The reconciler's repair frees a service only if the named deployment still holds it."""
    ledger.create(make("d-1", state=State.APPROVED), "k1")
    ledger.release_lock("web", "d-other")
    assert ledger.lock_holder("web") == "d-1"
    ledger.release_lock("web", "d-1")
    assert ledger.lock_holder("web") is None


def test_finishing_releases_the_lock_in_the_same_write(ledger):
    """A busy deployment that fails frees its service at once, and a later note keeps it free."""
    ledger.create(make("d-1", state=State.APPROVED), "k1")
    dep = ledger.get("d-1")
    dep.transition(State.FAILED, "boom", a_time())
    ledger.save(dep)
    assert ledger.lock_holder("web") is None
    ledger.create(make("d-2", state=State.APPROVED), "k2")
    late = ledger.get("d-1")
    late.log("a note after the end", a_time())
    ledger.save(late)
    assert ledger.lock_holder("web") == "d-2"


def test_the_head_knows_the_newest_push_the_lock_and_the_unfinished(ledger):
    """One strongly consistent item per service: newest pushed image, lock holder, unfinished."""
    assert ledger.head("web").version == 0 and ledger.head("web").newest is None
    one = make("d-1")
    one.pushed_at, one.image_digest = "2026-11-26T09:00:00Z", "sha256:1"
    ledger.create(one, "k1", expect_head=0)
    head = ledger.head("web")
    assert head.newest["id"] == "d-1" and head.open == {"d-1"} and head.lock is None
    one = ledger.get("d-1")
    one.transition(State.APPROVED, "go", a_time())
    ledger.save(one)
    assert ledger.head("web").lock == "d-1"
    one = ledger.get("d-1")
    one.transition(State.FAILED, "boom", a_time())
    ledger.save(one, prune="web-family")
    head = ledger.head("web")
    assert head.lock is None and head.open == set() and head.prune == {"web-family"}
    ledger.prune_done("web", "web-family")
    assert ledger.head("web").prune == set()


def test_create_refuses_a_decision_made_on_an_outdated_head(ledger):
    """Two pushes decided on the same head: the second write is refused, nothing of it stored."""
    ledger.create(make("d-1"), "k1", expect_head=0)
    with pytest.raises(ConcurrentUpdate):
        ledger.create(make("d-2"), "k2", expect_head=0)
    assert ledger.get("d-2") is None and ledger.seen("k2") is None
    assert ledger.head("web").open == {"d-1"}


def test_a_superseding_create_is_all_or_nothing(ledger):
    """The newer push and the SUPERSEDED older one are one write: if the older one changed
    meanwhile (approved), neither is written; otherwise both are."""
    ledger.create(make("d-1"), "k1")
    older = ledger.get("d-1")
    approved = ledger.get("d-1")
    approved.transition(State.APPROVED, "go", a_time())
    ledger.save(approved)
    older.transition(State.SUPERSEDED, "by d-2", a_time())
    head = ledger.head("web").version
    with pytest.raises(ConcurrentUpdate):
        ledger.create(make("d-2"), "k2", expect_head=head, also=[older])
    assert ledger.get("d-2") is None and ledger.get("d-1").state is State.APPROVED
    ledger.create(make("d-3", service="api"), "k3")
    older = ledger.get("d-3")
    older.transition(State.SUPERSEDED, "by d-4", a_time())
    ledger.create(make("d-4", service="api"), "k4", expect_head=ledger.head("api").version,
                  also=[older])
    assert ledger.get("d-3").state is State.SUPERSEDED and ledger.get("d-3").lock_version == 2
    assert ledger.head("api").open == {"d-4"}


def test_seen_gives_the_deployment_and_its_tags_in_one_read(ledger):
    """A redelivered tag is recognised from the dedupe key alone; a merged tag updates it."""
    dep = make("d-1")
    dep.tags = ["abc123d"]
    ledger.create(dep, "key#web#sha256:1")
    assert ledger.seen("key#web#sha256:1") == ("d-1", ["abc123d"])
    dep = ledger.get("d-1")
    dep.tags = ["1.0.0-abc123d", "abc123d"]
    ledger.save(dep, pointers=("key#web#sha256:1",))
    assert ledger.seen("key#web#sha256:1") == ("d-1", ["1.0.0-abc123d", "abc123d"])
    seen, head = ledger.seen_and_head("key#web#sha256:1", "web")  # a push's first read
    assert seen == ("d-1", ["1.0.0-abc123d", "abc123d"]) and head.open == {"d-1"}
    assert ledger.seen_and_head("key#web#sha256:2", "api")[0] is None


def test_heads_and_deployments_in_one_read_each(ledger):
    """The reconciler's reads: every service's head, and many deployments, one call each."""
    ledger.create(make("d-1"), "k1")
    ledger.create(make("d-2", service="api"), "k2")
    heads = ledger.heads(["web", "api", "none"])
    assert heads["web"].open == {"d-1"} and heads["api"].open == {"d-2"}
    assert heads["none"].open == set() and heads["none"].version == 0
    assert [d.id for d in ledger.get_many(["d-2", "d-1", "d-9"])] == ["d-1", "d-2"]


def test_the_head_keeps_the_last_success_for_the_next_self_review(ledger):
    """What the service runs (its last SUCCEEDED deployment and commit) is on the head item, so a
    push learns the base of its author check from the read that decides it; unknown until then."""
    assert ledger.head("web").deployed is None
    one = make("d-1", state=State.DEPLOYING)
    one.commit = "abc123d"
    ledger.create(one, "k1")
    one = ledger.get("d-1")
    one.transition(State.SUCCEEDED, "rolled out", a_time())
    ledger.save(one)
    assert ledger.head("web").deployed == {"id": "d-1", "commit": "abc123d"}
    two = make("d-2", state=State.DEPLOYING)
    ledger.create(two, "k2")
    two = ledger.get("d-2")
    two.transition(State.FAILED, "boom", a_time())
    ledger.save(two)
    assert ledger.head("web").deployed == {"id": "d-1", "commit": "abc123d"}


def test_an_ecs_deployment_pointer_keeps_the_deployment_as_written(ledger):
    """Its events find and change their deployment with one read: the pointer's copy is the
    deployment as the write that made it stored it; a later write makes the copy stale, and a
    write conditional on the stale copy's version is refused."""
    ledger.create(make("d-1", state=State.DEPLOYING), "k1")
    dep = ledger.get("d-1")
    dep.ecs_deployment_id = "ecs-svc/1"
    ledger.save(dep, pointers=("ecsdep#ecs-svc/1",))
    copy = ledger.snapshot("ecsdep#ecs-svc/1")
    assert copy == ledger.get("d-1") and copy.ecs_deployment_id == "ecs-svc/1"
    later = ledger.get("d-1")
    later.log("a note", a_time())
    ledger.save(later)
    stale = ledger.snapshot("ecsdep#ecs-svc/1")
    stale.transition(State.SUCCEEDED, "done", a_time())
    with pytest.raises(ConcurrentUpdate):
        ledger.save(stale)
    assert ledger.get("d-1").state is State.DEPLOYING
    ledger.save(ledger.get("d-1"), pointers=("task#t-1",))
    assert ledger.snapshot("task#t-1").id == "d-1" and ledger.snapshot("task#none") is None
