"""The checkers themselves must be able to fail: each is shown a template that breaks its rule."""

from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk import aws_s3 as s3

from tests.cdk_checks import (
    NagFindings,
    assert_cfn_lint_clean,
    assert_partition_clean,
    cfn_lint_findings,
    partition_literals,
    synth_checked,
)


def test_nag_reports_an_insecure_bucket(tmp_path):
    app = cdk.App(outdir=str(tmp_path))
    stack = cdk.Stack(app, "Insecure")
    s3.Bucket(stack, "Open")
    with pytest.raises(NagFindings) as info:
        synth_checked(app)
    assert "AwsSolutions-S10" in str(info.value)  # SSL not enforced
    assert "AwsSolutions-S1" in str(info.value)  # no access logs


def test_nag_acknowledgement_with_reason_suppresses(tmp_path):
    app = cdk.App(outdir=str(tmp_path))
    stack = cdk.Stack(app, "Acked")
    bucket = s3.Bucket(
        stack,
        "B",
        enforce_ssl=True,
        encryption=s3.BucketEncryption.S3_MANAGED,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
    )
    cdk.Validations.of(bucket).acknowledge(cdk.Acknowledgment(id="AwsSolutions-S1", reason="test bucket"))
    templates = synth_checked(app)
    assert "Acked" in templates


def test_cfn_lint_catches_an_unknown_property():
    template = {"Resources": {"B": {"Type": "AWS::S3::Bucket", "Properties": {"NotAProperty": 1}}}}
    findings = cfn_lint_findings(template, ["us-east-1"])
    assert any(f.startswith("E3002") for f in findings)
    with pytest.raises(AssertionError):
        assert_cfn_lint_clean(template, ["us-east-1"])


def test_partition_check_finds_global_literals():
    bad = {
        "Resources": {
            "T": {
                "Type": "AWS::SNS::Topic",
                "Properties": {"DisplayName": "arn:aws:sns:cn-north-1:1:x", "TopicName": "s3.amazonaws.com"},
            }
        }
    }
    assert len(partition_literals(bad)) == 2
    with pytest.raises(AssertionError):
        assert_partition_clean(bad)
    assert_partition_clean(
        {"Resources": {"T": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "s3.amazonaws.com.cn"}}}}
    )
