"""Context parsing (no synth) and app.py as the cdk CLI runs it (one subprocess synth each way)."""

from __future__ import annotations

import json
from pathlib import Path

import aws_cdk.aws_codebuild as codebuild
import pytest

from emd_constructs.gateway_edge import Exposure
from emd_stacks.context import AppConfig, parse_context
from model_specs.errors import EmdUserError
from tests.unit.stack_fixtures import run_app

ROOT = Path(__file__).resolve().parents[2]
CERT = "arn:aws:acm:us-west-2:123456789012:certificate/12345678-1234-1234-1234-123456789012"


def parse(ctx: dict, environ: dict | None = None) -> AppConfig:
    return parse_context(ctx.get, environ if environ is not None else {})


def test_defaults():
    cfg = parse({})
    assert cfg == AppConfig()
    assert cfg.region == "us-east-1" and cfg.gateway is True and cfg.retain_model_cache is False
    assert cfg.codebuild_compute_type == codebuild.ComputeType.LARGE
    assert cfg.codebuild_timeout_minutes == 480


def test_region_precedence():
    env = {"CDK_DEFAULT_REGION": "eu-west-1", "AWS_REGION": "us-west-2"}
    assert parse({}, env).region == "eu-west-1"
    assert parse({}, {"AWS_REGION": "us-west-2"}).region == "us-west-2"
    assert parse({"region": "cn-north-1"}, env).region == "cn-north-1"


def test_unknown_region_suggests():
    with pytest.raises(EmdUserError, match=r"us-east-1"):
        parse({"region": "us-east-9"})


def test_values_from_the_command_line_are_strings():
    cfg = parse(
        {
            "internal_alb": "true",
            "retain_model_cache": "yes",
            "gateway": "false",
            "allowed_cidrs": "10.0.0.0/8, 2001:db8::/32,10.0.0.0/8",
            "codebuild_compute_type": "BUILD_GENERAL1_2XLARGE",
            "codebuild_timeout_minutes": "90",
            "region": "us-west-2",
            "certificate_arn": CERT,
        }
    )
    assert cfg.internal_alb and cfg.retain_model_cache and not cfg.gateway
    assert cfg.allowed_cidrs == ("10.0.0.0/8", "2001:db8::/32")
    assert cfg.codebuild_compute_type == codebuild.ComputeType.X2_LARGE
    assert cfg.codebuild_timeout_minutes == 90
    assert cfg.certificate_arn == CERT


def test_json_types_from_cdk_json():
    cfg = parse({"internal_alb": True, "allowed_cidrs": ["192.0.2.0/24"], "codebuild_timeout_minutes": 60})
    assert cfg.internal_alb and cfg.allowed_cidrs == ("192.0.2.0/24",) and cfg.codebuild_timeout_minutes == 60


@pytest.mark.parametrize(
    ("ctx", "message"),
    [
        ({"internal_alb": "maybe"}, r"internal_alb='maybe' is not a boolean"),
        ({"allowed_cidrs": "10.0.0.1/8"}, r"'10.0.0.1/8' is not a CIDR block"),
        ({"allowed_cidrs": "everyone"}, r"'everyone' is not a CIDR"),
        ({"codebuild_compute_type": "larg"}, r"unknown codebuild_compute_type 'larg'\. Did you mean 'large'"),
        ({"codebuild_timeout_minutes": "2 hours"}, r"not a whole number"),
        ({"codebuild_timeout_minutes": "5000"}, r"5 to 2160"),
        ({"certificate_arn": "my-cert"}, r"not an ACM certificate ARN"),
        ({"certificate_arn": CERT}, r"us-west-2.*us-east-1"),  # wrong region
        ({"vpc_id": "vpc-xyz"}, r"vpc_id='vpc-xyz' is not a VPC id"),
        ({"vpc_id": "vpc-0123456789abcdef0"}, r"needs the target account"),
    ],
)
def test_bad_context_is_a_clear_user_error(ctx, message):
    with pytest.raises(EmdUserError, match=message):
        parse(ctx)


CERT_EAST = CERT.replace("us-west-2", "us-east-1")


@pytest.mark.parametrize(
    ("ctx", "exposure"),
    [
        ({}, Exposure.INTERNAL),  # the safe default: reachable from the VPC only
        ({"allowed_cidrs": "192.0.2.0/24"}, Exposure.INTERNAL),
        ({"cloudfront": "true"}, Exposure.CLOUDFRONT),
        ({"certificate_arn": CERT_EAST}, Exposure.PUBLIC_HTTPS),
        ({"certificate_arn": CERT_EAST, "internal_alb": "true"}, Exposure.INTERNAL),
        ({"allow_insecure_http": "true"}, Exposure.PUBLIC_HTTP),
    ],
)
def test_gateway_exposure(ctx, exposure):
    cfg = parse(ctx)
    assert cfg.exposure is exposure
    assert cfg.exposure.internet_facing_alb is (exposure in (Exposure.PUBLIC_HTTPS, Exposure.PUBLIC_HTTP))


@pytest.mark.parametrize(
    ("ctx", "message"),
    [
        ({"cloudfront": "true", "certificate_arn": CERT_EAST}, r"cloudfront=true cannot be combined with "
         r"certificate_arn"),
        ({"cloudfront": "true", "allowed_cidrs": "10.0.0.0/8"}, r"cannot be combined with allowed_cidrs"),
        ({"allow_insecure_http": "true", "internal_alb": "true"}, r"allow_insecure_http=true cannot be "
         r"combined with internal_alb"),
        ({"cloudfront": "true", "region": "cn-north-1"}, r"not available in cn-north-1: CloudFront there "
         r"serves only an ICP-registered domain"),
        ({"allow_insecure_http": "perhaps"}, r"allow_insecure_http='perhaps' is not a boolean"),
    ],
)
def test_contradictory_gateway_options_are_refused(ctx, message):
    with pytest.raises(EmdUserError, match=message):
        parse(ctx)


def test_china_certificate_must_be_aws_cn():
    china = "arn:aws-cn:acm:cn-north-1:123456789012:certificate/12345678-1234-1234-1234-123456789012"
    assert parse({"region": "cn-north-1", "certificate_arn": china}).certificate_arn == china
    with pytest.raises(EmdUserError, match="aws-cn/cn-north-1"):
        parse({"region": "cn-north-1", "certificate_arn": china.replace("aws-cn", "aws")})


def test_vpc_id_with_account():
    cfg = parse({"vpc_id": "vpc-0123456789abcdef0"}, {"CDK_DEFAULT_ACCOUNT": "123456789012"})
    assert cfg.vpc_id == "vpc-0123456789abcdef0" and cfg.account == "123456789012"


def test_app_exits_2_with_the_message_and_no_traceback(tmp_path):
    result = run_app(tmp_path, {"codebuild_compute_type": "huge"})
    assert result.returncode == 2
    assert "error: unknown codebuild_compute_type 'huge'" in result.stderr
    assert "Accepted: 2xlarge, large, medium, small" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_app_without_gateway_synthesizes_no_load_balancer(tmp_path):
    result = run_app(tmp_path, {"gateway": "false", "region": "us-west-2"})
    assert result.returncode == 0, result.stderr[-2000:]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    stacks = [k for k, v in manifest["artifacts"].items() if v["type"] == "aws:cloudformation:stack"]
    assert stacks == ["EMD-Bootstrap"]
    template = (tmp_path / "EMD-Bootstrap.template.json").read_text()
    assert "AWS::ElasticLoadBalancingV2::LoadBalancer" not in template
    assert "AWS::EC2::VPC" not in template
    assert manifest["artifacts"]["EMD-Bootstrap"]["environment"].endswith("/us-west-2")


@pytest.mark.slow
def test_app_with_no_context_synthesizes_an_internal_gateway(tmp_path):
    """`npx cdk synth` with no context works, and its gateway is not reachable from the internet."""
    result = run_app(tmp_path, {})
    assert result.returncode == 0, result.stderr[-2000:]
    template = json.loads((tmp_path / "EMD-Gateway.template.json").read_text())
    resources = template["Resources"].values()
    (alb,) = [r for r in resources if r["Type"] == "AWS::ElasticLoadBalancingV2::LoadBalancer"]
    assert alb["Properties"]["Scheme"] == "internal"
