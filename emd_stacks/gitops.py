"""EMD-GitOps: a self-mutating CDK Pipelines pipeline that keeps the model stacks equal to a models.yaml.

    Source (GitHub / CodeCommit / S3) -> Synth (emd gitops synth: validate, synthesize, cfn-lint, cdk-nag)
    -> UpdatePipeline (self-mutation) -> Assets -> Targets (EMD-GitOps-Target in every account/region)
    -> for each environment, for each wave: Prepare (API key secrets, the bootstrap's build: weights and
       engine image) -> the wave's model stacks -> SmokeTest (through the gateway)
    -> Prune (model stacks this pipeline created that left models.yaml; absent with `prune: false`)

Model stacks are the ones `emd deploy` and `cdk deploy -c model_id=…` create (emd_stacks.model.ModelStack);
their EngineImageUri / ModelDataS3Uri parameters read the build's outputs from SSM (feed_artifacts_from_ssm),
since CDK Pipelines passes no parameter values to the stacks it deploys. Each carries the stack tag
emd:gitops=<pipeline> and its Deployment as template metadata (for `emd gitops plan`).

Every target account needs `cdk bootstrap` trusting the pipeline's account and EMD's shared stacks
(EMD-Bootstrap, EMD-Gateway); see the README's GitOps section.
"""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import pipelines
from constructs import Construct

from emd_constructs.gitops_pipeline import GitOpsSource, code_build_defaults, gitops_step, synth_step
from emd_constructs.gitops_target import GitOpsTargetAccess
from emd_constructs.hygiene import keep_only_policy_dependency
from emd_constructs.log_groups import bound_lambda_logs, log_group
from emd_constructs.model_artifacts import PARAM_ENGINE_IMAGE_URI, PARAM_MODEL_DATA_S3_URI
from emd_constructs.nag import acknowledge, acknowledge_wildcards
from emd_constructs.tagging import tag_shared, tag_stack
from emd_stacks.model import ModelStack
from model_specs.deployment import Deployment
from model_specs.errors import EmdUserError
from model_specs.gitops import (
    DEPLOYMENT_METADATA_KEY,
    GITOPS_TAG_KEY,
    PipelineSettings,
    artifact_parameter_name,
    target_role_name,
    target_stack_name,
    targets_parameter_name,
)
from model_specs.models_file import Environment, ModelsFile, Target, Wave

PREPARE_TIMEOUT = cdk.Duration.hours(8)  # weights of the largest models and an engine image build
PRUNE_TIMEOUT = cdk.Duration.hours(2)


def feed_artifacts_from_ssm(stack: ModelStack, deployment: Deployment) -> None:
    """EngineImageUri / ModelDataS3Uri become SSM-typed parameters whose default names the parameter the
    Prepare step writes: CloudFormation resolves them at each deploy, so a new image or revision updates the
    stack and an unchanged one changes nothing. (A stack given an image or weights location as is has no
    such parameter and is left alone.)"""
    for name in (PARAM_ENGINE_IMAGE_URI, PARAM_MODEL_DATA_S3_URI):
        param = stack.node.try_find_child(name)
        if isinstance(param, cdk.CfnParameter):
            param.type = "AWS::SSM::Parameter::Value<String>"
            param.default = artifact_parameter_name(deployment.model_id, deployment.model_tag, name)
            param.allowed_pattern = None


class ModelWaveStage(cdk.Stage):
    """One wave of one environment: its model stacks, deployed in parallel."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        environment: Environment,
        wave: Wave,
        pipeline_name: str,
        account: str | None,
    ) -> None:
        super().__init__(
            scope, construct_id, env=cdk.Environment(account=account, region=environment.target.region)
        )
        self.stacks: list[ModelStack] = []
        for entry in wave.entries:
            d = entry.deployment
            stack = ModelStack(self, d, artifact_parameters=True)
            feed_artifacts_from_ssm(stack, d)
            stack.add_metadata(DEPLOYMENT_METADATA_KEY, d.to_public_dict())
            tag_stack(stack, {GITOPS_TAG_KEY: pipeline_name})
            self.stacks.append(stack)


class TargetStage(cdk.Stage):
    def __init__(self, scope: Construct, construct_id: str, *, pipeline_name: str, pipeline_account: str,
                 account: str | None, region: str) -> None:  # fmt: skip
        super().__init__(scope, construct_id, env=cdk.Environment(account=account, region=region))
        stack = cdk.Stack(
            self,
            "Target",
            stack_name=target_stack_name(pipeline_name),
            description=f"EMD GitOps target of the pipeline {pipeline_name}: steps role, smoke-test project",
        )
        GitOpsTargetAccess(stack, "Access", pipeline_name=pipeline_name, pipeline_account=pipeline_account)
        tag_shared(stack, "gitops-target")
        tag_stack(stack, {GITOPS_TAG_KEY: pipeline_name})


@dataclass(frozen=True)
class StageDeployment:
    environment: Environment
    wave: Wave
    stage: ModelWaveStage


class GitOpsStack(cdk.Stack):
    """The pipeline stack. Build it with build_gitops_app (the stages live beside it in the App)."""

    def __init__(self, scope: Construct, *, settings: PipelineSettings, models: ModelsFile) -> None:
        super().__init__(
            scope,
            settings.name,
            stack_name=settings.name,
            env=cdk.Environment(account=settings.account, region=settings.region),
            description=f"EMD GitOps: keeps the model deployments equal to models.yaml in {settings.source} "
            f"({settings.branch})",
        )
        self.settings, self.models = settings, models
        _refuse_unknown_pipeline_account(settings, models)
        self.source = GitOpsSource(self, "Source", settings=settings)
        self.synth = synth_step(self, self.source.source, settings)
        cross_account = any(t.account and t.account != settings.account for t in models.targets)
        self.pipeline = pipelines.CodePipeline(
            self,
            "Pipeline",
            pipeline_name=settings.name,
            synth=self.synth,
            pipeline_type=cdk.aws_codepipeline.PipelineType.V2,
            cross_account_keys=cross_account,
            enable_key_rotation=cross_account or None,
            code_build_defaults=code_build_defaults(settings.region, log_group(self, "BuildLogs")),
            use_change_sets=True,
        )
        self.stages: list[StageDeployment] = []

    # -- account and role names

    def account_of(self, target: Target) -> str:
        return target.account or settings_account(self)

    def role_arn(self, account: str, region: str) -> str:
        return self.format_arn(
            service="iam", region="", account=account, resource="role",
            resource_name=target_role_name(self.settings.name, region),
        )  # fmt: skip

    def add_targets(self, app: Construct) -> None:
        wave = self.pipeline.add_wave("Targets")
        for target in self.models.targets:
            wave.add_stage(
                TargetStage(
                    app,
                    _stage_id("Target", target),
                    pipeline_name=self.settings.name,
                    pipeline_account=settings_account(self),
                    account=target.account or self.settings.account,
                    region=target.region,
                )
            )

    def add_model_stages(self, app: Construct) -> None:
        for env, wave in self.models.stages():
            name = env.stage_name(wave)
            stage = ModelWaveStage(
                app, name, environment=env, wave=wave, pipeline_name=self.settings.name,
                account=env.target.account or self.settings.account,
            )  # fmt: skip
            role = [self.role_arn(self.account_of(env.target), env.target.region)]
            self.pipeline.add_stage(
                stage,
                pre=[
                    gitops_step(
                        "Build",
                        f"build --stage {name}",
                        assembly=self.synth,
                        role_arns=role,
                        timeout=PREPARE_TIMEOUT,
                    )
                ],
                post=[gitops_step("SmokeTest", f"smoke --stage {name}", assembly=self.synth, role_arns=role)],
            )
            self.stages.append(StageDeployment(env, wave, stage))

    def add_prune(self) -> None:
        """After every stage: delete this pipeline's model stacks that left models.yaml. Targets that left the
        file are still visited (the step keeps their list in an SSM parameter), hence the role pattern."""
        if not self.models.prune:
            return
        targets_param = self.format_arn(
            service="ssm", resource="parameter", resource_name=targets_parameter_name(self.settings.name)[1:]
        )
        step = gitops_step(
            "Prune",
            "prune",
            assembly=self.synth,
            role_arns=[
                self.format_arn(
                    service="iam",
                    region="",
                    account="*",
                    resource="role",
                    resource_name=target_role_name(self.settings.name, "*"),
                )
            ],
            statements=[
                cdk.aws_iam.PolicyStatement(
                    actions=["ssm:GetParameter", "ssm:PutParameter"], resources=[targets_param]
                )
            ],
            timeout=PRUNE_TIMEOUT,
        )
        self.pipeline.add_wave("Prune", post=[step])

    def finish(self) -> None:
        self.pipeline.build_pipeline()
        self.source.start_on_upload(self.pipeline)
        if self.source.bucket is not None:
            cdk.CfnOutput(self, "SourceBucketName", value=self.source.bucket.bucket_name,
                          description="Upload a zip of the models repository here as source.zip")  # fmt: skip
        cdk.CfnOutput(self, "PipelineName", value=self.pipeline.pipeline.pipeline_name)
        tag_shared(self, "gitops")
        self._acknowledge()
        codepipeline = self.pipeline.pipeline
        keep_only_policy_dependency(codepipeline, codepipeline.role)  # type: ignore[arg-type]
        for child in self.node.children:
            handler = child.node.try_find_child("Resource")
            if child.node.id.startswith("BucketNotificationsHandler") and isinstance(
                handler, cdk.CfnResource
            ):
                handler.add_deletion_override("DependsOn")  # its Role GetAtt orders it already (W3005)
        role_arns_as_sub(self, codepipeline.node.default_child)  # type: ignore[arg-type]
        bound_lambda_logs(self)

    def _acknowledge(self) -> None:
        for child in self.node.find_all():
            if isinstance(child, cdk.aws_iam.Policy):
                acknowledge_wildcards(
                    child,
                    "CDK Pipelines grants: the pipeline's artifact bucket objects, its CodeBuild "
                    "projects' log "
                    "streams and report groups, the CDK bootstrap roles of each target (assumed by name), "
                    "and the GitOps target roles named <pipeline>-target-<region>.",
                )
            if isinstance(child, cdk.aws_codebuild.Project):
                acknowledge(
                    child,
                    "AwsSolutions-CB4",
                    "CDK Pipelines' projects: the pipeline artifact bucket is encrypted; the "
                    "projects keep no "
                    "artifacts of their own and their logs hold no secret.",
                )
            if child.node.id.startswith("BucketNotificationsHandler"):
                acknowledge(
                    child,
                    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                    "AWSLambdaBasicExecutionRole]",
                    "aws-cdk-lib's handler that turns on the source bucket's EventBridge notifications uses "
                    "AWSLambdaBasicExecutionRole (CloudWatch Logs only); it runs when the stack is deployed.",
                )
        for support in cdk.Stage.of(self).node.children:  # CodePipeline's cross-region replication stacks
            if isinstance(support, cdk.Stack) and support.node.id.startswith("cross-region-stack"):
                acknowledge(
                    support,
                    "AwsSolutions-S1",
                    "CodePipeline's cross-region replication bucket: pipeline artifacts copied to a target "
                    "region, nothing else.",
                )
        acknowledge(
            self,
            "AwsSolutions-S1",
            "CDK Pipelines' artifact bucket: intermediate artifacts only; CodePipeline records every access "
            "that matters (each execution and action).",
        )


def role_arns_as_sub(stack: cdk.Stack, pipeline: cdk.CfnResource) -> None:
    """Action RoleArns that aws-cdk-lib writes as Fn::Join become the Fn::Sub that cfn-lint's role-ARN format
    check expects (E3703); the value is the same."""
    stages = stack.resolve(pipeline.stages)  # type: ignore[attr-defined]
    for i, stage in enumerate(stages):
        for j, action in enumerate(stage.get("actions", stage.get("Actions", []))):
            config = action.get("configuration", action.get("Configuration")) or {}
            arn = config.get("RoleArn")
            if isinstance(arn, dict) and "Fn::Join" in arn and arn["Fn::Join"][0] == "":
                pipeline.add_property_override(
                    f"Stages.{i}.Actions.{j}.Configuration.RoleArn", {"Fn::Sub": _as_sub(arn["Fn::Join"][1])}
                )


def _as_sub(parts: list[object]) -> str:
    out = ""
    for part in parts:
        if isinstance(part, str):
            out += part.replace("${", "${!")
        elif isinstance(part, dict) and "Ref" in part:
            out += "${" + str(part["Ref"]) + "}"
        elif isinstance(part, dict) and "Fn::GetAtt" in part:
            out += "${" + ".".join(part["Fn::GetAtt"]) + "}"
        else:
            raise ValueError(f"cannot write {part!r} in Fn::Sub")
    return out


def settings_account(stack: cdk.Stack) -> str:
    return stack.account


def _stage_id(prefix: str, target: Target) -> str:
    return f"{prefix}-{target.region}" + (f"-{target.account}" if target.account else "")


def _refuse_unknown_pipeline_account(settings: PipelineSettings, models: ModelsFile) -> None:
    """CodePipeline's cross-account keys and cross-region replication need the pipeline's account."""
    if settings.account is not None:
        return
    elsewhere = sorted({t.label for t in models.targets if t.account or t.region != settings.region})
    if elsewhere:
        raise EmdUserError(
            f"models.yaml deploys to {', '.join(elsewhere)}: the pipeline's own account must be known for "
            "cross-account or cross-region deployments (emd gitops init sets it; emd gitops synth: --account)"
        )


def build_gitops_app(app: cdk.App, *, settings: PipelineSettings, models: ModelsFile) -> GitOpsStack:
    """The pipeline stack and every stage it deploys, in `app`."""
    stack = GitOpsStack(app, settings=settings, models=models)
    stack.add_targets(app)
    stack.add_model_stages(app)
    stack.add_prune()
    stack.finish()
    return stack
