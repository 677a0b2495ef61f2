"""Which service quota a deployment needs, and how much of it."""

from __future__ import annotations

import pytest

from emd_cli.aws.quotas import console_url, ec2_quota_group, quota_need
from model_specs.deployment import resolve_deployment


def need(instance: str, service: str, model: str = "Qwen2.5-7B-Instruct", **service_params: int):
    dep = resolve_deployment(
        model_id=model,
        instance_type=instance,
        service_type=service,
        region="us-east-1",
        extra_params={"service_params": service_params} if service_params else None,
    )
    return quota_need(dep)


def test_sagemaker_counts_endpoint_instances_by_name():
    n = need("g5.2xlarge", "sagemaker_realtime", min_capacity=2, max_capacity=3)
    assert (n.service_code, n.quota_name, n.quota_code, n.needed, n.unit, n.instance_type) == (
        "sagemaker",
        "ml.g5.2xlarge for endpoint usage",
        None,
        2,
        "instances",
        "ml.g5.2xlarge",
    )


@pytest.mark.parametrize(
    ("model", "instance", "code", "vcpus"),
    [
        ("Qwen2.5-7B-Instruct", "g5.2xlarge", "L-DB2E81BA", 8),
        ("Qwen2.5-7B-Instruct", "g6e.xlarge", "L-DB2E81BA", 4),
        ("Qwen2.5-72B-Instruct", "p4d.24xlarge", "L-417A185B", 96),
    ],
)
def test_ec2_counts_vcpus_of_the_family_group(model, instance, code, vcpus):
    n = need(instance, "ec2", model)
    assert (n.service_code, n.quota_code, n.needed, n.unit) == ("ec2", code, vcpus, "vCPUs")


@pytest.mark.parametrize(
    ("instance", "code"),
    [
        ("g6e.xlarge", "L-DB2E81BA"),
        ("vt1.3xlarge", "L-DB2E81BA"),
        ("inf2.xlarge", "L-1945791B"),  # not the standard group of i3, i4i …
        ("trn1.2xlarge", "L-2C3B7624"),  # not the standard group of t3 …
        ("i4i.large", "L-1216C47A"),
        ("m7i.xlarge", "L-1216C47A"),
        ("p5.48xlarge", "L-417A185B"),
    ],
)
def test_each_instance_type_counts_against_one_vcpu_quota(instance, code):
    assert ec2_quota_group(instance).code == code


def test_the_console_link_is_the_regions_partitions():
    from emd_cli.aws.session import AwsSession

    assert console_url(AwsSession("eu-west-1"), "sagemaker", "L-1") == (
        "https://console.aws.amazon.com/servicequotas/home/services/sagemaker/quotas/L-1?region=eu-west-1"
    )
    assert console_url(AwsSession("cn-north-1"), "ec2", "L-2").startswith("https://console.amazonaws.cn/")
