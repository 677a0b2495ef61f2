"""The SageMaker execution role of a model: pull the engine image, read the weights, write its own endpoint's
logs and SageMaker metrics."""

from __future__ import annotations

import aws_cdk.aws_iam as iam
import aws_cdk.aws_logs as logs
from constructs import Construct

from emd_constructs.model_artifacts import ModelArtifacts
from emd_constructs.regional import service_principal


def sagemaker_execution_role(
    scope: Construct, construct_id: str, artifacts: ModelArtifacts, log_groups: list[logs.ILogGroup]
) -> iam.Role:
    role = iam.Role(scope, construct_id, assumed_by=service_principal("sagemaker"))
    artifacts.grant_image(role)
    artifacts.grant_weights(role)
    for group in log_groups:
        # the group exists before the endpoint; SageMaker may still call CreateLogGroup (AlreadyExists)
        group.grant(role, "logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents")
        group.grant(role, "logs:DescribeLogStreams")
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["cloudwatch:PutMetricData"],
            resources=["*"],  # no resource types: the namespace condition scopes it
            conditions={"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*", "AWS/SageMaker"]}},
        )
    )
    return role
