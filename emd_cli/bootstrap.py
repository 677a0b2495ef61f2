"""`emd bootstrap`: deploy EMD-Bootstrap and EMD-Gateway with nothing but AWS credentials and node.

No `cdk bootstrap` and no local Docker: both templates are synthesized here without CDK assets and deployed
through CloudFormation change sets; the gateway image is built by the bootstrap's own CodeBuild project from
an uploaded bundle (serving/build/gateway_buildspec.yml) and the gateway stack takes it from ECR by tag.
A rerun updates; the EMD version is recorded on both stacks (emd:version) and compared on the next run.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import click

from emd_cli.options import confirm, default_region, profile_option, region_option, yes_option

GATEWAY_BUNDLE_KEY = "bootstrap/gateway-source.zip"
GATEWAY_BUILDSPEC = "serving/build/gateway_buildspec.yml"


@click.command("bootstrap", short_help="Deploy EMD's shared stacks (pipeline, gateway) to a region.")
@region_option
@profile_option
@click.option(
    "--gateway/--no-gateway",
    default=True,
    show_default=True,
    help="Deploy the OpenAI-compatible gateway (ALB + Fargate). SageMaker-only use can skip it.",
)
@click.option(
    "--certificate-arn",
    metavar="ARN",
    help="ACM certificate: an internet-facing HTTPS gateway on your domain.",
)
@click.option(
    "--cloudfront",
    is_flag=True,
    help="HTTPS from the internet on a *.cloudfront.net address, in front of an internal load balancer "
    "(the default outside China).",
)
@click.option(
    "--allow-insecure-http",
    is_flag=True,
    help="An internet-facing plain-HTTP gateway (API keys travel in clear: for trials only).",
)
@click.option(
    "--allowed-cidrs",
    metavar="CIDRS",
    help="Comma-separated client CIDR blocks (default: anywhere; a rerun keeps the deployed ones).",
)
@click.option(
    "--internal",
    is_flag=True,
    help="Reachable from the VPC only (the default in China, where CloudFront needs an ICP domain).",
)
@click.option("--vpc-id", metavar="VPC", help="Put the gateway in this VPC instead of a new one.")
@click.option(
    "--base-image-mirror",
    metavar="PREFIX",
    help="Registry prefix the builds pull base images from (China regions: Docker Hub is unreachable).",
)
@yes_option
def bootstrap(
    region: str | None,
    profile: str | None,
    gateway: bool,
    certificate_arn: str | None,
    cloudfront: bool,
    allow_insecure_http: bool,
    allowed_cidrs: str | None,
    internal: bool,
    vpc_id: str | None,
    base_image_mirror: str | None,
    yes: bool,
) -> None:
    """Deploy (or update) EMD-Bootstrap — weights cache, image repository, build project and deployment
    pipeline — and EMD-Gateway. Needs AWS credentials and node; no `cdk bootstrap`, no local Docker.

    \b
    Without an exposure option the gateway serves HTTPS through CloudFront (*.cloudfront.net), or stays
    internal in China; a rerun keeps the deployed gateway's exposure and its --allowed-cidrs. --internal,
    --certificate-arn, --allow-insecure-http or --allowed-cidrs choose another.

    \b
    Examples:
      emd bootstrap --region us-east-1 --cloudfront
      emd bootstrap --region us-west-2 --certificate-arn arn:aws:acm:us-west-2:111122223333:certificate/… \\
                    --allowed-cidrs 203.0.113.0/24
      emd bootstrap --region cn-north-1 --no-gateway --yes
    """
    from emd_cli.aws.session import AwsSession
    from emd_cli.render import console

    out = console()
    aws = AwsSession(default_region(region), profile)
    flags = {
        "certificate_arn": certificate_arn,
        "cloudfront": cloudfront,
        "allow_insecure_http": allow_insecure_http,
        "allowed_cidrs": allowed_cidrs,
        "internal_alb": internal,
        "vpc_id": vpc_id,
        "base_image_mirror": base_image_mirror,
    }
    config = _config(aws, gateway, flags)  # exit 2 on bad flags, before any AWS call
    _run(aws, config, {key for key, value in flags.items() if value}, yes, out)


# CDK context keys as `emd bootstrap` names them
FLAG_NAMES = {
    "certificate_arn": "--certificate-arn",
    "cloudfront": "--cloudfront",
    "allow_insecure_http": "--allow-insecure-http",
    "allowed_cidrs": "--allowed-cidrs",
    "internal_alb": "--internal",
    "vpc_id": "--vpc-id",
    "base_image_mirror": "--base-image-mirror",
}


def _config(aws: Any, gateway: bool, flags: dict[str, Any]) -> Any:
    """Validated flags as the stacks' AppConfig, through the same checks as CDK context (the messages name
    the flags); the account is looked up only for --vpc-id."""
    import re

    from emd_stacks.context import AppConfig, check_exposure, parse_context
    from model_specs.errors import EmdUserError

    context = {key: value for key, value in flags.items() if value}
    context.update(region=aws.region, gateway=gateway)
    try:
        config = parse_context(context.get, environ={"CDK_DEFAULT_ACCOUNT": "000000000000"})
        check_exposure(config)
    except EmdUserError as exc:
        text = str(exc)
        for key, flag in FLAG_NAMES.items():
            text = re.sub(rf"(context )?(?<![.\w-]){key}(=true)?(?![.\w])", flag, text)
        raise EmdUserError(text) from None
    if not gateway and any(context.get(k) for k in FLAG_NAMES if k != "base_image_mirror"):
        raise EmdUserError(
            "--certificate-arn, --cloudfront, --allow-insecure-http, --allowed-cidrs, --internal and "
            "--vpc-id configure the gateway: drop them or drop --no-gateway"
        )
    return AppConfig(**{**config.__dict__, "account": aws.account_id if config.vpc_id else None})


def _run(aws: Any, config: Any, given: set[str], yes: bool, out: Any) -> None:
    from emd_cli.aws.shared_stacks import BOOTSTRAP_STACK, GATEWAY_STACK, deployed_version
    from emd_cli.version import emd_version
    from emd_constructs.bundles import PACKAGES_ROOT
    from model_specs.images import gateway_image_tag

    version = emd_version()
    account = aws.account_id  # fails early, in one line, without credentials
    stacks = [BOOTSTRAP_STACK] + ([GATEWAY_STACK] if config.gateway else [])
    current = {name: deployed_version(aws, name) for name in stacks}
    config, why = _exposure(aws, config, given, gateway_deployed=current.get(GATEWAY_STACK, (None,))[0])
    out.print(f"EMD {version} → account {account}, region {aws.region} ({aws.partition})")
    for name in stacks:
        status, deployed = current[name]
        out.print(f"  {name}: {_plan_line(status, deployed, version)}")
    if config.gateway:
        from emd_cli.exposure import EXPOSURES

        facts = EXPOSURES[config.exposure.value]
        clients = ", ".join(config.allowed_cidrs) or "anywhere (API keys protect each model)"
        out.print(f"  gateway: {facts.reach} ({why}); clients from {clients}")
        out.print(f"  gateway exposure's extra monthly cost: {facts.extra_monthly_cost}")
    if not confirm(f"Deploy to {aws.region}?", yes):
        raise click.Abort

    tag = gateway_image_tag(PACKAGES_ROOT) if config.gateway else None
    lookups = dict([_vpc_lookup(aws, config.vpc_id)]) if config.vpc_id else None
    with out.status("Synthesizing the shared stacks"), tempfile.TemporaryDirectory(prefix="emd-") as tmp:
        from emd_stacks.shared_synth import synth_shared_stacks

        templates = synth_shared_stacks(config, Path(tmp), gateway_image_tag=tag, lookups=lookups)
    _deploy_shared(aws, templates, tag, version, yes, out)


def _exposure(aws: Any, config: Any, given: set[str], gateway_deployed: str | None) -> tuple[Any, str]:
    """The exposure to deploy and why (emd_cli.exposure.choose_exposure), from the options and, when a gateway
    is deployed, the exposure and client CIDR blocks it recorded."""
    from emd_cli.exposure import choose_exposure, deployed_exposure

    deployed, cidrs = None, ()
    if config.gateway and gateway_deployed not in (None, "ROLLBACK_COMPLETE"):
        from emd_cli.aws.shared_stacks import read_bootstrap

        boot = read_bootstrap(aws)
        if boot:
            deployed = deployed_exposure(boot.gateway_exposure, boot.gateway_url)
            cidrs = boot.gateway_allowed_cidrs
    choice = choose_exposure(config, given=given, deployed=deployed, deployed_cidrs=cidrs)
    return choice.config, choice.why


def _plan_line(status: str | None, deployed: str | None, version: str) -> str:
    from emd_cli.aws.shared_stacks import version_key

    if status is None:
        return "create"
    if status == "ROLLBACK_COMPLETE":
        return "failed earlier (ROLLBACK_COMPLETE): delete and create again"
    have, want = version_key(deployed), version_key(version)
    if have is not None and want is not None and have > want:
        return (
            f"update — note: deployed by a newer emd ({deployed}); this emd ({version}) replaces it with "
            f"its own templates (upgrade emd to keep the newer ones)"
        )
    if have is not None and want is not None and have < want:
        return f"upgrade from emd {deployed} to {version}"
    return f"update ({status}, emd {deployed or 'unknown'})"


def _vpc_lookup(aws: Any, vpc_id: str) -> tuple[str, Any]:
    from emd_cli.aws.vpc_lookup import vpc_context

    return vpc_context(aws, vpc_id)


def _deploy_shared(aws: Any, templates: Any, tag: str | None, version: str, yes: bool, out: Any) -> None:
    from emd_cli.aws.shared_stacks import (
        BOOTSTRAP_STACK,
        COMPONENT_TAG,
        GATEWAY_STACK,
        VERSION_TAG,
        require_bootstrap,
    )
    from emd_cli.aws.stacks import deploy_stack

    def deploy(name: str, template: dict[str, Any], component: str, **upload: Any) -> None:
        deploy_stack(
            aws,
            name=name,
            template=template,
            console=out,
            tags={VERSION_TAG: version, COMPONENT_TAG: component},
            confirm_cleanup=lambda message: confirm(message, yes),
            **upload,
        )

    deploy(BOOTSTRAP_STACK, templates.bootstrap, "bootstrap")
    info = require_bootstrap(aws)
    if templates.gateway is None:
        out.print(
            f"[green]EMD is bootstrapped in {aws.region}[/] (no gateway: clients call SageMaker directly)"
        )
        return
    assert tag is not None
    build_gateway_image(aws, info, tag, out)
    deploy(
        GATEWAY_STACK,
        templates.gateway,
        "gateway",
        upload=lambda body: _upload_template(aws, info.bucket, GATEWAY_STACK, body),
    )
    info = require_bootstrap(aws)
    if info.gateway_vpc_id:
        restrict_default_security_group(aws, info.gateway_vpc_id)
    out.print(f"[green]EMD is bootstrapped in {aws.region}[/]; gateway: {info.gateway_url}/v1")
    out.print("Next: emd deploy --model-id <id> -i <instance> -s <service>  (emd list-supported-models)")


def build_gateway_image(aws: Any, info: Any, tag: str, out: Any) -> None:
    """Have the bootstrap's CodeBuild project build and push the gateway image, unless ECR has the tag."""
    from emd_cli.aws.builds import follow_build
    from emd_constructs.bundles import gateway_bundle

    ecr = aws.client("ecr")
    try:
        ecr.describe_images(repositoryName=info.repository, imageIds=[{"imageTag": tag}])
        out.print(f"Gateway image {tag} is in ECR already")
        return
    except ecr.exceptions.ImageNotFoundException:
        pass
    version_id = (
        aws.client("s3")
        .put_object(Bucket=info.bucket, Key=GATEWAY_BUNDLE_KEY, Body=gateway_bundle())
        .get("VersionId")
    )
    build = aws.client("codebuild").start_build(
        projectName=info.project,
        sourceTypeOverride="S3",
        sourceLocationOverride=f"{info.bucket}/{GATEWAY_BUNDLE_KEY}",
        **({"sourceVersion": version_id} if version_id else {}),
        buildspecOverride=GATEWAY_BUILDSPEC,
        artifactsOverride={"type": "NO_ARTIFACTS"},
        environmentVariablesOverride=[{"name": "EMD_GATEWAY_IMAGE_TAG", "value": tag, "type": "PLAINTEXT"}],
    )["build"]
    out.print(f"Building the gateway image {tag} in CodeBuild ({build['id']})")
    follow_build(aws, build["id"], out, label="gateway image")


def _upload_template(aws: Any, bucket: str, stack: str, body: bytes) -> str:
    """Templates over CloudFormation's inline limit go through the artifact bucket."""
    from emd_cli.aws.s3 import https_url, upload

    key = f"bootstrap/templates/{stack}.json"
    upload(aws, bucket, key, body)
    return https_url(aws, bucket, key)


def restrict_default_security_group(aws: Any, vpc_id: str) -> None:
    """Strip every rule from the VPC's default security group (nothing of EMD's uses it): what CDK's
    restrictDefaultSecurityGroup custom resource does, without a Lambda asset."""
    ec2 = aws.client("ec2")
    groups = ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "group-name", "Values": ["default"]}]
    )["SecurityGroups"]
    for group in groups:
        if group.get("IpPermissions"):
            ec2.revoke_security_group_ingress(GroupId=group["GroupId"], IpPermissions=group["IpPermissions"])
        if group.get("IpPermissionsEgress"):
            ec2.revoke_security_group_egress(
                GroupId=group["GroupId"], IpPermissions=group["IpPermissionsEgress"]
            )
