"""model_specs.cost: the reference CNY table reproduced exactly, USD computed from the unit prices."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from model_specs.catalogue import catalogue
from model_specs.cost import DAYS_PER_MONTH, dec, estimate_cost, money
from model_specs.errors import EmdUserError

REFERENCE = {"model_size_gb": 5, "image_size_gb": 2, "build_minutes": 10}


def _line(est, service):
    return next(ln for ln in est.deployment if ln.service == service)


def estimate(service: str = "ec2", instance: str = "g5.2xlarge", region: str = "us-east-1", **kw: Any):
    """estimate_cost with a 1 GB model unless told otherwise."""
    return estimate_cost(
        region=region, instance_type=instance, service_type=service, **{"model_size_gb": 1, **kw}
    )


def test_china_reference_table_is_reproduced_exactly() -> None:
    sm = estimate("sagemaker_realtime", "g4dn.xlarge", "cn-north-1", **REFERENCE)
    assert sm.currency == "CNY" and sm.symbol == "¥"
    assert sm.fmt(_line(sm, "S3 Storage").monthly) == "¥0.00"
    assert sm.fmt(_line(sm, "CodeBuild").one_time) == "¥0.80"
    assert sm.fmt(_line(sm, "CodePipeline").one_time) == "¥0.00"
    assert sm.fmt(_line(sm, "CloudFormation").one_time) == "¥0.00"
    assert sm.fmt(_line(sm, "ECR").monthly) == "¥0.84"
    assert (
        f"{sm.fmt(sm.one_time_total)} + {sm.fmt(sm.deployment_monthly_total)}/month" == "¥0.80 + ¥0.84/month"
    )
    assert sm.target is not None and sm.target.hourly == Decimal("6.18")
    assert sm.target.label == "SageMaker ml.g4dn.xlarge"
    assert sm.fmt(sm.secrets_manager_monthly) == "¥3.36"
    ec2 = estimate("ec2", "g4dn.xlarge", "cn-north-1", **REFERENCE)
    assert (
        ec2.target is not None
        and ec2.target.hourly == Decimal("4.42")
        and ec2.target.label == "EC2 g4dn.xlarge"
    )
    ecs = estimate("ecs", "g4dn.xlarge", "cn-north-1", **REFERENCE)
    assert ecs.target is not None and ecs.target.hourly == ec2.target.hourly  # ECS on EC2 uses the EC2 price


def test_usd_rows_follow_the_unit_prices_not_the_reference_totals() -> None:
    """The reference says $0.10 for 10 build-minutes at $0.005/min and $0.10/month for 2 GB at $0.10/GB-month;
    its own unit prices give $0.05 and $0.20/month. We compute from the unit prices."""
    p = catalogue().prices.regions["us-east-1"]
    est = estimate("sagemaker_realtime", "g4dn.xlarge", **REFERENCE)
    build = _line(est, "CodeBuild").one_time
    ecr = _line(est, "ECR").monthly
    assert build == dec(p.codebuild_per_minute["BUILD_GENERAL1_LARGE"]) * 10
    assert ecr == dec(p.ecr_gb_month) * 2
    assert est.fmt(build) == "$0.05" and est.fmt(build) != "$0.10"
    assert est.fmt(ecr) == "$0.20" and est.fmt(ecr) != "$0.10"
    assert est.target is not None and est.target.hourly == dec(p.sagemaker_hourly["g4dn.xlarge"])
    assert est.fmt(est.secrets_manager_monthly) == f"${dec(p.secrets_manager_secret_month):.2f}"


def test_s3_above_the_free_tier_and_paid_pipelines() -> None:
    p = catalogue().prices.regions["us-east-1"]
    est = estimate("ec2", "g5.2xlarge", model_size_gb=15.5, other_pipelines=2)
    assert _line(est, "S3 Storage").monthly == (Decimal("15.5") - dec(p.s3_free_tier_gb)) * dec(p.s3_gb_month)
    pipeline = _line(est, "CodePipeline")
    assert pipeline.recurring and pipeline.monthly == 2 * dec(p.codepipeline_per_pipeline_month)


@pytest.mark.parametrize("hours", [0, 8, 12.5, 24])
def test_target_monthly_is_hourly_times_hours_times_30(hours: float) -> None:
    est = estimate("sagemaker_async", "g5.2xlarge", hours_per_day=hours)
    assert est.target is not None and est.target.hourly is not None
    assert est.target.monthly == est.target.hourly * dec(hours) * DAYS_PER_MONTH
    assert (
        est.monthly_total == est.deployment_monthly_total + est.target.monthly + est.secrets_manager_monthly
    )
    assert any("scales to zero" in n for n in est.notes)


def test_public_deployment_has_no_secret_cost() -> None:
    est = estimate("ec2", "g5.2xlarge", api_key_secret=False)
    assert est.secrets_manager_monthly == 0


def test_missing_instance_price_is_said_not_guessed() -> None:
    cat = catalogue()
    unpriced = next(
        (
            i
            for i in cat.instances
            if i not in cat.prices.regions["cn-north-1"].ec2_hourly
            and i in cat.prices.regions["us-east-1"].ec2_hourly
        ),
        None,
    )
    if unpriced is None:
        pytest.skip("every instance has a cn-north-1 price")
    est = estimate("ec2", unpriced, "cn-north-1")
    assert est.target is not None and est.target.hourly is None and est.monthly_total is None
    assert any(unpriced in n for n in est.notes)
    assert est.to_dict()["monthly_total"] is None


def test_regions_without_prices_fall_back_within_their_currency() -> None:
    eu = estimate("ec2", "g5.2xlarge", "eu-west-1")
    assert eu.price_region == "us-east-1" and eu.currency == "USD" and any("eu-west-1" in n for n in eu.notes)
    cn = estimate("ec2", "g5.xlarge", "cn-northwest-1")
    assert cn.price_region == "cn-northwest-1" and cn.symbol == "¥"  # Ningxia has its own table (g5, p4d)
    assert cn.target is not None and cn.target.hourly is not None


def test_estimated_prices_are_labelled_in_the_estimate() -> None:
    est = estimate("sagemaker_realtime", "p5en.48xlarge", "us-west-2", model_size_gb=700)
    assert est.target is not None and est.target.hourly is not None
    assert any(
        n.startswith("the SageMaker ml.p5en.48xlarge price is an estimate (ESTIMATE:") for n in est.notes
    )
    listed = estimate("ec2", "g6e.xlarge")
    assert not any("estimate" in n for n in listed.notes)
    cn = estimate("ec2", "g4dn.2xlarge", "cn-north-1")
    assert any("USD list price x 8.4" in n for n in cn.notes)


def test_local_has_no_aws_cost() -> None:
    est = estimate("local", "m7i.xlarge")
    assert est.deployment == () and est.target is None and est.monthly_total == 0


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"model_size_gb": -1}, "model size"),
        ({"hours_per_day": 25}, "hours per day"),
        ({"instance": "g5.2xlarg"}, "g5.2xlarge"),
        ({"service": "sagemaker"}, "sagemaker_realtime"),
        ({"region": "us-east-9"}, "us-east-9"),
        ({"compute_type": "BUILD_GENERAL1_HUGE"}, "BUILD_GENERAL1_LARGE"),
    ],
)
def test_bad_input_is_a_user_error(kwargs: dict, needle: str) -> None:
    with pytest.raises(EmdUserError, match=needle):
        estimate(**kwargs)


def test_to_dict_rounds_to_cents_and_is_stable() -> None:
    d = estimate("ec2", "g4dn.xlarge", "cn-north-1", **REFERENCE).to_dict()
    assert d["one_time_total"] == "0.80" and d["deployment_monthly_total"] == "0.84"
    assert d["target"]["hourly"] == "4.42" and d["secrets_manager_monthly"] == "3.36"
    assert set(d) == {
        "region",
        "price_region",
        "currency",
        "deployment",
        "one_time_total",
        "deployment_monthly_total",
        "target",
        "secrets_manager_monthly",
        "monthly_total",
        "notes",
        "not_included",
    }
    assert money(Decimal("0.005")) == Decimal("0.01")
