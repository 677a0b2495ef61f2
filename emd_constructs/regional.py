"""Regional facts decided at synth time in Python (no CloudFormation Conditions).

China regions (aws-cn) lag the commercial partition for a few features EMD uses; each choice here is
the conservative one that synthesizes and deploys there.
"""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk.aws_ecs as ecs
import aws_cdk.aws_elasticloadbalancingv2 as elbv2
import aws_cdk.aws_iam as iam

from model_specs.regions import region_info

# An AWS service's name ('<service>.amazonaws.com') is the same in every partition, aws-cn included: it
# names a service principal, a service-linked role's service or iam:PassedToService, never an endpoint, and
# emd_stacks.template_checks skips it in the China literal check. Endpoints and ARNs come from RegionInfo and
# Stack.format_arn.
SERVICE_NAME_SUFFIX = "amazonaws.com"


def aws_service(name: str) -> str:
    """'ec2' -> 'ec2.amazonaws.com'."""
    return f"{name}.{SERVICE_NAME_SUFFIX}"


def service_principal(name: str) -> iam.ServicePrincipal:
    return iam.ServicePrincipal(aws_service(name))


@dataclass(frozen=True)
class RegionalFacts:
    region: str
    is_china: bool
    # Fargate on Graviton (arm64) is not offered in the China regions: x86_64 there.
    fargate_arm64: bool
    # TLS 1.3 + 1.2 policy where offered; the TLS 1.2-only forward-secrecy policy otherwise.
    ssl_policy: elbv2.SslPolicy
    # where the build downloads weights from by default
    weights_hub: str
    # pip index for the build container (PyPI is slow or unreachable from the China regions)
    pip_index_url: str | None

    @property
    def cpu_architecture(self) -> ecs.CpuArchitecture:
        return ecs.CpuArchitecture.ARM64 if self.fargate_arm64 else ecs.CpuArchitecture.X86_64


def regional_facts(region: str) -> RegionalFacts:
    info = region_info(region)
    if info.is_china:
        return RegionalFacts(
            region=info.name,
            is_china=True,
            fargate_arm64=False,
            ssl_policy=elbv2.SslPolicy.FORWARD_SECRECY_TLS12_RES_GCM,
            weights_hub="modelscope",
            pip_index_url="https://mirrors.aliyun.com/pypi/simple/",
        )
    return RegionalFacts(
        region=info.name,
        is_china=False,
        fargate_arm64=True,
        ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS,
        weights_hub="huggingface",
        pip_index_url=None,
    )
