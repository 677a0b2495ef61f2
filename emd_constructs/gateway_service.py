"""The gateway: ECS Fargate service (arm64 where offered) behind an Application Load Balancer.

How clients reach it is an Exposure (emd_constructs.gateway_edge): an internal ALB by default, CloudFront
HTTPS, an internet-facing HTTPS listener (TLS 1.2+/1.3 policy, no port 80: a client that mistakenly uses
http:// fails to connect instead of sending its key in clear), or internet-facing HTTP only when asked for.
Health check GET /health; autoscaling on ALB requests per target; deployment circuit breaker with rollback.
The task role reads only the deployment registry (/emd/models/*), API-key secrets under emd/, and invokes
only EMD SageMaker endpoints.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import aws_cdk as cdk
import aws_cdk.aws_ec2 as ec2
import aws_cdk.aws_ecr_assets as ecr_assets
import aws_cdk.aws_ecs as ecs
import aws_cdk.aws_elasticloadbalancingv2 as elbv2
import aws_cdk.aws_iam as iam
import aws_cdk.aws_s3 as s3
from constructs import Construct

from emd_constructs.buckets import private_bucket
from emd_constructs.gateway_edge import ALB_IDLE_TIMEOUT, CloudFrontEdge, Exposure, gateway_waits
from emd_constructs.hygiene import set_depends_on
from emd_constructs.log_groups import log_group
from emd_constructs.nag import acknowledge
from emd_constructs.regional import RegionalFacts
from model_specs.errors import EmdUserError
from model_specs.registry import API_KEY_SECRETS_ARN_NAME, ASYNC_IO_PREFIX, REGISTRY_PREFIX

REPO_ROOT = Path(__file__).resolve().parent.parent
GATEWAY_DOCKERFILE = "serving/gateway/Dockerfile"
CONTAINER_PORT = 8080
HEALTH_PATH = "/health"
ENDPOINT_NAME_PREFIX = "emd-"
# .dockerignore semantics: only what the Dockerfile copies is hashed and shipped, so editing the README or
# tests does not rebuild or redeploy the gateway (and .venv, node_modules, cdk.out, .git never travel).
ASSET_EXCLUDES = ["*", "!model_specs", "!serving", "**/__pycache__", "**/*.pyc", "serving/**/tests"]


@dataclass(frozen=True)
class GatewayScaling:
    min_tasks: int = 2
    max_tasks: int = 10
    requests_per_target: int = 500
    cpu: int = 512
    memory_mib: int = 1024


def gateway_image(facts: RegionalFacts, root: Path = REPO_ROOT) -> ecs.ContainerImage:
    """The gateway image built by `cdk deploy` from the repository (build context: the repo root)."""
    if not (root / GATEWAY_DOCKERFILE).exists():
        raise EmdUserError(
            f"{root / GATEWAY_DOCKERFILE} is missing: the gateway image is built from it. Synthesize with "
            f"-c gateway=false to deploy without the gateway"
        )
    platform = ecr_assets.Platform.LINUX_ARM64 if facts.fargate_arm64 else ecr_assets.Platform.LINUX_AMD64
    return ecs.ContainerImage.from_asset(
        str(root),
        file=GATEWAY_DOCKERFILE,
        platform=platform,
        exclude=ASSET_EXCLUDES,
        ignore_mode=cdk.IgnoreMode.DOCKER,
    )


class GatewayService(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        vpc: ec2.IVpc,
        task_subnets: list[ec2.ISubnet],
        image: ecs.ContainerImage,
        facts: RegionalFacts,
        certificate_arn: str | None,
        allowed_cidrs: tuple[str, ...],
        exposure: Exposure,
        scaling: GatewayScaling | None = None,
        empty_log_bucket_on_delete: bool = True,
    ) -> None:
        """empty_log_bucket_on_delete=False: no auto-delete custom resource (a Lambda asset) on the ALB log
        bucket, for templates deployed without `cdk bootstrap` (`emd uninstall` empties the bucket)."""
        super().__init__(scope, construct_id)
        scaling = scaling or GatewayScaling()
        stack = cdk.Stack.of(self)

        self.access_logs = private_bucket(
            self,
            "AlbAccessLogs",
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[s3.LifecycleRule(id="expire-alb-logs", expiration=cdk.Duration.days(90))],
            removal_policy=cdk.RemovalPolicy.DESTROY,
            auto_delete_objects=empty_log_bucket_on_delete,
        )
        acknowledge(
            self.access_logs,
            "AwsSolutions-S1",
            "This bucket is the ALB access-log target; logging it again adds cost and no insight.",
        )
        self.alb_security_group = ec2.SecurityGroup(
            self,
            "AlbSecurityGroup",
            vpc=vpc,
            description="EMD gateway load balancer",
            allow_all_outbound=False,
        )
        port = 443 if certificate_arn else 80
        for peer in _client_peers(vpc, exposure, allowed_cidrs):
            self.alb_security_group.add_ingress_rule(peer, ec2.Port.tcp(port), "EMD gateway clients")
        public = exposure.internet_facing_alb
        self.alb = elbv2.ApplicationLoadBalancer(
            self,
            "Alb",
            vpc=vpc,
            internet_facing=public,
            vpc_subnets=ec2.SubnetSelection(
                subnets=None if public else task_subnets,
                subnet_type=ec2.SubnetType.PUBLIC if public else None,
            ),
            security_group=self.alb_security_group,
            drop_invalid_header_fields=True,
            idle_timeout=ALB_IDLE_TIMEOUT,
        )
        self.alb.log_access_logs(self.access_logs, "alb")

        self.cluster = ecs.Cluster(
            self, "Cluster", vpc=vpc, container_insights_v2=ecs.ContainerInsights.ENABLED
        )
        self.task_definition = ecs.FargateTaskDefinition(
            self,
            "Task",
            cpu=scaling.cpu,
            memory_limit_mib=scaling.memory_mib,
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=facts.cpu_architecture,
                operating_system_family=ecs.OperatingSystemFamily.LINUX,
            ),
        )
        self.log_group = log_group(self)
        self.task_definition.add_container(
            "gateway",
            image=image,
            port_mappings=[ecs.PortMapping(container_port=CONTAINER_PORT)],
            environment={
                "EMD_REGISTRY_PREFIX": REGISTRY_PREFIX,
                "AWS_REGION": stack.region,
                # the ALB's addresses are in the VPC: its X-Forwarded-For names the client; no one else's does
                "EMD_TRUSTED_PROXIES": vpc.vpc_cidr_block,
                **gateway_waits(exposure),
            },
            logging=ecs.LogDrivers.aws_logs(stream_prefix="gateway", log_group=self.log_group),
            readonly_root_filesystem=True,
        )
        grant_gateway_access(self.task_definition.task_role, stack)

        self.security_group = ec2.SecurityGroup(
            self, "TaskSecurityGroup", vpc=vpc, description="EMD gateway tasks", allow_all_outbound=True
        )
        self.service = ecs.FargateService(
            self,
            "Service",
            cluster=self.cluster,
            task_definition=self.task_definition,
            desired_count=scaling.min_tasks,
            security_groups=[self.security_group],
            vpc_subnets=ec2.SubnetSelection(subnets=task_subnets),
            assign_public_ip=False,
            circuit_breaker=ecs.DeploymentCircuitBreaker(enable=True, rollback=True),
            min_healthy_percent=100,
            max_healthy_percent=200,
        )

        if certificate_arn:
            listener = self.alb.add_listener(
                "Https",
                port=443,
                protocol=elbv2.ApplicationProtocol.HTTPS,
                certificates=[elbv2.ListenerCertificate.from_arn(certificate_arn)],
                ssl_policy=facts.ssl_policy,
                open=False,
            )
        else:
            listener = self.alb.add_listener(
                "Http", port=80, protocol=elbv2.ApplicationProtocol.HTTP, open=False
            )
        self.listener = listener
        self.target_group = listener.add_targets(
            "Gateway",
            port=CONTAINER_PORT,
            protocol=elbv2.ApplicationProtocol.HTTP,
            targets=[self.service],
            health_check=elbv2.HealthCheck(
                path=HEALTH_PATH, healthy_http_codes="200", interval=cdk.Duration.seconds(15)
            ),
            deregistration_delay=cdk.Duration.seconds(120),
        )
        # the service's LoadBalancers property already references the target group (cfn-lint W3005)
        task_role = self.task_definition.task_role
        set_depends_on(self.service, [listener, task_role.node.find_child("DefaultPolicy"), task_role])
        scaling_target = self.service.auto_scale_task_count(
            min_capacity=scaling.min_tasks, max_capacity=scaling.max_tasks
        )
        scaling_target.scale_on_request_count(
            "RequestsPerTarget",
            requests_per_target=scaling.requests_per_target,
            target_group=self.target_group,
        )
        self.edge: CloudFrontEdge | None = None
        if exposure is Exposure.CLOUDFRONT:
            self.edge = CloudFrontEdge(self, "Edge", alb=self.alb)
            self.url = self.edge.url
        else:
            scheme = "https" if certificate_arn else "http"
            self.url = f"{scheme}://{self.alb.load_balancer_dns_name}"


def _client_peers(vpc: ec2.IVpc, exposure: Exposure, allowed_cidrs: tuple[str, ...]) -> list[ec2.IPeer]:
    """Who may open a connection to the ALB: the given CIDRs; else the world for an internet-facing ALB, the
    VPC for an internal one (CloudFront's VPC-origin interfaces live in the ALB's subnets)."""
    if allowed_cidrs:
        return [ec2.Peer.ipv6(c) if ":" in c else ec2.Peer.ipv4(c) for c in allowed_cidrs]
    if exposure.internet_facing_alb:
        return [ec2.Peer.any_ipv4()]
    return [ec2.Peer.ipv4(vpc.vpc_cidr_block)]


def grant_gateway_access(role: iam.IRole, stack: cdk.Stack) -> None:
    """Registry read, API-key secrets read (emd/<model-id>/<tag>/api-key only: never emd/hf-token), EMD
    SageMaker endpoints invoke, async request objects under
    emd-async/ in this account's buckets: nothing else."""
    registry = REGISTRY_PREFIX.lstrip("/")
    role.add_to_principal_policy(
        iam.PolicyStatement(
            sid="ReadDeploymentRegistry",
            actions=["ssm:GetParametersByPath", "ssm:GetParameter", "ssm:GetParameters"],
            resources=[
                stack.format_arn(service="ssm", resource="parameter", resource_name=registry),
                stack.format_arn(service="ssm", resource="parameter", resource_name=f"{registry}/*"),
            ],
        )
    )
    role.add_to_principal_policy(
        iam.PolicyStatement(
            sid="ReadApiKeys",
            actions=["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
            resources=[
                stack.format_arn(
                    service="secretsmanager",
                    resource="secret",
                    resource_name=API_KEY_SECRETS_ARN_NAME,
                    arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                )
            ],
        )
    )
    invoke = [
        "sagemaker:InvokeEndpoint",
        "sagemaker:InvokeEndpointWithResponseStream",
        "sagemaker:InvokeEndpointAsync",
    ]
    role.add_to_principal_policy(
        iam.PolicyStatement(
            sid="InvokeEmdEndpointsByName",
            actions=invoke,
            resources=[
                stack.format_arn(
                    service="sagemaker", resource="endpoint", resource_name=f"{ENDPOINT_NAME_PREFIX}*"
                )
            ],
        )
    )
    # endpoints with a user-chosen name (service_params.sagemaker_endpoint_name) carry the emd:model-id tag
    role.add_to_principal_policy(
        iam.PolicyStatement(
            sid="InvokeEmdEndpointsByTag",
            actions=invoke,
            resources=[stack.format_arn(service="sagemaker", resource="endpoint", resource_name="*")],
            conditions={"Null": {"aws:ResourceTag/emd:model-id": "false"}},
        )
    )
    # SageMaker async: the gateway uploads the request, reads the answer and deletes both. The bucket is the
    # artifact bucket or a deployment's s3_output_path, known only per deployment; the key prefix and the
    # account condition keep this to EMD's async objects. ListBucket makes a missing answer a 404, not a 403.
    same_account = {"StringEquals": {"s3:ResourceAccount": stack.account}}
    role.add_to_principal_policy(
        iam.PolicyStatement(
            sid="AsyncInferenceObjects",
            actions=["s3:PutObject", "s3:GetObject", "s3:DeleteObject"],
            resources=[
                stack.format_arn(
                    service="s3", region="", account="", resource="*", resource_name=f"*{ASYNC_IO_PREFIX}/*"
                )
            ],
            conditions=same_account,
        )
    )
    role.add_to_principal_policy(
        iam.PolicyStatement(
            sid="AsyncInferenceListing",
            actions=["s3:ListBucket"],
            resources=[stack.format_arn(service="s3", region="", account="", resource="*")],
            conditions={**same_account, "StringLike": {"s3:prefix": [f"*{ASYNC_IO_PREFIX}/*"]}},
        )
    )
