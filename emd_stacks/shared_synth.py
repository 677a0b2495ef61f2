"""EMD-Bootstrap and EMD-Gateway as plain CloudFormation templates for `emd bootstrap`: no BootstrapVersion
parameter or rule, no file or Docker asset (the gateway image comes from the bootstrap's ECR repository by
tag), so they deploy in an account that never ran `cdk bootstrap`, from a machine without Docker."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk

from emd_stacks.bootstrap import STACK_NAME as BOOTSTRAP_STACK
from emd_stacks.bootstrap import BootstrapStack
from emd_stacks.context import AppConfig
from emd_stacks.gateway import STACK_NAME as GATEWAY_STACK
from emd_stacks.gateway import GatewayStack
from emd_stacks.synth import cloudformation_app


@dataclass(frozen=True)
class SharedTemplates:
    bootstrap: dict[str, Any]
    gateway: dict[str, Any] | None  # None with config.gateway False


class AssetsFound(RuntimeError):
    """A shared stack references a CDK asset: a bug in EMD (the template would need `cdk bootstrap`)."""


def shared_app(
    config: AppConfig,
    outdir: str | Path,
    *,
    gateway_image_tag: str | None,
    lookups: dict[str, Any] | None = None,
) -> cdk.App:
    """The App holding EMD-Bootstrap (and EMD-Gateway when config.gateway), not synthesized yet.
    gateway_image_tag is required with the gateway; lookups: context values the cdk CLI would have looked up
    (the VPC of config.vpc_id)."""
    app = cloudformation_app(outdir)
    for key, value in (lookups or {}).items():
        app.node.set_context(key, value)
    env = cdk.Environment(account=config.account, region=config.region)
    BootstrapStack(app, config=config, env=env, asset_free=True)
    if config.gateway:
        if not gateway_image_tag:
            raise ValueError("the gateway stack needs the tag of the gateway image built by the bootstrap")
        GatewayStack(app, config=config, env=env, image_tag=gateway_image_tag)
    return app


def synth_shared_stacks(
    config: AppConfig,
    outdir: str | Path,
    *,
    gateway_image_tag: str | None,
    lookups: dict[str, Any] | None = None,
) -> SharedTemplates:
    assembly = shared_app(config, outdir, gateway_image_tag=gateway_image_tag, lookups=lookups).synth()
    refuse_assets(Path(assembly.directory))
    templates = {s.stack_name: s.template for s in assembly.stacks}
    return SharedTemplates(bootstrap=templates[BOOTSTRAP_STACK], gateway=templates.get(GATEWAY_STACK))


def refuse_assets(outdir: Path) -> None:
    """AssetsFound when the cloud assembly in outdir references a file or Docker asset."""
    for manifest in outdir.glob("*.assets.json"):
        data = json.loads(manifest.read_text())
        # the template itself is listed as a file asset of its own stack: it is passed inline instead
        assets = [
            v.get("displayName", k)
            for k, v in data.get("files", {}).items()
            if not str(v.get("source", {}).get("path", "")).endswith(".template.json")
        ] + [v.get("displayName", k) for k, v in data.get("dockerImages", {}).items()]
        if assets:
            raise AssetsFound(f"{manifest.name} references CDK assets: {', '.join(assets)}")
