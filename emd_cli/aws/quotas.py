"""Is there service quota for a deployment's instances? Checked by `emd deploy` before anything is created.

SageMaker: '<ml.instance> for endpoint usage' (instances), found by name in Service Quotas' paginated list.
EC2 (ecs, ec2 targets): running on-demand vCPUs of the instance's family group (G and VT, P, Inf, Trn, or
the standard families), by quota code. The quota is compared with what the deployment starts with; a quota
that cannot be read (no permission, a service without Service Quotas) is a warning, not a refusal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from emd_cli.aws.session import AwsSession
from model_specs.deployment import Deployment
from model_specs.errors import EmdUserError
from model_specs.schema import ServiceType

# Service Quotas codes of EC2's running on-demand vCPU quotas, by instance family prefix
EC2_VCPU_QUOTAS = {
    "g": ("L-DB2E81BA", "Running On-Demand G and VT instances"),
    "vt": ("L-DB2E81BA", "Running On-Demand G and VT instances"),
    "p": ("L-417A185B", "Running On-Demand P instances"),
    "inf": ("L-1945791B", "Running On-Demand Inf instances"),
    "trn": ("L-2C3B7624", "Running On-Demand Trn instances"),
}
EC2_STANDARD_QUOTA = ("L-1216C47A", "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances")


@dataclass(frozen=True)
class QuotaNeed:
    service_code: str
    quota_name: str
    quota_code: str | None  # None: look the code up by name
    needed: float
    unit: str  # 'instances' | 'vCPUs'


def quota_need(dep: Deployment) -> QuotaNeed:
    count = max(dep.extra_params.service_params.min_capacity or 1, 1)
    if dep.service_type in (ServiceType.sagemaker_realtime, ServiceType.sagemaker_async):
        name = f"{dep.sagemaker_instance_type} for endpoint usage"
        return QuotaNeed("sagemaker", name, None, count, "instances")
    family = dep.instance.family
    prefix = next((p for p in sorted(EC2_VCPU_QUOTAS, key=len, reverse=True) if family.startswith(p)), None)
    code, name = EC2_VCPU_QUOTAS[prefix] if prefix else EC2_STANDARD_QUOTA
    return QuotaNeed("ec2", name, code, dep.instance.vcpus * count, "vCPUs")


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


def check_quota(aws: AwsSession, dep: Deployment, warn: Any) -> None:
    """EmdUserError when the quota is smaller than what the deployment needs; warn(text) when unknown."""
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
    if value < need.needed:
        raise EmdUserError(
            f"not enough service quota for {dep.route}: '{need.quota_name}' is {value:g} in {aws.region}, "
            f"the deployment needs {need.needed:g} {need.unit}. Ask for more with `aws service-quotas "
            f"request-service-quota-increase --service-code {need.service_code} --quota-code {code} "
            f"--desired-value {need.needed:g} --region {aws.region}`, or choose another instance type"
        )
