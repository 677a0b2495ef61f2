"""An engine on a single EC2 instance: ECS-optimized GPU AMI (Docker + NVIDIA runtime, no ECS agent use) from
its public SSM parameter, a systemd unit that copies the weights, pulls the engine image and runs it with
Restart=always; reachable only from the gateway's security group on the engine port; Session Manager, no SSH
key; IMDSv2 with hop limit 1: the weights copy runs with host networking (no extra hop) and reads the
instance role's credentials, the engine container runs on Docker's bridge (one hop more) and cannot;
encrypted gp3. Images are pulled with Amazon ECR's Docker credential helper from the Amazon Linux repositories
and the weights copied by the engine image itself: nothing comes from a public registry (unreachable from
China regions)."""

from __future__ import annotations

import aws_cdk as cdk
import aws_cdk.aws_cloudwatch as cw
import aws_cdk.aws_ec2 as ec2
import aws_cdk.aws_iam as iam
import aws_cdk.aws_logs as logs

from emd_constructs.engine_settings import ENGINE_PORT, MODEL_DIR, engine_environment
from emd_constructs.gpu_host import FETCH_WEIGHTS, EngineHost, docker_device_flags, machine_image, root_volume
from emd_constructs.model_alarms import UnhealthyAlarm
from emd_constructs.model_artifacts import ModelArtifacts
from emd_constructs.model_network import ModelNetwork
from emd_constructs.regional import service_principal
from emd_constructs.tagging import MODEL_ID_KEY, TAG_KEY
from model_specs.deployment import Deployment

UNIT = "emd-engine"
ENV_FILE = "/etc/emd/engine.env"
DOCKER_CONFIG = "/etc/emd/docker"


def _prepare_script(artifacts: ModelArtifacts, region: str) -> str:
    registry = cdk.Fn.select(0, cdk.Fn.split("/", artifacts.image_uri))
    return "\n".join(
        [
            "#!/bin/bash",
            "set -euo pipefail",
            f"export DOCKER_CONFIG={DOCKER_CONFIG} AWS_REGION={region}",
            "command -v docker-credential-ecr-login >/dev/null"
            " || dnf install -y -q amazon-ecr-credential-helper",
            f"mkdir -p {DOCKER_CONFIG} {MODEL_DIR}",
            f'echo \'{{"credHelpers": {{"{registry}": "ecr-login"}}}}\' > {DOCKER_CONFIG}/config.json',
            f"docker pull {artifacts.image_uri}",
            f"docker run --rm --network host -e AWS_REGION={region} -v {MODEL_DIR}:{MODEL_DIR} "
            f"{artifacts.image_uri} {FETCH_WEIGHTS} {artifacts.model_data_s3_uri} {MODEL_DIR}",
        ]
    )


def _unit(deployment: Deployment, artifacts: ModelArtifacts, log_group: logs.ILogGroup, region: str) -> str:
    logging = (
        f"--log-driver awslogs --log-opt awslogs-group={log_group.log_group_name} "
        f"--log-opt awslogs-region={region}"
    )
    return "\n".join(
        [
            "[Unit]",
            f"Description=EMD engine {deployment.route}",
            "After=docker.service network-online.target",
            "Requires=docker.service",
            "",
            "[Service]",
            "Restart=always",
            "RestartSec=15",
            "TimeoutStartSec=0",
            f"Environment=DOCKER_CONFIG={DOCKER_CONFIG}",
            f"ExecStartPre=-/usr/bin/docker rm -f {UNIT}",
            "ExecStartPre=/usr/local/bin/emd-prepare",
            f"ExecStart=/usr/bin/docker run --rm --name {UNIT} {docker_device_flags(deployment)} "
            f"-p {ENGINE_PORT}:{ENGINE_PORT} --env-file {ENV_FILE} -v {MODEL_DIR}:{MODEL_DIR}:ro {logging} "
            f"{artifacts.image_uri}",
            f"ExecStop=/usr/bin/docker stop -t 90 {UNIT}",
            "",
            "[Install]",
            "WantedBy=multi-user.target",
        ]
    )


class Ec2ModelInstance(EngineHost):
    def _build(self, d: Deployment, artifacts: ModelArtifacts, network: ModelNetwork) -> str:
        region = cdk.Stack.of(self).region
        self.role = iam.Role(self, "Role", assumed_by=service_principal("ec2"))
        artifacts.grant_weights(self.role)
        artifacts.grant_image(self.role)
        self.log_group.grant_write(self.role)

        env_lines = "\n".join(f"{k}={v}" for k, v in sorted(engine_environment(d).items()))
        prepare = _prepare_script(artifacts, region)
        unit = _unit(d, artifacts, self.log_group, region)
        user_data = ec2.UserData.for_linux()
        user_data.add_commands(
            "set -euo pipefail",
            "mkdir -p /etc/emd",
            f"cat > {ENV_FILE} <<'EMD_ENV'\n{env_lines}\nEMD_ENV",
            f"cat > /usr/local/bin/emd-prepare <<'EMD_PREPARE'\n{prepare}\nEMD_PREPARE",
            "chmod 0755 /usr/local/bin/emd-prepare",
            f"cat > /etc/systemd/system/{UNIT}.service <<'EMD_UNIT'\n{unit}\nEMD_UNIT",
            # the ECS agent is not used on this host
            "systemctl disable --now ecs || true",
            "systemctl daemon-reload",
            f"systemctl enable --now --no-block {UNIT}.service",
        )
        self.instance = ec2.Instance(
            self,
            "Instance",
            vpc=network.vpc,
            vpc_subnets=ec2.SubnetSelection(subnets=network.subnets.subnets[:1]),
            instance_type=ec2.InstanceType(d.instance_type),
            machine_image=machine_image(d),
            security_group=network.engine_security_group,
            role=self.role,
            user_data=user_data,
            user_data_causes_replacement=True,
            block_devices=[root_volume(d)],
            detailed_monitoring=True,
            ssm_session_permissions=True,
        )
        # the subnet decides the AZ; CDK would render its imported placeholder
        self.instance.instance.add_property_deletion_override("AvailabilityZone")
        # IMDSv2 required, hop limit 1: only processes in the host's network namespace (the Docker daemon,
        # the host-network weights copy) reach the instance role's credentials, not the engine container
        metadata = ec2.CfnLaunchTemplate(
            self,
            "MetadataOptions",
            launch_template_data=ec2.CfnLaunchTemplate.LaunchTemplateDataProperty(
                metadata_options=ec2.CfnLaunchTemplate.MetadataOptionsProperty(
                    http_tokens="required", http_put_response_hop_limit=1, http_endpoint="enabled"
                )
            ),
            tag_specifications=[
                ec2.CfnLaunchTemplate.LaunchTemplateTagSpecificationProperty(
                    resource_type="launch-template",
                    tags=[
                        cdk.CfnTag(key=MODEL_ID_KEY, value=d.model_id),
                        cdk.CfnTag(key=TAG_KEY, value=d.model_tag),
                    ],
                )
            ],
        )
        self.instance.instance.launch_template = ec2.CfnInstance.LaunchTemplateSpecificationProperty(
            launch_template_id=metadata.ref, version=metadata.attr_latest_version_number
        )
        UnhealthyAlarm(
            self,
            "StatusCheckFailed",
            metric=cw.Metric(
                namespace="AWS/EC2",
                metric_name="StatusCheckFailed",
                dimensions_map={"InstanceId": self.instance.instance_id},
                statistic="Maximum",
                period=cdk.Duration.minutes(1),
            ),
            threshold=0,
            comparison=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            description=f"{d.route}: the engine instance fails its status checks",
        )
        return cdk.Fn.join("", ["http://", self.instance.instance_private_ip, f":{ENGINE_PORT}/v1"])
