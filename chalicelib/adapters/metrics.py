"""Deployment duration, approval wait and success rate as CloudWatch metrics (powertools' embedded
metric format: one log line, no API call). Success rate = DeploymentSucceeded / DeploymentFinished
(metric math). Dimensions: ``service_name`` (the configured service; ``service`` is Slipway itself
in every log line, and EMF dimensions are log keys) and ``kind``. The stack's alarms and dashboard
read these names (deploy/observability.py).
"""
from __future__ import annotations

import logging

from chalicelib.domain.model import Deployment, State

log = logging.getLogger("slipway.metrics")
NAMESPACE = "Slipway"
FAILED = {State.FAILED, State.ROLLED_BACK}


class MetricsNotifier:
    def changed(self, dep: Deployment, changes: list[str]) -> None:
        if dep.state not in FAILED | {State.SUCCEEDED} or dep.state.value not in changes:
            return
        from aws_lambda_powertools.metrics import MetricUnit, single_metric

        ok = dep.state is State.SUCCEEDED
        values = [("DeploymentFinished", MetricUnit.Count, 1),
                  ("DeploymentSucceeded", MetricUnit.Count, 1 if ok else 0)]
        if dep.duration_seconds() is not None:
            values.append(("DeploymentDuration", MetricUnit.Seconds, dep.duration_seconds()))
        if dep.approval_wait_seconds() is not None:
            values.append(("ApprovalWait", MetricUnit.Seconds, dep.approval_wait_seconds()))
        for name, unit, value in values:
            with single_metric(name=name, unit=unit, value=value, namespace=NAMESPACE) as metric:
                metric.add_dimension(name="service_name", value=dep.service)
                metric.add_dimension(name="kind", value=dep.kind)


def gauge(name: str, service: str, seconds: float) -> None:
    """A measurement in seconds for one service, e.g. ``LockHeldSeconds``: how long one deployment
    has held the service since its approval (the reconciler measures it every 5 minutes)."""
    from aws_lambda_powertools.metrics import MetricUnit, single_metric

    with single_metric(name=name, unit=MetricUnit.Seconds, value=seconds,
                       namespace=NAMESPACE) as metric:
        metric.add_dimension(name="service_name", value=service)
