"""SageMaker asynchronous endpoint: requests are S3 objects, results land under an S3 output prefix and SNS
topics (KMS-encrypted, SSL enforced) announce success and failure.

Autoscaling: target tracking on ApproximateBacklogSizePerInstance with min 0 (scale to zero when the queue is
empty) and a step policy on HasBacklogWithoutCapacity that adds an instance when work waits with none running.
"""

from __future__ import annotations

import aws_cdk as cdk
import aws_cdk.aws_applicationautoscaling as appscaling
import aws_cdk.aws_cloudwatch as cw
import aws_cdk.aws_iam as iam
import aws_cdk.aws_kms as kms
import aws_cdk.aws_sagemaker as sagemaker
import aws_cdk.aws_sns as sns
from constructs import Construct

from emd_constructs.model_artifacts import ModelArtifacts
from emd_constructs.sagemaker_endpoint import (
    SageMakerModel,
    capacity,
    endpoint,
    model_variant,
    variant_alarms,
    variant_target,
)
from emd_constructs.scaling import scale_out_from_zero, track_metric
from model_specs.deployment import Deployment
from model_specs.registry import ASYNC_IO_PREFIX, split_s3_uri

BACKLOG_PER_INSTANCE_TARGET = 5
MAX_CONCURRENT_INVOCATIONS_PER_INSTANCE = 4


class SageMakerAsyncEndpoint(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, deployment: Deployment, artifacts: ModelArtifacts
    ) -> None:
        super().__init__(scope, construct_id)
        d = deployment
        self.endpoint_name = d.sagemaker_endpoint_name
        model = SageMakerModel(self, "Model", deployment=d, artifacts=artifacts)
        self.role: iam.Role = model.role

        # <root>/emd-async/<model-id>/<tag>/{input,output,failure}/
        # root: the artifact bucket, or the user's s3_output_path
        given = d.extra_params.service_params.s3_output_path
        if given:
            bucket_name, key = split_s3_uri(given)
            root = key.strip("/") + "/" if key.strip("/") else ""
            io_bucket_arn = cdk.Stack.of(self).format_arn(
                service="s3", region="", account="", resource=bucket_name
            )
        else:
            bucket_name, root = artifacts.artifact_bucket.bucket_name, ""
            io_bucket_arn = artifacts.artifact_bucket.bucket_arn
        prefix = f"{root}{ASYNC_IO_PREFIX}/{d.model_id}/{d.model_tag}/"
        self.output_path = f"s3://{bucket_name}/{prefix}output/"
        self.failure_path = f"s3://{bucket_name}/{prefix}failure/"
        self.input_path = f"s3://{bucket_name}/{prefix}input/"
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"],
                resources=[f"{io_bucket_arn}/{prefix}*"],
            )
        )

        sns_key = kms.Alias.from_alias_name(self, "SnsKey", "alias/aws/sns")
        self.success_topic = sns.Topic(self, "SuccessTopic", master_key=sns_key, enforce_ssl=True)
        self.error_topic = sns.Topic(self, "ErrorTopic", master_key=sns_key, enforce_ssl=True)
        for topic in (self.success_topic, self.error_topic):
            topic.grant_publish(self.role)

        _, max_cap, initial = capacity(d)
        config = sagemaker.CfnEndpointConfig(
            self,
            "EndpointConfig",
            production_variants=[model_variant(d, model, initial)],
            async_inference_config=sagemaker.CfnEndpointConfig.AsyncInferenceConfigProperty(
                output_config=sagemaker.CfnEndpointConfig.AsyncInferenceOutputConfigProperty(
                    s3_output_path=self.output_path,
                    s3_failure_path=self.failure_path,
                    notification_config=sagemaker.CfnEndpointConfig.AsyncInferenceNotificationConfigProperty(
                        success_topic=self.success_topic.topic_arn,
                        error_topic=self.error_topic.topic_arn,
                    ),
                ),
                client_config=sagemaker.CfnEndpointConfig.AsyncInferenceClientConfigProperty(
                    max_concurrent_invocations_per_instance=MAX_CONCURRENT_INVOCATIONS_PER_INSTANCE
                ),
            ),
        )
        self.endpoint = endpoint(self, self.endpoint_name, config)
        model.hosted_by(self.endpoint)

        target = variant_target(
            self,
            self.endpoint_name,
            self.endpoint,
            # min 0 unless the user asks for warm capacity: queued requests wait for scale-out from zero
            min_capacity=d.extra_params.service_params.min_capacity or 0,
            max_capacity=max_cap,
        )
        track_metric(
            target,
            "Backlog",
            target_value=BACKLOG_PER_INSTANCE_TARGET,
            custom_metric=cw.Metric(
                namespace="AWS/SageMaker",
                metric_name="ApproximateBacklogSizePerInstance",
                dimensions_map={"EndpointName": self.endpoint_name},
                statistic="Average",
                period=cdk.Duration.minutes(1),
            ),
        )
        scale_out_from_zero(
            target,
            namespace="AWS/SageMaker",
            metric_name="HasBacklogWithoutCapacity",
            dimensions={"EndpointName": self.endpoint_name},
            statistic="Average",
            steps=[
                appscaling.ScalingInterval(upper=0.5, change=0),
                appscaling.ScalingInterval(lower=0.5, change=1),
            ],
        )
        self.scalable_target = target
        variant_alarms(self, self.endpoint_name, d.route)
