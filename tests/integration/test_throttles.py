"""DynamoDB throttles are not conflicts (issue 7 row 7), on moto over HTTP: retried with backoff,
then 503 with Retry-After and nothing changed; a real conflict keeps its 409."""
from __future__ import annotations

import pytest

from chalicelib.adapters import aws, ledger_retry
from tests.integration.api_kit import approve, client, get, push
from tests.integration.faults import error, faults

__all__ = ["client", "faults"]  # the fixtures, imported for pytest


@pytest.mark.parametrize("parsed", [
    error("ProvisionedThroughputExceededException"),
    error("ThrottlingException"),
    error("TransactionCanceledException", reasons=["None", "ThrottlingError"]),
    error("InternalServerError", status=500),
], ids=["provisioned", "throttling", "transaction", "dynamodb-500"])
def test_a_throttled_approval_is_503_with_retry_after_and_changes_nothing(
        stack, client, faults, parsed):
    """The approval's write is throttled for good: 503 + Retry-After, still PENDING_APPROVAL, the
    link still usable; once DynamoDB recovers the same approval goes through."""
    dep = push(stack, client, redeliver=False)
    faults.add(aws.client("dynamodb"), "TransactWriteItems", parsed, times=ledger_retry.ATTEMPTS)
    page = approve(stack, client, dep)
    assert page.status_code == 503 and page.headers["Retry-After"].isdigit()
    assert len(faults.fired) == ledger_retry.ATTEMPTS  # retried, not given up at once
    assert get(client, dep["id"])["state"] == "PENDING_APPROVAL"
    assert approve(stack, client, dep).status_code == 200
    assert get(client, dep["id"])["state"] == "APPROVED"


def test_a_throttle_that_clears_within_the_retries_is_invisible(stack, client, faults):
    """Throttled twice, then accepted: the approver sees a normal approval."""
    dep = push(stack, client, redeliver=False)
    faults.add(aws.client("dynamodb"), "TransactWriteItems",
               error("ProvisionedThroughputExceededException"), times=2)
    assert approve(stack, client, dep).status_code == 200
    assert get(client, dep["id"])["state"] == "APPROVED"


def test_a_conflict_is_still_409(stack, client, faults):
    """The same decision twice is a conflict, not a throttle: 409."""
    dep = push(stack, client, redeliver=False)
    assert approve(stack, client, dep).status_code == 200
    assert approve(stack, client, dep).status_code == 409
