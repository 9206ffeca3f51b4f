"""Turn the SAM template `chalice package` wrote into the one Slipway ships (`make package`).

Chalice knows the functions, their triggers and the REST API; this step adds what it cannot:
one least-privilege role per function (deploy/iam.py), fixed function names (so log groups, their
retention and the IAM log scopes exist before the functions), the tables, the queue and its
dead-letter queue (deploy/resources.py), alarms and a dashboard (deploy/observability.py), tracing
as a parameter, and ``SLIPWAY_PUBLIC_URL`` from the stack's own API (or a custom domain).

    python -m deploy.template STAGE CONFIG_DIR build/package/sam.json
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from chalicelib import config as config_mod
from deploy import iam, observability, resources

ROOT = Path(__file__).resolve().parent.parent
WORK_TIMEOUT = 60  # seconds; .chalice/config.json's lambda_timeout for the work function
FAILED_EVENTS_ARN = {"Fn::GetAtt": ["FailedEventsQueue", "Arn"]}
# cfn-lint findings Slipway decides against, with the reason (kept in the template itself)
LINT_DECISIONS = {
    "WS1000": "Lambda tracing is the Tracing parameter (off by default): docs/deploying.md",
    "WS2002": "API Gateway tracing follows the same decision",
    "ES2000": "API access logs need the account-wide API Gateway CloudWatch role, which one "
              "stack must not set for a whole account; every decision taken through the API "
              "is in the ledger (who, when, through which channel)",
    "ES1001": "the work queue's redrive policy (5 receives, then its dead-letter queue) is the "
              "on-failure path of an SQS trigger; Lambda has no OnFailure for SQS sources",
}


def stage_settings(stage: str) -> tuple[str, dict]:
    """(app name, the stage's environment variables) from .chalice/config.json."""
    chalice = json.loads((ROOT / ".chalice" / "config.json").read_text())
    env = {**chalice.get("environment_variables", {}),
           **chalice["stages"][stage].get("environment_variables", {})}
    return chalice["app_name"], env


def names_for(app_name: str, stage: str, env: dict) -> iam.Names:
    return iam.Names(table=env["SLIPWAY_TABLE"], idempotency_table=env["SLIPWAY_IDEMPOTENCY_TABLE"],
                     queue=f"{app_name}-{stage}-work", secret_id=env["SLIPWAY_SECRET_ID"],
                     failed_events=f"{app_name}-{stage}-failed-events")


def build(sam: dict, stage: str, cfg: config_mod.Config) -> dict:
    app_name, env = stage_settings(stage)
    names = names_for(app_name, stage, env)
    out = dict(sam)
    res = out["Resources"] = dict(sam["Resources"])
    functions = {logical: fn for fn, logical in iam.FUNCTIONS.items() if logical in res}
    unknown = [k for k, v in res.items() if v.get("Type") == "AWS::Serverless::Function"
               and k not in functions]
    if unknown:
        raise SystemExit(f"deploy/iam.py has no policy for the function(s) {unknown}: add them "
                         "to FUNCTIONS and ACTIONS")
    res.update(resources.stage_resources(names, WORK_TIMEOUT))
    rules: list[str] = []
    for logical, fn in functions.items():
        lambda_name = iam.function_name(app_name, stage, fn)
        res[f"{logical}Role"] = _role(logical, iam.policy(fn, cfg, names, lambda_name))
        res[f"{logical}LogGroup"] = observability.log_group(lambda_name)
        props = res[logical]["Properties"] = dict(res[logical]["Properties"])
        props["FunctionName"] = lambda_name
        props["Role"] = {"Fn::GetAtt": [f"{logical}Role", "Arn"]}
        props["Tracing"] = {"Fn::If": ["Tracing", "Active", "PassThrough"]}
        variables = props["Environment"]["Variables"] = dict(props["Environment"]["Variables"])
        variables["SLIPWAY_QUEUE_URL"] = {"Ref": "WorkQueue"}
        variables["SLIPWAY_PUBLIC_URL"] = resources.PUBLIC_URL
        variables["POWERTOOLS_TRACE_DISABLED"] = {"Fn::If": ["Tracing", "false", "true"]}
        res[logical]["DependsOn"] = [f"{logical}LogGroup"]
        for name, event in (props.get("Events") or {}).items():
            if event.get("Type") == "SQS":  # the trigger waits for its queue (and its role)
                event["Properties"]["Queue"] = {"Fn::GetAtt": ["WorkQueue", "Arn"]}
            if event.get("Type") in ("CloudWatchEvent", "Schedule"):
                # an event EventBridge cannot deliver, or the function fails 3 times, is kept
                event["Properties"]["DeadLetterConfig"] = {"Arn": FAILED_EVENTS_ARN}
                props["EventInvokeConfig"] = {"MaximumRetryAttempts": 2, "DestinationConfig": {
                    "OnFailure": {"Type": "SQS", "Destination": FAILED_EVENTS_ARN}}}
                rules.append(f"{logical}{name}")
    res["FailedEventsPolicy"] = resources.failed_events_policy(rules)
    _api_without_cycle(res, iam.function_name(app_name, stage, "api_handler"))
    api = res["RestAPI"]["Properties"]
    api["Name"] = f"{app_name}-{stage}"
    api["TracingEnabled"] = {"Fn::If": ["Tracing", True, False]}
    # API Gateway's own throttle in front of the handler (the JSON API reads DynamoDB per call)
    api["MethodSettings"] = [{"ResourcePath": "/*", "HttpMethod": "*",
                              "ThrottlingBurstLimit": 50, "ThrottlingRateLimit": 20}]
    res.update(observability.alarms(app_name, stage, functions, iam))
    res.update(observability.service_alarms(app_name, stage, cfg))
    res.update(observability.dashboard(app_name, stage, cfg, functions, iam))
    out["Metadata"] = {"cfn-lint": {"config": {"ignore_checks": sorted(LINT_DECISIONS)}},
                       "SlipwayLintDecisions": LINT_DECISIONS}
    out["Parameters"] = {**resources.PARAMETERS, **observability.PARAMETERS}
    out["Conditions"] = {**resources.CONDITIONS, **observability.CONDITIONS}
    out["Outputs"] = resources.outputs(app_name, stage)
    return out


def _role(logical: str, document: dict) -> dict:
    return {"Type": "AWS::IAM::Role", "Properties": {
        "Description": f"Slipway's {logical} function: only the calls its own code makes",
        "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole"}]},
        "Policies": [{"PolicyName": f"{logical}Policy", "PolicyDocument": document}]}}


def _api_without_cycle(res: dict, api_function: str) -> None:
    """The API names its handler by ARN built from the fixed function name, not by GetAtt: the
    functions' SLIPWAY_PUBLIC_URL refers to the API, so the API must not refer back to them."""
    target = ("arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/"
              "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:"
              f"{api_function}/invocations")
    text = json.dumps(res["RestAPI"])
    old = ("arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/"
           "${APIHandler.Arn}/invocations")
    res["RestAPI"] = json.loads(text.replace(old, target))


def main(argv: list[str]) -> int:
    stage, config_dir, sam_path = argv
    cfg = config_mod.load(Path(config_dir) / "services.toml")
    path = Path(sam_path)
    template = build(json.loads(path.read_text()), stage, cfg)
    path.write_text(json.dumps(template, indent=2) + "\n")
    roles = [k for k, v in template["Resources"].items() if v["Type"] == "AWS::IAM::Role"]
    print(f"{path}: {len(roles)} roles, one per function ({', '.join(sorted(roles))})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
