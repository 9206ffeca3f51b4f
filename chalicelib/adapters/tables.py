"""DynamoDB table definitions: the one place the tests, the devstack and production templates read.

Ledger table (``SLIPWAY_TABLE``), one partition key ``pk``:
    ``dep#<id>``                 a deployment (JSON ``body`` + ``lock_version`` for conditional writes)
    ``key#<service>#<digest>``   dedupe: one deployment per (service, image digest)
    ``task#<task arn>``          migration task → deployment
    ``ecsdep#<ecs deployment>``  ECS deployment id → deployment
    ``lock#<service>``           the deployment ECS is busy with for that service
    ``job#prune#<family>``       a resumable pruning job
Indexes: ``by_service`` (gsi_service, created_key), ``by_time`` (gsi_all, created_key) and the sparse
``active`` (gsi_active, created_key) holding only deployments that are not finished.
"""
from __future__ import annotations

from typing import Any

BY_SERVICE, BY_TIME, ACTIVE = "by_service", "by_time", "active"


def _gsi(name: str, hash_key: str) -> dict[str, Any]:
    return {
        "IndexName": name,
        "KeySchema": [{"AttributeName": hash_key, "KeyType": "HASH"},
                      {"AttributeName": "created_key", "KeyType": "RANGE"}],
        "Projection": {"ProjectionType": "ALL"},
    }


def ledger_table(name: str) -> dict[str, Any]:
    """CreateTable arguments for the ledger."""
    return {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "AttributeDefinitions": [
            {"AttributeName": n, "AttributeType": "S"}
            for n in ("pk", "gsi_service", "gsi_all", "gsi_active", "created_key")
        ],
        "GlobalSecondaryIndexes": [
            _gsi(BY_SERVICE, "gsi_service"), _gsi(BY_TIME, "gsi_all"), _gsi(ACTIVE, "gsi_active"),
        ],
    }


def idempotency_table(name: str) -> dict[str, Any]:
    """CreateTable arguments for powertools' idempotency store (key ``id``, TTL ``expiration``)."""
    return {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
    }


def all_tables(ledger_name: str, idempotency_name: str) -> list[dict[str, Any]]:
    return [ledger_table(ledger_name), idempotency_table(idempotency_name)]


def cloudformation_resources(ledger_name: str, idempotency_name: str) -> dict[str, Any]:
    """The same tables as CloudFormation resources (for ``chalice package --merge-template``)."""
    resources = {}
    for logical, spec in (("LedgerTable", ledger_table(ledger_name)),
                          ("IdempotencyTable", idempotency_table(idempotency_name))):
        props = dict(spec)
        if logical == "IdempotencyTable":
            props["TimeToLiveSpecification"] = {"AttributeName": "expiration", "Enabled": True}
        else:
            props["PointInTimeRecoverySpecification"] = {"PointInTimeRecoveryEnabled": True}
        resources[logical] = {"Type": "AWS::DynamoDB::Table", "Properties": props}
    return resources
