"""The ledger on DynamoDB: optimistic locking on ``lock_version``, dedupe and pointers in one
transaction, a per-service lock item while ECS works for a deployment.

Timeline of a double click (two writers read version 3):
    A: Put dep#x IF lock_version = 3  → ok, now 4
    B: Put dep#x IF lock_version = 3  → ConditionalCheckFailed → ConcurrentUpdate (B re-reads, sees
       the decision A made, and answers 409)
"""
from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.adapters.tables import ACTIVE, BY_SERVICE, BY_TIME
from chalicelib.domain.model import Deployment
from chalicelib.errors import Conflict, ConcurrentUpdate


def _s(value: str) -> dict:
    return {"S": value}


def _created_key(dep: Deployment) -> str:
    return f"{dep.created_at}#{dep.id}"


class DynamoLedger:
    def __init__(self, client: Any, table: str):
        self._db = client
        self._table = table

    # -- deployments --------------------------------------------------------------------------
    def _item(self, dep: Deployment) -> dict:
        item = {
            "pk": _s(f"dep#{dep.id}"), "body": _s(json.dumps(dep.to_item(), sort_keys=True)),
            "lock_version": {"N": str(dep.lock_version)}, "state": _s(dep.state.value),
            "gsi_service": _s(dep.service), "gsi_all": _s("deployment"),
            "created_key": _s(_created_key(dep)),
        }
        if not dep.state.terminal:
            item["gsi_active"] = _s("active")
        return item

    def _lock(self, dep: Deployment) -> dict:
        return {"Put": {
            "TableName": self._table,
            "Item": {"pk": _s(f"lock#{dep.service}"), "dep": _s(dep.id)},
            "ConditionExpression": "attribute_not_exists(pk) OR dep = :d",
            "ExpressionAttributeValues": {":d": _s(dep.id)},
        }}

    def _write(self, dep: Deployment, items: list[dict]) -> None:
        """Run one transaction; a failed service-lock condition becomes a 'service_locked' 409."""
        if dep.busy:
            items.append(self._lock(dep))
        try:
            self._db.transact_write_items(TransactItems=items)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "TransactionCanceledException":
                raise
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            if dep.busy and reasons[-1:] == ["ConditionalCheckFailed"] \
                    and "ConditionalCheckFailed" not in reasons[:-1]:
                holder = self.lock_holder(dep.service)
                raise Conflict(f"{dep.service} is busy with deployment {holder}; "
                               "try again when it has finished", code="service_locked") from exc
            raise ConcurrentUpdate(f"deployment {dep.id} changed meanwhile") from exc

    def create(self, dep: Deployment, key: str) -> tuple[Deployment, bool]:
        dep.lock_version = 1
        try:
            self._write(dep, [
                {"Put": {"TableName": self._table, "Item": {"pk": _s(key), "dep": _s(dep.id)},
                         "ConditionExpression": "attribute_not_exists(pk)"}},
                {"Put": {"TableName": self._table, "Item": self._item(dep),
                         "ConditionExpression": "attribute_not_exists(pk)"}},
            ])
            return dep, True
        except ConcurrentUpdate:
            pass
        existing = self.find(key)
        if existing is None:  # the winner's transaction is atomic, so this cannot happen
            raise ConcurrentUpdate(f"deployment for {key} is being created; retry")
        return existing, False

    def get(self, dep_id: str) -> Deployment | None:
        got = self._db.get_item(TableName=self._table, Key={"pk": _s(f"dep#{dep_id}")},
                                ConsistentRead=True)
        item = got.get("Item")
        return Deployment.from_item(json.loads(item["body"]["S"])) if item else None

    def save(self, dep: Deployment, pointers: tuple[str, ...] = ()) -> None:
        expected = dep.lock_version
        dep.lock_version = expected + 1
        items: list[dict] = [{"Put": {
            "TableName": self._table, "Item": self._item(dep),
            "ConditionExpression": "lock_version = :v",
            "ExpressionAttributeValues": {":v": {"N": str(expected)}},
        }}]
        items += [{"Put": {"TableName": self._table, "Item": {"pk": _s(p), "dep": _s(dep.id)}}}
                  for p in pointers]
        if dep.releases_lock:  # in the same transaction: a finished deployment never keeps it
            items.append({"Delete": {
                "TableName": self._table, "Key": {"pk": _s(f"lock#{dep.service}")},
                "ConditionExpression": "attribute_not_exists(pk) OR dep = :d",
                "ExpressionAttributeValues": {":d": _s(dep.id)},
            }})
        try:
            self._write(dep, items)
        except Exception:
            dep.lock_version = expected
            raise
        dep.releases_lock = False

    def release_lock(self, service: str, dep_id: str) -> None:
        """Free ``service`` if (and only if) ``dep_id`` still holds it."""
        try:
            self._db.delete_item(TableName=self._table, Key={"pk": _s(f"lock#{service}")},
                                 ConditionExpression="dep = :d",
                                 ExpressionAttributeValues={":d": _s(dep_id)})
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

    def find(self, pointer: str) -> Deployment | None:
        got = self._db.get_item(TableName=self._table, Key={"pk": _s(pointer)}, ConsistentRead=True)
        item = got.get("Item")
        return self.get(item["dep"]["S"]) if item else None

    def lock_holder(self, service: str) -> str | None:
        got = self._db.get_item(TableName=self._table, Key={"pk": _s(f"lock#{service}")},
                                ConsistentRead=True)
        return got["Item"]["dep"]["S"] if "Item" in got else None

    def list(self, service: str | None = None, state: str | None = None,
             limit: int = 50) -> list[Deployment]:
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
        return self._query(kwargs, limit)

    def unfinished(self) -> list[Deployment]:
        return self._query({
            "TableName": self._table, "IndexName": ACTIVE,
            "KeyConditionExpression": "gsi_active = :a",
            "ExpressionAttributeValues": {":a": _s("active")},
        }, limit=10_000)

    def _query(self, kwargs: dict, limit: int) -> list[Deployment]:
        out: list[Deployment] = []
        while len(out) < limit:
            page = self._db.query(**kwargs)
            out += [Deployment.from_item(json.loads(i["body"]["S"])) for i in page["Items"]]
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return out[:limit]

    # -- jobs ---------------------------------------------------------------------------------
    def get_job(self, name: str) -> dict | None:
        got = self._db.get_item(TableName=self._table, Key={"pk": _s(f"job#{name}")},
                                ConsistentRead=True)
        return json.loads(got["Item"]["body"]["S"]) if "Item" in got else None

    def put_job(self, name: str, job: dict | None) -> None:
        key = {"pk": _s(f"job#{name}")}
        if job is None:
            self._db.delete_item(TableName=self._table, Key=key)
        else:
            self._db.put_item(TableName=self._table,
                              Item={**key, "body": _s(json.dumps(job, sort_keys=True))})
