"""SageMaker real-time endpoint for one deployment, and the pieces the async endpoint shares with it.

Weights: ModelDataSource S3Prefix (uncompressed), so SageMaker copies them to /opt/ml/model before the
container starts; the download and startup health-check timeouts are sized from the model's weights.

Autoscaling: target tracking on SageMakerVariantConcurrentRequestsPerModelHighResolution. LLM requests are
long and streamed, so in-flight requests measure load where InvocationsPerInstance (a per-minute count) does
not, and the high-resolution metric reacts in seconds rather than minutes.

Scale to zero (service_params.min_capacity = 0): the endpoint hosts the model as an inference component on a
variant with managed instance scaling (min 0). The component's copy count scales 0..max on concurrent
requests per copy; a step policy on NoCapacityInvocationFailures adds a copy when a request arrives with no
copy running. Cold start: while SageMaker provisions an instance, downloads the weights and starts the
engine (minutes, not seconds), the gateway holds the first requests up to its cold-start wait, then answers
503 with Retry-After.
"""

from __future__ import annotations

from typing import Any

import aws_cdk.aws_applicationautoscaling as appscaling
import aws_cdk.aws_iam as iam
import aws_cdk.aws_sagemaker as sagemaker
from constructs import Construct

from emd_constructs.engine_settings import download_seconds, engine_environment, startup_seconds
from emd_constructs.log_groups import log_group
from emd_constructs.model_alarms import SageMakerAlarms
from emd_constructs.model_artifacts import ModelArtifacts
from emd_constructs.sagemaker_role import sagemaker_execution_role
from emd_constructs.scaling import scale_out_from_zero, track_metric
from model_specs.deployment import Deployment
from model_specs.errors import EmdUserError
from model_specs.schema import Accelerator, ModelType

VARIANT_NAME = "AllTraffic"
MAX_TIMEOUT_SECONDS = 3600  # SageMaker's limit for both the weights download and the start-up health check
# target in-flight requests per instance (or per copy): LLM engines batch well up to about this many
CONCURRENCY_TARGET = {ModelType.llm: 8, ModelType.vlm: 4}
DEFAULT_CONCURRENCY_TARGET = 32
LEAST_OUTSTANDING = sagemaker.CfnEndpointConfig.RoutingConfigProperty(
    routing_strategy="LEAST_OUTSTANDING_REQUESTS"
)


def concurrency_target(deployment: Deployment) -> int:
    return CONCURRENCY_TARGET.get(deployment.model.type, DEFAULT_CONCURRENCY_TARGET)


def capacity(deployment: Deployment) -> tuple[int, int, int]:
    """(min, max, initial) instances; min 0 means scale to zero."""
    sp = deployment.extra_params.service_params
    min_cap = 1 if sp.min_capacity is None else sp.min_capacity
    max_cap = max(sp.max_capacity or max(min_cap, 1), min_cap, 1)
    initial = sp.desired_capacity if sp.desired_capacity else max(min_cap, 1)
    return min_cap, max_cap, min(max(initial, 1), max_cap)


def startup_timeouts(deployment: Deployment) -> dict[str, int]:
    return {
        "model_data_download_timeout_in_seconds": min(MAX_TIMEOUT_SECONDS, download_seconds(deployment)),
        "container_startup_health_check_timeout_in_seconds": min(
            MAX_TIMEOUT_SECONDS, max(600, 3 * startup_seconds(deployment))
        ),
    }


def inference_component_name(deployment: Deployment) -> str:
    return f"{deployment.sagemaker_endpoint_name[:59]}-ic"


def sagemaker_log_group_names(deployment: Deployment, scale_to_zero: bool) -> list[str]:
    """Where SageMaker writes the containers' logs: per endpoint, and per inference component."""
    names = [f"/aws/sagemaker/Endpoints/{deployment.sagemaker_endpoint_name}"]
    if scale_to_zero:
        names.append(f"/aws/sagemaker/InferenceComponents/{inference_component_name(deployment)}")
    return names


def model_variant(
    deployment: Deployment, model: SageMakerModel, initial: int, **extra: Any
) -> sagemaker.CfnEndpointConfig.ProductionVariantProperty:
    """The one production variant of a classic (real-time or async) endpoint: the model on its instances."""
    return sagemaker.CfnEndpointConfig.ProductionVariantProperty(
        variant_name=VARIANT_NAME,
        model_name=model.model.attr_model_name,
        instance_type=deployment.sagemaker_instance_type,
        initial_instance_count=initial,
        **startup_timeouts(deployment),
        **extra,
    )


def endpoint(scope: Construct, name: str, config: sagemaker.CfnEndpointConfig) -> sagemaker.CfnEndpoint:
    return sagemaker.CfnEndpoint(
        scope, "Endpoint", endpoint_name=name, endpoint_config_name=config.attr_endpoint_config_name
    )


def scalable_target(
    scope: Construct,
    *,
    resource_id: str,
    dimension: str,
    min_capacity: int,
    max_capacity: int,
    after: Construct,
) -> appscaling.ScalableTarget:
    """Application Auto Scaling target of a SageMaker resource, registered once `after` (what it scales)
    exists."""
    target = appscaling.ScalableTarget(
        scope,
        "ScalableTarget",
        service_namespace=appscaling.ServiceNamespace.SAGEMAKER,
        resource_id=resource_id,
        scalable_dimension=dimension,
        min_capacity=min_capacity,
        max_capacity=max_capacity,
    )
    target.node.add_dependency(after)
    return target


def variant_target(
    scope: Construct, endpoint_name: str, after: Construct, *, min_capacity: int, max_capacity: int
) -> appscaling.ScalableTarget:
    """Instances of the endpoint's variant (a classic endpoint)."""
    return scalable_target(
        scope,
        resource_id=f"endpoint/{endpoint_name}/variant/{VARIANT_NAME}",
        dimension="sagemaker:variant:DesiredInstanceCount",
        min_capacity=min_capacity,
        max_capacity=max_capacity,
        after=after,
    )


def variant_alarms(scope: Construct, endpoint_name: str, route: str) -> SageMakerAlarms:
    return SageMakerAlarms(
        scope, "Alarms", dimensions={"EndpointName": endpoint_name, "VariantName": VARIANT_NAME}, route=route
    )


class SageMakerModel(Construct):
    """CfnModel + execution role shared by the real-time and async endpoints, and the endpoint's log groups:
    created here with 30-day retention (SageMaker would create them without retention, kept forever); the
    endpoint depends on them, so they exist first and are deleted after it.

    Network isolation: the container gets no network at all. Every engine (vllm, tgi, lmdeploy, llama.cpp,
    ollama, text-embeddings-inference) serves the weights SageMaker copied to /opt/ml/model, with the hub
    switched off (engine_environment), and the adapter calls no AWS API; SageMaker itself pulls the image,
    stages the weights, reads async requests and writes answers and logs outside the container."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        deployment: Deployment,
        artifacts: ModelArtifacts,
        scale_to_zero: bool = False,
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_groups = [
            log_group(self, f"Logs{i}", name=name)
            for i, name in enumerate(sagemaker_log_group_names(deployment, scale_to_zero))
        ]
        self.role = sagemaker_execution_role(self, "ExecutionRole", artifacts, self.log_groups)
        self.model = sagemaker.CfnModel(
            self,
            "Model",
            execution_role_arn=self.role.role_arn,
            enable_network_isolation=True,
            primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(
                image=artifacts.image_uri,
                environment=engine_environment(deployment),
                model_data_source=sagemaker.CfnModel.ModelDataSourceProperty(
                    s3_data_source=sagemaker.CfnModel.S3DataSourceProperty(
                        s3_uri=artifacts.model_data_s3_uri, s3_data_type="S3Prefix", compression_type="None"
                    )
                ),
            ),
        )
        # the role's policy must exist before SageMaker validates image and weights access
        policy = self.role.node.try_find_child("DefaultPolicy")
        if policy is not None:
            self.model.node.add_dependency(policy)

    def hosted_by(self, endpoint: sagemaker.CfnEndpoint) -> None:
        """The endpoint starts after its log groups and its role's policy exist (and is deleted before
        them)."""
        for group in self.log_groups:
            endpoint.node.add_dependency(group)
        policy = self.role.node.try_find_child("DefaultPolicy")
        if policy is not None:
            endpoint.node.add_dependency(policy)


class SageMakerRealtimeEndpoint(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, deployment: Deployment, artifacts: ModelArtifacts
    ) -> None:
        super().__init__(scope, construct_id)
        d = deployment
        self.endpoint_name = d.sagemaker_endpoint_name
        self.scale_to_zero = capacity(d)[0] == 0
        if self.scale_to_zero and d.region_info.is_china:
            # cfn-lint's region schemas: AWS::SageMaker::InferenceComponent does not exist in aws-cn
            raise EmdUserError(
                f"service_params.min_capacity=0 on sagemaker_realtime needs SageMaker inference components, "
                f"which {d.region} does not offer; use min_capacity >= 1, or sagemaker_async (scales to zero)"
            )
        model = SageMakerModel(
            self, "Model", deployment=d, artifacts=artifacts, scale_to_zero=self.scale_to_zero
        )
        self.role: iam.Role = model.role
        self.inference_component_name: str | None = None
        if self.scale_to_zero:
            self._inference_component(d, model)
        else:
            self._classic(d, model)
        model.hosted_by(self.endpoint)

    def _classic(self, d: Deployment, model: SageMakerModel) -> None:
        min_cap, max_cap, initial = capacity(d)
        config = sagemaker.CfnEndpointConfig(
            self,
            "EndpointConfig",
            production_variants=[model_variant(d, model, initial, routing_config=LEAST_OUTSTANDING)],
        )
        self.endpoint = endpoint(self, self.endpoint_name, config)
        target = variant_target(
            self, self.endpoint_name, self.endpoint, min_capacity=max(min_cap, 1), max_capacity=max_cap
        )
        track_metric(
            target,
            "ConcurrentRequests",
            target_value=concurrency_target(d),
            predefined_metric=appscaling.PredefinedMetric.SAGEMAKER_VARIANT_CONCURRENT_REQUESTS_PER_MODEL_HIGH_RESOLUTION,
        )
        self.scalable_target = target
        variant_alarms(self, self.endpoint_name, d.route)

    def _inference_component(self, d: Deployment, model: SageMakerModel) -> None:
        _, max_cap, _ = capacity(d)
        config = sagemaker.CfnEndpointConfig(
            self,
            "EndpointConfig",
            execution_role_arn=model.role.role_arn,
            production_variants=[
                sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                    variant_name=VARIANT_NAME,
                    instance_type=d.sagemaker_instance_type,
                    initial_instance_count=1,
                    managed_instance_scaling=sagemaker.CfnEndpointConfig.ManagedInstanceScalingProperty(
                        status="ENABLED", min_instance_count=0, max_instance_count=max_cap
                    ),
                    routing_config=LEAST_OUTSTANDING,
                )
            ],
        )
        config.node.add_dependency(model.model)
        self.endpoint = endpoint(self, self.endpoint_name, config)
        instance = d.instance
        timeouts = startup_timeouts(d)
        devices = instance.gpus if instance.accelerator is not Accelerator.cpu else None
        self.inference_component_name = inference_component_name(d)
        component = sagemaker.CfnInferenceComponent(
            self,
            "InferenceComponent",
            inference_component_name=self.inference_component_name,
            endpoint_name=self.endpoint.attr_endpoint_name,
            variant_name=VARIANT_NAME,
            specification=sagemaker.CfnInferenceComponent.InferenceComponentSpecificationProperty(
                model_name=model.model.attr_model_name,
                compute_resource_requirements=sagemaker.CfnInferenceComponent.InferenceComponentComputeResourceRequirementsProperty(
                    number_of_accelerator_devices_required=devices,
                    # leave room for the OS and the SageMaker agents
                    min_memory_required_in_mb=int(instance.memory_gib * 1024 * 0.75),
                ),
                startup_parameters=sagemaker.CfnInferenceComponent.InferenceComponentStartupParametersProperty(
                    model_data_download_timeout_in_seconds=timeouts["model_data_download_timeout_in_seconds"],
                    container_startup_health_check_timeout_in_seconds=timeouts[
                        "container_startup_health_check_timeout_in_seconds"
                    ],
                ),
            ),
            runtime_config=sagemaker.CfnInferenceComponent.InferenceComponentRuntimeConfigProperty(
                copy_count=1
            ),
        )
        self.component = component
        target = scalable_target(
            self,
            resource_id=f"inference-component/{self.inference_component_name}",
            dimension="sagemaker:inference-component:DesiredCopyCount",
            min_capacity=0,
            max_capacity=max_cap,
            after=component,
        )
        track_metric(
            target,
            "ConcurrentRequestsPerCopy",
            target_value=concurrency_target(d),
            predefined_metric=(
                appscaling.PredefinedMetric.SAGEMAKER_INFERENCE_COMPONENT_CONCURRENT_REQUESTS_PER_COPY_HIGH_RESOLUTION
            ),
        )
        scale_out_from_zero(
            target,
            namespace="AWS/SageMaker",
            metric_name="NoCapacityInvocationFailures",
            dimensions={"InferenceComponentName": self.inference_component_name},
            statistic="Maximum",
            steps=[
                appscaling.ScalingInterval(upper=0, change=0),
                appscaling.ScalingInterval(lower=1, change=1),
            ],
        )
        self.scalable_target = target
        SageMakerAlarms(
            self,
            "Alarms",
            dimensions={"InferenceComponentName": self.inference_component_name},
            route=d.route,
        )
