"""The one way EMD creates a CloudWatch log group: 30-day retention, deleted with its stack (a log group that
CloudFormation does not create, or creates without retention, keeps its logs and their cost forever)."""

from __future__ import annotations

import aws_cdk as cdk
import aws_cdk.aws_logs as logs
from constructs import Construct

RETENTION = logs.RetentionDays.ONE_MONTH


def log_group(scope: Construct, construct_id: str = "Logs", *, name: str | None = None) -> logs.LogGroup:
    return logs.LogGroup(
        scope,
        construct_id,
        log_group_name=name,
        retention=RETENTION,
        removal_policy=cdk.RemovalPolicy.DESTROY,
    )
