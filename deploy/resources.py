"""The stack's own resources beside the functions: the ledger and idempotency tables (from
chalicelib.adapters.tables, the one definition), the work queue and its dead-letter queue, the
parameters (custom domain, tracing) and the outputs `make deploy` prints. Never shipped to Lambda.
"""
from __future__ import annotations

from typing import Any

from chalicelib.adapters.tables import cloudformation_resources
from deploy.iam import Names

API_URL = {"Fn::Sub": "https://${RestAPI}.execute-api.${AWS::Region}.${AWS::URLSuffix}/api"}
# Approval links and Slack's Request URL: the custom domain when one is given, else the API's own.
PUBLIC_URL = {"Fn::If": ["HasDomain", {"Fn::Sub": "https://${DomainName}"}, API_URL]}

PARAMETERS: dict[str, Any] = {
    "DomainName": {"Type": "String", "Default": "", "Description":
                   "Optional custom domain for the API (links and Slack's Request URL use it); "
                   "empty: the API's execute-api URL"},
    "CertificateArn": {"Type": "String", "Default": "", "Description":
                       "ACM certificate (same region) for DomainName; needed with DomainName"},
    "Tracing": {"Type": "String", "Default": "false", "AllowedValues": ["true", "false"],
                "Description": "X-Ray active tracing of the functions (Lambda's segments only; "
                               "see docs/deploying.md)"},
}
CONDITIONS: dict[str, Any] = {
    "HasDomain": {"Fn::Not": [{"Fn::Equals": [{"Ref": "DomainName"}, ""]}]},
    "Tracing": {"Fn::Equals": [{"Ref": "Tracing"}, "true"]},
}


def stage_resources(names: Names, work_timeout: int) -> dict[str, Any]:
    res = cloudformation_resources(names.table, names.idempotency_table)
    # The ledger is the audit history: deleting or replacing the stack must not delete it.
    res["LedgerTable"]["DeletionPolicy"] = "Retain"
    res["LedgerTable"]["UpdateReplacePolicy"] = "Retain"
    res["IdempotencyTable"]["DeletionPolicy"] = "Delete"  # one day of event ids, nothing more
    res["IdempotencyTable"]["UpdateReplacePolicy"] = "Delete"
    res["WorkDeadLetterQueue"] = _dead_letters(f"{names.queue}-dlq")
    res["FailedEventsQueue"] = _dead_letters(names.failed_events)
    res["WorkQueue"] = {"Type": "AWS::SQS::Queue", "Properties": {
        "QueueName": names.queue,
        # AWS advises ≥ 6× the function timeout for an SQS trigger (retries of a throttled batch)
        "VisibilityTimeout": 6 * work_timeout,
        "SqsManagedSseEnabled": True,
        "RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": ["WorkDeadLetterQueue", "Arn"]},
                          "maxReceiveCount": 5}}}
    res["ApiDomain"] = {"Type": "AWS::ApiGateway::DomainName", "Condition": "HasDomain",
                        "Properties": {"DomainName": {"Ref": "DomainName"},
                                       "RegionalCertificateArn": {"Ref": "CertificateArn"},
                                       "EndpointConfiguration": {"Types": ["REGIONAL"]},
                                       "SecurityPolicy": "TLS_1_2"}}
    res["ApiDomainMapping"] = {"Type": "AWS::ApiGateway::BasePathMapping", "Condition": "HasDomain",
                               "Properties": {"DomainName": {"Ref": "ApiDomain"},
                                              "RestApiId": {"Ref": "RestAPI"},
                                              "Stage": {"Ref": "RestAPI.Stage"}}}
    return res


def _dead_letters(name: str) -> dict[str, Any]:
    """Kept 14 days; read by hand (docs/operating.md), so no redrive of its own."""
    return {"Type": "AWS::SQS::Queue",
            "Metadata": {"cfn-lint": {"config": {"ignore_checks": ["ES6000"]}}},
            "Properties": {"QueueName": name, "MessageRetentionPeriod": 1_209_600,
                           "SqsManagedSseEnabled": True}}


def failed_events_policy(rules: list[str]) -> dict[str, Any]:
    """EventBridge may put the events it could not deliver into the failed-events queue, for
    Slipway's own rules only."""
    return {"Type": "AWS::SQS::QueuePolicy", "Properties": {
        "Queues": [{"Ref": "FailedEventsQueue"}],
        "PolicyDocument": {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sqs:SendMessage", "Resource": {"Fn::GetAtt": ["FailedEventsQueue", "Arn"]},
            "Condition": {"ArnEquals": {"aws:SourceArn": [
                {"Fn::GetAtt": [rule, "Arn"]} for rule in rules]}}}]}}}


def outputs(app_name: str, stage: str) -> dict[str, Any]:
    return {
        "ApiUrl": {"Description": "The REST API (execute-api)", "Value": API_URL},
        "PublicUrl": {"Description": "Base of approval links (SLIPWAY_PUBLIC_URL)",
                      "Value": PUBLIC_URL},
        "SlackRequestUrl": {"Description": "Slack app: Interactivity & Shortcuts → Request URL",
                            "Value": {"Fn::Join": ["", [PUBLIC_URL, "/slack/interactions"]]}},
        "DomainTarget": {"Description": "Point DomainName's DNS (CNAME/alias) here",
                         "Condition": "HasDomain",
                         "Value": {"Fn::GetAtt": ["ApiDomain", "RegionalDomainName"]}},
        "LedgerTable": {"Value": {"Ref": "LedgerTable"}},
        "WorkQueueUrl": {"Value": {"Ref": "WorkQueue"}},
        "DeadLetterQueueUrl": {"Value": {"Ref": "WorkDeadLetterQueue"}},
        "FailedEventsQueueUrl": {"Value": {"Ref": "FailedEventsQueue"}},
        "Dashboard": {"Value": {"Fn::Sub": "https://${AWS::Region}.console.${AWS::URLSuffix}/"
                                           "cloudwatch/home#dashboards:name=" + f"{app_name}-{stage}"}},
    }
