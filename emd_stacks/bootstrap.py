"""EMD-Bootstrap: artifact bucket, engine ECR repository, build project, deployment pipeline, model
permissions boundary; published through SSM parameters under /emd/bootstrap/ (no CloudFormation exports)."""

from __future__ import annotations

import aws_cdk as cdk
import aws_cdk.aws_ssm as ssm
from cdk_nag import NagSuppressions
from constructs import Construct

from emd_constructs.artifacts import ArtifactStore
from emd_constructs.build_project import BuildProject
from emd_constructs.engine_repository import EngineRepository
from emd_constructs.permissions_boundary import ModelPermissionsBoundary
from emd_constructs.pipeline import PIPELINE_NAME, DeployPipeline
from emd_constructs.regional import regional_facts
from emd_constructs.tagging import tag_shared
from emd_stacks.context import AppConfig

STACK_NAME = "EMD-Bootstrap"
PARAM_PREFIX = "/emd/bootstrap"
PARAM_BUCKET = f"{PARAM_PREFIX}/artifact-bucket-name"
PARAM_ECR = f"{PARAM_PREFIX}/ecr-repository-name"
PARAM_BOUNDARY = f"{PARAM_PREFIX}/model-permissions-boundary-arn"
PARAM_PROJECT = f"{PARAM_PREFIX}/codebuild-project-name"
PARAM_PIPELINE = f"{PARAM_PREFIX}/pipeline-name"


class BootstrapStack(cdk.Stack):
    def __init__(self, scope: Construct, *, config: AppConfig, env: cdk.Environment | None = None) -> None:
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
        )
        repo = EngineRepository(self, "EngineImages")
        build = BuildProject(
            self,
            "Build",
            bucket=store.bucket,
            repository=repo.repository,
            compute_type=config.codebuild_compute_type,
            timeout=cdk.Duration.minutes(config.codebuild_timeout_minutes),
            weights_hub=facts.weights_hub,
            pip_index_url=facts.pip_index_url,
        )
        boundary = ModelPermissionsBoundary(self, "ModelBoundary", bucket=store.bucket)
        deploy = DeployPipeline(
            self,
            "Deploy",
            bucket=store.bucket,
            project=build.project,
            repository=repo.repository,
            boundary=boundary.policy,
        )
        self.bucket = store.bucket
        self.repository = repo.repository
        self.project = build.project
        self.pipeline = deploy.pipeline
        self.boundary = boundary.policy
        self.cfn_role = deploy.cfn_role

        for cid, name, value in [
            ("BucketNameParam", PARAM_BUCKET, store.bucket.bucket_name),
            ("EcrRepositoryParam", PARAM_ECR, repo.repository.repository_name),
            ("BoundaryParam", PARAM_BOUNDARY, boundary.policy.managed_policy_arn),
            ("ProjectParam", PARAM_PROJECT, build.project.project_name),
            ("PipelineParam", PARAM_PIPELINE, deploy.pipeline.pipeline_name),
        ]:
            ssm.StringParameter(self, cid, parameter_name=name, string_value=value)
        tag_shared(self, "bootstrap")
        _suppress_generated(self)


def _suppress_generated(stack: cdk.Stack) -> None:
    NagSuppressions.add_stack_suppressions(
        stack,
        [
            {
                "id": "AwsSolutions-IAM4",
                "reason": "Only CDK's bucket/repository auto-delete custom-resource Lambda uses a managed "
                "policy (AWSLambdaBasicExecutionRole, logs only); it runs solely on stack deletion.",
                "appliesTo": [
                    "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
                ],
            },
            {
                "id": "AwsSolutions-L1",
                "reason": "The auto-delete custom-resource Lambda's runtime is chosen by aws-cdk-lib and "
                "moves with its upgrades.",
            },
        ],
    )
