"""Helpers for the model-stack tests: build many model stacks in one App, render registry JSON that contains
CloudFormation intrinsics, find resources by type."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from model_specs.deployment import Deployment, resolve_deployment
from tests.unit.stack_fixtures import make_app, resources_of


@dataclass(frozen=True)
class Variant:
    model_id: str
    instance_type: str
    engine_type: str
    service_type: str
    region: str = "us-east-1"
    model_tag: str = "dev"
    extra_params: dict[str, Any] | None = None
    stack_kwargs: dict[str, Any] = field(default_factory=dict)

    def deployment(self) -> Deployment:
        return resolve_deployment(
            model_id=self.model_id,
            instance_type=self.instance_type,
            engine_type=self.engine_type,
            service_type=self.service_type,
            region=self.region,
            model_tag=self.model_tag,
            extra_params=self.extra_params,
        )


def direct_kwargs(stack_kwargs: dict[str, Any]) -> dict[str, Any]:
    """A variant that neither fills pipeline parameters nor brings an image is what `npx cdk deploy -c
    model_id=…` synthesizes: app.py has the stack create its own API key secret."""
    direct = not stack_kwargs.get("artifact_parameters") and not stack_kwargs.get("image_uri")
    return {"own_api_key": direct, **stack_kwargs}


def build_app(outdir: Path, variants: dict[str, Variant]):  # type: ignore[no-untyped-def]
    from emd_stacks.model import ModelStack

    app = make_app(outdir)
    stacks = {}
    for name, v in variants.items():
        d = v.deployment()
        stacks[name] = ModelStack(app, d, **direct_kwargs(v.stack_kwargs))
    return app, stacks


def render(value: Any) -> str:
    """Flatten Fn::Join/Ref/GetAtt into text with <Ref:X> / <GetAtt:X.Y> placeholders."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        if "Fn::Join" in value:
            sep, parts = value["Fn::Join"]
            return sep.join(render(p) for p in parts)
        if "Ref" in value:
            return f"<Ref:{value['Ref']}>"
        if "Fn::GetAtt" in value:
            return "<GetAtt:" + ".".join(value["Fn::GetAtt"]) + ">"
        if "Fn::Select" in value:
            return f"<Select:{value['Fn::Select'][0]}:{render(value['Fn::Select'][1])}>"
        if "Fn::Split" in value:
            return f"<Split:{render(value['Fn::Split'][1])}>"
    return json.dumps(value)


def with_build_outputs(text: str) -> str:
    """Rendered text with the build custom resource's outputs (GetAtt placeholders) as it returns them."""
    image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/emd:vllm-0123"
    text = re.sub(r"<GetAtt:\w+\.ImageUri>", image, text)
    return re.sub(r"<GetAtt:\w+\.ModelDataS3Uri>", "s3://emd-artifacts/models/m/0123abcd/", text)


def registry_entry(template: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    (param,) = [
        r
        for r in resources_of(template, "AWS::SSM::Parameter").values()
        if str(r["Properties"].get("Name", "")).startswith("/emd/models/")
    ]
    return param["Properties"]["Name"], json.loads(render(param["Properties"]["Value"]))


def one(template: dict[str, Any], cfn_type: str) -> dict[str, Any]:
    found = list(resources_of(template, cfn_type).values())
    assert len(found) == 1, f"{len(found)} {cfn_type} resources"
    return found[0]["Properties"]


def ssm_parameter_logical_id(template: dict[str, Any], ssm_name: str) -> str:
    for logical_id, p in template.get("Parameters", {}).items():
        if p.get("Default") == ssm_name and "AWS::SSM::Parameter::Value" in p.get("Type", ""):
            return logical_id
    raise AssertionError(f"no SSM-typed template parameter for {ssm_name}")
