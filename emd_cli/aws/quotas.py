"""Is there service quota for a deployment's instances? Checked by `emd deploy` before anything is created:
the quota must hold what is in use already plus what the deployment starts with.

SageMaker: '<ml.instance> for endpoint usage' (instances), found by name in Service Quotas' paginated list;
in use: the instances of that type behind the endpoints that hold instances (Search, paginated, then each
such endpoint's configuration for its instance types). EC2 (ecs, ec2 targets): running on-demand vCPUs of the
instance's family group (G and VT, P, Inf, Trn, or the standard families), by quota code; in use: the vCPUs
of the pending and running on-demand instances of that group (DescribeInstances filtered by family,
paginated, and DescribeInstanceTypes for their vCPUs). A quota or a usage that cannot be read (no
permission, a service without Service Quotas) is a warning, not a refusal.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from emd_cli.aws.session import AwsSession
from model_specs.deployment import Deployment
from model_specs.errors import EmdUserError
from model_specs.schema import ServiceType


@dataclass(frozen=True)
class Ec2QuotaGroup:
    """One of EC2's running on-demand vCPU quotas and the instance families it counts."""

    code: str
    name: str
    families: tuple[str, ...]  # family prefixes: 'g' counts g4dn, g5, g6e …

    @property
    def wildcards(self) -> list[str]:
        """DescribeInstances instance-type filter values (a superset: inf* also starts with i)."""
        return [f"{prefix}*" for prefix in self.families]


EC2_QUOTA_GROUPS = (
    Ec2QuotaGroup("L-DB2E81BA", "Running On-Demand G and VT instances", ("g", "vt")),
    Ec2QuotaGroup("L-417A185B", "Running On-Demand P instances", ("p",)),
    Ec2QuotaGroup("L-1945791B", "Running On-Demand Inf instances", ("inf",)),
    Ec2QuotaGroup("L-2C3B7624", "Running On-Demand Trn instances", ("trn",)),
)
EC2_STANDARD = Ec2QuotaGroup(
    "L-1216C47A",
    "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances",
    ("a", "c", "d", "h", "i", "m", "r", "t", "z"),
)


def ec2_quota_group(instance_type: str) -> Ec2QuotaGroup:
    """The vCPU quota an on-demand instance type counts against (the longest matching family prefix)."""
    family = instance_type.split(".")[0]
    matches = [(len(p), g) for g in EC2_QUOTA_GROUPS for p in g.families if family.startswith(p)]
    return max(matches, key=lambda m: m[0])[1] if matches else EC2_STANDARD


@dataclass(frozen=True)
class QuotaNeed:
    service_code: str
    quota_name: str
    quota_code: str | None  # None: look the code up by name
    needed: float
    unit: str  # 'instances' | 'vCPUs'
    instance_type: str  # ml.g5.2xlarge (SageMaker) or g5.2xlarge (EC2)


def quota_need(dep: Deployment) -> QuotaNeed:
    count = max(dep.extra_params.service_params.min_capacity or 1, 1)
    if dep.service_type in (ServiceType.sagemaker_realtime, ServiceType.sagemaker_async):
        name = f"{dep.sagemaker_instance_type} for endpoint usage"
        return QuotaNeed("sagemaker", name, None, count, "instances", dep.sagemaker_instance_type)
    group = ec2_quota_group(dep.instance_type)
    return QuotaNeed("ec2", group.name, group.code, dep.instance.vcpus * count, "vCPUs", dep.instance_type)


def quota_value(aws: AwsSession, need: QuotaNeed) -> tuple[float, str] | None:
    """The account's applied quota and its code (None when Service Quotas does not know it)."""
    sq = aws.client("service-quotas")
    if need.quota_code is not None:
        try:
            quota = sq.get_service_quota(ServiceCode=need.service_code, QuotaCode=need.quota_code)["Quota"]
        except sq.exceptions.NoSuchResourceException:
            return None
        return float(quota["Value"]), need.quota_code
    for page in sq.get_paginator("list_service_quotas").paginate(ServiceCode=need.service_code):
        for quota in page.get("Quotas", []):
            if quota.get("QuotaName") == need.quota_name:
                return float(quota["Value"]), str(quota["QuotaCode"])
    return None


def in_use(aws: AwsSession, need: QuotaNeed) -> float:
    """What already counts against the quota in this account and region."""
    if need.service_code == "sagemaker":
        return sagemaker_instances_in_use(aws, need.instance_type)
    return ec2_vcpus_in_use(aws, ec2_quota_group(need.instance_type))


def sagemaker_instances_in_use(aws: AwsSession, instance_type: str) -> int:
    """Instances of `instance_type` behind the endpoints that hold some (in service, creating, updating)."""
    from emd_cli.aws.capacity import HOLDING_INSTANCES, all_sagemaker_endpoints

    sm = aws.client("sagemaker")
    total = 0
    for endpoint in all_sagemaker_endpoints(aws):
        if endpoint.get("EndpointStatus") not in HOLDING_INSTANCES:
            continue
        counts = {
            v["VariantName"]: int(v.get("CurrentInstanceCount", v.get("DesiredInstanceCount")) or 0)
            for v in endpoint.get("ProductionVariants", [])
        }
        if not any(counts.values()):
            continue
        config = sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
        for variant in config.get("ProductionVariants", []):
            if variant.get("InstanceType") == instance_type:
                total += counts.get(variant["VariantName"], 0)
    return total


def ec2_vcpus_in_use(aws: AwsSession, group: Ec2QuotaGroup) -> int:
    """vCPUs of the pending and running on-demand instances counted by `group` (spot and scheduled instances
    have quotas of their own)."""
    ec2 = aws.client("ec2")
    filters = [
        {"Name": "instance-state-name", "Values": ["pending", "running"]},
        {"Name": "instance-type", "Values": group.wildcards},
    ]
    types: Counter[str] = Counter()
    for page in ec2.get_paginator("describe_instances").paginate(Filters=filters):
        for reservation in page.get("Reservations", []):
            for instance in reservation.get("Instances", []):
                kind = instance["InstanceType"]
                if not instance.get("InstanceLifecycle") and ec2_quota_group(kind) == group:
                    types[kind] += 1
    if not types:
        return 0
    vcpus = {
        t["InstanceType"]: int(t["VCpuInfo"]["DefaultVCpus"])
        for page in ec2.get_paginator("describe_instance_types").paginate(InstanceTypes=sorted(types))
        for t in page.get("InstanceTypes", [])
    }
    return sum(count * vcpus.get(kind, 0) for kind, count in types.items())


def check_quota(aws: AwsSession, dep: Deployment, warn: Any) -> None:
    """EmdUserError when the quota cannot hold what is in use plus what the deployment needs, naming the
    numbers and where to ask for more; warn(text) when the quota or the usage cannot be read."""
    from emd_cli.aws.errors import explain, is_aws_error

    need = quota_need(dep)
    try:
        found = quota_value(aws, need)
    except Exception as exc:
        if not is_aws_error(exc):
            raise
        warn(f"could not read the quota '{need.quota_name}' ({explain(exc).message}); deploying anyway")
        return
    if found is None:
        warn(f"Service Quotas has no quota '{need.quota_name}' in {aws.region}; deploying anyway")
        return
    value, code = found
    try:
        used = in_use(aws, need)
    except Exception as exc:
        if not is_aws_error(exc):
            raise
        problem = explain(exc).message
        warn(f"could not count what uses '{need.quota_name}' ({problem}); checking the quota alone")
        used = 0
    wanted = used + need.needed
    if wanted > value:
        raise EmdUserError(
            f"not enough service quota for {dep.route}: '{need.quota_name}' is {value:g} in {aws.region}, "
            f"{used:g} {need.unit} are in use and the deployment needs {need.needed:g} more. Request "
            f"{wanted:g} in the Service Quotas console ({console_url(aws, need.service_code, code)}) or with "
            f"`aws service-quotas request-service-quota-increase --service-code {need.service_code} "
            f"--quota-code {code} --desired-value {wanted:g} --region {aws.region}`, or choose another "
            f"instance type"
        )


def console_url(aws: AwsSession, service_code: str, quota_code: str) -> str:
    """The quota's page in the Service Quotas console of the region's partition."""
    host = aws.region_info.console_host
    return (
        f"https://{host}/servicequotas/home/services/{service_code}/quotas/{quota_code}?region={aws.region}"
    )
