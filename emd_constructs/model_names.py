"""ARN patterns of what model stacks create, shared by the permissions boundary and the CloudFormation
deploy role. CloudFormation names a resource without an explicit name '<stack name>-<logical id>-<random>'
(cut to the type's length limit from the end, so the EMD-Model- prefix stays), and aws-cdk-lib names ECS
task-definition families after the construct path without punctuation ('EMDModel...')."""

from __future__ import annotations

import aws_cdk as cdk

from model_specs.deployment import STACK_PREFIX

TASK_FAMILY_PREFIX = STACK_PREFIX.replace("-", "")
SAGEMAKER_LOG_GROUPS = ("/aws/sagemaker/Endpoints/*", "/aws/sagemaker/InferenceComponents/*")


def arn(
    stack: cdk.Stack,
    service: str,
    resource: str,
    name: str | None = None,
    *,
    colon: bool = False,
    region: bool = True,
    account: bool = True,
) -> str:
    """stack.format_arn with the two switches these patterns need (IAM/S3 drop region and/or account)."""
    return stack.format_arn(
        service=service,
        resource=resource,
        resource_name=name,
        arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME if colon else cdk.ArnFormat.SLASH_RESOURCE_NAME,
        region=None if region else "",
        account=None if account else "",
    )


def model_log_groups(stack: cdk.Stack) -> list[str]:
    """The engines' log groups (EMD-Model-*) and SageMaker's per-endpoint / per-component groups; the
    trailing * also covers their streams (log-group:<name>:log-stream:<stream>)."""
    names = (f"{STACK_PREFIX}*", *SAGEMAKER_LOG_GROUPS)
    return [arn(stack, "logs", "log-group", n, colon=True) for n in names]
