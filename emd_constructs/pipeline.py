"""The deployment pipeline (CodePipeline V2, PARALLEL): Source (S3 bundle) -> Build (CodeBuild) ->
Deploy (CloudFormation CREATE_UPDATE of the model stack EMD-Model-*, with a dedicated role).

The CLI uploads pipeline/source.zip, then calls StartPipelineExecution with
sourceRevisions=[{actionName: "Bundle", revisionType: "S3_OBJECT_VERSION_ID", revisionValue: <version>}]
and the variables below, so parallel executions each deploy their own bundle.
"""

from __future__ import annotations

import aws_cdk as cdk
import aws_cdk.aws_codebuild as codebuild
import aws_cdk.aws_codepipeline as codepipeline
import aws_cdk.aws_codepipeline_actions as actions
import aws_cdk.aws_ecr as ecr
import aws_cdk.aws_iam as iam
import aws_cdk.aws_s3 as s3
from constructs import Construct

from emd_constructs.artifacts import SOURCE_KEY
from model_specs.deployment import STACK_PREFIX
from model_specs.registry import PIPELINE_SOURCE_ACTION as SOURCE_ACTION_NAME
from model_specs.registry import REGISTRY_PREFIX, SECRET_PREFIX

PIPELINE_NAME = "EMD-Pipeline"
TEMPLATE_FILE = "template.json"
PARAMETERS_FILE = "parameters.json"
VARIABLES = {
    "deployment_id": "unique id of this deployment request (the CLI generates it)",
    "model_id": "catalogue model id",
    "model_tag": "deployment tag",
    "stack_name": "CloudFormation stack to create or update (EMD-Model-*)",
}


class DeployPipeline(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bucket: s3.IBucket,
        project: codebuild.IProject,
        repository: ecr.IRepository,
        boundary: iam.IManagedPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.cfn_role = iam.Role(
            self,
            "CloudFormationRole",
            assumed_by=iam.ServicePrincipal("cloudformation.amazonaws.com"),
            description="Creates and updates EMD model stacks (EMD-Model-*) only",
        )
        for statement in model_stack_statements(stack, bucket, repository, boundary):
            self.cfn_role.add_to_policy(statement)

        bundle = codepipeline.Artifact("Bundle")
        deploy_inputs = codepipeline.Artifact("DeployInputs")
        self.pipeline = codepipeline.Pipeline(
            self,
            "Pipeline",
            pipeline_name=PIPELINE_NAME,
            pipeline_type=codepipeline.PipelineType.V2,
            execution_mode=codepipeline.ExecutionMode.PARALLEL,
            artifact_bucket=bucket,
            restart_execution_on_update=False,
            variables=[codepipeline.Variable(variable_name=n, description=d) for n, d in VARIABLES.items()],
        )
        self.pipeline.add_stage(
            stage_name="Source",
            actions=[
                actions.S3SourceAction(
                    action_name=SOURCE_ACTION_NAME,
                    bucket=bucket,
                    bucket_key=SOURCE_KEY,
                    output=bundle,
                    trigger=actions.S3Trigger.NONE,
                )
            ],
        )
        self.pipeline.add_stage(
            stage_name="Build",
            actions=[
                actions.CodeBuildAction(
                    action_name="PrepareArtifacts",
                    project=project,
                    input=bundle,
                    outputs=[deploy_inputs],
                    environment_variables={
                        f"EMD_{name.upper()}": codebuild.BuildEnvironmentVariable(
                            value=f"#{{variables.{name}}}"
                        )
                        for name in VARIABLES
                    },
                )
            ],
        )
        self.deploy_action_role = deploy_action_role = iam.Role(
            self,
            "DeployActionRole",
            assumed_by=iam.ArnPrincipal(self.pipeline.role.role_arn),
            description="CodePipeline deploy action: create/update EMD-Model-* stacks",
        )
        model_stacks = stack.format_arn(
            service="cloudformation", resource="stack", resource_name=f"{STACK_PREFIX}*/*"
        )
        deploy_action_role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "cloudformation:CreateStack",
                    "cloudformation:UpdateStack",
                    "cloudformation:DescribeStacks",
                    "cloudformation:DescribeStackEvents",
                    "cloudformation:DescribeStackResources",
                    "cloudformation:GetTemplate",
                ],
                resources=[model_stacks],
            )
        )
        deploy_action_role.add_to_policy(
            iam.PolicyStatement(actions=["iam:PassRole"], resources=[self.cfn_role.role_arn])
        )
        bucket.grant_read(deploy_action_role)
        bucket.grant_read(self.cfn_role)
        self.pipeline.add_stage(
            stage_name="Deploy",
            actions=[
                actions.CloudFormationCreateUpdateStackAction(
                    action_name="DeployModelStack",
                    stack_name="#{variables.stack_name}",
                    template_path=deploy_inputs.at_path(TEMPLATE_FILE),
                    template_configuration=deploy_inputs.at_path(PARAMETERS_FILE),
                    admin_permissions=False,
                    deployment_role=self.cfn_role,
                    cfn_capabilities=[cdk.CfnCapabilities.NAMED_IAM, cdk.CfnCapabilities.AUTO_EXPAND],
                    replace_on_failure=False,
                    # CDK would grant this role CloudFormation rights on the literal ARN
                    # ".../stack/#{variables.stack_name}/*" (variables are not resolved in IAM), so it gets an
                    # immutable view and the real, EMD-Model-* scoped policy below.
                    role=deploy_action_role.without_policy_updates(),
                )
            ],
        )


def model_stack_statements(
    stack: cdk.Stack, bucket: s3.IBucket, repository: ecr.IRepository, boundary: iam.IManagedPolicy
) -> list[iam.PolicyStatement]:
    """What CloudFormation may do while deploying a model stack: its services' resources, IAM roles only
    with the permissions boundary, SSM registry parameters only under /emd/models/."""

    def arn(service: str, resource: str, name: str, region: bool = True, account: bool = True) -> str:
        return stack.format_arn(
            service=service,
            resource=resource,
            resource_name=name,
            region=None if region else "",
            account=None if account else "",
        )

    model_roles = arn("iam", "role", f"{STACK_PREFIX}*", region=False)
    model_profiles = arn("iam", "instance-profile", f"{STACK_PREFIX}*", region=False)
    return [
        iam.PolicyStatement(
            sid="ModelStacksOnly",
            actions=["cloudformation:DescribeStacks"],
            resources=[arn("cloudformation", "stack", f"{STACK_PREFIX}*/*")],
        ),
        iam.PolicyStatement(
            sid="ModelServices",
            actions=[
                "sagemaker:*",
                "ecs:*",
                "autoscaling:*",
                "application-autoscaling:*",
                "cloudwatch:*",
                "sns:*",
                "servicediscovery:*",
                "logs:CreateLogGroup",
                "logs:DeleteLogGroup",
                "logs:PutRetentionPolicy",
                "logs:DeleteRetentionPolicy",
                "logs:TagResource",
                "logs:UntagResource",
                "logs:TagLogGroup",
                "logs:DescribeLogGroups",
                "logs:ListTagsForResource",
                "ec2:Describe*",
                "ec2:CreateSecurityGroup",
                "ec2:DeleteSecurityGroup",
                "ec2:AuthorizeSecurityGroupIngress",
                "ec2:AuthorizeSecurityGroupEgress",
                "ec2:RevokeSecurityGroupIngress",
                "ec2:RevokeSecurityGroupEgress",
                "ec2:CreateLaunchTemplate",
                "ec2:CreateLaunchTemplateVersion",
                "ec2:DeleteLaunchTemplate",
                "ec2:DeleteLaunchTemplateVersions",
                "ec2:ModifyLaunchTemplate",
                "ec2:RunInstances",
                "ec2:TerminateInstances",
                "ec2:StartInstances",
                "ec2:StopInstances",
                "ec2:ModifyInstanceAttribute",
                "ec2:CreateTags",
                "ec2:DeleteTags",
                "ec2:CreateNetworkInterface",
                "ec2:DeleteNetworkInterface",
                "ec2:AssociateIamInstanceProfile",
                "ec2:DisassociateIamInstanceProfile",
                "ec2:ReplaceIamInstanceProfileAssociation",
                "ssm:GetParameters",
                "ssm:GetParameter",
                "secretsmanager:DescribeSecret",
                "kms:DescribeKey",
                "kms:CreateGrant",
                "kms:Decrypt",
                "kms:GenerateDataKey*",
            ],
            resources=["*"],
        ),
        iam.PolicyStatement(
            sid="RegistryParameters",
            actions=[
                "ssm:PutParameter",
                "ssm:DeleteParameter",
                "ssm:AddTagsToResource",
                "ssm:RemoveTagsFromResource",
                "ssm:ListTagsForResource",
            ],
            resources=[arn("ssm", "parameter", f"{REGISTRY_PREFIX.lstrip('/')}/*")],
        ),
        iam.PolicyStatement(
            sid="ApiKeySecretsByName",
            actions=["secretsmanager:GetSecretValue"],
            resources=[
                stack.format_arn(
                    service="secretsmanager",
                    resource="secret",
                    resource_name=f"{SECRET_PREFIX}/*",
                    arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                )
            ],
        ),
        iam.PolicyStatement(
            sid="ModelStackFunctions",  # custom-resource Lambdas a model stack may contain
            actions=[
                "lambda:CreateFunction",
                "lambda:DeleteFunction",
                "lambda:GetFunction",
                "lambda:GetFunctionConfiguration",
                "lambda:UpdateFunctionCode",
                "lambda:UpdateFunctionConfiguration",
                "lambda:InvokeFunction",
                "lambda:AddPermission",
                "lambda:RemovePermission",
                "lambda:TagResource",
                "lambda:UntagResource",
                "lambda:ListTags",
            ],
            resources=[
                stack.format_arn(
                    service="lambda",
                    resource="function",
                    resource_name=f"{STACK_PREFIX}*",
                    arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                )
            ],
        ),
        iam.PolicyStatement(
            sid="ModelStackBuckets",  # e.g. async-inference output; CloudFormation names them emd-model-...
            actions=[
                "s3:CreateBucket",
                "s3:DeleteBucket",
                "s3:PutBucket*",
                "s3:GetBucket*",
                "s3:PutEncryptionConfiguration",
                "s3:GetEncryptionConfiguration",
                "s3:PutLifecycleConfiguration",
                "s3:GetLifecycleConfiguration",
                "s3:ListBucket",
            ],
            resources=[
                stack.format_arn(service="s3", resource=f"{STACK_PREFIX.lower()}*", region="", account="")
            ],
        ),
        iam.PolicyStatement(
            sid="ReadArtifacts",
            actions=["s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket", "s3:GetBucketLocation"],
            resources=[bucket.bucket_arn, bucket.arn_for_objects("*")],
        ),
        iam.PolicyStatement(
            sid="ReadEngineImages",
            actions=["ecr:DescribeImages", "ecr:DescribeRepositories", "ecr:BatchGetImage"],
            resources=[repository.repository_arn],
        ),
        iam.PolicyStatement(
            sid="CreateRolesOnlyWithBoundary",
            actions=[
                "iam:CreateRole",
                "iam:PutRolePolicy",
                "iam:AttachRolePolicy",
                "iam:DetachRolePolicy",
                "iam:DeleteRolePolicy",
                "iam:PutRolePermissionsBoundary",
            ],
            resources=[model_roles],
            conditions={"StringEquals": {"iam:PermissionsBoundary": boundary.managed_policy_arn}},
        ),
        iam.PolicyStatement(
            sid="ManageModelRoles",
            actions=[
                "iam:GetRole",
                "iam:GetRolePolicy",
                "iam:DeleteRole",
                "iam:TagRole",
                "iam:UntagRole",
                "iam:UpdateRole",
                "iam:UpdateAssumeRolePolicy",
                "iam:ListRolePolicies",
                "iam:ListAttachedRolePolicies",
                "iam:PassRole",
            ],
            resources=[model_roles],
        ),
        iam.PolicyStatement(
            sid="ModelInstanceProfiles",
            actions=[
                "iam:CreateInstanceProfile",
                "iam:DeleteInstanceProfile",
                "iam:GetInstanceProfile",
                "iam:AddRoleToInstanceProfile",
                "iam:RemoveRoleFromInstanceProfile",
                "iam:TagInstanceProfile",
                "iam:UntagInstanceProfile",
            ],
            resources=[model_profiles],
        ),
        iam.PolicyStatement(
            sid="ServiceLinkedRoles",
            actions=["iam:CreateServiceLinkedRole"],
            resources=[arn("iam", "role", "aws-service-role/*", region=False)],
            conditions={
                "StringLike": {
                    "iam:AWSServiceName": [
                        "sagemaker.amazonaws.com",
                        "ecs.amazonaws.com",
                        "autoscaling.amazonaws.com",
                        "ecs.application-autoscaling.amazonaws.com",
                        "sagemaker.application-autoscaling.amazonaws.com",
                    ]
                }
            },
        ),
        iam.PolicyStatement(
            sid="NeverRemoveTheBoundary",
            effect=iam.Effect.DENY,
            actions=["iam:DeleteRolePermissionsBoundary"],
            resources=["*"],
        ),
    ]
