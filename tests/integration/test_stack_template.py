"""`make package STAGE=prod` on a copy of the repo, then the template as CloudFormation gets it:
cfn-lint clean (with the serverless rules) as written and after the SAM transform, and a rehearsal
of the stack on the embedded AWS (moto's CloudFormation on 127.0.0.1).

What moto's CloudFormation cannot create, and why (the rehearsal checks them another way):
- AWS::ApiGateway::Deployment and ::Stage: moto makes the RestApi but does not import its OpenAPI
  body, so a deployment of an API "without methods" is refused. cfn-lint checks them.
- AWS::CloudWatch::Alarm: no CloudFormation support in moto (it skips them with a warning); each
  alarm's properties go through CloudWatch's own PutMetricAlarm instead.
- AWS::SQS::QueuePolicy and AWS::Lambda::EventInvokeConfig (the failed-events queue's policy and
  the functions' on-failure destination): no CloudFormation support in moto 5.2 (skipped with a
  warning). cfn-lint checks them.
- AWS::ApiGateway::DomainName/BasePathMapping: only with the DomainName parameter (a certificate).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
import requests

from deploy.expand import expand
from tests.conftest import ROOT

MOTO_CANNOT = {"AWS::ApiGateway::Deployment", "AWS::ApiGateway::Stage", "AWS::CloudWatch::Alarm"}
MOTO_SKIPS = {"AWS::SQS::QueuePolicy", "AWS::Lambda::EventInvokeConfig"}
COPY = ("app.py", "Makefile", "chalicelib", ".chalice", "ecs", "deploy")


def make(root: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """`make ARGS` in the copy, on this venv as it is (-o: never reinstall it from the copy)."""
    env = env or {**os.environ, "AWS_DEFAULT_REGION": "us-east-1"}
    return subprocess.run(["make", "-o", ".venv/.stamp", *args], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)


def make_package(root: Path) -> subprocess.CompletedProcess:
    return make(root, "package", "STAGE=prod")


def repo_copy(tmp: Path) -> Path:
    for name in COPY:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, tmp / name, ignore=shutil.ignore_patterns(
                "__pycache__", "ecs" if name == "chalicelib" else "-"))
        else:
            shutil.copy2(src, tmp / name)
    for req in ROOT.glob("requirements*.txt"):
        shutil.copy2(req, tmp / req.name)
    (tmp / ".venv").symlink_to(Path(sys.prefix))
    return tmp


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> Path:
    root = repo_copy(tmp_path_factory.mktemp("repo"))
    done = make_package(root)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return root / "build" / "package"


def cfn_lint(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(Path(sys.executable).with_name("cfn-lint")), "-a", "cfn_lint_serverless.rules",
                           "--", str(path)], capture_output=True, text=True, timeout=120)


def test_the_template_is_lint_clean_as_written_and_after_the_sam_transform(package, tmp_path):
    expanded = tmp_path / "expanded.json"
    expanded.write_text(json.dumps(expand(json.loads((package / "sam.json").read_text()))))
    for path in (package / "sam.json", expanded):
        done = cfn_lint(path)
        assert (done.returncode, done.stdout + done.stderr) == (0, ""), path.name


def test_a_misspelt_key_stops_make_package_naming_file_service_and_key(tmp_path):
    root = repo_copy(tmp_path)
    config = root / "ecs" / "production" / "services.toml"
    config.write_text(config.read_text().replace("rollout_timeout_minutes =",
                                                 "rollout_timeout_minuts ="))
    done = make_package(root)
    assert done.returncode != 0
    assert "services.toml: service 'better-chatbot': unknown key 'rollout_timeout_minuts'" \
        in done.stderr
    assert not (root / "build" / "package").exists()


def _physical(stack: list[dict], logical: str) -> str:
    return next(r["PhysicalResourceId"] for r in stack if r["LogicalResourceId"] == logical)


def _resolve(node, stack: list[dict]):
    """What CloudFormation would pass for an alarm's properties (the conditions are false)."""
    if isinstance(node, list):
        return [_resolve(n, stack) for n in node]
    if not isinstance(node, dict):
        return node
    if "Ref" in node:
        return None if node["Ref"] == "AWS::NoValue" else _physical(stack, node["Ref"])
    if "Fn::GetAtt" in node:
        logical, attribute = node["Fn::GetAtt"]
        assert attribute == "QueueName"
        return _physical(stack, logical).rsplit("/", 1)[-1]
    if "Fn::If" in node:
        return _resolve(node["Fn::If"][2], stack)
    resolved = {k: _resolve(v, stack) for k, v in node.items()}
    return {k: v for k, v in resolved.items() if v is not None}


def test_the_stack_rehearsed_on_the_embedded_aws(package, moto_server):
    """Tables, queues, roles, rules, functions, log groups, the trigger: created by moto's
    CloudFormation from the expanded template; the alarms accepted by CloudWatch itself."""
    requests.post(f"{moto_server}/moto-api/reset", timeout=10)
    kw = {"region_name": "us-east-1", "endpoint_url": moto_server,
          "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    s3, cfn = boto3.client("s3", **kw), boto3.client("cloudformation", **kw)
    s3.create_bucket(Bucket="slipway-artifacts")
    s3.upload_file(str(package / "deployment.zip"), "slipway-artifacts", "deployment.zip")
    template = expand(json.loads((package / "sam.json").read_text()),
                      "s3://slipway-artifacts/deployment.zip")
    skipped = {k: v for k, v in template["Resources"].items() if v["Type"] in MOTO_CANNOT}
    template["Resources"] = {k: v for k, v in template["Resources"].items() if k not in skipped}
    cfn.create_stack(StackName="slipway-prod", TemplateBody=json.dumps(template),
                     Capabilities=["CAPABILITY_IAM"])
    described = cfn.describe_stacks(StackName="slipway-prod")["Stacks"][0]
    assert described["StackStatus"] == "CREATE_COMPLETE"
    stack = cfn.list_stack_resources(StackName="slipway-prod")["StackResourceSummaries"]
    created = {r["LogicalResourceId"] for r in stack if r["ResourceStatus"] == "CREATE_COMPLETE"}
    unconditional = {k for k, v in template["Resources"].items()
                     if "Condition" not in v and v["Type"] not in MOTO_SKIPS}
    assert unconditional <= created
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described["Outputs"]}
    assert outputs["SlackRequestUrl"] == outputs["ApiUrl"] + "/slack/interactions"

    ddb, sqs = boto3.client("dynamodb", **kw), boto3.client("sqs", **kw)
    assert ddb.describe_table(TableName="slipway-prod")["Table"]["KeySchema"][0][
        "AttributeName"] == "pk"
    work = sqs.get_queue_attributes(QueueUrl=outputs["WorkQueueUrl"],
                                    AttributeNames=["All"])["Attributes"]
    assert int(work["VisibilityTimeout"]) >= 6 * 60
    assert "slipway-prod-work-dlq" in json.loads(work["RedrivePolicy"])["deadLetterTargetArn"]
    lam = boto3.client("lambda", **kw)
    env = lam.get_function_configuration(FunctionName="slipway-prod-work")["Environment"][
        "Variables"]
    assert env["SLIPWAY_PUBLIC_URL"] == outputs["ApiUrl"]
    assert env["SLIPWAY_QUEUE_URL"] == outputs["WorkQueueUrl"]
    roles = {r["RoleName"] for r in boto3.client("iam", **kw).list_roles()["Roles"]}
    assert len(roles) == 8  # one per function
    groups = boto3.client("logs", **kw).describe_log_groups(logGroupNamePrefix="/aws/lambda/")
    assert {g["logGroupName"]: g.get("retentionInDays") for g in groups["logGroups"]} == {
        f"/aws/lambda/{lam_name}": 90 for lam_name in (
            "slipway-prod", "slipway-prod-on_image_pushed", "slipway-prod-on_task_state_change",
            "slipway-prod-on_deployment_state_change", "slipway-prod-on_alarm_state_change",
            "slipway-prod-work", "slipway-prod-reconcile", "slipway-prod-dora_metrics")}

    cloudwatch = boto3.client("cloudwatch", **kw)
    alarms = {k: v for k, v in skipped.items() if v["Type"] == "AWS::CloudWatch::Alarm"}
    for alarm in alarms.values():
        cloudwatch.put_metric_alarm(**_resolve(alarm["Properties"], stack))
    assert len(cloudwatch.describe_alarms()["MetricAlarms"]) == len(alarms) >= 10


def test_make_deploy_on_the_embedded_aws_prints_the_urls_and_next_steps(package, moto_server):
    """`make deploy` creates the stack (artifact bucket created, code uploaded, SAM transform done
    locally), then updates it; it prints the API URL, Slack's Request URL and what to do next,
    and writes the Slack app manifest for that URL. (The real account part: docs/deploying.md.)"""
    requests.post(f"{moto_server}/moto-api/reset", timeout=10)
    root = package.parent.parent
    # "localhost": moto finds the bucket of a template URL by that name (the template is over
    # CloudFormation's 51,200 bytes for a body, so the CLI uploads it to the artifact bucket)
    endpoint = moto_server.replace("127.0.0.1", "localhost")
    env = {**os.environ, "AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    done = make(root, "deploy", "STAGE=prod", "DEPLOY_ARGS=--rehearse", env=env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    kw = {"region_name": "us-east-1", "endpoint_url": moto_server,
          "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    public = boto3.client("lambda", **kw).get_function_configuration(
        FunctionName="slipway-prod-on_image_pushed")["Environment"]["Variables"][
        "SLIPWAY_PUBLIC_URL"]
    assert public.startswith("https://") and "example.com" not in public
    assert f"API URL:            {public}" in done.stdout
    assert f"Slack Request URL:  {public}/slack/interactions" in done.stdout
    assert "aws secretsmanager create-secret --name slipway/prod" in done.stdout
    manifest = json.loads((root / "build" / "slack-manifest-prod.json").read_text())
    assert manifest["settings"]["interactivity"]["request_url"] == f"{public}/slack/interactions"
    assert boto3.client("s3", **kw).list_objects_v2(
        Bucket="slipway-artifacts-123456789012-us-east-1")["KeyCount"] >= 1
    again = make(root, "deploy", "STAGE=prod", "DEPLOY_ARGS=--rehearse",
                 "PARAMS=LogRetentionDays=30", env=env)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-3000:]
    assert "Successfully created/updated stack - slipway-prod" in again.stdout
