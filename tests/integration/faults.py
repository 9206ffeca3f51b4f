"""Make the app's own AWS calls fail as AWS fails, with botocore event hooks on its clients:
``before`` the call (nothing happened: a throttle, a refusal), or ``after`` it took effect with the
answer lost (a 500 once the request was processed). The error is what botocore raises once its own
retries are spent, so the app's handling of it is what is tested."""
from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from botocore.exceptions import ClientError


class _Http:
    def __init__(self, status: int):
        self.status_code = status
        self.headers: dict = {}
        self.content = b""


def error(code: str, status: int = 400, reasons: list[str] | None = None) -> dict:
    parsed = {"Error": {"Code": code, "Message": f"injected {code}"},
              "ResponseMetadata": {"HTTPStatusCode": status}}
    if reasons is not None:
        parsed["CancellationReasons"] = [{"Code": r} for r in reasons]
    return parsed


@dataclass
class Faults:
    """``add(client, "TransactWriteItems", error(...), times=2, when="before")``."""
    hooks: list = field(default_factory=list)
    fired: list = field(default_factory=list)

    def add(self, client, operation: str, parsed: dict, times: int = 1, when: str = "before"):
        left = [times]
        service = client.meta.service_model.service_id.hyphenize()

        def before(model, **_):
            if model.name != operation or not left[0]:
                return None
            left[0] -= 1
            self.fired.append((operation, when))
            return _Http(parsed["ResponseMetadata"]["HTTPStatusCode"]), parsed

        def after(model, **_):
            if model.name != operation or not left[0]:
                return
            left[0] -= 1
            self.fired.append((operation, when))
            raise ClientError(parsed, operation)

        event = f"{'before' if when == 'before' else 'after'}-call.{service}.{operation}"
        handler = before if when == "before" else after
        client.meta.events.register(event, handler)
        self.hooks.append((client, event, handler))

    def clear(self):
        for client, event, handler in self.hooks:
            client.meta.events.unregister(event, handler)
        self.hooks.clear()


@pytest.fixture
def faults(stack, monkeypatch):
    """Faults on the app's clients, without the ledger's backoff sleeps; cleared afterwards."""
    from chalicelib.adapters import ledger_retry

    monkeypatch.setattr(ledger_retry, "sleep", lambda _: None)
    f = Faults()
    yield f
    f.clear()
