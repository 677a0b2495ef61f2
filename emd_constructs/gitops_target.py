"""What a GitOps pipeline needs in each account and region it deploys to (EMD-GitOps-Target, deployed by the
pipeline itself before its first wave):

- a role the pipeline's steps assume (trusted by the pipeline's account, like `cdk bootstrap --trust`): it
  may start the EMD bootstrap's build project with a bundle under gitops/ in the artifact bucket, write
  the build's outputs to /emd/gitops/*, create API key secrets (and delete only those tagged
  emd:gitops=<pipeline>), start the smoke-test project, and list and delete model stacks tagged so;
- a smoke-test CodeBuild project inside the gateway's VPC (the gateway's ALB is internal by default), which
  reads each deployment's API key from Secrets Manager itself and calls the gateway.

Everything EMD-specific is found through the bootstrap's and gateway's SSM parameters at deploy time.
"""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
import aws_cdk.aws_codebuild as codebuild
import aws_cdk.aws_ec2 as ec2
import aws_cdk.aws_iam as iam
import aws_cdk.aws_s3 as s3
import aws_cdk.aws_ssm as ssm
import yaml
from constructs import Construct

from emd_constructs.log_groups import log_group
from emd_constructs.nag import acknowledge, acknowledge_wildcards, default_policy
from emd_constructs.network import imported_vpc
from emd_constructs.regional import aws_service
from model_specs.deployment import STACK_PREFIX
from model_specs.gitops import ARTIFACT_PARAMETER_PREFIX, GITOPS_TAG_KEY, smoke_project_name, target_role_name
from model_specs.registry import (
    PARAM_ARTIFACT_BUCKET,
    PARAM_CODEBUILD_PROJECT,
    PARAM_GATEWAY_SUBNETS,
    PARAM_GATEWAY_URL,
    PARAM_GATEWAY_VPC_ID,
    SECRET_PREFIX,
)

SMOKE_BUILDSPEC = Path(__file__).resolve().parent.parent / "serving" / "gitops" / "smoke_buildspec.yml"
BUNDLE_PREFIX = "gitops/"  # keys in the artifact bucket the pipeline writes bundles and build outputs under
BOOTSTRAP_STACK_PREFIX = "EMD-Bootstrap"  # generated names of the bootstrap's log groups start with it
CDK_QUALIFIER = "hnb659fds"  # `cdk bootstrap`'s default qualifier: its CloudFormation execution role
GATEWAY_AZ_COUNT = 2  # an ALB spans at least two subnets: the smoke project uses the first two


class GitOpsTargetAccess(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, pipeline_name: str, pipeline_account: str
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        bucket = s3.Bucket.from_bucket_name(
            self,
            "ArtifactBucket",
            ssm.StringParameter.value_for_string_parameter(self, PARAM_ARTIFACT_BUCKET),
        )
        build_project = ssm.StringParameter.value_for_string_parameter(self, PARAM_CODEBUILD_PROJECT)

        self.smoke_project = self._smoke_project(bucket, pipeline_name)
        self.role = iam.Role(
            self,
            "StepsRole",
            role_name=target_role_name(pipeline_name, stack.region),
            assumed_by=iam.AccountPrincipal(pipeline_account),
            description=f"Steps of the GitOps pipeline {pipeline_name}: builds, keys, smoke tests, prune",
            max_session_duration=cdk.Duration.hours(12),
        )
        owned = {"StringEquals": {f"aws:ResourceTag/{GITOPS_TAG_KEY}": pipeline_name}}
        statements = [
            iam.PolicyStatement(
                sid="Bundles",
                actions=["s3:PutObject", "s3:GetObject"],
                resources=[bucket.arn_for_objects(f"{BUNDLE_PREFIX}*")],
            ),
            iam.PolicyStatement(
                sid="Builds",
                actions=["codebuild:StartBuild", "codebuild:BatchGetBuilds"],
                resources=[
                    stack.format_arn(service="codebuild", resource="project", resource_name=build_project),
                    self.smoke_project.project_arn,
                ],
            ),
            iam.PolicyStatement(
                sid="BuildLogs",
                actions=["logs:GetLogEvents"],
                resources=[
                    _log_streams(stack, f"{BOOTSTRAP_STACK_PREFIX}-*"),
                    _log_streams(stack, self.smoke_logs.log_group_name),
                ],
            ),
            iam.PolicyStatement(
                sid="ReadSharedParameters",
                actions=["ssm:GetParameter", "ssm:GetParameters"],
                resources=[
                    stack.format_arn(service="ssm", resource="parameter", resource_name="emd/bootstrap/*"),
                    stack.format_arn(service="ssm", resource="parameter", resource_name="emd/gateway/*"),
                ],
            ),
            iam.PolicyStatement(
                sid="ArtifactParameters",
                actions=[
                    "ssm:PutParameter",
                    "ssm:GetParameter",
                    "ssm:DeleteParameters",
                    "ssm:AddTagsToResource",
                ],
                resources=[
                    stack.format_arn(
                        service="ssm",
                        resource="parameter",
                        resource_name=f"{ARTIFACT_PARAMETER_PREFIX[1:]}/*",
                    )
                ],
            ),
            iam.PolicyStatement(
                sid="CreateApiKeys",
                actions=[
                    "secretsmanager:CreateSecret",
                    "secretsmanager:DescribeSecret",
                    "secretsmanager:TagResource",
                    "secretsmanager:RestoreSecret",
                ],
                resources=[_secret_arn(stack, f"{SECRET_PREFIX}/*/api-key-??????")],
            ),
            iam.PolicyStatement(
                sid="DeleteOwnApiKeys",
                actions=["secretsmanager:DeleteSecret"],
                resources=[_secret_arn(stack, f"{SECRET_PREFIX}/*/api-key-??????")],
                conditions=owned,
            ),
            iam.PolicyStatement(
                sid="ListStacks",  # DescribeStacks without a stack name takes no resource ARN
                actions=["cloudformation:DescribeStacks"],
                resources=["*"],
            ),
            iam.PolicyStatement(
                sid="ReadModelStacks",
                actions=["cloudformation:GetTemplate", "cloudformation:DescribeStackEvents"],
                resources=[_model_stacks(stack)],
            ),
            iam.PolicyStatement(
                sid="DeleteOwnModelStacks",
                actions=["cloudformation:DeleteStack"],
                resources=[_model_stacks(stack)],
                conditions=owned,
            ),
            iam.PolicyStatement(
                sid="DeleteWithTheDeployRole",  # CloudFormation deletes with the role that deployed the stack
                actions=["iam:PassRole"],
                resources=[
                    stack.format_arn(
                        service="iam",
                        region="",
                        resource="role",
                        resource_name=f"cdk-{CDK_QUALIFIER}-cfn-exec-role-{stack.account}-{stack.region}",
                    )
                ],
                conditions={"StringEquals": {"iam:PassedToService": aws_service("cloudformation")}},
            ),
        ]
        for statement in statements:
            self.role.add_to_policy(statement)
        acknowledge_wildcards(
            default_policy(self.role),
            "Names exist only at run time: bundles under gitops/ in the bootstrap's bucket, one API "
            "key secret "
            "and one artifact parameter per deployment (emd/<id>/<tag>/api-key, /emd/gitops/artifacts/...), "
            "model stacks EMD-Model-* (deleted only with this pipeline's emd:gitops tag), the bootstrap's "
            "generated log group names; DescribeStacks of all stacks takes no resource ARN.",
        )

    def _smoke_project(self, bucket: s3.IBucket, pipeline_name: str) -> codebuild.Project:
        stack = cdk.Stack.of(self)
        subnets = cdk.Fn.split(
            ",",
            ssm.StringParameter.value_for_string_parameter(self, PARAM_GATEWAY_SUBNETS),
            GATEWAY_AZ_COUNT,
        )
        vpc = imported_vpc(
            self,
            "GatewayVpc",
            vpc_id=ssm.StringParameter.value_for_string_parameter(self, PARAM_GATEWAY_VPC_ID),
            subnet_ids=subnets,
        )
        group = ec2.SecurityGroup(
            self, "SmokeTests", vpc=vpc, description="EMD GitOps smoke tests: out to the gateway only"
        )
        self.smoke_logs = log_group(self, "SmokeLogs")
        project = codebuild.Project(
            self,
            "Smoke",
            project_name=smoke_project_name(pipeline_name),
            description="EMD GitOps: /v1/models and one request per deployment, through the gateway",
            source=codebuild.Source.s3(bucket=bucket, path=f"{BUNDLE_PREFIX}smoke/source.zip"),
            build_spec=codebuild.BuildSpec.from_object(yaml.safe_load(SMOKE_BUILDSPEC.read_text())),
            environment=codebuild.BuildEnvironment(
                build_image=codebuild.LinuxBuildImage.STANDARD_7_0, compute_type=codebuild.ComputeType.SMALL
            ),
            environment_variables={
                "EMD_GATEWAY_URL_PARAMETER": codebuild.BuildEnvironmentVariable(value=PARAM_GATEWAY_URL)
            },
            vpc=vpc,
            subnet_selection=ec2.SubnetSelection(subnets=vpc.private_subnets),
            security_groups=[group],
            timeout=cdk.Duration.hours(1),
            logging=codebuild.LoggingOptions(
                cloud_watch=codebuild.CloudWatchLoggingOptions(log_group=self.smoke_logs)
            ),
        )
        bucket.grant_read(project, f"{BUNDLE_PREFIX}*")
        project.add_to_role_policy(
            iam.PolicyStatement(
                actions=["secretsmanager:GetSecretValue"],
                resources=[_secret_arn(stack, f"{SECRET_PREFIX}/*/api-key-??????")],
            )
        )
        project.add_to_role_policy(
            iam.PolicyStatement(
                actions=["ssm:GetParameter"],
                resources=[
                    stack.format_arn(service="ssm", resource="parameter", resource_name=PARAM_GATEWAY_URL[1:])
                ],
            )
        )
        acknowledge(
            project,
            "AwsSolutions-CB4",
            "The smoke-test project produces no artifacts; its logs hold only route names and status codes "
            "(API keys are read into memory, never printed).",
        )
        vpc_policy = project.node.try_find_child("PolicyDocument")
        acknowledge_wildcards(
            vpc_policy if isinstance(vpc_policy, iam.Policy) else None,
            "aws-cdk-lib's policy for a CodeBuild project in a VPC: ec2:CreateNetworkInterface and the "
            "Describe* calls CodeBuild makes take no resource ARN.",
        )
        acknowledge_wildcards(
            default_policy(project.role),
            "Bundles under gitops/ in the bootstrap bucket, the deployments' API keys "
            "(emd/<id>/<tag>/api-key: "
            "names known only at run time), the project's own log streams and the VPC network-interface "
            "actions CodeBuild needs (which take no resource ARN).",
        )
        return project


def _log_streams(stack: cdk.Stack, group: str) -> str:
    return _colon_arn(stack, "logs", "log-group", f"{group}:log-stream:*")


def _secret_arn(stack: cdk.Stack, name: str) -> str:
    return _colon_arn(stack, "secretsmanager", "secret", name)


def _colon_arn(stack: cdk.Stack, service: str, resource: str, name: str) -> str:
    return stack.format_arn(
        service=service,
        resource=resource,
        resource_name=name,
        arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
    )


def _model_stacks(stack: cdk.Stack) -> str:
    return stack.format_arn(service="cloudformation", resource="stack", resource_name=f"{STACK_PREFIX}*/*")
