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
import aws_cdk.aws_iam as iam
import aws_cdk.aws_s3 as s3
from constructs import Construct

from emd_constructs.artifacts import SOURCE_KEY
from emd_constructs.deploy_role_policy import model_stack_statements
from emd_constructs.regional import service_principal
from model_specs.deployment import STACK_PREFIX
from model_specs.registry import PIPELINE_SOURCE_ACTION as SOURCE_ACTION_NAME

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
        boundary: iam.IManagedPolicy,
        china: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.cfn_role = iam.Role(
            self,
            "CloudFormationRole",
            assumed_by=service_principal("cloudformation"),
            description="Creates and updates EMD model stacks (EMD-Model-*) only",
        )
        groups = model_stack_statements(
            stack,
            bucket=bucket,
            artifact_prefix=f"{PIPELINE_NAME[:20]}/",
            boundary=boundary,
            china=china,
        )
        self.cfn_policies = [
            iam.ManagedPolicy(
                self,
                f"ModelStack{name}",
                description=f"EMD model stacks: {name}",
                statements=statements,
                roles=[self.cfn_role],
            )
            for name, statements in groups.items()
        ]

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
