"""Prune old task-definition revisions after a success: keep N, never what a rollback needs.

One job per family lives in the ledger, so a family of thousands of revisions is worked off across
invocations: the first lists every ACTIVE revision once (⌈N/100⌉ calls) and stores the revision
numbers to deregister; each invocation deregisters until its time runs low and saves the rest.
"""
from __future__ import annotations

import logging

from chalicelib.config import ServiceConfig
from chalicelib.domain.model import Deployment, State
from chalicelib.domain.prune import family_revision, owed, revision_of, revisions_to_prune
from chalicelib.errors import SlipwayError
from chalicelib.service.deps import Deps
from chalicelib.service.ports import AwsError
from chalicelib.service.rollback import kept_releases, previous_target

log = logging.getLogger("slipway.prune")
SAFETY_MS = 10_000  # stop this long before the Lambda's deadline (at most a quarter of the time)
CHECKPOINT = 25  # save progress every this many deregistrations


def after_success(deps: Deps, dep: Deployment, owed_only: bool = False) -> int:
    """Prune the family of a SUCCEEDED deployment if its tags allow it; return revisions removed.
    The SUCCEEDED write recorded the pruning as owed (the service's head item), so a failure here
    (throttled DescribeServices) leaves it owed: the event's retry or the reconciler resumes it.
    ``owed_only``: only if it is still owed (a redelivered event after the work was done)."""
    svc = deps.service(dep.service)
    only = svc.prune.only_tags
    if only is not None and not any(only.fullmatch(t) for t in dep.tags):
        if not owed_only:
            dep_note(deps, dep, f"pruning skipped: no tag matches only_tags ({only.pattern})")
        return 0
    marker = owed(dep.task_definition_arn, dep.tags, only)
    if marker is None or (owed_only and marker not in deps.ledger.head(svc.name).prune):
        return 0
    family = family_revision(dep.task_definition_arn).rsplit(":", 1)[0]
    return run(deps, svc, family, dep.task_definition_arn.rsplit("/", 1)[0], dep)


def protected(deps: Deps, svc: ServiceConfig) -> set[str]:
    """What must survive: revisions in service, recent good ones, the rollback target, anything in
    flight."""
    keep: set[str] = set()
    service = deps.ecs.describe_service(svc.cluster, svc.service)
    keep.add(service.get("taskDefinition") or "")
    keep |= {d.get("taskDefinition") or "" for d in service.get("deployments", [])}
    # The revisions of the last `keep` releases (a chain of rollbacks walks back through them),
    # the last good deployment whatever its kind, and whatever "previous" would pick right now.
    keep |= set(kept_releases(deps, svc.name))
    keep |= {d.task_definition_arn or "" for d in deps.ledger.list(
        service=svc.name, state=State.SUCCEEDED.value, limit=1)}
    try:
        keep.add(previous_target(deps, svc.name).task_definition_arn or "")
    except SlipwayError:  # nothing to roll back to yet
        pass
    for d in deps.ledger.unfinished([svc.name]):
        keep |= {d.task_definition_arn or "", d.previous_task_definition_arn or ""}
    keep.discard("")
    return keep


def run(deps: Deps, svc: ServiceConfig, family: str, arn_prefix: str,
        dep: Deployment | None = None) -> int:
    name = f"prune#{family}"
    job = deps.ledger.get_job(name)
    safe = {family_revision(a) for a in protected(deps, svc)}
    if job is None:
        active = [a for page in deps.ecs.task_definition_pages(family) for a in page]
        doomed = revisions_to_prune(active, svc.prune.keep, safe)
        job = {"family": family, "prefix": arn_prefix, "service": svc.name,
               "revisions": [revision_of(a) for a in doomed]}
    removed = 0
    todo = list(job["revisions"])
    margin = min(SAFETY_MS, deps.remaining_ms() // 4)
    while todo:
        if deps.remaining_ms() < margin or removed >= deps.settings.prune_batch:
            break
        revision = todo.pop(0)
        if f"{family}:{revision}" in safe:
            continue
        try:
            deps.ecs.deregister(f"{job['prefix']}/{family}:{revision}")
            removed += 1
        except AwsError as exc:
            if exc.retryable:  # throttled even after adaptive retries: keep it for the next run
                todo.insert(0, revision)
                break
            log.warning("could not deregister %s:%s: %s", family, revision, exc.message)
        if removed and removed % CHECKPOINT == 0:
            deps.ledger.put_job(name, {**job, "revisions": todo})
    deps.ledger.put_job(name, {**job, "revisions": todo} if todo else None)
    if not todo:
        deps.ledger.prune_done(svc.name, f"{arn_prefix}/{family}")
    if dep is not None and (removed or todo):
        more = f"; {len(todo)} left for the next run" if todo else ""
        dep_note(deps, dep, f"pruned {removed} old revision(s) of {family}"
                            f" (keeping {svc.prune.keep}){more}")
    log.info("pruned %d revisions of %s, %d left", removed, family, len(todo))
    return removed


def resume_all(deps: Deps, heads: dict | None = None) -> int:
    """Do every pruning still owed (the reconciler calls this, with the head items it read): each
    service's head item lists the families a success left to prune and the job not finished yet."""
    total = 0
    heads = heads or deps.ledger.heads([svc.name for svc in deps.config.services])
    for svc in deps.config.services:
        for marker in sorted(heads[svc.name].prune):
            prefix, _, family = marker.rpartition("/")
            total += run(deps, svc, family, prefix)
    return total


def dep_note(deps: Deps, dep: Deployment, note: str) -> None:
    """Add a line to a finished deployment's timeline (best effort)."""
    try:
        fresh = deps.load(dep.id)
        fresh.log(note, deps.clock())
        fresh.changes.append("NOTE")
        deps.commit(fresh)
    except Exception:  # pruning notes are nice to have, never worth failing over
        log.exception("could not note on %s", dep.id)
