"""The CodeBuild project that runs the build stage (serving/build/buildspec.yml): weights to the S3 cache,
engine image to ECR, parameters.json for the deploy stage. Privileged for Docker; KMS-encrypted; logs with
retention. Its source is the S3 bundle, so it runs inside the pipeline and on its own (direct cdk mode)."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
import aws_cdk.aws_codebuild as codebuild
import aws_cdk.aws_ecr as ecr
import aws_cdk.aws_iam as iam
import aws_cdk.aws_kms as kms
import aws_cdk.aws_s3 as s3
import yaml
from constructs import Construct

from emd_constructs.artifacts import SOURCE_KEY
from emd_constructs.log_groups import log_group
from emd_constructs.model_names import arn
from emd_constructs.nag import acknowledge
from model_specs.registry import PARAM_BASE_IMAGE_MIRROR
from model_specs.weights_cache import WEIGHTS_PARAM_PREFIX

BUILDSPEC_PATH = Path(__file__).resolve().parent.parent / "serving" / "build" / "buildspec.yml"
HF_TOKEN_SECRET_NAME = "emd/hf-token"
BUILD_IMAGE = codebuild.LinuxBuildImage.STANDARD_7_0


def load_buildspec() -> codebuild.BuildSpec:
    return codebuild.BuildSpec.from_object(yaml.safe_load(BUILDSPEC_PATH.read_text()))


class BuildProject(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bucket: s3.IBucket,
        repository: ecr.IRepository,
        compute_type: codebuild.ComputeType,
        timeout: cdk.Duration,
        weights_hub: str,
        pip_index_url: str | None = None,
        base_image_mirror: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.key = kms.Key(
            self,
            "Key",
            description="EMD build artifacts and logs",
            enable_key_rotation=True,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        self.log_group = log_group(self)
        env = {
            "EMD_ARTIFACT_BUCKET": bucket.bucket_name,
            "EMD_ECR_REPOSITORY_URI": repository.repository_uri,
            "EMD_ECR_REGISTRY": f"{stack.account}.dkr.ecr.{stack.region}.{stack.url_suffix}",
            "EMD_URL_SUFFIX": stack.url_suffix,
            "EMD_PARTITION": stack.partition,
            "EMD_WEIGHTS_HUB": weights_hub,
            "EMD_HF_TOKEN_SECRET": HF_TOKEN_SECRET_NAME,
            "EMD_BASE_IMAGE_MIRROR_PARAM": PARAM_BASE_IMAGE_MIRROR,
        }
        if pip_index_url:
            env["PIP_INDEX_URL"] = pip_index_url
        self.project = codebuild.Project(
            self,
            "Project",
            description="EMD build stage: model weights to S3, engine image to ECR, deploy parameters",
            source=codebuild.Source.s3(bucket=bucket, path=SOURCE_KEY),
            build_spec=load_buildspec(),
            environment=codebuild.BuildEnvironment(
                build_image=BUILD_IMAGE, compute_type=compute_type, privileged=True
            ),
            environment_variables={k: codebuild.BuildEnvironmentVariable(value=v) for k, v in env.items()},
            encryption_key=self.key,
            timeout=timeout,
            logging=codebuild.LoggingOptions(
                cloud_watch=codebuild.CloudWatchLoggingOptions(log_group=self.log_group)
            ),
        )
        role = self.project.role
        assert role is not None
        bucket.grant_read_write(role)
        repository.grant_pull_push(role)
        repository.grant(role, "ecr:DescribeImages")
        # the optional Hugging Face token; Secrets Manager appends a 6-character suffix to secret ARNs
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["secretsmanager:GetSecretValue"],
                resources=[
                    stack.format_arn(
                        service="secretsmanager",
                        resource="secret",
                        resource_name=f"{HF_TOKEN_SECRET_NAME}-??????",
                        arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                    )
                ],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["ssm:GetParameter"],
                resources=[
                    stack.format_arn(
                        service="ssm", resource="parameter", resource_name=PARAM_BASE_IMAGE_MIRROR.lstrip("/")
                    )
                ],
            )
        )
        # where each prepared model's weights are (model_specs/weights_cache.py), for directly deployed stacks
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["ssm:PutParameter", "ssm:AddTagsToResource"],
                resources=[
                    stack.format_arn(
                        service="ssm",
                        resource="parameter",
                        resource_name=f"{WEIGHTS_PARAM_PREFIX.lstrip('/')}/*",
                    )
                ],
            )
        )
        # a directly deployed model stack's build inputs are a CDK asset (emd_constructs/model_build.py): the
        # source of its build is in the CDK bootstrap's asset bucket of this account and region
        asset_buckets = f"cdk-*-assets-{stack.account}-{stack.region}"
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject", "s3:GetObjectVersion"],
                resources=[arn(stack, "s3", asset_buckets, "*", region=False, account=False)],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:GetBucketAcl", "s3:GetBucketLocation"],
                resources=[arn(stack, "s3", asset_buckets, region=False, account=False)],
            )
        )
        if base_image_mirror:
            _grant_mirror_pull(stack, role, base_image_mirror)
        acknowledge(
            self.project,
            "AwsSolutions-CB3",
            "Privileged mode is required to run the Docker daemon that builds the engine "
            "image; the build runs only EMD's own buildspec from the repository.",
        )


def _grant_mirror_pull(stack: cdk.Stack, role: iam.IRole, mirror: str) -> None:
    """A mirror that is an ECR pull-through cache of this account: pull (and import on first pull) from the
    repositories under its prefixes. Other mirrors are public registries and need no grant."""
    prefixes = [item.split("=", 1)[-1] for item in mirror.split(",")]
    resources = []
    for prefix in prefixes:
        host, _, path = prefix.strip().rstrip("/").partition("/")
        if ".dkr.ecr." in host:
            name = f"{path}/*" if path else "*"
            resources.append(stack.format_arn(service="ecr", resource="repository", resource_name=name))
    if resources:
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[
                    "ecr:BatchGetImage",
                    "ecr:GetDownloadUrlForLayer",
                    "ecr:BatchCheckLayerAvailability",
                    "ecr:BatchImportUpstreamImage",
                    "ecr:CreateRepository",
                ],
                resources=resources,
            )
        )
