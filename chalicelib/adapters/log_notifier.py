"""A notifier that writes one structured log line per change (always on; Slack/GitHub add to it)."""
from __future__ import annotations

import logging

from chalicelib.domain.model import Deployment

log = logging.getLogger("slipway.notify")


class LogNotifier:
    def changed(self, dep: Deployment, changes: list[str]) -> None:
        last = dep.timeline[-1]["note"] if dep.timeline else ""
        log.info("deployment %s %s", dep.id, dep.state.value, extra={
            # `service` is Slipway in every log line (powertools); the deployed one is service_name
            "deployment_id": dep.id, "service_name": dep.service, "state": dep.state.value,
            "changes": changes, "note": last, "image": dep.image,
        })


class FanOut:
    """Tell several notifiers; one failing never stops the others."""

    def __init__(self, *notifiers) -> None:
        self.notifiers = notifiers

    def channels(self, svc) -> list[str]:
        """The channels that will be told about this service's deployments (Slack, GitHub)."""
        return [c for n in self.notifiers for c in getattr(n, "channels", lambda _: [])(svc)]

    def changed(self, dep: Deployment, changes: list[str]) -> None:
        for notifier in self.notifiers:
            try:
                notifier.changed(dep, changes)
            except Exception:
                log.exception("%s failed for %s", type(notifier).__name__, dep.id)
