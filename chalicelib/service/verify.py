"""The bake after a rollout: VERIFYING, alarms, and the automatic rollback.

    rollout COMPLETED ──► VERIFYING (bake_minutes; DescribeAlarms once at the start)
        alarm in ALARM (event, the first look, or the reconciler's look) ──► automatic rollback:
            the deployment ends ROLLED_BACK and a ``kind: "rollback"`` deployment (no migration)
            returns the service to the release that ran before
        the reconciler sees the bake is over and nothing fired ──► SUCCEEDED (then pruning)

During the rollout itself the same alarms are ECS's deployment alarms (``rollout_options``): ECS
fails and rolls back the deployment on ALARM, which the pipeline reports as ROLLED_BACK.

Exactly once: the alarm path moves VERIFYING → ROLLED_BACK with a conditional write (a second
event, the reconciler and the first look race; one wins, the others find the state moved on), and
the rollback deployment is created under the dedupe key ``autorollback#<id>``. The service stays
locked during the bake, so nothing else deploys while the previous release must stay runnable.
The granularity of a quiet bake's end is the reconciler's schedule (5 minutes in AWS, 1 second in
the devstack): a bake ends SUCCEEDED at the first reconcile after ``ends_at``.
"""
from __future__ import annotations

import logging

from chalicelib.domain import bake, rollback_guard
from chalicelib.domain.model import Deployment, State, iso, new_id
from chalicelib.domain.prune import owed as prune_owed
from chalicelib.errors import Conflict
from chalicelib.service import rollback
from chalicelib.service.deps import Deps, retrying
from chalicelib.service.events import alarm_changed
from chalicelib.service.ports import AwsError

log = logging.getLogger("slipway.verify")
AUTOMATIC = "slipway:bake"  # who approved an automatic rollback


def bakes(deps: Deps, dep: Deployment) -> bool:
    """Does this deployment bake after its rollout? (A rollback restores; it does not bake.)"""
    svc = deps.config.service(dep.service)
    return bool(svc and svc.verify) and dep.kind != "rollback"


def rollout_options(deps: Deps, dep: Deployment) -> dict:
    """Extra UpdateService arguments: ECS's deployment alarms (rollback on) for a release, and
    alarms switched off for a rollback (an alarm still in ALARM must not fail the way back)."""
    svc = deps.config.service(dep.service)
    if not (svc and svc.verify and svc.verify.alarms):
        return {}
    on = dep.kind != "rollback"
    base = dict((dep.network or {}).get("deployment_configuration") or {})
    base["alarms"] = {"alarmNames": list(svc.verify.alarms), "enable": on, "rollback": on}
    return {"deployment_configuration": base}


def ecs_rolls_back(deps: Deps, dep: Deployment) -> bool:
    """Did UpdateService ask ECS to roll back on alarm? Then a FAILED rollout was rolled back."""
    options = rollout_options(deps, dep).get("deployment_configuration") or {}
    return bool(options.get("alarms", {}).get("rollback"))


def enter(deps: Deps, dep: Deployment, reason: str) -> None:
    """DEPLOYING → VERIFYING (inside the pipeline's conditional write for the COMPLETED event)."""
    svc = deps.service(dep.service)
    now = deps.clock()
    dep.verify = bake.begin(svc.verify.alarms, svc.verify.bake_minutes, now)
    dep.transition(State.VERIFYING, f"rollout completed: {reason.rstrip('.')}; "
                   f"{bake.describe(dep.verify)}", now)


def first_look(deps: Deps, dep_id: str) -> str:
    """Right after entering the bake: an alarm already in ALARM counts (its event may be lost or
    may have fired before the bake began). One DescribeAlarms call."""
    return _look(deps, deps.load(dep_id), "already in ALARM when the bake began")


def _look(deps: Deps, dep: Deployment, via: str) -> str:
    watched = (dep.verify or {}).get("alarms") or []
    if not watched or dep.state is not State.VERIFYING:
        return f"{dep.id} {dep.state.value}"
    try:
        states = deps.alarms.states(watched)
    except AwsError as exc:  # the next look (event or reconciler) decides
        log.warning("could not read the alarms of %s: %s", dep.id, exc.message)
        return f"{dep.id} VERIFYING (alarms unreadable: {exc.message})"
    fired = bake.firing(states, watched)
    if fired is None:
        return f"{dep.id} VERIFYING"
    return alarm_fired(deps, dep.id, fired[0], fired[1], via)


def on_alarm_state_change(deps: Deps, event: object) -> str:
    """EventBridge "CloudWatch Alarm State Change": ALARM on a watched alarm during a bake rolls
    the release back; anything else is ignored (ECS itself watches during the rollout)."""
    change = alarm_changed(event)
    if change.state != bake.ALARM:
        return f"ignored: {change.alarm} is {change.state}"
    services = [s for s in deps.config.services if s.verify and change.alarm in s.verify.alarms]
    if not services:
        return f"ignored: {change.alarm} is not a [service.verify] alarm"
    outcomes = []
    for svc in services:
        holder = deps.ledger.lock_holder(svc.name)
        dep = deps.ledger.get(holder) if holder else None
        if dep is None or dep.state is not State.VERIFYING:
            outcomes.append(f"{svc.name}: not baking")
            continue
        outcomes.append(alarm_fired(deps, dep.id, change.alarm, change.reason, "event"))
    return "; ".join(outcomes)


def alarm_fired(deps: Deps, dep_id: str, alarm: str, why: str, via: str) -> str:
    """End the bake ROLLED_BACK and start the automatic rollback (once, whoever calls first)."""
    dep = deps.load(dep_id)
    if dep.state is not State.VERIFYING:
        return f"duplicate: {dep.id} is {dep.state.value}"
    target, migrations = _target(deps, dep)
    rollback_id = new_id(deps.clock())

    def step() -> bool:
        fresh = deps.load(dep_id)
        if fresh.state is not State.VERIFYING:
            return False
        now = deps.clock()
        fresh.verify = {**(fresh.verify or {}), "alarm": {
            "name": alarm, "reason": why, "at": iso(now), "via": via}}
        if target is None:
            fresh.reason = (f"alarm {alarm} went to ALARM during the bake ({why}); there is no "
                            "earlier release to roll back to: the service still runs this one")
            fresh.transition(State.FAILED, fresh.reason, now)
        else:
            fresh.verify["rollback"] = rollback_id
            fresh.reason = bake.rollback_reason(alarm, why, _label(target),
                                                rollback_guard.describe(migrations))
            fresh.transition(State.ROLLED_BACK, f"{fresh.reason}; automatic rollback {rollback_id}",
                             now)
        deps.commit(fresh)
        return True

    if not retrying(step):
        return f"duplicate: {dep_id} is {deps.load(dep_id).state.value}"
    if target is None:
        return f"{dep_id} FAILED (nothing to roll back to)"
    return _start_rollback(deps, dep, target, rollback_id, alarm, why)


def _start_rollback(deps: Deps, dep: Deployment, target: Deployment, rollback_id: str,
                    alarm: str, why: str) -> str:
    reason = f"automatic rollback of {dep.id}: alarm {alarm} in ALARM ({why})"
    try:
        rb = rollback.start(deps, target, dep.task_definition_arn, reason, AUTOMATIC, rollback_id,
                            f"{reason}; back to {_label(target)}", key=f"autorollback#{dep.id}")
    except Conflict as exc:  # another deployment took the service in between: say so, loudly
        _note(deps, dep.id, f"the automatic rollback could not start: {exc.message}")
        return f"{dep.id} ROLLED_BACK; rollback refused: {exc.message}"
    deps.ledger.rollback_done(dep.service, dep.id)  # no longer owed (see resume)
    return f"{dep.id} ROLLED_BACK; rollback {rb.id} started"


def resume(deps: Deps, heads: dict | None = None) -> dict[str, str]:
    """The reconciler's repair for a worker that died between ending a bake ROLLED_BACK and
    creating its rollback: create it now (same id, same dedupe key), unless the service moved
    on meanwhile (a newer deployment, or the service busy). The write that ended the bake marked
    the rollback owed on the service's head item (``heads``, read once for all services), so a
    service owed nothing costs no read."""
    done: dict[str, str] = {}
    baking = [svc for svc in deps.config.services if svc.verify]
    if not baking:
        return done
    heads = heads or deps.ledger.heads([svc.name for svc in baking])
    for svc in baking:
        for dep_id in sorted(heads[svc.name].rollbacks):
            dep = deps.ledger.get(dep_id)
            rollback_id = ((dep.verify if dep else None) or {}).get("rollback")
            if not rollback_id or deps.ledger.get(rollback_id) is not None:
                deps.ledger.rollback_done(svc.name, dep_id)
                continue
            recent = deps.ledger.list(service=svc.name, limit=5)
            if any(d.created_at > dep.created_at for d in recent):
                deps.ledger.rollback_done(svc.name, dep_id)
                continue  # someone deployed since: rolling back now would undo their work
            if deps.ledger.lock_holder(svc.name):
                continue  # busy now: asked again at the next run
            target, _ = _target(deps, dep)
            alarm = dep.verify.get("alarm") or {}
            if target is not None:
                done[dep.id] = _start_rollback(deps, dep, target, rollback_id,
                                               alarm.get("name", "?"), alarm.get("reason", ""))
    return done


def check(deps: Deps, dep: Deployment) -> str | None:
    """The reconciler's look at a baking deployment: alarms first, then the clock."""
    outcome = _look(deps, dep, "found in ALARM by the reconciler")
    if not outcome.endswith(" VERIFYING") and "VERIFYING (" not in outcome:
        return outcome
    if not bake.is_over(deps.load(dep.id), deps.clock()):
        return None
    return end_quietly(deps, dep.id)


def end_quietly(deps: Deps, dep_id: str) -> str:
    """The bake is over and no alarm fired: SUCCEEDED, and only now prune (the previous release
    had to stay runnable for a rollback during the bake)."""
    from chalicelib.service import prune

    def step() -> bool:
        dep = deps.load(dep_id)
        if dep.state is not State.VERIFYING:
            return False
        minutes = (dep.verify or {}).get("bake_minutes", 0)
        dep.transition(State.SUCCEEDED, f"bake of {minutes:g} min over with no alarm in ALARM",
                       deps.clock())
        svc = deps.service(dep.service)  # pruning is owed from this very write (see prune.py)
        deps.commit(dep, prune=prune_owed(dep.task_definition_arn, dep.tags, svc.prune.only_tags))
        return True

    if retrying(step):
        prune.after_success(deps, deps.load(dep_id))
    return f"{dep_id} {deps.load(dep_id).state.value}"


def _target(deps: Deps, dep: Deployment) -> tuple[Deployment | None, list[dict]]:
    """The release that ran before ``dep`` (its SUCCEEDED deployment; else the revision itself),
    and the migrations that ran since it (a rollback does not undo them). One ledger query."""
    recent = deps.ledger.list(service=dep.service, limit=50)
    good = [d for d in recent if d.state is State.SUCCEEDED and d.task_definition_arn
            and d.id != dep.id and d.created_at <= dep.created_at]
    target = next((d for d in good if d.task_definition_arn == dep.previous_task_definition_arn),
                  None) or (good[0] if good else None)
    if target is None and dep.previous_task_definition_arn:
        target = _from_revision(deps, dep)
    if target is not None and target.id:  # the rollback guard's own reckoning, not blocking here
        svc = deps.service(dep.service)
        ran = rollback_guard.migrations_since(target, recent, svc.migration.command
                                              if svc.migration else None)
    else:
        ran = [{"id": dep.id, "version": dep.version, "command": None,
                "at": dep.migration.get("started_at") or dep.created_at}] \
            if (dep.migration or {}).get("task_arn") else []
    return target, ran


def _from_revision(deps: Deps, dep: Deployment) -> Deployment | None:
    """No earlier deployment in the ledger (the first through Slipway): roll back to the revision
    the service ran before, as ECS describes it."""
    arn = dep.previous_task_definition_arn
    try:
        body = deps.ecs.describe_task_definition(arn)
    except AwsError as exc:
        log.warning("cannot describe %s for the rollback of %s: %s", arn, dep.id, exc.message)
        return None
    svc = deps.service(dep.service)
    image = next((c.get("image", "") for c in body.get("containerDefinitions", [])
                  if c.get("name") == svc.container), "")
    return Deployment(id="", service=dep.service, kind="deploy", state=State.SUCCEEDED,
                      created_at="", repository=dep.repository, image=image,
                      image_tag=arn.rsplit("/", 1)[-1], image_digest=image.partition("@")[2],
                      task_definition_arn=arn, network=dep.network)


def _label(target: Deployment) -> str:
    what = target.version or target.image_tag or target.task_definition_arn.rsplit("/", 1)[-1]
    return f"{target.id} ({what})" if target.id else what


def _note(deps: Deps, dep_id: str, note: str) -> None:
    def step() -> None:
        fresh = deps.load(dep_id)
        fresh.log(note, deps.clock())
        fresh.changes.append("NOTE")
        deps.commit(fresh)

    retrying(step)
