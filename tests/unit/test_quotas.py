"""Which service quota a deployment needs, and how much of it."""

from __future__ import annotations

import pytest

from emd_cli.aws.quotas import quota_need
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
    assert (n.service_code, n.quota_name, n.quota_code, n.needed, n.unit) == (
        "sagemaker",
        "ml.g5.2xlarge for endpoint usage",
        None,
        2,
        "instances",
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
