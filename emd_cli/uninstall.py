"""`emd uninstall`: remove EMD-Gateway and EMD-Bootstrap from a region, once no model deployment is left.

The shared stacks carry no auto-delete custom resource (they deploy without `cdk bootstrap`), so their
buckets and image repository are emptied here, through the API, before each stack is deleted.
"""

from __future__ import annotations

from typing import Any

import click

from emd_cli.options import confirm, default_region, profile_option, region_option, yes_option


@click.command("uninstall", short_help="Remove EMD's shared stacks from a region.")
@region_option
@profile_option
@yes_option
def uninstall(region: str | None, profile: str | None, yes: bool) -> None:
    """Remove EMD-Gateway and EMD-Bootstrap (with the cached weights and engine images) from a region.
    Refuses while model deployments remain: `emd destroy` them first.

    \b
    Examples:
      emd uninstall --region us-east-1
      emd uninstall --region cn-north-1 --yes
    """
    from emd_cli.aws.shared_stacks import BOOTSTRAP_STACK, GATEWAY_STACK
    from emd_cli.aws.stacks import stack_status
    from emd_cli.render import console
    from emd_cli.targets.aws import AwsTarget, delete_weights_parameters
    from model_specs.errors import EmdUserError

    out = console()
    target = AwsTarget(default_region(region), profile)
    aws = target.session()
    remaining = target.statuses()
    if remaining:
        routes = ", ".join(f"{s.route} ({s.stage})" for s in remaining)
        raise EmdUserError(
            f"{len(remaining)} model deployment(s) remain in {aws.region}: {routes}. Remove each with "
            f"`emd destroy <model-id>/<tag> --region {aws.region}`, then run `emd uninstall` again"
        )
    cfn = aws.client("cloudformation")
    present = [name for name in (GATEWAY_STACK, BOOTSTRAP_STACK) if stack_status(cfn, name) is not None]
    if not present:
        out.print(f"EMD is not installed in {aws.region}: nothing to remove")
        return
    if not confirm(
        f"Remove {' and '.join(present)} from {aws.region}, with the cached model weights and images?", yes
    ):
        raise click.Abort
    for name in present:
        remove_shared_stack(aws, name, out)
    if BOOTSTRAP_STACK in present:  # the weights cache went with its bucket: so do the build's pointers to it
        delete_weights_parameters(aws)
    out.print(f"[green]EMD is uninstalled from {aws.region}[/]")


def remove_shared_stack(aws: Any, name: str, out: Any) -> None:
    """Empty the stack's buckets and repositories, delete it; empty again and retry once if a bucket got new
    objects meanwhile (S3 server access logs arrive late)."""
    from emd_cli.aws.errors import AwsFailure
    from emd_cli.aws.stacks import delete_stack

    _empty_storage(aws, name, out)
    try:
        delete_stack(aws, name=name, console=out)
    except AwsFailure:
        _empty_storage(aws, name, out)
        delete_stack(aws, name=name, console=out)


def _empty_storage(aws: Any, stack: str, out: Any) -> None:
    from emd_cli.aws.s3 import delete_prefix

    resources = [
        r
        for page in aws.client("cloudformation")
        .get_paginator("list_stack_resources")
        .paginate(StackName=stack)
        for r in page["StackResourceSummaries"]
        if r.get("ResourceStatus") != "DELETE_COMPLETE" and r.get("PhysicalResourceId")
    ]
    for r in resources:
        if r["ResourceType"] == "AWS::S3::Bucket":
            count = _ignore_missing(lambda b=r["PhysicalResourceId"]: delete_prefix(aws, b))
            if count:
                out.print(f"  emptied s3://{r['PhysicalResourceId']} ({count} objects)")
        elif r["ResourceType"] == "AWS::ECR::Repository":
            count = _ignore_missing(lambda n=r["PhysicalResourceId"]: _empty_repository(aws, n))
            if count:
                out.print(f"  emptied ECR repository {r['PhysicalResourceId']} ({count} images)")


def _empty_repository(aws: Any, name: str) -> int:
    ecr = aws.client("ecr")
    ids = [
        i for page in ecr.get_paginator("list_images").paginate(repositoryName=name) for i in page["imageIds"]
    ]
    for start in range(0, len(ids), 100):  # BatchDeleteImage's limit
        ecr.batch_delete_image(repositoryName=name, imageIds=ids[start : start + 100])
    return len(ids)


def _ignore_missing(action: Any) -> int:
    """The bucket or repository may be gone already (a previous, interrupted uninstall)."""
    from emd_cli.aws.errors import error_code

    try:
        return int(action())
    except Exception as exc:
        if error_code(exc) in ("NoSuchBucket", "RepositoryNotFoundException"):
            return 0
        raise
