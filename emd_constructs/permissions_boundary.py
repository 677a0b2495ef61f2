"""The permissions boundary every IAM role in a model stack must carry: the most a model's runtime roles
(SageMaker execution, ECS task/execution/host, EC2 instance) may ever do. The CloudFormation deploy role may
create roles only with this boundary attached, so a model stack cannot mint a role stronger than this.

S3: the artifact bucket's weights, and objects under emd-async/ (async requests and answers: the artifact
bucket or a deployment's s3_output_path) in this account's buckets. Weights a user keeps elsewhere
(model_files_s3_path) may be in any bucket of this account, so reading (never writing) objects of this account
stays allowed: each role's own policy names the exact prefix. No secrets: no model runtime reads an API key or
the hub token."""

from __future__ import annotations

import aws_cdk as cdk
import aws_cdk.aws_codebuild as codebuild
import aws_cdk.aws_ecr as ecr
import aws_cdk.aws_iam as iam
import aws_cdk.aws_logs as logs
import aws_cdk.aws_s3 as s3
from constructs import Construct

from emd_constructs.model_artifacts import WEIGHTS_PREFIX
from emd_constructs.model_names import arn, model_log_groups
from model_specs.deployment import STACK_PREFIX
from model_specs.registry import ASYNC_IO_PREFIX


class ModelPermissionsBoundary(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bucket: s3.IBucket,
        repository: ecr.IRepository,
        build_project: codebuild.IProject,
        build_logs: logs.ILogGroup,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        this_account = {"StringEquals": {"aws:ResourceAccount": stack.account}}
        clusters = [
            arn(stack, "ecs", "cluster", f"{STACK_PREFIX}*"),
            arn(stack, "ecs", "container-instance", f"{STACK_PREFIX}*/*"),
        ]
        self.policy = iam.ManagedPolicy(
            self,
            "Policy",
            description="Permissions boundary for the IAM roles that EMD model stacks create",
            statements=[
                iam.PolicyStatement(
                    sid="ReadCachedWeights",
                    actions=["s3:GetObject", "s3:ListBucket"],
                    resources=[bucket.bucket_arn, bucket.arn_for_objects(f"{WEIGHTS_PREFIX}/*")],
                ),
                # model_files_s3_path names any bucket; each role's own policy names the exact prefix
                iam.PolicyStatement(
                    sid="ReadGivenWeightsInThisAccount",
                    actions=["s3:GetObject", "s3:ListBucket"],
                    resources=["*"],
                    conditions=this_account,
                ),
                iam.PolicyStatement(
                    sid="AsyncInferenceIo",
                    actions=["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"],
                    resources=[arn(stack, "s3", "*", f"*{ASYNC_IO_PREFIX}/*", region=False, account=False)],
                    conditions=this_account,
                ),
                iam.PolicyStatement(
                    sid="PullEngineImages",
                    actions=[
                        "ecr:BatchGetImage",
                        "ecr:GetDownloadUrlForLayer",
                        "ecr:BatchCheckLayerAvailability",
                    ],
                    resources=[repository.repository_arn],
                ),
                # takes no resource ARN (Service Authorization Reference: no resource types)
                iam.PolicyStatement(
                    sid="EcrLogin", actions=["ecr:GetAuthorizationToken"], resources=["*"]
                ),
                iam.PolicyStatement(
                    sid="OwnLogs",
                    actions=[
                        "logs:CreateLogGroup",
                        "logs:CreateLogStream",
                        "logs:PutLogEvents",
                        "logs:DescribeLogStreams",
                    ],
                    resources=model_log_groups(stack),
                ),
                iam.PolicyStatement(
                    sid="SageMakerMetrics",
                    actions=["cloudwatch:PutMetricData"],
                    resources=["*"],  # no resource types: the namespace condition scopes it
                    conditions={
                        "StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*", "AWS/SageMaker"]}
                    },
                ),
                iam.PolicyStatement(
                    sid="AsyncNotifications",
                    actions=["sns:Publish"],
                    resources=[arn(stack, "sns", f"{STACK_PREFIX}*")],
                ),
                iam.PolicyStatement(
                    sid="EcsContainerInstances",
                    actions=[
                        "ecs:RegisterContainerInstance",
                        "ecs:DeregisterContainerInstance",
                        "ecs:Submit*",
                        "ecs:Poll",
                        "ecs:StartTelemetrySession",
                    ],
                    resources=clusters,
                ),
                # the ECS agent's first call, before it knows its cluster: no resource types
                iam.PolicyStatement(
                    sid="EcsAgentDiscovery", actions=["ecs:DiscoverPollEndpoint"], resources=["*"]
                ),
                # EC2 target: Session Manager instead of SSH
                iam.PolicyStatement(
                    sid="SessionManagerInstances",
                    actions=["ssm:UpdateInstanceInformation"],
                    resources=[arn(stack, "ec2", "instance", "*")],
                ),
                # these take no resource ARN
                iam.PolicyStatement(
                    sid="SessionManagerChannels",
                    actions=[
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
                *_direct_build_statements(stack, build_project, build_logs),
            ],
        )


def _direct_build_statements(
    stack: cdk.Stack, project: codebuild.IProject, build_logs: logs.ILogGroup
) -> list[iam.PolicyStatement]:
    """A directly deployed stack's build custom resource (emd_constructs/model_build.py): its handler starts
    and reads builds of this one project and reads their log; the Provider framework's functions (named
    EMD-Model-* by CloudFormation) invoke each other through its waiter state machine (named
    EMD-Model-*-BuildWaiter by model_build)."""
    streams = f"{build_logs.log_group_name}:log-stream:*"
    return [
        iam.PolicyStatement(
            sid="DirectDeployBuild",
            actions=["codebuild:StartBuild", "codebuild:BatchGetBuilds", "codebuild:ListBuildsForProject"],
            resources=[project.project_arn],
        ),
        iam.PolicyStatement(
            sid="DirectDeployBuildLog",
            actions=["logs:GetLogEvents"],
            resources=[arn(stack, "logs", "log-group", streams, colon=True)],
        ),
        iam.PolicyStatement(
            sid="DirectDeployProvider",
            actions=["lambda:InvokeFunction", "lambda:GetFunction"],
            resources=[arn(stack, "lambda", "function", f"{STACK_PREFIX}*", colon=True)],
        ),
        iam.PolicyStatement(
            sid="DirectDeployWaiter",
            actions=["states:StartExecution"],
            resources=[arn(stack, "states", "stateMachine", f"{STACK_PREFIX}*", colon=True)],
        ),
    ]
