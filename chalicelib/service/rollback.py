"""Operator rollback: return a service to a known-good task definition, without a migration."""
from __future__ import annotations

from chalicelib.domain import rollback_guard
from chalicelib.domain.model import Deployment, State, iso, new_id
from chalicelib.errors import BadRequest, Conflict, NotFound
from chalicelib.service.deps import Deps

HISTORY = 200  # how many of the service's newest deployments the migration guard reads


class MigrationsSinceTarget(Conflict):
    """A migration ran after the rollback target: the old code may not fit the schema."""

    code = "migrations_since_target"

    def __init__(self, message: str, migrations: list[dict]):
        super().__init__(message)
        self.details = {"migrations": migrations}


def rollback(deps: Deps, service: str, to: str, reason: str, identity: str,
             force: bool = False) -> Deployment:
    """Create a ``rollback`` deployment to ``to`` ("previous" or a deployment id) and start it.
    Refused (409 ``migrations_since_target``) when a migration ran since the target, unless forced
    with a reason; rollbacks are never frozen."""
    svc = deps.service(service)
    if not isinstance(to, str) or not to:
        raise BadRequest("'to' must be \"previous\" or a deployment id", code="bad_rollback")
    holder = deps.ledger.lock_holder(svc.name)
    if holder:
        raise Conflict(f"{svc.name} is busy with deployment {holder}; roll back when it has "
                       "finished", code="service_locked")
    target = _target(deps, svc.name, to)
    if force and not (reason or "").strip():
        raise BadRequest("a forced rollback needs a 'reason'", code="bad_rollback")
    migrations = _migrations_since(deps, svc, target, force)
    current = deps.ecs.describe_service(svc.cluster, svc.service).get("taskDefinition")
    now = deps.clock()
    return start(deps, target, current, reason, identity, new_id(now),
                 f"rollback to {target.id} ({target.image_tag}) requested by {identity}"
                 + (f": {reason}" if reason else ""), forced=(migrations, True))


def start(deps: Deps, target: Deployment, current: str | None, reason: str, identity: str,
          dep_id: str, note: str, key: str | None = None,
          forced: tuple[list[dict] | None, bool] = ([], False)) -> Deployment:
    """Create the approved ``rollback`` deployment to ``target``'s revision and queue its work:
    an operator's request, or the bake's automatic rollback (its own dedupe ``key``).
    ``forced`` = (migrations since the target or None if unknown, whether that is a person's
    decision to record)."""
    migrations, by_person = forced
    now = deps.clock()
    dep = Deployment(
        id=dep_id, service=target.service, kind="rollback", state=State.APPROVED,
        created_at=iso(now), repository=target.repository, image_tag=target.image_tag,
        tags=list(target.tags), image_digest=target.image_digest, image=target.image,
        version=target.version, commit=target.commit, task_definition=target.task_definition,
        task_definition_arn=target.task_definition_arn, previous_task_definition_arn=current,
        network=target.network, rollback_of=target.id or None, reason=reason or None,
        approvals=[{"by": identity, "via": "api", "decision": "approve", "comment": reason or "",
                    "at": iso(now)}],
        state_since=iso(now),
    )
    dep.log(note, now)
    if by_person and (migrations or migrations is None):  # forced past them (or not knowing)
        dep.forced = rollback_guard.forced_record(identity, reason, migrations or [], iso(now))
        dep.log(f"FORCED by {identity} past migrations since the target: "
                f"{rollback_guard.describe(migrations) if migrations else 'not known'}", now)
    stored, created = deps.ledger.create(dep, key=key or f"rollback#{dep.id}")
    if created:
        deps.tell(stored, ["CREATED", State.APPROVED.value])
        deps.kick(stored.id)
    return stored


def _migrations_since(deps: Deps, svc, target: Deployment, force: bool) -> list[dict] | None:
    """The migrations run since ``target`` (None: unknown, the history does not reach back that
    far). Unless ``force``, any of them, or not knowing, refuses the rollback."""
    history = deps.ledger.list(service=svc.name, limit=HISTORY)
    command = svc.migration.command if svc.migration else None
    if all(d.id != target.id for d in history):
        if force:
            return None
        raise MigrationsSinceTarget(
            f"{target.id} is older than the {HISTORY} newest deployments of {svc.name}: Slipway "
            "cannot tell which migrations ran since. Check the schema, then send "
            '"force": true with a reason', [])
    migrations = rollback_guard.migrations_since(target, history, command)
    if migrations and not force:
        raise MigrationsSinceTarget(
            f"migrations ran after {target.id} ({target.image_tag}): "
            f"{rollback_guard.describe(migrations)}. Its code may not work with the schema they "
            'left: roll forward instead, or send "force": true with a reason to roll back anyway',
            migrations)
    return migrations


def _target(deps: Deps, service: str, to: str) -> Deployment:
    if to == "previous":
        return previous_target(deps, service)
    return _named_target(deps, service, to)


def previous_target(deps: Deps, service: str) -> Deployment:
    """The last SUCCEEDED deployment before the current one, among the releases pruning keeps."""
    good = [d for d in deps.ledger.list(service=service, state=State.SUCCEEDED.value, limit=50)
            if d.task_definition_arn]
    if not good:
        raise Conflict(f"{service} has no successful deployment to roll back to",
                       code="nothing_to_roll_back_to")
    current = good[0].task_definition_arn
    # Skip what a rollback already left: after v1, v2 (bad), rollback to v1, "previous" is the
    # good deployment before v1, never v2 again.
    left = {d.previous_task_definition_arn for d in good if d.kind == "rollback"}
    kept = kept_releases(deps, service, good)
    earlier = [d for d in good[1:] if d.task_definition_arn not in left | {current}]
    if not earlier:
        raise Conflict(f"{service} has only one successful deployment; nothing earlier to "
                       "return to", code="nothing_to_roll_back_to")
    if earlier[0].task_definition_arn not in kept:
        raise Conflict(f"the release before this one ({earlier[0].image_tag}) is older than the "
                       f"{len(kept)} that pruning keeps ([service.prune] keep); roll back to a "
                       "deployment id instead, or deploy its image again", code="pruned")
    return earlier[0]


def kept_releases(deps: Deps, service: str, good: list[Deployment] | None = None) -> list[str]:
    """The revisions of the last `keep` successful releases: pruning never removes them, so a
    chain of "previous" rollbacks always lands on a live revision."""
    keep = deps.service(service).prune.keep
    if good is None:
        good = deps.ledger.list(service=service, state=State.SUCCEEDED.value, limit=50)
    out: list[str] = []
    for d in good:
        if d.kind != "rollback" and d.task_definition_arn and d.task_definition_arn not in out:
            out.append(d.task_definition_arn)
    return out[:max(keep, 2)]


def _named_target(deps: Deps, service: str, to: str) -> Deployment:
    try:
        target = deps.load(to)
    except NotFound:
        target = None
    if target is None or target.service != service:
        raise NotFound(f"no deployment {to!r} of {service}", code="unknown_deployment")
    if target.state is not State.SUCCEEDED or not target.task_definition_arn:
        raise Conflict(f"deployment {to} never succeeded; roll back only to a known-good one",
                       code="not_known_good")
    return target
