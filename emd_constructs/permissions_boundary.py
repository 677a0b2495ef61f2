"""The permissions boundary every IAM role in a model stack must carry: the most a model's runtime roles
(SageMaker execution, ECS task/execution, EC2 instance) may ever do. The CloudFormation deploy role may create
roles only with this boundary attached, so a model stack cannot mint a role stronger than this."""

from __future__ import annotations

import aws_cdk as cdk
import aws_cdk.aws_iam as iam
import aws_cdk.aws_s3 as s3
from constructs import Construct

from model_specs.deployment import STACK_PREFIX
from model_specs.registry import SECRET_PREFIX


class ModelPermissionsBoundary(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, bucket: s3.IBucket) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        secrets = stack.format_arn(
            service="secretsmanager",
            resource="secret",
            resource_name=f"{SECRET_PREFIX}/*",
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
        )
        topics = stack.format_arn(service="sns", resource=f"{STACK_PREFIX}*")
        self.policy = iam.ManagedPolicy(
            self,
            "Policy",
            description="Permissions boundary for the IAM roles that EMD model stacks create",
            statements=[
                iam.PolicyStatement(
                    sid="ReadWeights",
                    actions=["s3:GetObject", "s3:ListBucket", "s3:GetBucketLocation"],
                    resources=[bucket.bucket_arn, bucket.arn_for_objects("*")],
                ),
                iam.PolicyStatement(
                    sid="AsyncInferenceIo",
                    actions=["s3:GetObject", "s3:PutObject", "s3:ListBucket", "s3:AbortMultipartUpload"],
                    resources=["*"],
                ),
                iam.PolicyStatement(
                    sid="PullImages",
                    actions=[
                        "ecr:GetAuthorizationToken",
                        "ecr:BatchGetImage",
                        "ecr:GetDownloadUrlForLayer",
                        "ecr:BatchCheckLayerAvailability",
                    ],
                    resources=["*"],
                ),
                iam.PolicyStatement(
                    sid="LogsAndMetrics",
                    actions=[
                        "logs:CreateLogGroup",
                        "logs:CreateLogStream",
                        "logs:PutLogEvents",
                        "logs:DescribeLogStreams",
                        "cloudwatch:PutMetricData",
                    ],
                    resources=["*"],
                ),
                iam.PolicyStatement(
                    sid="ApiKeySecrets", actions=["secretsmanager:GetSecretValue"], resources=[secrets]
                ),
                iam.PolicyStatement(sid="AsyncNotifications", actions=["sns:Publish"], resources=[topics]),
                iam.PolicyStatement(
                    sid="EcsContainerInstances",
                    actions=[
                        "ecs:RegisterContainerInstance",
                        "ecs:DeregisterContainerInstance",
                        "ecs:DiscoverPollEndpoint",
                        "ecs:Poll",
                        "ecs:StartTelemetrySession",
                        "ecs:Submit*",
                        "ecs:UpdateContainerInstancesState",
                        "ecs:TagResource",
                        "ec2:DescribeTags",
                        "ec2:DescribeInstances",
                    ],
                    resources=["*"],
                ),
                iam.PolicyStatement(
                    sid="SessionManager",
                    actions=[
                        "ssm:UpdateInstanceInformation",
                        "ssmmessages:CreateControlChannel",
                        "ssmmessages:CreateDataChannel",
                        "ssmmessages:OpenControlChannel",
                        "ssmmessages:OpenDataChannel",
                        "ec2messages:AcknowledgeMessage",
                        "ec2messages:GetMessages",
                        "ec2messages:SendReply",
                    ],
                    resources=["*"],
                ),
            ],
        )
