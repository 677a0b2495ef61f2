"""Every kind of template EMD synthesizes, in one App and one directory: the shared stacks (us-east-1 and
cn-north-1, each gateway exposure) and model stacks of all four service types, with and without scale to
zero, in both regions, in the pipeline's parameter mode and with a given VPC / output path. Used by the
checkov scan and the IAM census (tests/unit/conftest.py: one session fixture)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import aws_cdk.aws_ecs as ecs

from emd_stacks.bootstrap import BootstrapStack
from emd_stacks.context import AppConfig
from emd_stacks.gateway import GatewayStack
from emd_stacks.model import ModelStack
from tests.unit.model_stack_helpers import Variant, direct_kwargs
from tests.unit.stack_fixtures import make_app

SERVICE_TYPES = ("sagemaker_realtime", "sagemaker_async", "ecs", "ec2")
REGION_MODELS = {
    "us-east-1": ("Qwen2.5-7B-Instruct", "g5.2xlarge", "vllm"),
    "cn-north-1": ("SmolLM2-135M-Instruct-GGUF", "g4dn.xlarge", "llama.cpp"),
}
CERT = "arn:{partition}:acm:{region}:123456789012:certificate/12345678-1234-1234-1234-123456789012"
# gateway variants per region: (name, AppConfig options)
GATEWAYS = {
    "us-east-1": {
        "internal": {},
        "cloudfront": {"cloudfront": True},
        "https": {"certificate_arn": CERT.format(partition="aws", region="us-east-1")},
        "insecure": {"allow_insecure_http": True},
    },
    "cn-north-1": {
        "internal": {},
        "https": {"certificate_arn": CERT.format(partition="aws-cn", region="cn-north-1")},
    },
}


@dataclass(frozen=True)
class Synthesized:
    region: str
    kind: str  # bootstrap | gateway | model (what the pipeline deploys) | direct (npx cdk deploy -c model_id)
    template: dict[str, Any]
    file: Path


def model_variants() -> dict[str, Variant]:
    variants = {}
    for region, (model, instance, engine) in REGION_MODELS.items():
        for service in SERVICE_TYPES:
            for zero in (False, True):
                no_ic = service == "sagemaker_realtime" and region.startswith("cn-")
                if zero and (service == "ec2" or no_ic):
                    continue  # EC2 has no scaling; inference components are not offered in China
                tag = f"{service.replace('sagemaker_', 'sm').replace('_', '')}{'zero' if zero else ''}"
                variants[f"{region}/{tag}"] = Variant(
                    model, instance, engine, service, region=region, model_tag=tag,
                    extra_params={"service_params": {"min_capacity": 0, "max_capacity": 2}} if zero else None,
                    stack_kwargs={"artifact_parameters": True},
                )  # fmt: skip
    variants["us-east-1/ecsvpc"] = Variant(
        *REGION_MODELS["us-east-1"], "ecs", model_tag="ecsvpc",
        extra_params={"service_params": {
            "vpc_id": "vpc-0123456789abcdef0",
            "subnet_ids": ["subnet-0aaaaaaaaaaaaaaa1", "subnet-0bbbbbbbbbbbbbbb2"],
        }},
        stack_kwargs={"artifact_parameters": True},
    )  # fmt: skip
    variants["us-east-1/asyncout"] = Variant(
        *REGION_MODELS["us-east-1"], "sagemaker_async", model_tag="asyncout",
        extra_params={"service_params": {"s3_output_path": "s3://my-results/emd"}},
        stack_kwargs={"artifact_parameters": True},
    )  # fmt: skip
    # what `npx cdk deploy -c model_id=…` synthesizes: the stack's own build and API key secret
    for region, (model, instance, engine) in REGION_MODELS.items():
        variants[f"{region}/direct"] = Variant(
            model, instance, engine, "sagemaker_async", region=region, model_tag="direct"
        )
    return variants


def synthesize_all(outdir: Path) -> dict[str, Synthesized]:
    """Synthesize everything; return {name: Synthesized}; each template is also copied to outdir/flat."""
    app = make_app(outdir / "assembly")
    kinds: dict[str, tuple[str, str, cdk.Stack]] = {}
    image = ecs.ContainerImage.from_registry("emd-gateway:test")  # no Docker asset to build
    for region, gateways in GATEWAYS.items():
        env = cdk.Environment(region=region)
        for name, options in gateways.items():
            stage = cdk.Stage(app, f"{region}-{name}")
            if name == "internal":
                kinds[f"{region}/bootstrap"] = (
                    region, "bootstrap", BootstrapStack(stage, config=AppConfig(region=region), env=env)
                )
            gateway = GatewayStack(stage, config=AppConfig(region=region, **options), env=env, image=image)
            kinds[f"{region}/gateway-{name}"] = (region, "gateway", gateway)
    for name, variant in model_variants().items():
        kwargs = direct_kwargs(variant.stack_kwargs)
        stack = ModelStack(app, variant.deployment(), **kwargs)
        kinds[name] = (variant.region, "direct" if kwargs["own_api_key"] else "model", stack)
    assembly = app.synth()
    flat = outdir / "flat"
    flat.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, (region, kind, stack) in kinds.items():
        source = Path(_artifact(assembly, stack).template_full_path)
        target = flat / f"{name.replace('/', '__')}.template.json"
        target.write_text(source.read_text())
        out[name] = Synthesized(region, kind, json.loads(source.read_text()), target)
    return out


def _artifact(assembly: cdk.cx_api.CloudAssembly, stack: cdk.Stack) -> cdk.cx_api.CloudFormationStackArtifact:
    stage = cdk.Stage.of(stack)
    if isinstance(stage, cdk.App) or stage is None:
        return assembly.get_stack_artifact(stack.artifact_id)
    return assembly.get_nested_assembly(stage.artifact_id).get_stack_artifact(stack.artifact_id)
