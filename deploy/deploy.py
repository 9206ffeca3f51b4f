"""`make deploy STAGE=s`: deploy build/package/ with the AWS CLI's CloudFormation commands.

1. the artifact bucket: ``--bucket`` or ``slipway-artifacts-<account>-<region>``, created (private,
   encrypted) when missing;
2. ``aws cloudformation package`` uploads deployment.zip and rewrites CodeUri;
3. the SAM transform is done here (deploy/expand.py: the template cfn-lint and the rehearsal
   checked is the one CloudFormation gets);
4. ``aws cloudformation deploy`` creates or updates the stack ``slipway-<stage>``;
5. the stack's outputs are printed: the API URL, Slack's Request URL, what to do next.

Needs AWS credentials (any the AWS CLI finds). ``AWS_ENDPOINT_URL`` points it at an emulator;
``--rehearse`` leaves out what the embedded AWS cannot create (tests/integration/test_deploy.py).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from deploy import slack_manifest
from deploy.expand import expand

PACKAGE = Path("build/package")
MOTO_CANNOT = {"AWS::ApiGateway::Deployment", "AWS::ApiGateway::Stage", "AWS::CloudWatch::Alarm"}


def aws(*args: str, capture: bool = True) -> str:
    cli = os.environ.get("AWS_CLI") or str(Path(sys.executable).with_name("aws"))
    done = subprocess.run([cli, *args], capture_output=capture, text=True)
    if done.returncode != 0:
        raise SystemExit(f"aws {' '.join(args[:2])} failed:\n{done.stderr or ''}")
    return done.stdout if capture else ""


def region() -> str:
    return (os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
            or aws("configure", "get", "region").strip() or "us-east-1")


def ensure_bucket(name: str | None, where: str) -> str:
    if not name:
        account = json.loads(aws("sts", "get-caller-identity"))["Account"]
        name = f"slipway-artifacts-{account}-{where}"
    probe = subprocess.run([os.environ.get("AWS_CLI") or str(Path(sys.executable).with_name("aws")),
                            "s3api", "head-bucket", "--bucket", name], capture_output=True)
    if probe.returncode != 0:
        print(f"creating the artifact bucket {name}")
        aws("s3", "mb", f"s3://{name}", "--region", where)
        aws("s3api", "put-public-access-block", "--bucket", name,
            "--public-access-block-configuration", "BlockPublicAcls=true,IgnorePublicAcls=true,"
            "BlockPublicPolicy=true,RestrictPublicBuckets=true")
    return name


def deploy(stage: str, bucket: str | None, parameters: list[str], rehearse: bool) -> dict:
    if not (PACKAGE / "sam.json").exists():
        raise SystemExit(f"no {PACKAGE}/sam.json: run `make package STAGE={stage}` first")
    where = region()
    bucket = ensure_bucket(bucket, where)
    packaged = PACKAGE / "packaged.json"
    aws("cloudformation", "package", "--template-file", str(PACKAGE / "sam.json"),
        "--s3-bucket", bucket, "--s3-prefix", f"slipway-{stage}", "--use-json",
        "--output-template-file", str(packaged))
    template = expand(json.loads(packaged.read_text()), _code_uri(packaged), where)
    if rehearse:
        template["Resources"] = {k: v for k, v in template["Resources"].items()
                                 if v["Type"] not in MOTO_CANNOT}
    final = PACKAGE / "deploy.json"
    final.write_text(json.dumps(template, separators=(",", ":")))  # < 51,200 bytes: sent inline
    stack = f"slipway-{stage}"
    args = ["cloudformation", "deploy", "--template-file", str(final), "--stack-name", stack,
            "--capabilities", "CAPABILITY_IAM", "--no-fail-on-empty-changeset"]
    if final.stat().st_size > 51_200:  # CloudFormation's limit for a template sent inline
        args += ["--s3-bucket", bucket, "--s3-prefix", f"slipway-{stage}"]
    if parameters:
        args += ["--parameter-overrides", *parameters]
    print(f"deploying the stack {stack} in {where} (artifacts in s3://{bucket})")
    aws(*args, capture=False)
    outputs = stack_outputs(stack, where)
    print_next_steps(stage, outputs)
    return outputs


def stack_outputs(stack: str, where: str) -> dict[str, str]:
    described = json.loads(aws("cloudformation", "describe-stacks", "--stack-name", stack))
    outputs = {o["OutputKey"]: o["OutputValue"]
               for o in described["Stacks"][0].get("Outputs") or []}
    if "ApiUrl" not in outputs:  # moto keeps no outputs for a stack made by a change set
        listed = json.loads(aws("cloudformation", "list-stack-resources", "--stack-name", stack))
        api = next(r["PhysicalResourceId"] for r in listed["StackResourceSummaries"]
                   if r["LogicalResourceId"] == "RestAPI")
        url = f"https://{api}.execute-api.{where}.amazonaws.com/api"
        outputs.update(ApiUrl=url, PublicUrl=url, SlackRequestUrl=url + "/slack/interactions")
    return outputs


def _code_uri(packaged: Path) -> str:
    """The s3:// URI `aws cloudformation package` gave the functions (one zip for all)."""
    sam = json.loads(packaged.read_text())
    uris = {r["Properties"]["CodeUri"] for r in sam["Resources"].values()
            if r["Type"] == "AWS::Serverless::Function"}
    (uri,) = uris
    return uri if isinstance(uri, str) else f"s3://{uri['Bucket']}/{uri['Key']}"


def print_next_steps(stage: str, outputs: dict) -> None:
    public = outputs.get("PublicUrl") or ""
    manifest = Path(f"build/slack-manifest-{stage}.json")
    manifest.write_text(json.dumps(slack_manifest.manifest(stage, public), indent=2) + "\n")
    print(f"""
Slipway {stage} is deployed.
  API URL:            {outputs.get('ApiUrl')}
  Public URL (links): {public}
  Slack Request URL:  {outputs.get('SlackRequestUrl')}
  Dashboard:          {outputs.get('Dashboard', 'see the stack outputs')}

Next steps (docs/deploying.md):
  1. Create the Slack app: paste {manifest} at https://api.slack.com/apps
     (Create New App → From an app manifest), install it, invite @slipway to your channels.
  2. Store its bot token and signing secret, a GitHub token and a fresh link key (once per stage):
       SLACK_BOT_TOKEN=… SLACK_SIGNING_SECRET=… GITHUB_TOKEN=… .venv/bin/python -m deploy.secret \\
         | aws secretsmanager create-secret --name slipway/{stage} --secret-string file:///dev/stdin
  3. Push an image with the tags of docs/ci-side.md: the approval message arrives in Slack.
""")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="make deploy", description=__doc__.split("\n")[0])
    parser.add_argument("--stage", default="prod")
    parser.add_argument("--bucket", default=os.environ.get("BUCKET") or None)
    parser.add_argument("--rehearse", action="store_true",
                        help="leave out what the embedded AWS cannot create (tests only)")
    parser.add_argument("parameters", nargs="*", help="Key=Value stack parameters "
                        "(Tracing, LogRetentionDays, AlarmTopicArn, DomainName, CertificateArn)")
    args = parser.parse_args(argv)
    deploy(args.stage, args.bucket, args.parameters, args.rehearse)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
