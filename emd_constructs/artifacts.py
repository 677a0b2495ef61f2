"""The artifact bucket: model-weights cache (models/<model-id>/<revision>/), the pipeline source bundle
(pipeline/source.zip) and pipeline artifacts (<pipeline-name>/), with its server-access-log bucket."""

from __future__ import annotations

import aws_cdk as cdk
import aws_cdk.aws_s3 as s3
from constructs import Construct

from emd_constructs.buckets import private_bucket
from emd_constructs.nag import acknowledge
from model_specs.registry import PIPELINE_SOURCE_KEY

SOURCE_KEY = PIPELINE_SOURCE_KEY
WEIGHTS_PREFIX = "models/"
NONCURRENT_DAYS = 30
PIPELINE_ARTIFACT_DAYS = 30
ACCESS_LOG_DAYS = 90


class ArtifactStore(Construct):
    """`bucket` is versioned (the S3 pipeline source needs object versions) and SSE-S3 encrypted, so the
    model stacks' roles read weights without a KMS grant. `retain_model_cache` keeps the bucket (and its
    cached weights) when the stack is destroyed; otherwise `cdk destroy` empties and deletes it.
    `empty_on_delete=False` leaves out aws-cdk-lib's auto-delete custom resource (a Lambda asset): the
    template then deploys without `cdk bootstrap`, and `emd uninstall` empties the buckets itself."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        pipeline_artifact_prefix: str,
        retain_model_cache: bool,
        empty_on_delete: bool = True,
    ) -> None:
        super().__init__(scope, construct_id)
        auto_delete = empty_on_delete and not retain_model_cache
        self.access_logs = private_bucket(
            self,
            "AccessLogs",
            lifecycle_rules=[
                s3.LifecycleRule(id="expire-access-logs", expiration=cdk.Duration.days(ACCESS_LOG_DAYS))
            ],
            removal_policy=cdk.RemovalPolicy.RETAIN if retain_model_cache else cdk.RemovalPolicy.DESTROY,
            auto_delete_objects=auto_delete,
        )
        acknowledge(
            self.access_logs,
            "AwsSolutions-S1",
            "This is the server-access-log target; logging it to itself would loop.",
        )
        self.bucket = private_bucket(
            self,
            "Bucket",
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="artifact-bucket/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="abort-incomplete-uploads",
                    abort_incomplete_multipart_upload_after=cdk.Duration.days(7),
                ),
                s3.LifecycleRule(
                    id="expire-noncurrent-versions",
                    noncurrent_version_expiration=cdk.Duration.days(NONCURRENT_DAYS),
                ),
                s3.LifecycleRule(
                    id="expire-pipeline-artifacts",
                    prefix=pipeline_artifact_prefix,
                    expiration=cdk.Duration.days(PIPELINE_ARTIFACT_DAYS),
                ),
                s3.LifecycleRule(
                    id="expire-old-source-bundles",
                    prefix="pipeline/",
                    noncurrent_version_expiration=cdk.Duration.days(7),
                ),
            ],
            removal_policy=cdk.RemovalPolicy.RETAIN if retain_model_cache else cdk.RemovalPolicy.DESTROY,
            auto_delete_objects=auto_delete,
        )
