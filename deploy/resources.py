"""Print the CloudFormation resources Slipway needs beside what `chalice package` generates:
the ledger and idempotency tables (from chalicelib.adapters.tables, the one definition), the SQS
work queue with a dead-letter queue, and each function's SLIPWAY_QUEUE_URL. Used by `make package`
as `chalice package --merge-template`. Never shipped to Lambda.

    python deploy/resources.py STAGE > build/resources.json
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chalicelib.adapters.tables import cloudformation_resources  # noqa: E402

FUNCTIONS = ("APIHandler", "OnImagePushed", "OnTaskStateChange", "OnDeploymentStateChange",
             "Reconcile", "Work")


def template(stage: str) -> dict:
    resources = cloudformation_resources(f"slipway-{stage}", f"slipway-idempotency-{stage}")
    resources["WorkDeadLetterQueue"] = {"Type": "AWS::SQS::Queue", "Properties": {
        "QueueName": f"slipway-{stage}-work-dlq", "MessageRetentionPeriod": 1_209_600}}
    resources["WorkQueue"] = {"Type": "AWS::SQS::Queue", "Properties": {
        "QueueName": f"slipway-{stage}-work",
        "VisibilityTimeout": 120,  # > the worker's 60 s timeout: no two workers on one message
        "RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": ["WorkDeadLetterQueue", "Arn"]},
                          "maxReceiveCount": 5}}}
    for name in FUNCTIONS:
        resources[name] = {"Properties": {"Environment": {"Variables": {
            "SLIPWAY_QUEUE_URL": {"Ref": "WorkQueue"}}}}}
    return {"Resources": resources}


if __name__ == "__main__":
    print(json.dumps(template(sys.argv[1] if len(sys.argv) > 1 else "prod"), indent=2))
