"""Deploy the top-level stacks of a CDK cloud assembly without the cdk CLI, as `cdk deploy` does with the
default synthesizer: each stack's file assets go to their CDK staging bucket (as cdk-assets puts them), then
the stack is created or updated through a change set (emd_cli.aws.stacks). `emd gitops init` deploys
EMD-GitOps and CodePipeline's cross-region support stacks this way. Docker image and directory assets are
refused: EMD's GitOps stacks have none.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from emd_cli.aws.s3 import https_url, upload
from emd_cli.aws.session import AwsSession
from emd_cli.aws.stacks import StackResult, deploy_stack
from model_specs.errors import EmdUserError


@dataclass(frozen=True)
class AssemblyStack:
    name: str
    region: str
    tags: dict[str, str]
    template_file: str
    published: bool  # its template is a file asset (default synthesizer); support stacks inline theirs


def assembly_stacks(outdir: Path, default_region: str) -> list[AssemblyStack]:
    """The assembly's top-level stacks, the ones without published templates (support stacks) first."""
    manifest = json.loads((outdir / "manifest.json").read_text())
    stacks = []
    for artifact_id, artifact in manifest["artifacts"].items():
        if artifact.get("type") != "aws:cloudformation:stack":
            continue
        props = artifact["properties"]
        region = artifact["environment"].rsplit("/", 1)[-1]
        stacks.append(
            AssemblyStack(
                name=props.get("stackName", artifact_id),
                region=default_region if region == "unknown-region" else region,
                tags=props.get("tags", {}),
                template_file=props["templateFile"],
                published=bool(props.get("stackTemplateAssetObjectUrl")),
            )
        )
    return sorted(stacks, key=lambda s: s.published)


def deploy_assembly(aws: AwsSession, outdir: Path, console: Console) -> list[StackResult]:
    """Publish each stack's file assets and deploy it in its region; the results in deployment order."""
    results = []
    for stack in assembly_stacks(outdir, aws.region):
        here = aws.in_region(stack.region)
        template_upload = publish_assets(here, outdir, stack)
        template = json.loads((outdir / stack.template_file).read_text())
        results.append(
            deploy_stack(here, name=stack.name, template=template, console=console, tags=stack.tags,
                         upload=template_upload)
        )  # fmt: skip
    return results


def publish_assets(aws: AwsSession, outdir: Path, stack: AssemblyStack) -> Callable[[bytes], str] | None:
    """Upload the stack's file assets except its template; return how to upload the template (to its own
    asset destination, when CloudFormation needs it by URL), or None when it has no template asset."""
    manifest_path = outdir / f"{stack.name}.assets.json"
    if not manifest_path.exists():
        return None
    manifest = json.loads(manifest_path.read_text())
    if manifest.get("dockerImages"):
        raise EmdUserError(f"{stack.name} has Docker image assets, which emd does not publish")
    template_destination: dict[str, Any] | None = None
    for asset in manifest.get("files", {}).values():
        source = outdir / asset["source"]["path"]
        if source.is_dir():
            raise EmdUserError(
                f"{stack.name} has a directory asset ({source.name}), which emd does not publish"
            )
        for destination in asset["destinations"].values():
            if asset["source"]["path"] == stack.template_file:
                template_destination = destination
            else:
                _put(aws, destination, source.read_bytes())
    if template_destination is None:
        return None
    chosen = template_destination
    return lambda body: _put(aws, chosen, body)


def _put(aws: AwsSession, destination: dict[str, Any], body: bytes) -> str:
    """Upload to an asset destination (its ${AWS::…} placeholders filled in); return its https URL."""
    where = aws.in_region(destination["region"])
    bucket, key = (_placeholders(destination[k], where) for k in ("bucketName", "objectKey"))
    upload(where, bucket, key, body)
    return https_url(where, bucket, key)


def _placeholders(text: str, aws: AwsSession) -> str:
    return (
        text.replace("${AWS::AccountId}", aws.account_id)
        .replace("${AWS::Region}", aws.region)
        .replace("${AWS::Partition}", aws.partition)
    )
