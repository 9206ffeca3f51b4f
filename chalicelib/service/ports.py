"""Ports: what the service layer needs from the outside world, as Protocols (fakes need not inherit)."""
from __future__ import annotations

from typing import Any, Iterable, Iterator, Protocol

from chalicelib.domain.model import Deployment, Head


# -- errors: adapters translate what their libraries raise into these
class OutsideError(Exception):
    """Root of the errors a port raises because something outside Slipway failed (not a bug of ours).

        OutsideError
        ├── AwsError           an AWS call failed; ``retryable`` says whether another try may work
        └── NotificationError  Slack or GitHub refused, failed or could not be reached

    A ``NotificationError`` never blocks a deployment: the ledger is written first, the failure is
    logged and re-synced later. Messages never contain tokens or values.
    """


#: AWS error codes worth another try (a queue or EventBridge redelivers); None = no answer at all.
RETRYABLE_CODES = frozenset({None, "ThrottlingException", "ServerException", "ServiceUnavailable",
                             "RequestLimitExceeded", "InternalFailure", "InternalServerError"})


class AwsError(OutsideError):
    """An AWS call failed for a reason the caller should report (not a bug of ours)."""

    def __init__(self, message: str, *, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.code = code

    @property
    def retryable(self) -> bool:
        return self.code in RETRYABLE_CODES


class NotificationError(OutsideError):
    """A Slack or GitHub call failed (refused, HTTP error, timeout, unreachable)."""

    def __init__(self, message: str, *, status: int | None = None, error: str | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.error = error


class Ledger(Protocol):
    """Deployments, their pointers and one head item per service, changed only by conditional
    (optimistic) writes. Every read below but ``list`` is strongly consistent: decisions (newest
    wins, supersede, the service lock, what is unfinished) never rest on an eventually consistent
    index."""

    def create(self, dep: Deployment, key: str, *, expect_head: Any = ...,
               also: Iterable[Deployment] = ()) -> tuple[Deployment, bool]:
        """Store ``dep`` unless a deployment with dedupe ``key`` exists; return (stored, created).
        ``expect_head``: only if the service's head is still at that version (else
        ConcurrentUpdate); ``also``: other deployments saved in the same transaction (conditional
        on their versions), e.g. the older pending ones this push supersedes."""

    def get(self, dep_id: str) -> Deployment | None: ...

    def save(self, dep: Deployment, pointers: tuple[str, ...] = (), *,
             prune: str | None = None) -> None:
        """Write ``dep`` if nobody wrote since it was read (else ConcurrentUpdate); bump its
        lock_version; point each of ``pointers`` at it. A busy deployment (APPROVED, MIGRATING,
        DEPLOYING) holds its service's lock: Conflict if another deployment holds it. A
        deployment that finishes leaves its service's unfinished set (and lock) in the same
        write; ``prune`` records in that write that the family is owed a pruning pass."""

    def find(self, pointer: str) -> Deployment | None: ...

    def snapshot(self, pointer: str) -> Deployment | None:
        """The deployment ``pointer`` leads to, in one read; it may be outdated (an ECS
        deployment's pointer keeps the deployment as the write that made it stored it): only a
        write conditional on its version may follow."""

    def seen(self, pointer: str) -> tuple[str, list[str]] | None:
        """(deployment id, tags) a dedupe key or pointer leads to, in one read."""

    def seen_and_head(self, pointer: str, service: str) -> tuple[tuple[str, list[str]] | None,
                                                                   Head]:
        """``seen(pointer)`` and ``head(service)``, in one read."""

    def head(self, service: str) -> Head: ...

    def heads(self, services: Iterable[str]) -> dict[str, Head]:
        """The head items of ``services``, in one read."""

    def get_many(self, dep_ids: Iterable[str]) -> list[Deployment]:
        """Deployments by id, in one read (unknown ids left out)."""

    def list(self, service: str | None = None, state: str | None = None,
             limit: int = 50) -> list[Deployment]:
        """Newest first (for people: may lag a moment behind writes)."""

    def unfinished(self, services: Iterable[str]) -> list[Deployment]:
        """Every deployment of ``services`` not yet in a terminal state."""

    def lock_holder(self, service: str) -> str | None: ...

    def release_lock(self, service: str, dep_id: str) -> None:
        """Free ``service`` if ``dep_id`` still holds it (the reconciler's repair)."""

    def rollback_done(self, service: str, dep_id: str) -> None:
        """The automatic rollback owed after ``dep_id``'s bake exists, or is no longer wanted."""

    def prune_done(self, service: str, family: str) -> None:
        """The pruning owed for ``family`` has been done."""

    def get_job(self, name: str) -> dict | None: ...

    def put_job(self, name: str, job: dict | None) -> None:
        """Store (or with None, remove) a resumable background job's progress."""


class Ecs(Protocol):
    """ECS and ECR as the pipeline uses them; failures raise ``AwsError``."""

    def describe_service(self, cluster: str, service: str) -> dict: ...

    @staticmethod
    def launch_settings(service: dict) -> dict:
        """The network/launch settings a one-off task of ``service`` runs with."""

    def describe_task_definition(self, arn: str) -> dict: ...

    def describe_task(self, cluster: str, task_arn: str) -> dict | None: ...

    def image_info(self, repository: str, digest: str) -> tuple[list[str], str | None]:
        """(tags, push time) of the image ``digest`` in ``repository``."""

    def task_definition_pages(self, family: str) -> Iterator[list[str]]:
        """ACTIVE revisions of ``family``, one page at a time, oldest first."""

    def check_registration(self, body: dict) -> None:
        """Raise ``AwsError`` if registering ``body`` would be refused (before anything changes)."""

    def register(self, body: dict) -> str: ...

    def run_task(self, *, cluster: str, task_definition: str, container: str, command: list[str],
                 launch: dict, started_by: str, client_token: str) -> str:
        """Start a one-off task; the same ``client_token`` never starts a second one."""

    def tasks_started_by(self, cluster: str, started_by: str) -> list[str]:
        """Tasks (running or recently stopped) started with ``started_by``."""

    def stop_task(self, cluster: str, task_arn: str, reason: str) -> None: ...

    def update_service(self, cluster: str, service: str, task_definition: str,
                       deployment_configuration: dict | None = None) -> str | None:
        """Start the rollout (with the whole ``deploymentConfiguration`` when given, e.g. the
        deployment alarms); the ECS deployment id."""

    def deregister(self, arn: str) -> None: ...


class Alarms(Protocol):
    """CloudWatch alarms, read for the bake; failures raise ``AwsError``."""

    def states(self, names: list[str]) -> dict[str, dict]:
        """``{name: {"state": "OK"|"ALARM"|"INSUFFICIENT_DATA", "reason"}}`` of those that exist."""


class Logs(Protocol):
    """CloudWatch Logs, read for a migration's output. Never raises."""

    def tail(self, group: str, stream: str, limit: int = 50) -> tuple[list[str], str | None]:
        """(the last ``limit`` lines, oldest first; a plain "no logs: …" note when there are none)."""


#: What a channel that has not been told yet says in ``dep.notifications["pending"]``.
NOT_SENT = "not sent yet"


class Notifier(Protocol):
    """Tells people about a deployment's changes. Never raises: failures are logged and retried."""

    def changed(self, dep: Deployment, changes: list[str]) -> None: ...


class Dispatcher(Protocol):
    """Hands a deployment to the asynchronous worker (``advance``), with retries; ``notify``
    also hands it changes to tell people about (so a request need not wait for Slack or GitHub)."""

    def advance_later(self, dep_id: str, notify: list[str] | None = None) -> None: ...
