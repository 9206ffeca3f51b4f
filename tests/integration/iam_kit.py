"""Record which AWS calls each Lambda function makes, and judge them against IAM policies.

The recorder hooks botocore on the app's own session (chalicelib.adapters.aws) and attributes each
call to the Lambda function running at that moment: the Chalice test client invokes functions through
``app.handler_map`` (events, the queue, the schedule) and ``Chalice.__call__`` (the REST API).

The evaluator is our own, over botocore's service models: an action must be a real operation of the
service's API (or a permission-only action such as ``iam:PassRole``), and a request is allowed when
an Allow statement matches its action, its resource ARN and its condition keys (StringEquals,
StringLike, ArnEquals, ArnLike). No Deny statements are written, so none are evaluated.
"""
from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from typing import Any, Iterator

from chalice import Chalice

from chalicelib.adapters import aws

REGION, ACCOUNT = "us-east-1", "123456789012"
PERMISSION_ONLY = {"iam:PassRole"}  # authorised, never called as an API operation


@dataclass(frozen=True)
class Request:
    """One authorisation IAM makes for a call: action, resource ARN, condition context."""
    action: str
    resource: str
    context: tuple[tuple[str, str], ...] = ()


@dataclass
class Recorder:
    current: list[str] = field(default_factory=list)
    calls: list[tuple[str, str, dict]] = field(default_factory=list)  # (function, action, params)

    def hook(self, params, model, **_):
        if not self.current:
            return  # the test's own reads (checking results), not a Lambda's
        prefix = model.service_model.metadata.get("signingName") or model.service_model.endpoint_prefix
        prefix = {"monitoring": "cloudwatch"}.get(prefix, prefix)  # IAM's name for it
        self.calls.append((self.current[-1], f"{prefix}:{model.name}", dict(params)))

    @contextlib.contextmanager
    def acting_as(self, name: str) -> Iterator[None]:
        self.current.append(name)
        try:
            yield
        finally:
            self.current.pop()

    def by_function(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for who, action, _ in self.calls:
            out.setdefault(who, set()).add(action)
        return out


@contextlib.contextmanager
def recording(app: Chalice, functions, monkeypatch, cold_start) -> Iterator[Recorder]:
    """Record the calls of every Lambda of ``app`` until the block ends. Each invocation starts
    cold (``cold_start`` rebuilds the app's dependencies), as each function is its own Lambda
    with its own caches: a secret one function cached is fetched again by the next."""
    rec = Recorder()

    @contextlib.contextmanager
    def invocation(name: str) -> Iterator[None]:
        if rec.current:  # a call within a call (the test's own hooks): same function
            yield
            return
        cold_start()
        with rec.acting_as(name):
            yield

    for name, handler in [(n, h) for n, h in app.handler_map.items() if n in functions]:
        def wrapped(event, context, _name=name, _handler=handler):
            with invocation(_name):
                return _handler(event, context)
        monkeypatch.setitem(app.handler_map, name, wrapped)
    original = Chalice.__call__

    def api(self, event, context):
        with invocation("api_handler"):
            return original(self, event, context)

    monkeypatch.setattr(Chalice, "__call__", api)
    # One botocore session for the whole run (clients made from it carry the hook); a cold start
    # rebuilds the clients and the app's caches, not botocore's data files.
    monkeypatch.setattr(aws, "reset", aws.client.cache_clear)
    aws._session().events.register("provide-client-params.*.*", rec.hook)
    yield rec


# -- what IAM authorises for each call ------------------------------------------------------------
def _arn(service: str, rest: str) -> str:
    return f"arn:aws:{service}:{REGION}:{ACCOUNT}:{rest}"


def _name(value: str) -> str:
    return value.rsplit("/", 1)[-1]


def _cluster(params: dict) -> str:
    return _arn("ecs", f"cluster/{_name(params.get('cluster') or 'default')}")


_ITEM_ACTIONS = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem",
                 "ConditionCheck": "ConditionCheckItem"}


def requests_for(action: str, params: dict, roles_of_task_definition) -> list[Request]:
    """The authorisations IAM makes for one API call (an unknown call fails the test loudly)."""
    service, op = action.split(":")
    if action == "dynamodb:TransactWriteItems":  # not an IAM action: each item is authorised
        return [Request(f"dynamodb:{_ITEM_ACTIONS[kind]}", _arn("dynamodb", f"table/{body['TableName']}"))
                for item in params["TransactItems"] for kind, body in item.items()]
    if action in ("dynamodb:BatchGetItem", "dynamodb:BatchWriteItem"):
        return [Request(action, _arn("dynamodb", f"table/{t}")) for t in params["RequestItems"]]
    if service == "dynamodb":
        table = f"table/{params['TableName']}"
        return [Request(action, _arn("dynamodb", table + (f"/index/{params['IndexName']}"
                                                          if params.get("IndexName") else "")))]
    if service == "sqs":
        return [Request(action, _arn("sqs", _name(params["QueueUrl"])))]
    if action == "secretsmanager:GetSecretValue":
        secret = params["SecretId"]
        return [Request(action, secret if secret.startswith("arn:") else
                        _arn("secretsmanager", f"secret:{secret}-AbCdEf"))]
    if action == "ecr:DescribeImages":
        return [Request(action, _arn("ecr", f"repository/{params['repositoryName']}"))]
    if op in ("RegisterTaskDefinition", "DeregisterTaskDefinition", "ListTaskDefinitions",
              "DescribeTaskDefinition"):
        passed = [params.get(k) for k in ("taskRoleArn", "executionRoleArn")] \
            if op == "RegisterTaskDefinition" else []
        return [Request(action, "*"), *_pass(r for r in passed if r)]
    cluster = _cluster(params)
    if op in ("DescribeServices", "UpdateService"):
        names = params["services"] if op == "DescribeServices" else [params["service"]]
        return [Request(action, _arn("ecs", f"service/{_name(cluster)}/{_name(n)}")) for n in names]
    if op == "RunTask":
        family_rev = _name(params["taskDefinition"])
        return [Request(action, _arn("ecs", f"task-definition/{family_rev}"),
                        (("ecs:cluster", cluster),)),
                *_pass(roles_of_task_definition(params["taskDefinition"]))]
    if op in ("StopTask", "DescribeTasks"):
        tasks = params["tasks"] if op == "DescribeTasks" else [params["task"]]
        return [Request(action, t if t.startswith("arn:") else
                        _arn("ecs", f"task/{_name(cluster)}/{t}"), (("ecs:cluster", cluster),))
                for t in tasks]
    if op == "ListTasks":
        return [Request(action, "*", (("ecs:cluster", cluster),))]
    if action == "cloudwatch:DescribeAlarms":
        return [Request(action, _arn("cloudwatch", f"alarm:{n}")) for n in params["AlarmNames"]]
    if action == "logs:GetLogEvents":
        return [Request(action, _arn("logs", f"log-group:{params['logGroupName']}:log-stream:"
                                             f"{params['logStreamName']}"))]
    raise AssertionError(f"iam_kit does not know how IAM authorises {action}: teach "
                         "requests_for, and deploy/iam.py's _scope")


def _pass(roles) -> list[Request]:
    return [Request("iam:PassRole", r, (("iam:PassedToService", "ecs-tasks.amazonaws.com"),))
            for r in roles]


# -- the evaluator ----------------------------------------------------------------------------------
def resolve(node: Any, tracing: bool = False) -> Any:
    """A policy as IAM sees it in the test account: Fn::Sub pseudo parameters and Fn::If."""
    if isinstance(node, list):
        return [x for x in (resolve(n, tracing) for n in node) if x is not _NO_VALUE]
    if isinstance(node, dict):
        if "Fn::Sub" in node:
            return (node["Fn::Sub"].replace("${AWS::Partition}", "aws")
                    .replace("${AWS::Region}", REGION).replace("${AWS::AccountId}", ACCOUNT))
        if "Fn::If" in node:
            cond, yes, no = node["Fn::If"]
            assert cond == "Tracing", cond
            return resolve(yes if tracing else no, tracing)
        if node == {"Ref": "AWS::NoValue"}:
            return _NO_VALUE
        return {k: resolve(v, tracing) for k, v in node.items()}
    return node


_NO_VALUE = object()


def _list(value) -> list:
    return value if isinstance(value, list) else [value]


def _like(pattern: str, value: str, case: bool = True) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, 0 if case else re.I) is not None


_CONDITIONS = {
    "StringEquals": lambda want, got: got == want,
    "ArnEquals": lambda want, got: got == want,
    "StringLike": _like, "ArnLike": _like,
}


def allows(policy: dict, request: Request) -> bool:
    context = dict(request.context)
    for st in policy["Statement"]:
        if st["Effect"] != "Allow":
            continue
        if not any(_like(a, request.action, case=False) for a in _list(st["Action"])):
            continue
        if not any(_like(r, request.resource) for r in _list(st["Resource"])):
            continue
        ok = True
        for op, tests in (st.get("Condition") or {}).items():
            for key, wants in tests.items():
                got = context.get(key)
                ok &= got is not None and any(_CONDITIONS[op](w, got) for w in _list(wants))
        if ok:
            return True
    return False


def actions_of(policy: dict) -> set[str]:
    return {a for st in policy["Statement"] for a in _list(st["Action"])}
