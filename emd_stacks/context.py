"""CDK context: the feature flags EMD ships (cdk_context.json, for `npx cdk` and in-process synth alike), the
keys a user may pass (-c key=value; anything else that is not CDK's own is refused with a did-you-mean), and
their typed configuration. Every bad value becomes an EmdUserError naming the value and what is accepted;
app.py prints it and exits 2."""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk.aws_codebuild as codebuild

from emd_constructs.gateway_edge import Exposure
from model_specs.errors import EmdUserError, did_you_mean, unknown_value_error
from model_specs.images import check_mirror
from model_specs.regions import region_info

# The one home of the context every EMD App starts from (feature flags): shipped as package data, read by
# app.py (npx cdk) and emd_stacks.synth (emd plan, installed or not), so both synthesize the same templates.
# It sets every flag the installed aws-cdk-lib knows to the value the library recommends; a flag kept at
# another value would be listed here with its reason (none is). tests/unit/test_feature_flags.py checks this
# against the library's own flag report, so an aws-cdk-lib upgrade fails it until the new flags are adopted.
SHIPPED_CONTEXT_FILE = Path(__file__).with_name("cdk_context.json")
# The keys parse_context reads (the model stack's are emd_stacks.model_context.MODEL_CONTEXT_KEYS).
APP_CONTEXT_KEYS = (
    "region",
    "certificate_arn",
    "cloudfront",
    "allow_insecure_http",
    "allowed_cidrs",
    "internal_alb",
    "vpc_id",
    "retain_model_cache",
    "codebuild_compute_type",
    "codebuild_timeout_minutes",
    "gateway",
    "base_image_mirror",
)
# Context the cdk CLI and construct libraries put there themselves: feature flags (@aws-cdk/…, @cdklabs/…),
# aws:cdk:* settings, aws-cdk:* and cdk-* keys, context-provider lookups cached in cdk.context.json
# ('<provider>:account=…:region=…') and acknowledged notices. None of EMD's keys has a ':' or these prefixes.
CDK_KEY_PREFIXES = ("@", "aws-cdk", "cdk-", "cdk:")
CDK_PLAIN_KEYS = frozenset({"acknowledged-issue-numbers"})
DEFAULT_REGION = "us-east-1"
DEFAULT_TIMEOUT_MINUTES = 480
MAX_TIMEOUT_MINUTES = 2160  # CodeBuild's limit (36 h)
COMPUTE_TYPES = {
    "small": codebuild.ComputeType.SMALL,
    "medium": codebuild.ComputeType.MEDIUM,
    "large": codebuild.ComputeType.LARGE,
    "2xlarge": codebuild.ComputeType.X2_LARGE,
}
# 'BUILD_GENERAL1_LARGE' is accepted too
_COMPUTE_ALIASES = {f"build_general1_{k}": k for k in COMPUTE_TYPES}
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}
_VPC_ID = re.compile(r"^vpc-[0-9a-f]{8}([0-9a-f]{9})?$")
_CERT_ARN = re.compile(r"^arn:(aws|aws-cn|aws-us-gov):acm:([a-z0-9-]+):(\d{12}):certificate/[0-9a-f-]{36}$")


@dataclass(frozen=True)
class AppConfig:
    region: str = DEFAULT_REGION
    account: str | None = None
    certificate_arn: str | None = None
    allowed_cidrs: tuple[str, ...] = ()
    internal_alb: bool = False
    cloudfront: bool = False
    allow_insecure_http: bool = False
    vpc_id: str | None = None
    retain_model_cache: bool = False
    codebuild_compute_type: codebuild.ComputeType = codebuild.ComputeType.LARGE
    codebuild_timeout_minutes: int = DEFAULT_TIMEOUT_MINUTES
    gateway: bool = True
    # registry prefix the build pulls engine base images from (China regions: Docker Hub is unreachable)
    base_image_mirror: str | None = None

    @property
    def exposure(self) -> Exposure:
        if self.cloudfront:
            return Exposure.CLOUDFRONT
        if self.allow_insecure_http:
            return Exposure.PUBLIC_HTTP
        if self.certificate_arn and not self.internal_alb:
            return Exposure.PUBLIC_HTTPS
        return Exposure.INTERNAL


def check_exposure(config: AppConfig) -> None:
    """Refuse contradictory gateway options (see emd_constructs.gateway_edge for what each one means)."""
    conflicts = {
        "cloudfront": ["certificate_arn", "internal_alb", "allow_insecure_http", "allowed_cidrs"],
        "allow_insecure_http": ["certificate_arn", "internal_alb"],
    }
    for option, others in conflicts.items():
        if not getattr(config, option):
            continue
        clash = [o for o in others if getattr(config, o)]
        if clash:
            raise EmdUserError(
                f"context {option}=true cannot be combined with {', '.join(clash)}: cloudfront=true serves "
                f"HTTPS on a *.cloudfront.net name, certificate_arn HTTPS on your own domain, "
                f"allow_insecure_http=true plain HTTP; choose one"
            )
    if config.cloudfront and region_info(config.region).is_china:
        raise EmdUserError(
            f"context cloudfront=true is not available in {config.region}: CloudFront there serves only an "
            f"ICP-registered domain of your own; use certificate_arn (HTTPS on your domain) or the internal "
            f"default"
        )


def shipped_context() -> dict[str, Any]:
    """The context EMD's Apps start from (command-line -c values override it)."""
    return dict(json.loads(SHIPPED_CONTEXT_FILE.read_text(encoding="utf-8")))


def is_cdk_key(key: str) -> bool:
    return ":" in key or key.startswith(CDK_KEY_PREFIXES) or key in CDK_PLAIN_KEYS


def refuse_unknown_context(context: Mapping[str, Any], known: Iterable[str]) -> None:
    """An EmdUserError for context keys that are neither EMD's (`known`) nor CDK's: a misspelled key would
    otherwise be ignored silently (-c model-id=… synthesizing the shared stacks instead of the model)."""
    accepted = sorted({k for k in known if not is_cdk_key(k)})
    unknown = sorted(k for k in context if k not in accepted and not is_cdk_key(k))
    if len(unknown) == 1:
        raise unknown_value_error("context key", unknown[0], accepted, max_listed=len(accepted))
    if unknown:
        named = ", ".join(f"{k!r}{_hint(k, accepted)}" for k in unknown)
        raise EmdUserError(f"unknown context keys {named}. Accepted: {', '.join(accepted)}")


def _hint(key: str, accepted: list[str]) -> str:
    suggestion = did_you_mean(key, accepted, n=1).strip()
    return f" ({suggestion.replace('Did', 'did', 1)})" if suggestion else ""


def parse_bool(key: str, value: Any, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise EmdUserError(f"context {key}={value!r} is not a boolean: use true or false")


def parse_cidrs(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    items = value if isinstance(value, list) else str(value).split(",")
    cidrs = []
    for raw in (str(i).strip() for i in items):
        if not raw:
            continue
        try:
            net = ipaddress.ip_network(raw, strict=True)
        except ValueError as exc:
            raise EmdUserError(
                f"context allowed_cidrs: {raw!r} is not a CIDR block ({exc}); use e.g. 203.0.113.0/24,"
                f"2001:db8::/32"
            ) from None
        cidrs.append(str(net))
    return tuple(dict.fromkeys(cidrs))


def parse_compute_type(value: Any) -> codebuild.ComputeType:
    if value is None:
        return codebuild.ComputeType.LARGE
    key = str(value).strip().lower()
    key = _COMPUTE_ALIASES.get(key, key)
    if key not in COMPUTE_TYPES:
        raise unknown_value_error("codebuild_compute_type", str(value), COMPUTE_TYPES)
    return COMPUTE_TYPES[key]


def parse_timeout(value: Any) -> int:
    if value is None:
        return DEFAULT_TIMEOUT_MINUTES
    try:
        minutes = int(str(value).strip())
    except ValueError:
        raise EmdUserError(
            f"context codebuild_timeout_minutes={value!r} is not a whole number of minutes"
        ) from None
    if not 5 <= minutes <= MAX_TIMEOUT_MINUTES:
        raise EmdUserError(
            f"context codebuild_timeout_minutes={minutes} is out of range: CodeBuild accepts 5 to "
            f"{MAX_TIMEOUT_MINUTES} minutes"
        )
    return minutes


def parse_certificate_arn(value: Any, region: str) -> str | None:
    if value is None or str(value).strip() == "":
        return None
    arn = str(value).strip()
    m = _CERT_ARN.fullmatch(arn)
    if not m:
        raise EmdUserError(
            f"context certificate_arn={arn!r} is not an ACM certificate ARN "
            f"(arn:<partition>:acm:<region>:<account>:certificate/<uuid>)"
        )
    partition, cert_region = m.group(1), m.group(2)
    expected = region_info(region).partition
    if cert_region != region or partition != expected:
        raise EmdUserError(
            f"context certificate_arn is in {partition}/{cert_region}, but the gateway deploys to "
            f"{expected}/{region}: an ALB needs an ACM certificate from its own region"
        )
    return arn


def parse_vpc_id(value: Any) -> str | None:
    if value is None or str(value).strip() == "":
        return None
    vpc_id = str(value).strip()
    if not _VPC_ID.fullmatch(vpc_id):
        raise EmdUserError(f"context vpc_id={vpc_id!r} is not a VPC id (vpc- and 8 or 17 hex digits)")
    return vpc_id


def parse_base_image_mirror(value: Any) -> str | None:
    """-c base_image_mirror=<registry prefix>: where the build pulls engine base images."""
    if not value:
        return None
    try:
        return check_mirror(str(value))
    except ValueError as exc:
        raise EmdUserError(f"context base_image_mirror: {exc}") from None


def parse_context(get: Callable[[str], Any], environ: dict[str, str] | None = None) -> AppConfig:
    """`get` is app.node.try_get_context. Region: context region, else CDK_DEFAULT_REGION, else AWS_REGION,
    else us-east-1."""
    env = os.environ if environ is None else environ
    region_value = get("region") or env.get("CDK_DEFAULT_REGION") or env.get("AWS_REGION") or DEFAULT_REGION
    region = region_info(str(region_value).strip()).name
    account = env.get("CDK_DEFAULT_ACCOUNT") or None
    vpc_id = parse_vpc_id(get("vpc_id"))
    if vpc_id and not account:
        raise EmdUserError(
            f"context vpc_id={vpc_id} needs the target account to look the VPC up: run with AWS credentials "
            f"(the cdk CLI sets CDK_DEFAULT_ACCOUNT) or leave vpc_id out to create a new VPC"
        )
    config = AppConfig(
        region=region,
        account=account,
        certificate_arn=parse_certificate_arn(get("certificate_arn"), region),
        allowed_cidrs=parse_cidrs(get("allowed_cidrs")),
        internal_alb=parse_bool("internal_alb", get("internal_alb"), False),
        cloudfront=parse_bool("cloudfront", get("cloudfront"), False),
        allow_insecure_http=parse_bool("allow_insecure_http", get("allow_insecure_http"), False),
        vpc_id=vpc_id,
        retain_model_cache=parse_bool("retain_model_cache", get("retain_model_cache"), False),
        codebuild_compute_type=parse_compute_type(get("codebuild_compute_type")),
        codebuild_timeout_minutes=parse_timeout(get("codebuild_timeout_minutes")),
        gateway=parse_bool("gateway", get("gateway"), True),
        base_image_mirror=parse_base_image_mirror(get("base_image_mirror")),
    )
    check_exposure(config)
    return config
