"""The deployment aggregate: its states, the one table of legal transitions, and what it records.

A Deployment is one row of the ledger. It *decides* (may this happen? what is the new state?) and
*records* what changed (``changes``) for the notifier; it never talks to AWS, Slack or GitHub.
"""
from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime, timezone
from enum import Enum
from typing import Any

from chalicelib.errors import Conflict


class State(str, Enum):
    PENDING_APPROVAL = "PENDING_APPROVAL"
    APPROVED = "APPROVED"
    MIGRATING = "MIGRATING"
    DEPLOYING = "DEPLOYING"
    VERIFYING = "VERIFYING"  # the bake after ECS's COMPLETED (services with [service.verify])
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"
    SUPERSEDED = "SUPERSEDED"
    ROLLED_BACK = "ROLLED_BACK"

    @property
    def terminal(self) -> bool:
        return not TRANSITIONS[self]


S = State
#: Every legal move, in one place. A state with no way out is terminal.
TRANSITIONS: dict[State, frozenset[State]] = {
    S.PENDING_APPROVAL: frozenset({S.APPROVED, S.REJECTED, S.EXPIRED, S.SUPERSEDED}),
    S.APPROVED: frozenset({S.MIGRATING, S.DEPLOYING, S.FAILED}),
    S.MIGRATING: frozenset({S.DEPLOYING, S.FAILED}),
    S.DEPLOYING: frozenset({S.SUCCEEDED, S.FAILED, S.ROLLED_BACK, S.VERIFYING}),
    S.VERIFYING: frozenset({S.SUCCEEDED, S.ROLLED_BACK, S.FAILED}),
    S.SUCCEEDED: frozenset(),
    S.FAILED: frozenset(),
    S.REJECTED: frozenset(),
    S.EXPIRED: frozenset(),
    S.SUPERSEDED: frozenset(),
    S.ROLLED_BACK: frozenset(),
}
#: States in which ECS is working for this deployment (a service is "locked" while one exists).
BUSY = frozenset({S.APPROVED, S.MIGRATING, S.DEPLOYING, S.VERIFYING})


class IllegalTransition(Conflict):
    """A move the transition table does not allow (maps to 409)."""

    code = "illegal_transition"


def iso(at: datetime | None) -> str | None:
    return at.isoformat().replace("+00:00", "Z") if at else None


def new_id(at: datetime) -> str:
    """Sortable, unique, URL-safe: ``d-20261126T103000-1a2b3c4d``."""
    return f"d-{at.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"


@dataclasses.dataclass
class Deployment:
    id: str
    service: str
    kind: str  # "deploy" | "rollback" | "promote"
    state: State
    created_at: str
    repository: str = ""
    image_tag: str | None = None
    tags: list[str] = dataclasses.field(default_factory=list)
    image_digest: str = ""
    image: str = ""
    pushed_at: str | None = None  # when ECR got the image (orders pushes; events arrive unordered)
    version: str | None = None
    commit: str | None = None
    task_definition: dict | None = None  # what will be registered (approved as shown)
    diff: list[dict] = dataclasses.field(default_factory=list)
    network: dict | None = None  # RunTask launch settings copied from the service
    task_definition_arn: str | None = None
    previous_task_definition_arn: str | None = None
    migration: dict | None = None
    migration_events: list[str] = dataclasses.field(default_factory=list)
    ecs_deployment_id: str | None = None
    rollout_started_at: str | None = None  # UpdateService's answer: rollout timeout's start
    approvals: list[dict] = dataclasses.field(default_factory=list)
    used_tokens: list[str] = dataclasses.field(default_factory=list)
    updated_at: str | None = None
    finished_at: str | None = None
    state_since: str | None = None
    expires_at: str | None = None
    not_before: str | None = None
    reason: str | None = None
    rollback_of: str | None = None
    forced: dict | None = None  # a rollback forced past migrations: by, reason, at, migrations
    promoted_from: dict | None = None  # kind "promote": the source deployment (id, service, …)
    verify: dict | None = None  # the bake: ends, alarms watched, what fired (service/verify.py)
    timeline: list[dict] = dataclasses.field(default_factory=list)
    notifications: dict = dataclasses.field(default_factory=dict)
    claims: dict = dataclasses.field(default_factory=dict)  # ECS step → when a worker claimed it
    attempts: dict = dataclasses.field(default_factory=dict)  # ECS step → {"n", "error"} so far
    lock_version: int = 0
    changes: list[str] = dataclasses.field(default_factory=list, compare=False)
    releases_lock: bool = dataclasses.field(default=False, compare=False)  # busy → finished
    finishes: bool = dataclasses.field(default=False, compare=False)  # → terminal in this write
    # the service's last success as the head read that decided this push knew it (None: unknown)
    base: dict | None = dataclasses.field(default=None, compare=False)

    # -- decisions ---------------------------------------------------------------------------
    def transition(self, to: State, note: str, at: datetime) -> None:
        """Move to ``to`` if the table allows it, and say why on the timeline."""
        if to not in TRANSITIONS[self.state]:
            raise IllegalTransition(
                f"deployment {self.id} is {self.state.value}; it cannot become {to.value}"
            )
        if self.state in BUSY and to.terminal:
            self.releases_lock = True  # the ledger frees the service in the same write
        if to.terminal:
            self.finishes = True  # ... and drops it from the service's unfinished deployments
        self.state = to
        self.state_since = iso(at)
        if to.terminal:
            self.finished_at = iso(at)
        self.log(note, at)
        self.changes.append(to.value)

    def log(self, note: str, at: datetime) -> None:
        """Append to the timeline without changing state."""
        self.timeline.append({"at": iso(at), "state": self.state.value, "note": note})
        self.updated_at = iso(at)

    def require(self, *states: State) -> None:
        if self.state not in states:
            raise Conflict(
                f"deployment {self.id} is {self.state.value}",
                code=f"deployment_{self.state.value.lower()}",
            )

    @property
    def busy(self) -> bool:
        return self.state in BUSY

    def approved_at(self) -> str | None:
        """When the work started: the approval (a rollback is created approved)."""
        return next((t["at"] for t in self.timeline if t["state"] == State.APPROVED.value),
                    self.created_at if self.kind == "rollback" else None)

    def duration_seconds(self) -> float | None:
        """How long the deployment itself took: approval to the end (waiting for people excluded)."""
        start = self.approved_at()
        if not self.finished_at or not start:
            return None
        return (parse_iso(self.finished_at) - parse_iso(start)).total_seconds()

    def approval_wait_seconds(self) -> float | None:
        """How long the image waited for its approvers."""
        start = self.approved_at()
        return (parse_iso(start) - parse_iso(self.created_at)).total_seconds() if start else None

    # -- persistence -------------------------------------------------------------------------
    def to_item(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        for transient in TRANSIENT:
            data.pop(transient)
        data["state"] = self.state.value
        return data

    @classmethod
    def from_item(cls, data: dict[str, Any]) -> "Deployment":
        names = {f.name for f in dataclasses.fields(cls)} - set(TRANSIENT)
        values = {k: v for k, v in data.items() if k in names}
        values["state"] = State(values["state"])
        return cls(**values)


#: What a write tells the ledger without storing it.
TRANSIENT = ("changes", "releases_lock", "finishes", "base")
_MIN = "0000-00-00T00:00:00"


def version_key(version: str | None) -> tuple:
    """Semantic-version order: 1.10.0 > 1.9.0 > 1.9.0-rc.2 > 1.9.0-rc.1; no version sorts first.
    Numeric parts compare as numbers, other parts as text after numbers (as SemVer 2.0 says)."""
    if not version:
        return (0,)
    core, _, _build = version.lstrip("vV").partition("+")
    core, dash, pre = core.partition("-")

    def parts(text: str) -> tuple:
        return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in text.split("."))

    return (1, parts(core), 0 if dash else 1, parts(pre) if dash else ())


def push_order(dep: "Deployment | dict") -> tuple:
    """Which image is newer, decided by the build itself and never by arrival: ECR's push time
    (``imagePushedAt``, compared as an instant), then the semantic version in the tag (push times
    can tie: moto keeps whole seconds), then the digest (any fixed order beats a coin toss)."""
    get = dep.get if isinstance(dep, dict) else lambda k: getattr(dep, k)
    pushed = get("pushed_at")
    instant = parse_iso(pushed).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f") \
        if pushed else _MIN
    return instant, version_key(get("version")), get("image_digest") or ""


def order_fields(dep: "Deployment") -> dict:
    """What the service's head item keeps of its newest image (enough for ``push_order``)."""
    return {"id": dep.id, "pushed_at": dep.pushed_at, "version": dep.version,
            "image_digest": dep.image_digest, "image_tag": dep.image_tag}


@dataclasses.dataclass
class Head:
    """One per service, read strongly consistently: who holds the service's lock, which of its
    deployments are unfinished, the newest image pushed for it, and pruning still owed."""

    service: str
    version: int = 0  # bumped by every write that changes the head (optimistic check)
    lock: str | None = None
    open: set = dataclasses.field(default_factory=set)
    newest: dict | None = None  # order_fields of the newest pushed image
    prune: set = dataclasses.field(default_factory=set)  # families owed a pruning pass
    # its last SUCCEEDED deployment {"id", "commit"}; {} none yet; None unknown (written before)
    deployed: dict | None = None
    info: dict = dataclasses.field(default_factory=dict)  # unfinished id → marks(dep)[0]
    notify: set = dataclasses.field(default_factory=set)  # ids with notifications pending
    rollbacks: set = dataclasses.field(default_factory=set)  # ids owed an automatic rollback


def marks(dep: Deployment) -> tuple[dict | None, bool, bool]:
    """What the service's head item keeps of ``dep``, written with it: for an unfinished one,
    what the reconciler decides on without reading it (state, since when, expiry, kind, approval
    time); whether notifications are pending; whether its automatic rollback is owed (set by the
    write that ends a bake ROLLED_BACK)."""
    info = None if dep.state.terminal else {
        "state": dep.state.value, "since": dep.state_since or dep.updated_at or dep.created_at,
        "expires": dep.expires_at, "kind": dep.kind, "approved": dep.approved_at()}
    rollback = dep.finishes and dep.state is State.ROLLED_BACK and \
        bool((dep.verify or {}).get("rollback"))
    return info, bool(dep.notifications.get("pending")), rollback


def parse_iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
