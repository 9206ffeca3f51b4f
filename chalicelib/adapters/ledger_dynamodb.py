"""The ledger on DynamoDB: optimistic locking on ``lock_version``; dedupe keys, pointers and the
service's head item written in the same transaction as the deployment they belong to.

Everything a decision depends on is a strongly consistent read of a base-table item, never of a
global secondary index (GSIs are eventually consistent in AWS): the deployment, its dedupe key, and
the service's head item ``svc#<service>`` (lock holder, unfinished deployments, newest pushed
image, pruning owed, and its own version ``hv``). The GSIs serve only listings for people.

Timeline of a double click (two writers read version 3):
    A: Put dep#x IF lock_version = 3  → ok, now 4
    B: Put dep#x IF lock_version = 3  → ConditionalCheckFailed → ConcurrentUpdate (B re-reads, sees
       the decision A made, and answers 409)
Timeline of two pushes of one service decided at once (both read head version 7):
    A: Put dep#a, key#a; Update svc IF hv = 7 (+ supersede the pending older one) → ok, hv 8
    B: Put dep#b, key#b; Update svc IF hv = 7 → cancelled → B re-reads the head and decides again
"""
from __future__ import annotations

import json
from typing import Any, Iterable

from botocore.exceptions import ClientError

from chalicelib.adapters.ledger_head import ANY, head_from_item as _head, head_update
from chalicelib.adapters.ledger_retry import call, cancel_reasons
from chalicelib.adapters.tables import BY_SERVICE, BY_TIME
from chalicelib.domain.model import Deployment, Head
from chalicelib.errors import Conflict, ConcurrentUpdate

#: Pointers that keep a copy of the deployment as the write that made them stored it: an ECS
#: deployment's events find and change their deployment with one read (``snapshot``).
SNAPSHOT = "ecsdep#"


def _s(value: str) -> dict:
    return {"S": value}


def _created_key(dep: Deployment) -> str:
    return f"{dep.created_at}#{dep.id}"


class DynamoLedger:
    def __init__(self, client: Any, table: str):
        self._db = client
        self._table = table

    # -- items ----------------------------------------------------------------------------------
    def _item(self, dep: Deployment) -> dict:
        return {
            "pk": _s(f"dep#{dep.id}"), "body": _s(json.dumps(dep.to_item(), sort_keys=True)),
            "lock_version": {"N": str(dep.lock_version)}, "state": _s(dep.state.value),
            "gsi_service": _s(dep.service), "gsi_all": _s("deployment"),
            "created_key": _s(_created_key(dep)),
        }

    def _pointer(self, pointer: str, dep: Deployment, condition: str | None = None) -> dict:
        item = {"pk": _s(pointer), "dep": _s(dep.id)}
        if dep.tags:
            item["tags"] = {"SS": sorted(dep.tags)}
        if pointer.startswith(SNAPSHOT):  # the deployment as this write stores it (see snapshot)
            item["body"] = _s(json.dumps(_bumped(dep).to_item(), sort_keys=True))
        put: dict = {"TableName": self._table, "Item": item}
        if condition:
            put["ConditionExpression"] = condition
        return {"Put": put}

    def _head_update(self, dep: Deployment, **change: Any) -> dict | None:
        return head_update(self._table, dep, **change)

    def _write(self, dep: Deployment, items: list[dict], head: dict | None) -> None:
        """Write ``items`` (+ the head update) atomically; turn refusals into the port's errors."""
        locked_at = None
        if head is not None:
            locked_at = len(items) if head.pop("_lock") else None
            items = items + [head]
        try:
            if len(items) == 1 and "Put" in items[0]:
                call(self._db.put_item, **items[0]["Put"])
            else:
                call(self._db.transact_write_items, TransactItems=items)
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            if code == "ConditionalCheckFailedException":
                raise ConcurrentUpdate(f"deployment {dep.id} changed meanwhile") from exc
            if code != "TransactionCanceledException":
                raise
            reasons = cancel_reasons(exc)
            failed = [i for i, r in enumerate(reasons) if r == "ConditionalCheckFailed"]
            if locked_at is not None and failed == [locked_at]:
                holder = self.lock_holder(dep.service)
                if holder != dep.id:
                    raise Conflict(f"{dep.service} is busy with deployment {holder}; "
                                   "try again when it has finished", code="service_locked") from exc
            raise ConcurrentUpdate(f"deployment {dep.id} changed meanwhile",
                                   code="concurrent_update") from exc

    # -- deployments ------------------------------------------------------------------------------
    def create(self, dep: Deployment, key: str, *, expect_head: Any = ANY,
               also: Iterable[Deployment] = ()) -> tuple[Deployment, bool]:
        """Store ``dep`` (and its dedupe ``key``) unless the key exists; with ``expect_head``, only
        if the service's head is still at that version; ``also`` are other deployments of the same
        service saved in the same transaction (the older pending ones a newer push supersedes)."""
        dep.lock_version = 1
        newest = dep.kind != "rollback" and not dep.state.terminal
        items = [self._pointer(key, dep, "attribute_not_exists(pk)"),
                 {"Put": {"TableName": self._table, "Item": self._item(dep),
                          "ConditionExpression": "attribute_not_exists(pk)"}}]
        others = list(also)
        items += [self._versioned_put(other) for other in others]
        head = self._head_update(dep, opened=() if dep.state.terminal else (dep.id,),
                                 closed=[o.id for o in others if o.finishes],
                                 expect=expect_head, newest=newest, others=others)
        try:
            self._write(dep, items, head)
        except ConcurrentUpdate:
            existing = self.find(key)
            if existing is None:  # the head moved on, or an older one changed: decide again
                dep.lock_version = 0
                raise
            return existing, existing.id == dep.id  # our own write landed, its answer was lost
        for other in others:
            other.lock_version += 1
            other.releases_lock = other.finishes = False
        return dep, True

    def _versioned_put(self, dep: Deployment) -> dict:
        return {"Put": {"TableName": self._table, "Item": self._item(
            _bumped(dep)), "ConditionExpression": "lock_version = :v",
            "ExpressionAttributeValues": {":v": {"N": str(dep.lock_version)}}}}

    def get(self, dep_id: str) -> Deployment | None:
        got = call(self._db.get_item, TableName=self._table, Key={"pk": _s(f"dep#{dep_id}")},
                   ConsistentRead=True)
        item = got.get("Item")
        return Deployment.from_item(json.loads(item["body"]["S"])) if item else None

    def save(self, dep: Deployment, pointers: tuple[str, ...] = (), *,
             prune: str | None = None) -> None:
        expected = dep.lock_version
        items: list[dict] = [self._versioned_put(dep)]
        items += [self._pointer(p, dep) for p in pointers]
        head = self._head_update(dep, closed=(dep.id,) if dep.finishes else (), prune=prune)
        try:
            self._write(dep, items, head)
        except Exception:
            dep.lock_version = expected
            raise
        dep.lock_version = expected + 1
        dep.releases_lock = dep.finishes = False

    def release_lock(self, service: str, dep_id: str) -> None:
        """Free ``service`` if (and only if) ``dep_id`` still holds it."""
        try:
            call(self._db.update_item, TableName=self._table, Key={"pk": _s(f"svc#{service}")},
                 UpdateExpression="REMOVE #lock SET hv = if_not_exists(hv, :one) + :one",
                 ConditionExpression="#lock = :d", ExpressionAttributeNames={"#lock": "lock"},
                 ExpressionAttributeValues={":d": _s(dep_id), ":one": {"N": "1"}})
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

    def find(self, pointer: str) -> Deployment | None:
        seen = self.seen(pointer)
        return self.get(seen[0]) if seen else None

    def snapshot(self, pointer: str) -> Deployment | None:
        """The deployment a pointer leads to, in one read: as the write that made the pointer
        stored it when the pointer keeps a copy (``SNAPSHOT``; possibly outdated since: only a
        write conditional on its version may follow), else read through the pointer."""
        got = call(self._db.get_item, TableName=self._table, Key={"pk": _s(pointer)},
                   ConsistentRead=True)
        item = got.get("Item")
        if not item:
            return None
        if "body" in item:
            return Deployment.from_item(json.loads(item["body"]["S"]))
        return self.get(item["dep"]["S"])

    def seen(self, pointer: str) -> tuple[str, list[str]] | None:
        """(deployment id, its tags when last written) of a dedupe key or pointer: one read."""
        got = call(self._db.get_item, TableName=self._table, Key={"pk": _s(pointer)},
                   ConsistentRead=True)
        item = got.get("Item")
        return (item["dep"]["S"], sorted(item.get("tags", {}).get("SS", []))) if item else None

    def seen_and_head(self, pointer: str, service: str) -> tuple[tuple[str, list[str]] | None,
                                                                   Head]:
        """``seen(pointer)`` and ``head(service)`` in one strongly consistent BatchGetItem."""
        items = self._batch_get([pointer, f"svc#{service}"])
        item = items.get(pointer)
        seen = (item["dep"]["S"], sorted(item.get("tags", {}).get("SS", []))) if item else None
        return seen, _head(service, items.get(f"svc#{service}") or {})

    def head(self, service: str) -> Head:
        return self.heads([service])[service]

    def heads(self, services: Iterable[str]) -> dict[str, Head]:
        """The head items of ``services`` in one strongly consistent BatchGetItem."""
        names = list(dict.fromkeys(services))
        items = self._batch_get([f"svc#{n}" for n in names])
        return {n: _head(n, items.get(f"svc#{n}") or {}) for n in names}

    def get_many(self, dep_ids: Iterable[str]) -> list[Deployment]:
        """Deployments by id (strongly consistent; unknown ids are left out), in id order."""
        items = self._batch_get([f"dep#{i}" for i in sorted(set(dep_ids))])
        return [Deployment.from_item(json.loads(items[k]["body"]["S"])) for k in sorted(items)]

    def _batch_get(self, keys: list[str]) -> dict[str, dict]:
        out: dict[str, dict] = {}
        for start in range(0, len(keys), 100):
            request = {self._table: {"Keys": [{"pk": _s(k)} for k in keys[start:start + 100]],
                                     "ConsistentRead": True}}
            while request:
                got = call(self._db.batch_get_item, RequestItems=request)
                out.update({i["pk"]["S"]: i for i in got.get("Responses", {}).get(self._table, [])})
                request = got.get("UnprocessedKeys") or {}
        return out

    def lock_holder(self, service: str) -> str | None:
        return self.head(service).lock

    def unfinished(self, services: Iterable[str]) -> list[Deployment]:
        """The unfinished deployments of ``services``, from their head items (two strong reads)."""
        ids = [i for h in self.heads(services).values() for i in h.open]
        return [d for d in self.get_many(ids) if not d.state.terminal] if ids else []

    def rollback_done(self, service: str, dep_id: str) -> None:
        call(self._db.update_item, TableName=self._table, Key={"pk": _s(f"svc#{service}")},
             UpdateExpression="REMOVE #r", ExpressionAttributeNames={"#r": f"r_{dep_id}"})

    def prune_done(self, service: str, family: str) -> None:
        call(self._db.update_item, TableName=self._table, Key={"pk": _s(f"svc#{service}")},
             UpdateExpression="REMOVE #p", ExpressionAttributeNames={"#p": f"prune_{family}"})

    def list(self, service: str | None = None, state: str | None = None,
             limit: int = 50) -> list[Deployment]:
        """Newest first, from a GSI: for people and views only (eventually consistent)."""
        index, key, value = (BY_SERVICE, "gsi_service", service) if service else \
            (BY_TIME, "gsi_all", "deployment")
        kwargs: dict[str, Any] = {
            "TableName": self._table, "IndexName": index, "ScanIndexForward": False,
            "KeyConditionExpression": f"{key} = :k", "ExpressionAttributeValues": {":k": _s(value)},
        }
        if state:
            kwargs["FilterExpression"] = "#s = :s"
            kwargs["ExpressionAttributeNames"] = {"#s": "state"}
            kwargs["ExpressionAttributeValues"][":s"] = _s(state)
        out: list[Deployment] = []
        while len(out) < limit:
            page = call(self._db.query, **kwargs)
            out += [Deployment.from_item(json.loads(i["body"]["S"])) for i in page["Items"]]
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return out[:limit]

    # -- jobs ---------------------------------------------------------------------------------
    def get_job(self, name: str) -> dict | None:
        got = call(self._db.get_item, TableName=self._table, Key={"pk": _s(f"job#{name}")},
                   ConsistentRead=True)
        return json.loads(got["Item"]["body"]["S"]) if "Item" in got else None

    def put_job(self, name: str, job: dict | None) -> None:
        key = {"pk": _s(f"job#{name}")}
        if job is None:
            call(self._db.delete_item, TableName=self._table, Key=key)
        else:
            call(self._db.put_item, TableName=self._table,
                 Item={**key, "body": _s(json.dumps(job, sort_keys=True))})


def _bumped(dep: Deployment) -> Deployment:
    """The item as stored after this write: one version up."""
    import copy

    out = copy.copy(dep)
    out.lock_version = dep.lock_version + 1
    return out

