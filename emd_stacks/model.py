"""EMD-Model-<slug>: one deployment (<model-id>/<tag>) on SageMaker real-time, SageMaker async, ECS or EC2,
registered in the gateway's registry (/emd/models/<model-id>/<tag>). Every role carries the bootstrap's
permissions boundary."""

from __future__ import annotations

import json

import aws_cdk as cdk
import aws_cdk.aws_iam as iam
import aws_cdk.aws_ssm as ssm
from constructs import Construct

from emd_constructs.api_key_secret import ApiKeySecret
from emd_constructs.ec2_model import Ec2ModelInstance
from emd_constructs.ecs_model import EcsModelService
from emd_constructs.log_groups import bound_lambda_logs
from emd_constructs.model_artifacts import ArtifactInputs, ModelArtifacts
from emd_constructs.model_network import ModelNetwork
from emd_constructs.model_registration import ModelRegistration
from emd_constructs.nag import acknowledge, acknowledge_wildcards, default_policy
from emd_constructs.sagemaker_async import SageMakerAsyncEndpoint
from emd_constructs.sagemaker_endpoint import SageMakerRealtimeEndpoint
from emd_constructs.tagging import tag_deployment
from model_specs.deployment import Deployment
from model_specs.registry import PARAM_BOUNDARY_ARN
from model_specs.schema import ServiceType


class ModelStack(cdk.Stack):
    """image_uri / model_data_s3_uri: use these artifacts as given. artifact_parameters: declare the
    EngineImageUri / ModelDataS3Uri parameters the pipeline's build stage fills. Neither: the stack runs the
    bootstrap's build itself for what is not given (direct `cdk deploy`, emd_constructs/model_build.py).
    own_api_key: the stack creates the deployment's API key secret (direct `cdk deploy`; `emd deploy` and
    GitOps create it before the stack), unless api_key_secret_name names an existing one to use instead."""

    def __init__(
        self,
        scope: Construct,
        deployment: Deployment,
        *,
        image_uri: str | None = None,
        model_data_s3_uri: str | None = None,
        artifact_parameters: bool = False,
        own_api_key: bool = False,
        api_key_secret_name: str | None = None,
    ) -> None:
        d = deployment
        if d.service_type is ServiceType.local:
            from model_specs.errors import EmdUserError

            raise EmdUserError("service type 'local' runs on this machine and has no CloudFormation stack")
        super().__init__(
            scope,
            d.stack_name,
            stack_name=d.stack_name,
            env=cdk.Environment(region=d.region),
            description=f"EMD model {d.route}: {d.engine_type} on {d.instance_type} ({d.service_type.value})",
        )
        self.deployment = d
        boundary = iam.ManagedPolicy.from_managed_policy_arn(
            self,
            "PermissionsBoundary",
            ssm.StringParameter.value_for_string_parameter(self, PARAM_BOUNDARY_ARN),
        )
        iam.PermissionsBoundary.of(self).apply(boundary)

        image_uri = image_uri or d.extra_params.engine_params.image_uri  # the user's image, used as is
        inputs = ArtifactInputs(
            image_uri=image_uri, model_data_s3_uri=model_data_s3_uri, parameters=artifact_parameters
        )
        self.artifacts = ModelArtifacts(self, "Artifacts", deployment=d, inputs=inputs)
        self.api_key: ApiKeySecret | None = None
        if own_api_key and d.api_key_secret_name and not api_key_secret_name:
            self.api_key = ApiKeySecret(self, "ApiKey", deployment=d)

        self.endpoint_name: str | None = None
        self.base_url: str | None = None
        extra: dict[str, str] = {}
        roles: list[iam.IRole | None] = []
        if d.service_type is ServiceType.sagemaker_realtime:
            rt = SageMakerRealtimeEndpoint(self, "Endpoint", deployment=d, artifacts=self.artifacts)
            self.endpoint_name, backend = rt.endpoint_name, "sagemaker"
            if rt.inference_component_name:
                extra["inference_component_name"] = rt.inference_component_name
            roles.append(rt.role)
        elif d.service_type is ServiceType.sagemaker_async:
            asy = SageMakerAsyncEndpoint(self, "Endpoint", deployment=d, artifacts=self.artifacts)
            self.endpoint_name, backend = asy.endpoint_name, "sagemaker_async"
            extra["s3_input_path"] = asy.input_path
            roles.append(asy.role)
            for topic in (asy.success_topic, asy.error_topic):
                cdk.CfnOutput(self, f"{topic.node.id}Arn", value=topic.topic_arn)
        else:
            network = ModelNetwork(self, "Network", deployment=d)
            if d.service_type is ServiceType.ecs:
                svc = EcsModelService(self, "Engine", deployment=d, artifacts=self.artifacts, network=network)
                self.base_url = svc.base_url
                # `emd status` reads the cluster's running tasks (scaled to zero) by this name
                cdk.CfnOutput(self, "ClusterName", value=svc.cluster.cluster_name)
                roles += [svc.service.task_definition.task_role, svc.service.task_definition.execution_role]
                roles.append(svc.host_role)
                self._ecs_acknowledgements(svc)
            else:
                ec2m = Ec2ModelInstance(
                    self, "Engine", deployment=d, artifacts=self.artifacts, network=network
                )
                self.base_url = ec2m.base_url
                roles.append(ec2m.role)
                self._ec2_acknowledgements(ec2m)
            backend = "http"

        self.registration = ModelRegistration(
            self,
            "Registration",
            deployment=d,
            backend=backend,
            endpoint_name=self.endpoint_name,
            base_url=self.base_url,
            extra=extra,
            api_key_secret_name=api_key_secret_name,
        )
        if self.api_key is not None:  # the gateway finds the deployment only once its key exists
            self.registration.node.add_dependency(self.api_key)
        if own_api_key and self.registration.entry.api_key_secret_name:
            # the name only: `aws secretsmanager get-secret-value --secret-id <name>` gives the key
            cdk.CfnOutput(self, "ApiKeySecretName", value=self.registration.entry.api_key_secret_name)
        if self.artifacts.build is not None:
            cdk.CfnOutput(self, "BuildId", value=self.artifacts.build.build_id)
        if self.endpoint_name:
            cdk.CfnOutput(self, "EndpointName", value=self.endpoint_name)
        if self.base_url:
            cdk.CfnOutput(self, "BaseUrl", value=self.base_url)
        cdk.CfnOutput(self, "Route", value=d.route)
        # what `emd status` shows for the deployment, from DescribeStacks alone (no secret in it)
        cdk.CfnOutput(
            self,
            "Deployment",
            value=json.dumps(
                {
                    "engine_type": d.engine_type,
                    "instance_type": d.instance_type,
                    "service_type": d.service_type.value,
                    "model_type": d.model.type.value,
                    "public": d.extra_params.service_params.public,
                },
                separators=(",", ":"),
            ),
        )
        cdk.CfnOutput(self, "EngineImage", value=self.artifacts.image_uri)
        cdk.CfnOutput(self, "ModelData", value=self.artifacts.model_data_s3_uri)

        for role in roles:
            acknowledge_wildcards(
                default_policy(role),
                "scoped to this deployment's weights prefix (models/<model-id>/<revision>/*), its async I/O "
                "prefix, its log streams and ecr:GetAuthorizationToken (which has no resource-level "
                "permissions); the "
                "permissions boundary caps every role",
            )
        if d.service_type in (ServiceType.sagemaker_realtime, ServiceType.sagemaker_async):
            self._sagemaker_acknowledgements()
        tag_deployment(self, d.model_id, d.model_tag)
        bound_lambda_logs(self)

    def _sagemaker_acknowledgements(self) -> None:
        acknowledge(
            self,
            "AwsSolutions-SM1",
            "the engine needs no VPC resources: it reads weights from S3 and is reached through the "
            "SageMaker "
            "runtime API with IAM auth",
        )
        acknowledge(
            self,
            "AwsSolutions-SM2",
            "instance storage holds only public model weights; SageMaker encrypts it with an AWS-managed key",
        )

    def _ecs_acknowledgements(self, svc: EcsModelService) -> None:
        acknowledge(
            svc.auto_scaling_group,
            "AwsSolutions-AS3",
            "the ECS capacity provider owns this group's scaling; task-level alarms cover engine health",
        )
        acknowledge(
            svc,
            "AwsSolutions-ECS2",
            "environment holds only non-secret engine settings (model id, engine arguments); "
            "no secret is passed",
        )

    def _ec2_acknowledgements(self, ec2m: Ec2ModelInstance) -> None:
        acknowledge(
            ec2m,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore]",
            "Session Manager access instead of SSH: the AWS-managed core policy (not *FullAccess) is "
            "the documented "
            "minimum for the SSM agent, and the permissions boundary caps it",
        )
        acknowledge(
            ec2m,
            "AwsSolutions-EC29",
            "the instance is replaceable (weights in S3, image in ECR); termination protection would block "
            "`emd destroy` and stack deletion",
        )
