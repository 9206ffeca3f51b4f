"""Alarms, a dashboard and log groups for the stack (docs/operating.md has a runbook per alarm).

Slipway's own metrics are powertools EMF log lines (namespace ``Slipway``): ``DeploymentFinished``,
``DeploymentSucceeded``, ``DeploymentDuration``, ``ApprovalWait`` (dimensions ``service_name``,
``kind``), ``EventsFailed``/``EventsRejected`` (dimension ``event``) and ``LockHeldSeconds``
(``service_name``: how long the deployment holding a service has been at work since its approval,
measured by the reconciler every 5 minutes).
"""
from __future__ import annotations

import json
from typing import Any

from chalicelib.config import Config
from deploy.iam import ASYNC

NAMESPACE = "Slipway"
KINDS = ("deploy", "rollback", "promote")
EVENT_KINDS = ("ecr-push", "task-stopped", "rollout", "work", "alarm")
SLACK_MARGIN_MINUTES = 15  # beyond migration + rollout timeouts before a lock is "too long"

PARAMETERS: dict[str, Any] = {
    "LogRetentionDays": {"Type": "Number", "Default": 90, "Description":
                         "Days the functions' logs are kept",
                         "AllowedValues": [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400,
                                           545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653]},
    "AlarmTopicArn": {"Type": "String", "Default": "", "Description":
                      "Optional SNS topic ARN the alarms notify (empty: alarms only show in "
                      "CloudWatch)"},
}
CONDITIONS: dict[str, Any] = {
    "HasAlarmTopic": {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]}]},
}
_ACTIONS = {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}


def log_group(lambda_name: str) -> dict:
    """Created before the function (it DependsOn this), so Lambda never makes one without
    retention; the ledger, not the logs, is the audit history."""
    return {"Type": "AWS::Logs::LogGroup", "DeletionPolicy": "Delete",
            "UpdateReplacePolicy": "Delete",
            "Properties": {"LogGroupName": f"/aws/lambda/{lambda_name}",
                           "RetentionInDays": {"Ref": "LogRetentionDays"}}}


def _alarm(name: str, description: str, **props: Any) -> dict:
    return {"Type": "AWS::CloudWatch::Alarm", "Properties": {
        "AlarmName": name, "AlarmDescription": description,
        "AlarmActions": _ACTIONS, "OKActions": _ACTIONS,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold", "Threshold": 1,
        "EvaluationPeriods": 1, "TreatMissingData": "notBreaching", **props}}


def _metric(id_: str, namespace: str, name: str, dims: dict, stat: str = "Sum",
            period: int = 300) -> dict:
    return {"Id": id_, "ReturnData": False, "MetricStat": {
        "Metric": {"Namespace": namespace, "MetricName": name,
                   "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()]},
        "Period": period, "Stat": stat}}


def _rules(functions: dict[str, str]) -> list[str]:
    """Logical ids of the EventBridge rules SAM makes from chalice's events (Function + Event)."""
    return [f"{logical}{logical}Event" for logical, fn in functions.items()
            if fn in ASYNC]


def alarms(app_name: str, stage: str, functions: dict[str, str], iam: Any) -> dict[str, Any]:
    prefix = f"{app_name}-{stage}"
    depth = [_metric(f"q{i}", "AWS/SQS", "ApproximateNumberOfMessagesVisible",
                     {"QueueName": {"Fn::GetAtt": [q, "QueueName"]}}, stat="Maximum")
             for i, q in enumerate(("WorkDeadLetterQueue", "FailedEventsQueue"))]
    out: dict[str, Any] = {"DeadLetterAlarm": _alarm(
        f"{prefix}-dead-letters", "Work the queue gave up on (5 failed receives), or an event "
        "EventBridge could not deliver or a function failed 3 times on: see "
        "docs/operating.md#dead-letters",
        Metrics=[*depth, {"Id": "letters", "Label": "dead letters", "Expression": "q0+q1",
                          "ReturnData": True}])}
    for logical, fn in functions.items():
        out[f"{logical}ErrorsAlarm"] = _alarm(
            f"{prefix}-errors-{fn}", f"{fn} raised (Lambda Errors): see "
            "docs/operating.md#function-errors", Namespace="AWS/Lambda", MetricName="Errors",
            Statistic="Sum", Period=300,
            Dimensions=[{"Name": "FunctionName", "Value": iam.function_name(app_name, stage, fn)}])
    rules = _rules(functions)
    failed = [_metric(f"r{i}", "AWS/Events", "FailedInvocations", {"RuleName": {"Ref": r}})
              for i, r in enumerate(rules)]
    dropped = [_metric(f"e{i}", NAMESPACE, "EventsFailed", {"event": k})
               for i, k in enumerate(EVENT_KINDS)]
    ids = ",".join(m["Id"] for m in failed + dropped)
    out["EventsFailedAlarm"] = _alarm(
        f"{prefix}-events-failed", "EventBridge could not deliver an event to Slipway, or "
        "Slipway dropped one AWS refused for good: see docs/operating.md#events-failed",
        Metrics=[*failed, *dropped, {"Id": "total", "Label": "failed events",
                                     "Expression": f"SUM([{ids}])", "ReturnData": True}])
    return out


def service_alarms(app_name: str, stage: str, cfg: Config) -> dict[str, Any]:
    """Per configured service: a failed deployment, and a service lock held too long."""
    out: dict[str, Any] = {}
    for i, svc in enumerate(cfg.services):
        metrics, terms = [], []
        for j, kind in enumerate(KINDS):
            dims = {"service_name": svc.name, "kind": kind}
            metrics += [_metric(f"f{j}", NAMESPACE, "DeploymentFinished", dims),
                        _metric(f"s{j}", NAMESPACE, "DeploymentSucceeded", dims)]
            terms.append(f"(FILL(f{j},0)-FILL(s{j},0))")
        out[f"FailedDeployments{i}Alarm"] = _alarm(
            f"{app_name}-{stage}-failed-{svc.name}", f"A deployment of {svc.name} ended FAILED or "
            "ROLLED_BACK: see docs/operating.md#failed-deployment",
            Metrics=[*metrics, {"Id": "failed", "Label": "failed deployments",
                                "Expression": "+".join(terms), "ReturnData": True}])
        limit = (svc.rollout_timeout_minutes + (svc.migration.timeout_minutes if svc.migration
                                                else 0) + SLACK_MARGIN_MINUTES) * 60
        out[f"LockHeld{i}Alarm"] = _alarm(
            f"{app_name}-{stage}-lock-{svc.name}", f"{svc.name} has been held by one deployment "
            f"for over {limit / 60:g} minutes (its migration and rollout timeouts plus "
            f"{SLACK_MARGIN_MINUTES}): see docs/operating.md#lock-held",
            Namespace=NAMESPACE, MetricName="LockHeldSeconds", Statistic="Maximum", Period=300,
            Dimensions=[{"Name": "service_name", "Value": svc.name}],
            ComparisonOperator="GreaterThanThreshold", Threshold=limit)
    return out


def dashboard(app_name: str, stage: str, cfg: Config, functions: dict[str, str],
              iam: Any) -> dict[str, Any]:
    """One CloudWatch dashboard: deployments per service, success rate, duration and approval
    wait (p50/p90), dead letters and the work queue, errors, service locks."""
    names = [s.name for s in cfg.services]

    def per_service(metric: str, stat: str, kind: str = "deploy") -> list:
        return [[NAMESPACE, metric, "service_name", n, "kind", kind, {"stat": stat, "label":
                                                                      f"{n} {stat}"}]
                for n in names]

    rate = []
    for i, n in enumerate(names):
        rate += [[NAMESPACE, "DeploymentSucceeded", "service_name", n, "kind", "deploy",
                  {"id": f"s{i}", "visible": False}],
                 [NAMESPACE, "DeploymentFinished", "service_name", n, "kind", "deploy",
                  {"id": f"f{i}", "visible": False}],
                 [{"expression": f"100*s{i}/f{i}", "label": f"{n} success %", "id": f"r{i}"}]]
    queue = [["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", q, {"stat": "Maximum"}]
             for q in (f"{app_name}-{stage}-work-dlq", f"{app_name}-{stage}-work")]
    queue.append(["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName",
                  f"{app_name}-{stage}-work", {"stat": "Maximum"}])
    errors = [["AWS/Lambda", "Errors", "FunctionName", iam.function_name(app_name, stage, fn),
               {"stat": "Sum"}] for fn in functions.values()]
    errors += [[NAMESPACE, "EventsFailed", "event", k, {"stat": "Sum"}] for k in EVENT_KINDS]
    widgets = [
        ("Deployments per service (per day)", per_service("DeploymentFinished", "Sum"), 86400),
        ("Success rate", rate, 86400),
        ("Deployment duration p50/p90 (s)", per_service("DeploymentDuration", "p50")
         + per_service("DeploymentDuration", "p90"), 3600),
        ("Approval wait p50/p90 (s)", per_service("ApprovalWait", "p50")
         + per_service("ApprovalWait", "p90"), 3600),
        ("Dead letters and the work queue", queue, 300),
        ("Errors", errors, 300),
        ("Service locks held (s)", [[NAMESPACE, "LockHeldSeconds", "service_name", n,
                                     {"stat": "Maximum"}] for n in names], 300),
    ]
    body = {"widgets": [{"type": "metric", "x": 12 * (i % 2), "y": 6 * (i // 2), "width": 12,
                         "height": 6, "properties": {"title": title, "metrics": metrics,
                                                     "period": period, "view": "timeSeries",
                                                     "region": "${AWS::Region}"}}
                        for i, (title, metrics, period) in enumerate(widgets)]}


    return {"Dashboard": {"Type": "AWS::CloudWatch::Dashboard", "Properties": {
        "DashboardName": f"{app_name}-{stage}",
        "DashboardBody": {"Fn::Sub": json.dumps(body, separators=(",", ":"))}}}}
