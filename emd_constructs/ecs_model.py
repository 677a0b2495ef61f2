"""An engine as an ECS service on GPU EC2 capacity: ECS GPU AMI, launch template (encrypted gp3 sized to the
model, IMDSv2), Auto Scaling group behind a capacity provider with managed scaling, awsvpc tasks with a GPU
reservation, a real health check on /ping, Cloud Map registration for the gateway, and task autoscaling.

A 'weights' init container (the engine image's `fetch-weights`, so no public image is pulled) copies the
weights from S3 to a host volume mounted at /opt/ml/model; the engine container starts after it succeeded.

Credentials: tasks get theirs from their task role through the ECS agent (169.254.170.2); they cannot reach
the instance role: IMDSv2 with hop limit 1 and ECS_AWSVPC_BLOCK_IMDS (awsvpc task interfaces would otherwise
reach the metadata service directly). The agent itself runs with host networking, one hop away. The host role
may only register its instance with its own cluster: image pulls and awslogs use the task execution role
(ECS_ENABLE_AWSLOGS_EXECUTIONROLE_OVERRIDE), so it writes no log at all.
"""

from __future__ import annotations

import aws_cdk as cdk
import aws_cdk.aws_autoscaling as autoscaling
import aws_cdk.aws_cloudwatch as cw
import aws_cdk.aws_ec2 as ec2
import aws_cdk.aws_ecs as ecs
import aws_cdk.aws_iam as iam
import aws_cdk.aws_servicediscovery as servicediscovery
import aws_cdk.aws_ssm as ssm

from emd_constructs.engine_settings import (
    ENGINE_PORT,
    HEALTH_PATH,
    MODEL_DIR,
    engine_environment,
    startup_seconds,
)
from emd_constructs.gpu_host import FETCH_WEIGHTS, EngineHost, machine_image, root_volume
from emd_constructs.model_alarms import UnhealthyAlarm
from emd_constructs.model_artifacts import ModelArtifacts
from emd_constructs.model_network import ModelNetwork
from emd_constructs.regional import service_principal
from emd_constructs.sagemaker_endpoint import capacity
from emd_constructs.scaling import SCALE_IN_COOLDOWN, SCALE_OUT_COOLDOWN, scale_with_gateway_traffic
from model_specs.deployment import Deployment
from model_specs.registry import PARAM_GATEWAY_NAMESPACE_ID as PARAM_NAMESPACE_ID
from model_specs.registry import PARAM_GATEWAY_NAMESPACE_NAME as PARAM_NAMESPACE_NAME
from model_specs.schema import Accelerator

CPU_TARGET_PERCENT = 70
HEALTH_CHECK = (
    "python3 -c \"import urllib.request; urllib.request.urlopen('http://127.0.0.1:"
    f"{ENGINE_PORT}{HEALTH_PATH}', timeout=5)\" || exit 1"
)


def service_name(deployment: Deployment) -> str:
    """Cloud Map service name (a DNS label, at most 63 characters), keeping the slug's hash."""
    slug = deployment.slug
    return slug if len(slug) <= 63 else slug[:54].rstrip("-") + "-" + slug[-8:]


class EcsModelService(EngineHost):
    def _build(self, d: Deployment, artifacts: ModelArtifacts, network: ModelNetwork) -> str:
        inst = d.instance
        min_cap, max_cap, initial = capacity(d)

        self.cluster = ecs.Cluster(
            self, "Cluster", vpc=network.vpc, container_insights_v2=ecs.ContainerInsights.ENABLED
        )
        host_sg = ec2.SecurityGroup(
            self, "HostSecurityGroup", vpc=network.vpc, description=f"EMD ECS hosts {d.route}: no ingress"
        )
        self.host_role = iam.Role(
            self, "HostRole", assumed_by=service_principal("ec2")
        )
        user_data = ec2.UserData.for_linux()
        template = ec2.LaunchTemplate(
            self,
            "LaunchTemplate",
            instance_type=ec2.InstanceType(inst.name),
            machine_image=machine_image(d),
            # aws-cdk-lib would add ecr:GetAuthorizationToken and logs:CreateLogStream/PutLogEvents on "*" to
            # the ASG's role: it gets an immutable view, and the real role only what the agent needs (below)
            role=self.host_role.without_policy_updates(),
            security_group=host_sg,
            user_data=user_data,
            require_imdsv2=True,
            http_put_response_hop_limit=1,
            block_devices=[root_volume(d)],
            detailed_monitoring=True,
        )
        self.auto_scaling_group = autoscaling.AutoScalingGroup(
            self,
            "Hosts",
            vpc=network.vpc,
            vpc_subnets=network.subnets,
            launch_template=template,
            min_capacity=0,
            max_capacity=max_cap,
        )
        self.capacity_provider = ecs.AsgCapacityProvider(
            self,
            "CapacityProvider",
            auto_scaling_group=self.auto_scaling_group,
            enable_managed_scaling=True,
            enable_managed_termination_protection=False,
            enable_managed_draining=True,
            target_capacity_percent=100,
        )
        self.cluster.add_asg_capacity_provider(self.capacity_provider)
        user_data.add_commands(
            "echo ECS_AWSVPC_BLOCK_IMDS=true >> /etc/ecs/ecs.config",
            "echo ECS_ENABLE_AWSLOGS_EXECUTIONROLE_OVERRIDE=true >> /etc/ecs/ecs.config",
        )
        grant_container_instance(self.host_role, self.cluster)

        task = ecs.Ec2TaskDefinition(self, "Task", network_mode=ecs.NetworkMode.AWS_VPC)
        task.add_volume(name="weights", host=ecs.Host(source_path=f"/opt/emd/{d.slug}"))
        artifacts.grant_weights(task.task_role)
        artifacts.grant_image(task.obtain_execution_role())

        engine_image = ecs.ContainerImage.from_registry(artifacts.image_uri)
        weights = task.add_container(
            "weights",
            image=engine_image,
            essential=False,
            command=[FETCH_WEIGHTS, artifacts.model_data_s3_uri, MODEL_DIR],
            environment={"AWS_REGION": cdk.Stack.of(self).region},
            memory_reservation_mib=512,
            logging=ecs.LogDriver.aws_logs(stream_prefix="weights", log_group=self.log_group),
        )
        weights.add_mount_points(
            ecs.MountPoint(container_path=MODEL_DIR, source_volume="weights", read_only=False)
        )

        linux = None
        if inst.accelerator is Accelerator.inferentia:
            linux = ecs.LinuxParameters(self, "Devices")
            linux.add_devices(
                *[
                    ecs.Device(host_path=f"/dev/neuron{i}", container_path=f"/dev/neuron{i}")
                    for i in range(inst.gpus)
                ]
            )
        # ECS allows a 300 s start period and 10 retries of at most 300 s: a start-up of up to ~55 min
        interval = min(300, max(30, startup_seconds(d) // 10))
        self.engine = task.add_container(
            "engine",
            image=engine_image,
            environment=engine_environment(d),
            memory_reservation_mib=int(inst.memory_gib * 1024 * 0.8),
            gpu_count=inst.gpus if inst.accelerator is Accelerator.gpu else None,
            linux_parameters=linux,
            port_mappings=[ecs.PortMapping(container_port=ENGINE_PORT, name="engine")],
            health_check=ecs.HealthCheck(
                command=["CMD-SHELL", HEALTH_CHECK],
                interval=cdk.Duration.seconds(interval),
                timeout=cdk.Duration.seconds(10),
                retries=10,
                start_period=cdk.Duration.seconds(300),
            ),
            stop_timeout=cdk.Duration.seconds(120),
            logging=ecs.LogDriver.aws_logs(stream_prefix="engine", log_group=self.log_group),
        )
        self.engine.add_mount_points(
            ecs.MountPoint(container_path=MODEL_DIR, source_volume="weights", read_only=True)
        )
        self.engine.add_container_dependencies(
            ecs.ContainerDependency(container=weights, condition=ecs.ContainerDependencyCondition.SUCCESS)
        )

        namespace_id = ssm.StringParameter.value_for_string_parameter(self, PARAM_NAMESPACE_ID)
        namespace = servicediscovery.PrivateDnsNamespace.from_private_dns_namespace_attributes(
            self,
            "Namespace",
            namespace_id=namespace_id,
            namespace_name=ssm.StringParameter.value_for_string_parameter(self, PARAM_NAMESPACE_NAME),
            # the ARN is not rendered by an ECS service registration; built from the id rather than read from
            # /emd/gateway/namespace-arn so the template declares no unused parameter
            namespace_arn=cdk.Stack.of(self).format_arn(
                service="servicediscovery", resource="namespace", resource_name=namespace_id
            ),
        )
        self.service_name = service_name(d)
        self.service = ecs.Ec2Service(
            self,
            "Service",
            cluster=self.cluster,
            task_definition=task,
            # starts serving; with min_capacity 0 the gateway's traffic metrics take it to zero and back
            desired_count=initial,
            # one engine fills a GPU host: replace in place rather than needing a spare host
            min_healthy_percent=0,
            max_healthy_percent=100,
            security_groups=[network.engine_security_group],
            vpc_subnets=network.subnets,
            capacity_provider_strategies=[
                ecs.CapacityProviderStrategy(
                    capacity_provider=self.capacity_provider.capacity_provider_name, weight=1
                )
            ],
            cloud_map_options=ecs.CloudMapOptions(
                cloud_map_namespace=namespace,
                name=self.service_name,
                dns_record_type=servicediscovery.DnsRecordType.A,
                dns_ttl=cdk.Duration.seconds(10),
            ),
            circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True),
        )
        scaling = self.service.auto_scale_task_count(min_capacity=min_cap, max_capacity=max_cap)
        # no per-model load balancer: CPU of the engine process is the available per-task load signal
        scaling.scale_on_cpu_utilization(
            "Cpu",
            target_utilization_percent=CPU_TARGET_PERCENT,
            scale_in_cooldown=SCALE_IN_COOLDOWN,
            scale_out_cooldown=SCALE_OUT_COOLDOWN,
        )
        if min_cap == 0:
            scale_with_gateway_traffic(self, scaling, route=d.route)
        running, desired = (
            cw.Metric(
                namespace="ECS/ContainerInsights",
                metric_name=name,
                dimensions_map={
                    "ClusterName": self.cluster.cluster_name,
                    "ServiceName": self.service.service_name,
                },
                statistic="Average",
                period=cdk.Duration.minutes(5),
            )
            for name in ("RunningTaskCount", "DesiredTaskCount")
        )
        UnhealthyAlarm(
            self,
            "TasksBelowDesired",
            metric=cw.MathExpression(
                expression="desired - running",
                using_metrics={"desired": desired, "running": running},
                period=cdk.Duration.minutes(5),
            ),
            threshold=0,
            comparison=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            description=f"{d.route}: fewer healthy engine tasks than desired for 15 minutes",
        )
        return f"http://{self.service_name}.{namespace.namespace_name}:{ENGINE_PORT}/v1"


def grant_container_instance(role: iam.IRole, cluster: ecs.ICluster) -> None:
    """The ECS agent's calls: register with this cluster and poll it (DiscoverPollEndpoint takes no ARN)."""
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=[
                "ecs:RegisterContainerInstance",
                "ecs:DeregisterContainerInstance",
                "ecs:Submit*",
            ],
            resources=[cluster.cluster_arn],
        )
    )
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["ecs:Poll", "ecs:StartTelemetrySession"],
            resources=[
                cdk.Stack.of(cluster).format_arn(
                    service="ecs", resource="container-instance", resource_name=f"{cluster.cluster_name}/*"
                )
            ],
            conditions={"ArnEquals": {"ecs:cluster": cluster.cluster_arn}},
        )
    )
    role.add_to_principal_policy(
        iam.PolicyStatement(actions=["ecs:DiscoverPollEndpoint"], resources=["*"])
    )
