"""Per-function least-privilege IAM policies, derived from the stage's services.toml.

Each Lambda gets its own role. ``ACTIONS`` says which AWS actions each function's own code calls
(tests/integration/test_iam_policy.py records the calls of a whole deployment per function and fails
when this table allows one too few or one too many); ``_scope`` says which resources each action may
touch, from what the config names: clusters, services, task-definition families, the task and
execution roles (``iam:PassRole`` only to ``ecs-tasks.amazonaws.com``), ECR repositories, CloudWatch
alarms, migration log groups, and the stage's tables, queue and secret. ARNs are ``Fn::Sub`` strings,
so one template works in any account, region and partition.

Four ECS actions have no resource-level permissions and take ``*``: RegisterTaskDefinition,
DeregisterTaskDefinition, ListTaskDefinitions, DescribeTaskDefinition (AWS service authorization
reference). ``dynamodb:TransactWriteItems`` is not an IAM action: a transaction is authorised by the
item actions it contains.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chalicelib.config import Config, ServiceConfig
from chalicelib.errors import ConfigError

# app.py function name → the logical id `chalice package` gives its AWS::Serverless::Function
FUNCTIONS = {
    "api_handler": "APIHandler",
    "on_image_pushed": "OnImagePushed",
    "on_task_state_change": "OnTaskStateChange",
    "on_deployment_state_change": "OnDeploymentStateChange",
    "on_alarm_state_change": "OnAlarmStateChange",
    "dora_metrics": "DoraMetrics",
    "work": "Work",
    "reconcile": "Reconcile",
}

_READ = {"dynamodb:GetItem", "secretsmanager:GetSecretValue"}
_QUERY = {"dynamodb:Query"}  # listing deployments (by service, unfinished ones)
_BATCH = {"dynamodb:BatchGetItem"}  # the services' head items, the unfinished deployments
_SAVE = {"dynamodb:PutItem", "dynamodb:UpdateItem"}  # ledger writes (transactions of Put/Update)
_DELETE = {"dynamodb:DeleteItem"}  # pruning jobs and pointers done with
_DEPLOY = {"ecs:RegisterTaskDefinition", "ecs:RunTask", "ecs:StopTask", "ecs:UpdateService",
           "ecs:ListTasks", "iam:PassRole"}  # ListTasks: adopt what a lost RunTask started
_PRUNE = {"ecs:DescribeServices", "ecs:ListTaskDefinitions", "ecs:DeregisterTaskDefinition"}

# What each function's own code calls. The API handler never writes to ECS and passes no role.
ACTIONS: dict[str, set[str]] = {
    "api_handler": _READ | _QUERY | _BATCH | _SAVE | {"sqs:SendMessage", "ecs:DescribeServices"},
    "on_image_pushed": _READ | _QUERY | _BATCH | _SAVE | {"sqs:SendMessage", "ecr:DescribeImages",
                                        "ecs:DescribeServices", "ecs:DescribeTaskDefinition"},
    "on_task_state_change": _READ | _SAVE | {"ecs:UpdateService", "logs:GetLogEvents"},
    "on_deployment_state_change": _READ | _QUERY | _BATCH | _SAVE | _DELETE | _PRUNE | {
        "cloudwatch:DescribeAlarms"},  # the bake starts: are its alarms quiet?
    "on_alarm_state_change": _READ | _QUERY | _BATCH | _SAVE | {"sqs:SendMessage"},
    "work": _READ | _SAVE | _DEPLOY,
    "reconcile": _READ | _QUERY | _BATCH | _SAVE | _DELETE | _DEPLOY | _PRUNE | {
        "ecs:DescribeTasks", "sqs:SendMessage", "cloudwatch:DescribeAlarms", "logs:GetLogEvents"},
    "dora_metrics": _QUERY,  # the ledger, read once an hour per service
}
ASYNC = {"on_image_pushed", "on_task_state_change", "on_deployment_state_change",
         "on_alarm_state_change", "reconcile", "dora_metrics"}  # invoked by EventBridge: failures go to a queue
# Not calls of our code, but made with the function's role by Lambda itself (statement ids below).
PLATFORM_SIDS = {"Logs", "QueueTrigger", "FailedEvents", "Tracing"}
LAMBDA_LOGS = ("logs:CreateLogStream", "logs:PutLogEvents")
SQS_POLLER = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")  # the trigger
XRAY = ("xray:PutTraceSegments", "xray:PutTelemetryRecords")  # only when tracing is on
NO_RESOURCE_LEVEL = {"ecs:RegisterTaskDefinition", "ecs:DeregisterTaskDefinition",
                     "ecs:ListTaskDefinitions", "ecs:DescribeTaskDefinition"}
PREFIX = "arn:${AWS::Partition}:%s:${AWS::Region}:${AWS::AccountId}:"


@dataclass(frozen=True)
class Names:
    """The stage's own resources, as named in .chalice/config.json."""
    table: str
    idempotency_table: str
    queue: str
    secret_id: str
    failed_events: str = ""  # the queue of events EventBridge or Lambda could not deliver


def function_name(app_name: str, stage: str, function: str) -> str:
    """Lambda names as `chalice deploy` gives them: slipway-prod, slipway-prod-work, ..."""
    return f"{app_name}-{stage}" if function == "api_handler" else f"{app_name}-{stage}-{function}"


def _arn(service: str, rest: str) -> dict:
    return {"Fn::Sub": PREFIX % service + rest}


def roles_of(svc: ServiceConfig, path: str) -> list[str]:
    """The task and execution roles the service's task definitions carry (PassRole targets)."""
    roles = [svc.template.get(k) for k in ("taskRoleArn", "executionRoleArn")] if svc.template \
        else list(getattr(svc, "task_roles", ()) or ())
    if not svc.template and not roles:
        raise ConfigError(f"{path}: service {svc.name!r}: key 'task_roles' is needed without "
                          "'task_definition' (the roles its cloned task definitions carry, so "
                          "Slipway may pass exactly those)")
    return sorted({r for r in roles if r})


def _family(svc: ServiceConfig) -> str:
    return svc.template["family"] if svc.template else "*"  # a cloned service's family is ECS's


def _scope(action: str, cfg: Config, names: Names) -> tuple[list[Any], dict | None]:
    """(Resource list, Condition) for one action, from what the config names."""
    svcs = cfg.services
    migrating = [s for s in svcs if s.migration]
    if action in NO_RESOURCE_LEVEL:
        return ["*"], None
    if action.startswith("dynamodb:"):  # the ledger (the idempotency table is no longer used)
        return [_arn("dynamodb", f"table/{names.table}")] + (
            [_arn("dynamodb", f"table/{names.table}/index/*")] if action == "dynamodb:Query"
            else []), None
    if action.startswith("sqs:"):
        return [_arn("sqs", names.queue)], None
    if action == "secretsmanager:GetSecretValue":
        return [_arn("secretsmanager", f"secret:{names.secret_id}-??????")], None
    if action == "ecr:DescribeImages":
        return [_arn("ecr", f"repository/{r}") for r in sorted({s.repository for s in svcs})], None
    if action in ("ecs:DescribeServices", "ecs:UpdateService"):
        return [_arn("ecs", f"service/{c}/{n}")
                for c, n in sorted({(s.cluster, s.service) for s in svcs})], None
    if action == "ecs:RunTask":
        return ([_arn("ecs", f"task-definition/{f}:*")
                 for f in sorted({_family(s) for s in migrating})],
                {"ArnEquals": {"ecs:cluster": [_arn("ecs", f"cluster/{c}")
                                               for c in sorted({s.cluster for s in migrating})]}})
    if action == "ecs:ListTasks":  # no ARN to scope by in practice: the cluster condition does
        return ["*"], {"ArnEquals": {"ecs:cluster": [
            _arn("ecs", f"cluster/{c}") for c in sorted({s.cluster for s in migrating})]}}
    if action in ("ecs:StopTask", "ecs:DescribeTasks"):
        return [_arn("ecs", f"task/{c}/*") for c in sorted({s.cluster for s in migrating})], None
    if action == "iam:PassRole":
        roles = sorted({r for s in svcs for r in roles_of(s, cfg.path)})
        return roles, {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}
    if action == "cloudwatch:DescribeAlarms":
        alarms = sorted({a for s in svcs for a in getattr(getattr(s, "verify", None), "alarms",
                                                          ()) or ()})
        return [_arn("cloudwatch", f"alarm:{a}") for a in alarms], None
    if action == "logs:GetLogEvents":
        return [_arn("logs", f"log-group:{g}:log-stream:*") for g in migration_log_groups(cfg)], None
    raise ValueError(f"deploy/iam.py does not know how to scope {action}")


def migration_log_groups(cfg: Config) -> list[str]:
    """The awslogs groups of the migrating containers (where their output is read from)."""
    groups = set()
    for svc in cfg.services:
        for c in (svc.template or {}).get("containerDefinitions", []):
            opts = (c.get("logConfiguration") or {}).get("options") or {}
            if svc.migration and c.get("name") == svc.container and opts.get("awslogs-group"):
                groups.add(opts["awslogs-group"])
    return sorted(groups)


def policy(function: str, cfg: Config, names: Names, lambda_name: str) -> dict:
    """The IAM policy document of one function (with Fn::Sub ARNs and an X-Ray Fn::If)."""
    grouped: dict[str, tuple[list, dict | None, list[str]]] = {}
    for action in sorted(_needed(function, cfg)):
        resources, condition = _scope(action, cfg, names)
        if not resources:
            continue
        key = repr((resources, condition))
        grouped.setdefault(key, (resources, condition, []))[2].append(action)
    statements = [{"Sid": "Logs", "Effect": "Allow", "Action": list(LAMBDA_LOGS),
                   "Resource": [_arn("logs", f"log-group:/aws/lambda/{lambda_name}:*")]}]
    for i, (resources, condition, actions) in enumerate(grouped.values()):
        statement = {"Sid": f"S{i}", "Effect": "Allow", "Action": actions, "Resource": resources}
        if condition:
            statement["Condition"] = condition
        statements.append(statement)
    if function in ASYNC and names.failed_events:  # Lambda's on-failure destination
        statements.append({"Sid": "FailedEvents", "Effect": "Allow", "Action": ["sqs:SendMessage"],
                           "Resource": [_arn("sqs", names.failed_events)]})
    if function == "work":
        statements.append({"Sid": "QueueTrigger", "Effect": "Allow", "Action": list(SQS_POLLER),
                           "Resource": [_arn("sqs", names.queue)]})
    statements.append({"Fn::If": ["Tracing", {
        "Sid": "Tracing", "Effect": "Allow", "Action": list(XRAY), "Resource": "*"},
        {"Ref": "AWS::NoValue"}]})
    return {"Version": "2012-10-17", "Statement": statements}


def _needed(function: str, cfg: Config) -> set[str]:
    """ACTIONS, less what this config never needs (no migration anywhere: no migration task)."""
    actions = set(ACTIONS[function])
    if not any(s.migration for s in cfg.services):
        actions -= {"ecs:RunTask", "ecs:StopTask", "ecs:DescribeTasks", "ecs:ListTasks",
                    "logs:GetLogEvents"}
    return actions
