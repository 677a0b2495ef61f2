"""EMD-Bootstrap: artifact bucket, engine ECR repository, build project, deployment pipeline, model
permissions boundary; published through SSM parameters under /emd/bootstrap/ (no CloudFormation exports)."""

from __future__ import annotations

import aws_cdk as cdk
import aws_cdk.aws_iam as iam
import aws_cdk.aws_ssm as ssm
from constructs import Construct

from emd_constructs.artifacts import ArtifactStore
from emd_constructs.build_project import BuildProject
from emd_constructs.engine_repository import EngineRepository
from emd_constructs.hygiene import drop_provider_role_dependencies, keep_only_policy_dependency
from emd_constructs.log_groups import bound_lambda_logs
from emd_constructs.nag import acknowledge_cdk_providers, acknowledge_wildcards, default_policy
from emd_constructs.parameters import publish
from emd_constructs.permissions_boundary import ModelPermissionsBoundary
from emd_constructs.pipeline import PIPELINE_NAME, DeployPipeline
from emd_constructs.regional import regional_facts
from emd_constructs.tagging import tag_shared
from emd_stacks.context import AppConfig
from model_specs.registry import PARAM_ARTIFACT_BUCKET as PARAM_BUCKET
from model_specs.registry import PARAM_BASE_IMAGE_MIRROR as PARAM_MIRROR
from model_specs.registry import PARAM_BOUNDARY_ARN as PARAM_BOUNDARY
from model_specs.registry import PARAM_CODEBUILD_LOG_GROUP as PARAM_PROJECT_LOGS
from model_specs.registry import PARAM_CODEBUILD_PROJECT as PARAM_PROJECT
from model_specs.registry import PARAM_ECR_REPOSITORY as PARAM_ECR
from model_specs.registry import PARAM_PIPELINE

STACK_NAME = "EMD-Bootstrap"


class BootstrapStack(cdk.Stack):
    """asset_free: no CDK file asset (the buckets' auto-delete Lambda), so plain CloudFormation deploys it in
    an account that never ran `cdk bootstrap` (`emd bootstrap`); `emd uninstall` empties the buckets."""

    def __init__(
        self,
        scope: Construct,
        *,
        config: AppConfig,
        env: cdk.Environment | None = None,
        asset_free: bool = False,
    ) -> None:
        super().__init__(
            scope,
            STACK_NAME,
            env=env,
            description="EMD bootstrap: weights cache, engine images, build and deployment pipeline",
        )
        facts = regional_facts(config.region)
        store = ArtifactStore(
            self,
            "Artifacts",
            pipeline_artifact_prefix=f"{PIPELINE_NAME[:20]}/",
            retain_model_cache=config.retain_model_cache,
            empty_on_delete=not asset_free,
        )
        repo = EngineRepository(self, "EngineImages")
        mirror = config.base_image_mirror
        build = BuildProject(
            self,
            "Build",
            bucket=store.bucket,
            repository=repo.repository,
            compute_type=config.codebuild_compute_type,
            timeout=cdk.Duration.minutes(config.codebuild_timeout_minutes),
            weights_hub=facts.weights_hub,
            pip_index_url=facts.pip_index_url,
            base_image_mirror=mirror,
        )
        boundary = ModelPermissionsBoundary(
            self,
            "ModelBoundary",
            bucket=store.bucket,
            repository=repo.repository,
            build_project=build.project,
            build_logs=build.log_group,
        )
        deploy = DeployPipeline(
            self,
            "Deploy",
            bucket=store.bucket,
            project=build.project,
            boundary=boundary.policy,
            china=facts.is_china,
        )
        self.bucket = store.bucket
        self.repository = repo.repository
        self.project = build.project
        self.pipeline = deploy.pipeline
        self.boundary = boundary.policy
        self.cfn_role = deploy.cfn_role

        if mirror:  # read by the build's image step (serving/build/images.py)
            ssm.StringParameter(self, "MirrorParam", parameter_name=PARAM_MIRROR, string_value=mirror)
        publish(
            self,
            BucketNameParam=(PARAM_BUCKET, store.bucket.bucket_name),
            EcrRepositoryParam=(PARAM_ECR, repo.repository.repository_name),
            BoundaryParam=(PARAM_BOUNDARY, boundary.policy.managed_policy_arn),
            ProjectParam=(PARAM_PROJECT, build.project.project_name),
            ProjectLogsParam=(PARAM_PROJECT_LOGS, build.log_group.log_group_name),
            PipelineParam=(PARAM_PIPELINE, deploy.pipeline.pipeline_name),
        )
        tag_shared(self, "bootstrap")
        acknowledge_cdk_providers(self, "auto-delete of the bucket's objects and the repository's images")
        _acknowledge_wildcards(build, deploy, boundary)
        keep_only_policy_dependency(deploy.pipeline, deploy.pipeline.role)  # type: ignore[arg-type]
        drop_provider_role_dependencies(self)
        bound_lambda_logs(self)


def _acknowledge_wildcards(
    build: BuildProject, deploy: DeployPipeline, boundary: ModelPermissionsBoundary
) -> None:
    """AwsSolutions-IAM5 (wildcards), one reason per policy."""
    bucket_objects = (
        "objects in the one artifact bucket (<bucket>/*: weights, bundles and pipeline artifacts have "
        "run-time keys) through aws-cdk-lib grants whose action groups (s3:GetObject*, s3:List*, "
        "s3:Abort*, s3:DeleteObject*) stay on that bucket"
    )
    reasons = {
        default_policy(build.project.role): f"Build role: {bucket_objects}; the project's own log group and "
        "report groups; kms:GenerateDataKey*/ReEncrypt* on its own key; ecr:GetAuthorizationToken takes no "
        "resource ARN (Resource *).",
        default_policy(deploy.pipeline.role): f"Pipeline role: {bucket_objects}.",
        default_policy(deploy.deploy_action_role): f"Deploy action role: {bucket_objects}; stacks are "
        "addressed as stack/EMD-Model-*/* because the stack name is a pipeline variable.",
        **{
            policy: "CloudFormation deploys model stacks (emd_constructs/deploy_role_policy.py): resources "
            "named EMD-Model-* by CloudFormation, or any name in this account and region where a change or "
            "delete needs the emd:model-id tag; Describe/List actions that take no resource ARN; registry "
            "parameters /emd/models/*; roles only with the EMD permissions boundary."
            for policy in deploy.cfn_policies
        },
        boundary.policy: "A permissions boundary is a ceiling, not a grant: each model role policy scopes "
        "these actions to its deployment. Wildcards stand for names chosen per deployment (objects "
        "under emd-async/ and given weights in this account's buckets, log groups EMD-Model-* and "
        "/aws/sagemaker/*, ECS clusters and SNS topics EMD-Model-*) and APIs that take no resource ARN "
        "(ecr:GetAuthorizationToken, ecs:DiscoverPollEndpoint, Session Manager, cloudwatch:PutMetricData "
        "limited by namespace).",
    }
    for policy, reason in reasons.items():
        acknowledge_wildcards(policy, reason)
    for child in deploy.pipeline.node.find_all():
        if isinstance(child, iam.Role) and child.node.id == "CodePipelineActionRole":
            acknowledge_wildcards(
                default_policy(child),
                f"Source action role: {bucket_objects}.",
            )
