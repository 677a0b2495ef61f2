"""How clients reach the gateway, seen from the CLI: what each exposure is and adds to the monthly bill, the
one `emd bootstrap` picks when none is chosen (HTTPS through CloudFront where CloudFront serves
*.cloudfront.net, internal in China), the one a deployed gateway has, and what a machine outside an internal
gateway's VPC can do instead. No AWS call (one TCP connection tells whether a gateway is in reach) and no
aws_cdk import: the commands pass in what they read.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from model_specs.errors import EmdUserError
from model_specs.regions import region_info

# the values of emd_constructs.gateway_edge.Exposure (not imported: that module needs aws_cdk)
INTERNAL, CLOUDFRONT, PUBLIC_HTTPS, PUBLIC_HTTP = "internal", "cloudfront", "public-https", "public-http"
# the `emd bootstrap` options that say how clients reach the gateway, as AppConfig fields
CHOICE_FIELDS = ("cloudfront", "certificate_arn", "allow_insecure_http", "internal_alb", "allowed_cidrs")


@dataclass(frozen=True)
class ExposureFacts:
    reach: str
    extra_monthly_cost: str  # what it adds to the gateway's own load balancer, Fargate tasks and NAT gateway


EXPOSURES = {
    INTERNAL: ExposureFacts(
        "an internal load balancer, reachable from its VPC only (and from --allowed-cidrs over a VPN, Direct "
        "Connect or peering)",
        "none",
    ),
    CLOUDFRONT: ExposureFacts(
        "HTTPS from the internet on a *.cloudfront.net address (CloudFront in front of an internal load "
        "balancer; no domain of your own)",
        "CloudFront data transfer out and HTTPS requests, free up to 1 TB and 10 million requests a month; "
        "the VPC origin is free",
    ),
    PUBLIC_HTTPS: ExposureFacts(
        "an internet-facing HTTPS load balancer with your ACM certificate",
        "none (public ACM certificates are free; the domain is yours)",
    ),
    PUBLIC_HTTP: ExposureFacts(
        "an internet-facing plain-HTTP load balancer: API keys travel in clear text", "none"
    ),
}


def deployed_exposure(recorded: str | None, url: str | None) -> str | None:
    """A deployed gateway's exposure: the one it recorded (/emd/gateway/exposure), else what its URL shows
    (a gateway from before that parameter): *.cloudfront.net, an internal load balancer's `internal-` name,
    https or http. None when there is no gateway."""
    if recorded in EXPOSURES:
        return recorded
    if not url:
        return None
    host = urlsplit(url).hostname or ""
    if host.endswith(".cloudfront.net"):
        return CLOUDFRONT
    if host.startswith("internal-"):
        return INTERNAL
    return PUBLIC_HTTPS if url.startswith("https://") else PUBLIC_HTTP


@dataclass(frozen=True)
class ExposureChoice:
    config: Any  # emd_stacks.context.AppConfig, with the exposure to deploy
    why: str  # shown beside the choice


def choose_exposure(
    config: Any, *, given: Iterable[str], deployed: str | None, deployed_cidrs: tuple[str, ...] = ()
) -> ExposureChoice:
    """The exposure `emd bootstrap` deploys: the options given; else the deployed gateway's (a rerun changes
    nothing by surprise); else HTTPS through CloudFront, or internal in China (CloudFront there serves only an
    ICP-registered domain of your own). The deployed gateway's client CIDR blocks stay unless --allowed-cidrs
    is given again (a rerun never opens a restricted gateway up) or the exposure becomes CloudFront."""
    chosen = set(given)
    choice = _choose(config, given=chosen, deployed=deployed)
    keep = deployed_cidrs and "allowed_cidrs" not in chosen and choice.config.gateway
    if not keep or choice.config.cloudfront:
        return choice
    kept = replace(choice.config, allowed_cidrs=tuple(deployed_cidrs))
    return ExposureChoice(kept, f"{choice.why}; clients limited as deployed (--allowed-cidrs changes them)")


def _choose(config: Any, *, given: set[str], deployed: str | None) -> ExposureChoice:
    if not config.gateway or given & set(CHOICE_FIELDS):
        return ExposureChoice(config, "as chosen")
    region = config.region
    if deployed == PUBLIC_HTTPS:
        raise EmdUserError(
            f"the gateway in {region} serves HTTPS with your certificate: pass --certificate-arn <arn> again "
            f"(or choose --cloudfront or --internal)"
        )
    if deployed == INTERNAL:
        return ExposureChoice(config, f"as deployed; {_internet_options(region)} for clients outside the VPC")
    if deployed == CLOUDFRONT:
        return ExposureChoice(replace(config, cloudfront=True), "as deployed")
    if deployed == PUBLIC_HTTP:
        insecure = replace(config, allow_insecure_http=True)
        return ExposureChoice(insecure, "as deployed; --cloudfront gives HTTPS")
    if region_info(region).is_china:
        return ExposureChoice(config, china_default_note(region))
    return ExposureChoice(
        replace(config, cloudfront=True),
        "the default: reachable from this machine without a domain; --internal keeps it inside its VPC",
    )


def china_default_note(region: str) -> str:
    return (
        f"the default in {region}, where CloudFront serves only an ICP-registered domain: pass "
        f"--certificate-arn <ACM certificate> for HTTPS from the internet, or call the gateway from inside "
        f"its VPC; `emd invoke` reaches SageMaker deployments directly with your AWS credentials"
    )


def _internet_options(region: str) -> str:
    if region_info(region).is_china:
        return "--certificate-arn <ACM certificate>"
    return "--cloudfront (or --certificate-arn <ACM certificate>)"


def outside_vpc_advice(region: str, *, sagemaker_direct: bool) -> str:
    """What to do from a machine outside an internal gateway's VPC (one sentence, no trailing period)."""
    ways = [
        f"run `emd bootstrap --region {region} {_internet_options(region)}` to reach it from the internet",
        "call it from inside its VPC (or over a VPN or Direct Connect, with --allowed-cidrs)",
    ]
    if sagemaker_direct:
        ways.append("`emd invoke` calls this SageMaker deployment directly with your AWS credentials")
    return "; ".join(ways)


def gateway_reachable(base_url: str, timeout: float = 3.0) -> bool:
    """Whether this machine can open a connection to the gateway (an internal load balancer's private
    addresses time out from outside its VPC)."""
    import socket

    parts = urlsplit(base_url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "", port), timeout=timeout):
            return True
    except OSError:
        return False
