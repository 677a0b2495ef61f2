"""EMD-Gateway: the OpenAI-compatible front door (ALB + Fargate), its VPC and the Cloud Map namespace that
ECS model services register in; published through SSM parameters under /emd/gateway/.

Independent of EMD-Bootstrap: SageMaker users can skip it (context gateway=false) and no ALB is created.
"""

from __future__ import annotations

import dataclasses

import aws_cdk as cdk
import aws_cdk.aws_ecr as ecr
import aws_cdk.aws_ecs as ecs
import aws_cdk.aws_servicediscovery as servicediscovery
import aws_cdk.aws_ssm as ssm
from constructs import Construct

from emd_constructs.gateway_service import GatewayScaling, GatewayService, gateway_image
from emd_constructs.hygiene import drop_provider_role_dependencies
from emd_constructs.log_groups import bound_lambda_logs
from emd_constructs.nag import acknowledge, acknowledge_cdk_providers, acknowledge_wildcards, default_policy
from emd_constructs.network import GatewayNetwork
from emd_constructs.parameters import publish
from emd_constructs.regional import regional_facts
from emd_constructs.tagging import tag_shared
from emd_stacks.context import AppConfig
from model_specs.registry import ALLOWED_CIDRS_ANY, PARAM_ECR_REPOSITORY
from model_specs.registry import PARAM_GATEWAY_ALLOWED_CIDRS as PARAM_ALLOWED_CIDRS
from model_specs.registry import PARAM_GATEWAY_EXPOSURE as PARAM_EXPOSURE
from model_specs.registry import PARAM_GATEWAY_NAMESPACE_ARN as PARAM_NAMESPACE_ARN
from model_specs.registry import PARAM_GATEWAY_NAMESPACE_ID as PARAM_NAMESPACE_ID
from model_specs.registry import PARAM_GATEWAY_NAMESPACE_NAME as PARAM_NAMESPACE_NAME
from model_specs.registry import PARAM_GATEWAY_SECURITY_GROUP as PARAM_SECURITY_GROUP
from model_specs.registry import PARAM_GATEWAY_SUBNETS as PARAM_SUBNETS
from model_specs.registry import PARAM_GATEWAY_URL as PARAM_URL
from model_specs.registry import PARAM_GATEWAY_VPC_ID as PARAM_VPC_ID

STACK_NAME = "EMD-Gateway"
NAMESPACE_NAME = "emd.internal"


class GatewayStack(cdk.Stack):
    """image_tag: run the gateway image that the bootstrap's CodeBuild project pushed to the bootstrap's ECR
    repository under this tag (`emd bootstrap`): the template then has no CDK asset at all and deploys
    without `cdk bootstrap` or local Docker. Without it, `cdk deploy` builds serving/gateway/Dockerfile."""

    def __init__(
        self,
        scope: Construct,
        *,
        config: AppConfig,
        env: cdk.Environment | None = None,
        image: ecs.ContainerImage | None = None,
        image_tag: str | None = None,
        scaling: GatewayScaling | None = None,
    ) -> None:
        super().__init__(
            scope,
            STACK_NAME,
            env=env,
            description="EMD gateway: OpenAI-compatible, API-key-protected endpoint for EMD deployments",
        )
        facts = regional_facts(config.region)
        asset_free = image_tag is not None
        if asset_free:
            # the bootstrap's CodeBuild project builds on x86_64
            facts = dataclasses.replace(facts, fargate_arm64=False)
            repository = ecr.Repository.from_repository_name(
                self, "Images", ssm.StringParameter.value_for_string_parameter(self, PARAM_ECR_REPOSITORY)
            )
            image = ecs.ContainerImage.from_ecr_repository(repository, image_tag)
        network = GatewayNetwork(
            self, "Network", vpc_id=config.vpc_id, restrict_default_security_group=not asset_free
        )
        self.vpc = network.vpc
        self.namespace = servicediscovery.PrivateDnsNamespace(
            self, "Namespace", name=NAMESPACE_NAME, vpc=network.vpc, description="EMD model services"
        )
        gateway = GatewayService(
            self,
            "Gateway",
            vpc=network.vpc,
            task_subnets=network.private_subnets,
            image=image or gateway_image(facts),
            facts=facts,
            certificate_arn=config.certificate_arn,
            allowed_cidrs=config.allowed_cidrs,
            exposure=config.exposure,
            scaling=scaling,
            empty_log_bucket_on_delete=not asset_free,
        )
        self.gateway = gateway

        subnet_ids = [s.subnet_id for s in network.private_subnets]
        publish(
            self,
            VpcIdParam=(PARAM_VPC_ID, network.vpc.vpc_id),
            SecurityGroupParam=(PARAM_SECURITY_GROUP, gateway.security_group.security_group_id),
            NamespaceIdParam=(PARAM_NAMESPACE_ID, self.namespace.namespace_id),
            NamespaceNameParam=(PARAM_NAMESPACE_NAME, self.namespace.namespace_name),
            NamespaceArnParam=(PARAM_NAMESPACE_ARN, self.namespace.namespace_arn),
            UrlParam=(PARAM_URL, gateway.url),
            ExposureParam=(PARAM_EXPOSURE, config.exposure.value),
            AllowedCidrsParam=(PARAM_ALLOWED_CIDRS, ",".join(config.allowed_cidrs) or ALLOWED_CIDRS_ANY),
        )
        ssm.StringListParameter(
            self, "SubnetIdsParam", parameter_name=PARAM_SUBNETS, string_list_value=subnet_ids
        )
        cdk.CfnOutput(self, "GatewayUrl", value=gateway.url, description="OpenAI base URL is <this>/v1")

        tag_shared(self, "gateway")
        drop_provider_role_dependencies(self)
        bound_lambda_logs(self)
        self._acknowledge(config, gateway)

    def _acknowledge(self, config: AppConfig, gateway: GatewayService) -> None:
        acknowledge_wildcards(
            default_policy(gateway.task_definition.task_role),
            "Gateway task role: registry parameters /emd/models/* (one per deployment), API-key secrets "
            "emd/* (one per deployment, created later by the CLI) and SageMaker endpoints named emd-* or "
            "tagged emd:model-id; the names exist only after each model deployment. S3 objects under "
            "emd-async/ in buckets of this account (s3:ResourceAccount condition): each async deployment's "
            "bucket (artifact bucket or its s3_output_path) is chosen per deployment.",
        )
        acknowledge_wildcards(
            default_policy(gateway.task_definition.execution_role),
            "Execution role from aws-cdk-lib: ecr:GetAuthorizationToken takes no resource ARN.",
        )
        acknowledge(
            gateway.task_definition,
            "AwsSolutions-ECS2",
            "Only non-secret configuration is passed as environment (registry prefix, region, waits); keys "
            "are read at run time from Secrets Manager by ARN, never through the environment.",
        )
        if not config.allowed_cidrs and config.exposure.internet_facing_alb:
            acknowledge(
                gateway.alb_security_group,
                "AwsSolutions-EC23",
                "Asked for explicitly (certificate_arn or allow_insecure_http=true): a public API entry "
                "point protected by per-deployment API keys; restrict it with context allowed_cidrs.",
            )
        elif not config.allowed_cidrs:
            acknowledge(
                gateway.alb_security_group,
                "AwsSolutions-EC23",
                "Internal ALB: ingress only from the VPC's own CIDR block (a CloudFormation reference, which "
                "this rule cannot evaluate); CloudFront's VPC-origin interfaces sit in those subnets.",
            )
        acknowledge_cdk_providers(
            self, "auto-delete of the ALB log bucket, the default security group's restriction"
        )
