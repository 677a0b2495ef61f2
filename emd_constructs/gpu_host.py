"""What the ECS and EC2 targets share: their base construct, the AMI for the instance's accelerator, the root
volume, device flags."""

from __future__ import annotations

import aws_cdk.aws_ec2 as ec2
import aws_cdk.aws_ecs as ecs
from constructs import Construct

from emd_constructs.engine_settings import root_volume_gib
from emd_constructs.log_groups import log_group
from emd_constructs.model_artifacts import ModelArtifacts
from emd_constructs.model_network import ModelNetwork
from model_specs.deployment import Deployment
from model_specs.schema import Accelerator

# the engine image's command that copies the weights from S3 (serving/engine/weights.py)
FETCH_WEIGHTS = "fetch-weights"


def ami_hardware(deployment: Deployment) -> ecs.AmiHardwareType:
    return {
        Accelerator.gpu: ecs.AmiHardwareType.GPU,
        Accelerator.inferentia: ecs.AmiHardwareType.NEURON,
        Accelerator.cpu: ecs.AmiHardwareType.STANDARD,
    }[deployment.instance.accelerator]


def machine_image(deployment: Deployment) -> ec2.IMachineImage:
    """ECS-optimized Amazon Linux 2023 (GPU / Neuron / standard) through its public SSM parameter. Not Amazon
    Linux 2: its ECS-optimized AMIs reached end of life on 2026-06-30."""
    return ecs.EcsOptimizedImage.amazon_linux2023(ami_hardware(deployment))


def root_volume(deployment: Deployment) -> ec2.BlockDevice:
    return ec2.BlockDevice(
        device_name="/dev/xvda",
        volume=ec2.BlockDeviceVolume.ebs(
            root_volume_gib(deployment),
            volume_type=ec2.EbsDeviceVolumeType.GP3,
            encrypted=True,
            delete_on_termination=True,
        ),
    )


def docker_device_flags(deployment: Deployment) -> str:
    inst = deployment.instance
    if inst.accelerator is Accelerator.gpu:
        return "--gpus all"
    if inst.accelerator is Accelerator.inferentia:
        return " ".join(f"--device /dev/neuron{i}" for i in range(inst.gpus))
    return ""


class EngineHost(Construct):
    """An engine the gateway reaches over HTTP inside the model network (an ECS service or an EC2 instance).
    A subclass builds its hosts in `_build`, writes the engine's logs to `self.log_group` and returns the
    OpenAI base URL the gateway registers (`self.base_url`)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        deployment: Deployment,
        artifacts: ModelArtifacts,
        network: ModelNetwork,
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_group = log_group(self)
        self.base_url = self._build(deployment, artifacts, network)

    def _build(self, d: Deployment, artifacts: ModelArtifacts, network: ModelNetwork) -> str:
        raise NotImplementedError
