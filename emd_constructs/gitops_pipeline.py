"""The steps of the EMD-GitOps pipeline (aws_cdk.pipelines), one factory each: the source (GitHub through a
CodeConnections connection, CodeCommit, or an S3 object in a bucket this construct creates), the synth step,
and the CodeBuild steps that run serving.gitops from the cloud assembly the synth step wrote (its
emd-gitops/src holds serving/ and model_specs/ of the EMD that synthesized it, plan.json says what to do).

Those steps run in the pipeline's account and act in each target through the role EMD-GitOps-Target gives
them (emd_constructs.gitops_target): they need no EMD installation, only boto3, pydantic, PyYAML and httpx.
"""

from __future__ import annotations

import aws_cdk as cdk
import aws_cdk.aws_codebuild as codebuild
import aws_cdk.aws_codecommit as codecommit
import aws_cdk.aws_events as events
import aws_cdk.aws_events_targets as targets
import aws_cdk.aws_iam as iam
import aws_cdk.aws_logs as logs
import aws_cdk.aws_s3 as s3
from aws_cdk import pipelines
from constructs import Construct

from emd_constructs.buckets import private_bucket
from emd_constructs.nag import acknowledge
from emd_constructs.regional import regional_facts
from model_specs.gitops import MODELS_FILE, PLAN_FILE, SETTINGS_ENV, SOURCE_DIR, PipelineSettings
from model_specs.registry import split_s3_uri

S3_SOURCE_KEY = "source.zip"  # the object an S3-sourced pipeline watches: a zip of the repository
CDK_OUT = "cdk.out"
BUILD_IMAGE = codebuild.LinuxBuildImage.STANDARD_7_0
NPM_MIRROR_CHINA = "https://registry.npmmirror.com"
STEP_PACKAGES = "boto3 pydantic pyyaml httpx"
WHEEL_DIR = ".emd-wheel"


class GitOpsSource(Construct):
    """`.source` for CodePipeline; `.bucket` when the source is an S3 object (versioned, EventBridge
    notifications: a new object version starts the pipeline, see `start_on_upload`)."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: PipelineSettings) -> None:
        super().__init__(scope, construct_id)
        self.bucket: s3.Bucket | None = None
        kind = settings.source_kind
        if kind == "github":
            self.source = pipelines.CodePipelineSource.connection(
                settings.github_repo, settings.branch, connection_arn=str(settings.connection_arn)
            )
        elif kind == "codecommit":
            repo = codecommit.Repository.from_repository_name(self, "Repository", settings.codecommit_repo)
            self.source = pipelines.CodePipelineSource.code_commit(repo, settings.branch)
        else:
            self.bucket = private_bucket(
                self,
                "Bucket",
                versioned=True,
                event_bridge_enabled=True,
                removal_policy=cdk.RemovalPolicy.RETAIN,
                lifecycle_rules=[
                    s3.LifecycleRule(id="old-versions", noncurrent_version_expiration=cdk.Duration.days(90))
                ],
            )
            acknowledge(
                self.bucket,
                "AwsSolutions-S1",
                "Holds only the zip of the models repository; every upload is a new object version and "
                "starts an execution that CodePipeline records.",
            )
            self.source = pipelines.CodePipelineSource.s3(
                self.bucket, S3_SOURCE_KEY, trigger=cdk.aws_codepipeline_actions.S3Trigger.NONE
            )

    def start_on_upload(self, pipeline: pipelines.CodePipeline) -> None:
        """S3 source: an EventBridge rule on the bucket's 'Object Created' events for the source key."""
        if self.bucket is None:
            return
        events.Rule(
            self,
            "OnUpload",
            description="Start the GitOps pipeline when a new source.zip is uploaded",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=["Object Created"],
                detail={"bucket": {"name": [self.bucket.bucket_name]}, "object": {"key": [S3_SOURCE_KEY]}},
            ),
            targets=[targets.CodePipeline(pipeline.pipeline)],
        )


def install_emd_commands(emd_install: str) -> list[str]:
    """pip install of EMD (a requirement, or a wheel copied from S3) and cfn-lint for the synth step."""
    if emd_install.startswith("s3://"):
        wheel = f"{WHEEL_DIR}/{emd_install.rsplit('/', 1)[1]}"
        return [
            f'aws s3 cp "{emd_install}" "{wheel}"',
            f'python3 -m pip install --quiet --disable-pip-version-check "{wheel}" cfn-lint',
        ]
    return [f"python3 -m pip install --quiet --disable-pip-version-check '{emd_install}' cfn-lint"]


def synth_step(
    scope: cdk.Stack, source: pipelines.CodePipelineSource, settings: PipelineSettings
) -> pipelines.CodeBuildStep:
    """Validate models.yaml, synthesize the pipeline and one model stack per entry, cfn-lint and cdk-nag every
    template (emd gitops synth exits non-zero on any problem, so nothing deploys)."""
    statements = []
    if settings.emd_install.startswith("s3://"):
        bucket, key = split_s3_uri(settings.emd_install)
        statements.append(
            iam.PolicyStatement(
                actions=["s3:GetObject"],
                resources=[
                    scope.format_arn(service="s3", region="", account="", resource=bucket, resource_name=key)
                ],
            )
        )
    return pipelines.CodeBuildStep(
        "Synth",
        input=source,
        install_commands=install_emd_commands(settings.emd_install),
        commands=[f"python3 -m emd_cli gitops synth {MODELS_FILE} --outdir {CDK_OUT}"],
        env={SETTINGS_ENV: settings.to_json()},
        primary_output_directory=CDK_OUT,
        role_policy_statements=statements,
        partial_build_spec=codebuild.BuildSpec.from_object(
            {"phases": {"install": {"runtime-versions": {"python": "3.11", "nodejs": "20"}}}}
        ),
        timeout=cdk.Duration.minutes(60),
    )


def gitops_step(
    step_id: str,
    command: str,
    *,
    assembly: pipelines.IFileSetProducer,
    role_arns: list[str],
    statements: list[iam.PolicyStatement] | None = None,
    timeout: cdk.Duration = cdk.Duration.hours(1),
) -> pipelines.CodeBuildStep:
    """`python3 -m serving.gitops <command> --plan plan.json` from the synth step's cloud assembly, with the
    right to assume the given target roles."""
    policy = [iam.PolicyStatement(actions=["sts:AssumeRole"], resources=role_arns)] if role_arns else []
    return pipelines.CodeBuildStep(
        step_id,
        input=assembly,
        install_commands=[f"python3 -m pip install --quiet --disable-pip-version-check {STEP_PACKAGES}"],
        commands=[
            f"cd {SOURCE_DIR} && python3 -m serving.gitops {command} --plan {_up(SOURCE_DIR)}/{PLAN_FILE}"
        ],
        role_policy_statements=policy + (statements or []),
        timeout=timeout,
    )


def _up(path: str) -> str:
    return "/".join(".." for _ in path.split("/"))


def code_build_defaults(region: str, logs: logs.ILogGroup) -> pipelines.CodeBuildOptions:
    """Every CodeBuild project of the pipeline (CDK Pipelines' own included): current image; in China, pip and
    npm mirrors; logs in `logs` (CodeBuild's default group would keep them forever)."""
    facts = regional_facts(region)
    env: dict[str, codebuild.BuildEnvironmentVariable] = {}
    if facts.pip_index_url:
        env["PIP_INDEX_URL"] = codebuild.BuildEnvironmentVariable(value=facts.pip_index_url)
    if facts.is_china:
        env["NPM_CONFIG_REGISTRY"] = codebuild.BuildEnvironmentVariable(value=NPM_MIRROR_CHINA)
    return pipelines.CodeBuildOptions(
        build_environment=codebuild.BuildEnvironment(build_image=BUILD_IMAGE, environment_variables=env),
        logging=codebuild.LoggingOptions(cloud_watch=codebuild.CloudWatchLoggingOptions(log_group=logs)),
    )
