"""What `emd bootstrap` says it will do to each shared stack, from its status and the emd:version tag, and how
clients will reach the gateway (the exposure it picks when no option chooses one)."""

from __future__ import annotations

import pytest

from emd_cli.aws.shared_stacks import version_key
from emd_cli.bootstrap import _plan_line
from emd_cli.exposure import choose_exposure, deployed_exposure
from emd_constructs.gateway_edge import Exposure
from emd_stacks.context import AppConfig, check_exposure
from model_specs.errors import EmdUserError


def test_versions_compare_as_numbers():
    assert version_key("0.10.0") > version_key("0.9.47")  # type: ignore[operator]
    assert version_key("0+unknown") == (0,) and version_key(None) is None


def test_a_missing_stack_is_created_and_a_failed_one_replaced():
    assert _plan_line(None, None, "0.2.0") == "create"
    assert "ROLLBACK_COMPLETE" in _plan_line("ROLLBACK_COMPLETE", "0.2.0", "0.2.0")


def test_an_older_bootstrap_is_upgraded_and_a_newer_one_is_flagged():
    assert _plan_line("UPDATE_COMPLETE", "0.1.0", "0.2.0") == "upgrade from emd 0.1.0 to 0.2.0"
    newer = _plan_line("UPDATE_COMPLETE", "0.3.0", "0.2.0")
    assert "newer emd (0.3.0)" in newer and "upgrade emd" in newer
    assert _plan_line("CREATE_COMPLETE", "0.2.0", "0.2.0") == "update (CREATE_COMPLETE, emd 0.2.0)"


# ---------------------------------------------------------------- how clients reach the gateway


def config(region: str = "us-east-1", **fields: object) -> AppConfig:
    return AppConfig(region=region, **fields)  # type: ignore[arg-type]


def test_without_options_the_gateway_serves_https_through_cloudfront():
    choice = choose_exposure(config(), given=set(), deployed=None)
    assert choice.config.exposure is Exposure.CLOUDFRONT and "--internal keeps it" in choice.why
    check_exposure(choice.config)  # a combination the stacks accept


def test_in_china_it_stays_internal_and_says_what_to_do():
    choice = choose_exposure(config("cn-north-1"), given=set(), deployed=None)
    assert choice.config.exposure is Exposure.INTERNAL
    assert "ICP-registered domain" in choice.why and "--certificate-arn" in choice.why
    assert "inside its VPC" in choice.why and "SageMaker deployments directly" in choice.why


@pytest.mark.parametrize(
    ("given", "fields", "exposure"),
    [
        ({"internal_alb"}, {"internal_alb": True}, Exposure.INTERNAL),
        ({"allowed_cidrs"}, {"allowed_cidrs": ("10.8.0.0/16",)}, Exposure.INTERNAL),  # over a VPN
        (
            {"certificate_arn"},
            {"certificate_arn": "arn:aws:acm:us-east-1:1:certificate/x"},
            Exposure.PUBLIC_HTTPS,
        ),
        ({"allow_insecure_http"}, {"allow_insecure_http": True}, Exposure.PUBLIC_HTTP),
    ],
)
def test_a_chosen_exposure_is_kept(given, fields, exposure):
    choice = choose_exposure(config(**fields), given=given, deployed="cloudfront")
    assert choice.config.exposure is exposure and choice.why == "as chosen"


def test_a_rerun_keeps_the_deployed_exposure():
    assert (
        choose_exposure(config(), given={"vpc_id"}, deployed="internal").config.exposure is Exposure.INTERNAL
    )
    assert (
        choose_exposure(config(), given=set(), deployed="cloudfront").config.exposure is Exposure.CLOUDFRONT
    )
    insecure = choose_exposure(config(), given=set(), deployed="public-http")
    assert insecure.config.exposure is Exposure.PUBLIC_HTTP and "--cloudfront gives HTTPS" in insecure.why
    with pytest.raises(EmdUserError, match="pass --certificate-arn <arn> again"):
        choose_exposure(config(), given=set(), deployed="public-https")  # the ARN is not recorded


def test_no_gateway_needs_no_exposure():
    assert (
        choose_exposure(config(gateway=False), given=set(), deployed=None).config.exposure
        is Exposure.INTERNAL
    )


@pytest.mark.parametrize(
    ("recorded", "url", "exposure"),
    [
        ("cloudfront", "http://127.0.0.1:8080", "cloudfront"),  # recorded by the gateway stack: trusted
        (None, "https://d111111abcdef8.cloudfront.net", "cloudfront"),
        (None, "http://internal-EMD-Ga-abc-123.us-east-1.elb.amazonaws.com", "internal"),
        (None, "https://models.example.com", "public-https"),
        (None, "http://EMD-Ga-abc-123.us-east-1.elb.amazonaws.com", "public-http"),
        (None, None, None),
    ],
)
def test_a_deployed_gateways_exposure(recorded, url, exposure):
    assert deployed_exposure(recorded, url) == exposure


def test_a_rerun_keeps_the_deployed_client_cidr_blocks():
    kept = choose_exposure(config(), given=set(), deployed="internal", deployed_cidrs=("10.0.0.0/8",))
    assert kept.config.allowed_cidrs == ("10.0.0.0/8",) and "clients limited as deployed" in kept.why
    https = config(certificate_arn="arn:aws:acm:us-east-1:1:certificate/x")
    again = choose_exposure(
        https, given={"certificate_arn"}, deployed="public-https", deployed_cidrs=("10.0.0.0/8",)
    )
    assert again.config.exposure is Exposure.PUBLIC_HTTPS and again.config.allowed_cidrs == ("10.0.0.0/8",)
    # given again, the option wins; CloudFront admits no CIDR list (its VPC origin is the ALB's only client)
    wider = config(allowed_cidrs=("0.0.0.0/0",))
    assert choose_exposure(
        wider, given={"allowed_cidrs"}, deployed="internal", deployed_cidrs=("10.0.0.0/8",)
    ).config.allowed_cidrs == ("0.0.0.0/0",)
    moved = choose_exposure(
        config(cloudfront=True), given={"cloudfront"}, deployed="internal", deployed_cidrs=("10.0.0.0/8",)
    )
    assert moved.config.allowed_cidrs == () and moved.config.exposure is Exposure.CLOUDFRONT
