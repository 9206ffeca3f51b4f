"""The service's head item ``svc#<service>`` on DynamoDB: the update a deployment's write makes to
it (in the same transaction), and reading it back. See docs/ledger.md for what it holds."""
from __future__ import annotations

import json
from typing import Any, Iterable

from chalicelib.domain.model import Deployment, Head, State, marks, order_fields

ANY = object()  # create(..., expect_head=ANY): do not check the head's version


def _s(value: str) -> dict:
    return {"S": value}


def head_update(table: str, dep: Deployment, *, opened: Iterable[str] = (),
                closed: Iterable[str] = (), expect: Any = ANY, newest: bool = False,
                prune: str | None = None, others: Iterable[Deployment] = ()) -> dict | None:
    """The change ``dep``'s write (and ``others``' in the same transaction) makes to its
    service's head item. Each unfinished deployment is its own attribute ``o_<id>`` holding
    what the reconciler decides on (``marks``); ``n_<id>`` marks one with notifications
    pending, ``r_<id>`` one owed its automatic rollback. Only changes to the set of
    unfinished deployments, the lock, the newest image and what is owed bump ``hv``."""
    sets, removes, conditions, bump = [], [], [], False
    names: dict = {}
    values: dict = {}
    for n, dep_id in enumerate(closed):
        names[f"#c{n}"] = f"o_{dep_id}"
        removes.append(f"#c{n}")
        bump = True
    for n, one in enumerate([dep, *others]):
        info, notify, rollback = marks(one)
        if info is not None:
            names[f"#o{n}"], values[f":o{n}"] = f"o_{one.id}", _s(json.dumps(info))
            sets.append(f"#o{n} = :o{n}")
            bump = bump or one.id in opened
        names[f"#n{n}"] = f"n_{one.id}"
        if notify:
            sets.append(f"#n{n} = :t")
            values[":t"] = {"BOOL": True}
        else:
            removes.append(f"#n{n}")
        if rollback:
            names[f"#r{n}"] = f"r_{one.id}"
            sets.append(f"#r{n} = :t")
            values[":t"] = {"BOOL": True}
            bump = True
    lock = dep.busy or dep.releases_lock
    if dep.busy:
        sets.append("#lock = :d")
    elif dep.releases_lock:
        removes.append("#lock")
    if lock:
        names["#lock"] = "lock"
        values[":d"] = _s(dep.id)
        conditions.append("(attribute_not_exists(#lock) OR #lock = :d)")
        bump = True
    if newest:
        sets.append("newest = :newest")
        values[":newest"] = _s(json.dumps(order_fields(dep), sort_keys=True))
        bump = True
    if dep.finishes and dep.state is State.SUCCEEDED:  # what the service runs now
        sets.append("#deployed = :deployed")
        names["#deployed"] = "deployed"
        values[":deployed"] = _s(json.dumps({"id": dep.id, "commit": dep.commit}))
        bump = True
    if prune:
        sets.append("#p = :family")
        names["#p"] = f"prune_{prune}"
        values[":family"] = _s(prune)
        bump = True
    if bump or expect is not ANY:
        sets.append("hv = if_not_exists(hv, :zero) + :one")
        values.update({":zero": {"N": "0"}, ":one": {"N": "1"}})
    if expect is not ANY:
        values[":hv"] = {"N": str(expect)}
        conditions.append("hv = :hv" if expect else "attribute_not_exists(hv)")
        if not expect:
            values.pop(":hv")
    expression = " ".join(part for part in (
        "SET " + ", ".join(sets) if sets else "",
        "REMOVE " + ", ".join(removes) if removes else "") if part)
    update = {"TableName": table, "Key": {"pk": _s(f"svc#{dep.service}")},
              "UpdateExpression": expression, "ExpressionAttributeNames": names}
    if values:
        update["ExpressionAttributeValues"] = values
    if conditions:
        update["ConditionExpression"] = " AND ".join(conditions)
    return {"Update": update, "_lock": lock}


def head_from_item(service: str, item: dict) -> Head:
    return Head(service=service, version=int(item.get("hv", {}).get("N", "0")),
                lock=item.get("lock", {}).get("S"), open={k[2:] for k in item if k.startswith("o_")},
                newest=json.loads(item["newest"]["S"]) if "newest" in item else None,
                prune={v["S"] for k, v in item.items() if k.startswith("prune_")},
                deployed=json.loads(item["deployed"]["S"]) if "deployed" in item else None,
                info={k[2:]: json.loads(v["S"]) for k, v in item.items()
                      if k.startswith("o_") and "S" in v},
                notify={k[2:] for k in item if k.startswith("n_")},
                rollbacks={k[2:] for k in item if k.startswith("r_")})
