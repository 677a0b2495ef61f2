"""The one way EMD creates a CloudWatch log group: 30-day retention, deleted with its stack (a log group that
CloudFormation does not create, or creates without retention, keeps its logs and their cost forever).

aws-cdk-lib's own Lambda functions (custom-resource providers, the S3 notifications handler) would log to
/aws/lambda/<name>, created by Lambda without retention: `bound_lambda_logs` gives each one such a group."""

from __future__ import annotations

import aws_cdk as cdk
import aws_cdk.aws_lambda as lambda_
import aws_cdk.aws_logs as logs
from constructs import Construct

RETENTION = logs.RetentionDays.ONE_MONTH


def bound_lambda_logs(stack: cdk.Stack) -> None:
    """Point every Lambda function of the stack that has no log group of its own at one made here."""
    for node in stack.node.find_all():
        if not (isinstance(node, cdk.CfnResource) and node.cfn_resource_type == "AWS::Lambda::Function"):
            continue
        if isinstance(node, lambda_.CfnFunction) and node.logging_config is not None:
            continue
        owner = node.node.scope
        assert owner is not None
        group = log_group(owner, "Logs")
        node.add_property_override("LoggingConfig.LogGroup", group.log_group_name)


def log_group(scope: Construct, construct_id: str = "Logs", *, name: str | None = None) -> logs.LogGroup:
    return logs.LogGroup(
        scope,
        construct_id,
        log_group_name=name,
        retention=RETENTION,
        removal_policy=cdk.RemovalPolicy.DESTROY,
    )
