"""What the CLI reads about the shared stacks: the bootstrap's SSM parameters (one call), whether EMD is
bootstrapped in a region, and the EMD version that deployed each shared stack (its emd:version stack tag)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from emd_cli.aws.session import AwsSession
from emd_cli.aws.stacks import stack_status, tags_of
from model_specs.errors import EmdUserError
from model_specs.registry import (
    ALLOWED_CIDRS_ANY,
    PARAM_ARTIFACT_BUCKET,
    PARAM_CODEBUILD_PROJECT,
    PARAM_ECR_REPOSITORY,
    PARAM_GATEWAY_ALLOWED_CIDRS,
    PARAM_GATEWAY_EXPOSURE,
    PARAM_GATEWAY_URL,
    PARAM_GATEWAY_VPC_ID,
    PARAM_PIPELINE,
)

BOOTSTRAP_STACK = "EMD-Bootstrap"  # emd_stacks.bootstrap.STACK_NAME (not imported: that module needs aws_cdk)
GATEWAY_STACK = "EMD-Gateway"
VERSION_TAG = "emd:version"
COMPONENT_TAG = "emd:component"


@dataclass(frozen=True)
class Bootstrap:
    region: str
    bucket: str
    repository: str
    project: str
    pipeline: str
    gateway_url: str | None
    gateway_vpc_id: str | None
    gateway_exposure: str | None = None  # /emd/gateway/exposure (None: a gateway older than it)
    gateway_allowed_cidrs: tuple[str, ...] = ()  # /emd/gateway/allowed-cidrs; () admits any client


def read_bootstrap(aws: AwsSession) -> Bootstrap | None:
    """None when the bootstrap's parameters are not all there."""
    names = [
        PARAM_ARTIFACT_BUCKET,
        PARAM_ECR_REPOSITORY,
        PARAM_CODEBUILD_PROJECT,
        PARAM_PIPELINE,
        PARAM_GATEWAY_URL,
        PARAM_GATEWAY_VPC_ID,
        PARAM_GATEWAY_EXPOSURE,
        PARAM_GATEWAY_ALLOWED_CIDRS,
    ]
    found = {
        p["Name"]: p["Value"] for p in aws.client("ssm").get_parameters(Names=names).get("Parameters", [])
    }
    if not all(n in found for n in names[:4]):
        return None
    return Bootstrap(
        region=aws.region,
        bucket=found[PARAM_ARTIFACT_BUCKET],
        repository=found[PARAM_ECR_REPOSITORY],
        project=found[PARAM_CODEBUILD_PROJECT],
        pipeline=found[PARAM_PIPELINE],
        gateway_url=found.get(PARAM_GATEWAY_URL),
        gateway_vpc_id=found.get(PARAM_GATEWAY_VPC_ID),
        gateway_exposure=found.get(PARAM_GATEWAY_EXPOSURE),
        gateway_allowed_cidrs=parse_allowed_cidrs(found.get(PARAM_GATEWAY_ALLOWED_CIDRS)),
    )


def parse_allowed_cidrs(value: str | None) -> tuple[str, ...]:
    if not value or value == ALLOWED_CIDRS_ANY:
        return ()
    return tuple(c for c in value.split(",") if c)


def require_bootstrap(aws: AwsSession) -> Bootstrap:
    info = read_bootstrap(aws)
    if info is None:
        raise EmdUserError(
            f"EMD is not bootstrapped in {aws.region} (no {BOOTSTRAP_STACK} parameters): run "
            f"`emd bootstrap --region {aws.region}` first"
        )
    return info


def deployed_version(aws: AwsSession, stack: str) -> tuple[str | None, str | None]:
    """(stack status, emd:version tag) — (None, None) when the stack does not exist."""
    described = stack_status(aws.client("cloudformation"), stack)
    if described is None:
        return None, None
    return described["StackStatus"], tags_of(described).get(VERSION_TAG)


def version_key(version: str | None) -> tuple[int, ...] | None:
    """'0.10.2' -> (0, 10, 2); None when there are no numbers to compare."""
    parts = re.findall(r"\d+", (version or "").split("+")[0])
    return tuple(int(p) for p in parts) if parts else None
