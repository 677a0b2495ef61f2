"""Desired (models.yaml) against deployed (CloudFormation stacks): what to add, change (in place or by
replacement), remove and leave alone. Pure; `emd gitops plan` and the pipeline's prune step both use it.

A stack counts as this pipeline's only when it is an EMD model stack carrying the tag emd:gitops=<pipeline>:
only those are ever removed. A stack with the name of a desired entry but without that tag (deployed with
`emd deploy`, say) is reported as a change that the pipeline takes over.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from model_specs.deployment import STACK_PREFIX
from model_specs.gitops import DEPLOYMENT_METADATA_KEY, GITOPS_TAG_KEY
from model_specs.models_file import Entry

Kind = Literal["add", "change", "remove", "untouched"]
COMPARED = ("engine_type", "instance_type", "service_type", "extra_params")
_DESCRIPTION = re.compile(
    r"^EMD model (?P<route>\S+): (?P<engine>\S+) on (?P<instance>\S+) \((?P<service>\w+)\)"
)
_EC2_USER_DATA = (
    "engine_type",
    "extra_params.engine_params",
    "extra_params.model_params",
    "extra_params.framework_params",
)
_NETWORK = ("extra_params.service_params.vpc_id", "extra_params.service_params.subnet_ids")


@dataclass(frozen=True)
class DeployedStack:
    """An EMD model stack as DescribeStacks and its template metadata show it."""

    name: str
    account: str
    region: str
    status: str
    tags: dict[str, str]
    spec: dict[str, Any] | None  # Deployment.to_public_dict() from the template's EMD::Deployment metadata
    description: str = ""

    @property
    def pipeline(self) -> str | None:
        return self.tags.get(GITOPS_TAG_KEY)

    def deployed_spec(self) -> dict[str, Any] | None:
        """The metadata, else what the stack description says (stacks deployed outside GitOps)."""
        if self.spec is not None:
            return self.spec
        m = _DESCRIPTION.match(self.description)
        if m is None:
            return None
        return {
            "engine_type": m["engine"],
            "instance_type": m["instance"],
            "service_type": m["service"],
            "extra_params": {},
            "region": self.region,
        }


@dataclass(frozen=True)
class Change:
    field: str
    before: Any
    after: Any
    replacing: str | None  # why the change replaces a resource; None: updated in place


@dataclass
class PlanItem:
    kind: Kind
    stack_name: str
    account: str
    region: str
    route: str
    desired: dict[str, Any] | None = None
    deployed: dict[str, Any] | None = None
    changes: list[Change] = field(default_factory=list)
    adopted: bool = False  # an existing stack this pipeline did not create

    @property
    def replacing(self) -> bool:
        return any(c.replacing for c in self.changes)


def replacement_reason(service: str, field_name: str) -> str | None:
    """Why changing `field_name` of a deployment on `service` replaces its endpoint, instance or resources
    (None: CloudFormation updates it in place)."""
    if field_name == "service_type":
        return "another service type: every resource of the stack is replaced"
    if field_name == "extra_params.service_params.sagemaker_endpoint_name":
        return "a SageMaker endpoint cannot be renamed: a new endpoint replaces it"
    if service in ("ecs", "ec2") and field_name.startswith(_NETWORK):
        return "another network: security groups and hosts are replaced"
    if service == "ec2" and field_name.startswith(_EC2_USER_DATA):
        return "the EC2 instance's user data changes: the instance is replaced"
    return None


def _flatten(value: Any, prefix: str) -> dict[str, Any]:
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, sub in value.items():
            out.update(_flatten(sub, f"{prefix}.{key}"))
        return out
    return {prefix: value if value != {} else None}


def spec_changes(deployed: dict[str, Any], desired: dict[str, Any]) -> list[Change]:
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for key in COMPARED:
        before.update(_flatten(deployed.get(key), key))
        after.update(_flatten(desired.get(key), key))
    service = str(deployed.get("service_type"))
    return [
        Change(name, before.get(name), after.get(name), replacement_reason(service, name))
        for name in sorted(set(before) | set(after))
        if before.get(name) != after.get(name)
    ]


@dataclass(frozen=True)
class DesiredStack:
    """A model stack models.yaml asks for, where it goes and what it is (Deployment.to_public_dict())."""

    account: str
    region: str
    stack_name: str
    route: str
    spec: dict[str, Any]


def desired_stacks(entries: list[Entry], default_account: str) -> list[DesiredStack]:
    """models.yaml entries as stacks; an entry without an account goes to `default_account`."""
    return [
        DesiredStack(
            e.target.account or default_account,
            e.target.region,
            e.deployment.stack_name,
            e.route,
            e.deployment.to_public_dict(),
        )
        for e in entries
    ]


def compare(desired: list[DesiredStack], deployed: list[DeployedStack], *, pipeline: str) -> list[PlanItem]:
    """One item per desired stack and per deployed stack of this pipeline; stacks of other pipelines, of
    `emd deploy` or not EMD's at all never appear (unless a desired entry has their name)."""
    by_key = {(s.account, s.region, s.name): s for s in deployed if s.name.startswith(STACK_PREFIX)}
    items: list[PlanItem] = []
    wanted: set[tuple[str, str, str]] = set()
    for want in desired:
        key = (want.account, want.region, want.stack_name)
        wanted.add(key)
        stack = by_key.get(key)
        item = PlanItem("add", want.stack_name, want.account, want.region, want.route, desired=want.spec)
        if stack is not None:
            spec = stack.deployed_spec()
            item.deployed = spec
            item.adopted = stack.pipeline != pipeline
            item.changes = spec_changes(spec, want.spec) if spec is not None else []
            failed = stack.status.endswith(("FAILED", "ROLLBACK_COMPLETE"))
            unchanged = not item.changes and spec is not None and not item.adopted and not failed
            item.kind = "untouched" if unchanged else "change"
        items.append(item)
    for key, stack in by_key.items():
        if key not in wanted and stack.pipeline == pipeline:
            spec = stack.deployed_spec()
            route = f"{stack.tags.get('emd:model-id', '?')}/{stack.tags.get('emd:tag', '?')}"
            items.append(PlanItem("remove", stack.name, stack.account, stack.region, route, deployed=spec))
    return items


def list_model_stacks(
    cfn: Any, account: str, region: str, *, read_specs_of: Callable[[str, dict[str, str]], bool]
) -> list[DeployedStack]:
    """EMD model stacks of one account and region from a CloudFormation client (DescribeStacks, paginated);
    the template's EMD::Deployment metadata is read (GetTemplate) for the stacks `read_specs_of(name, tags)`
    picks. model_specs imports no boto3: the caller passes its client."""
    out = []
    for page in cfn.get_paginator("describe_stacks").paginate():
        for stack in page.get("Stacks", []):
            name, status = stack["StackName"], stack["StackStatus"]
            if not name.startswith(STACK_PREFIX) or status == "DELETE_COMPLETE":
                continue
            tags = {t["Key"]: t["Value"] for t in stack.get("Tags", [])}
            spec = template_spec(cfn, name) if read_specs_of(name, tags) else None
            out.append(DeployedStack(name, account, region, status, tags, spec, stack.get("Description", "")))
    return out


def template_spec(cfn: Any, stack_name: str) -> dict[str, Any] | None:
    body = cfn.get_template(StackName=stack_name, TemplateStage="Original").get("TemplateBody")
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            return None
    spec = (body or {}).get("Metadata", {}).get(DEPLOYMENT_METADATA_KEY)
    return spec if isinstance(spec, dict) else None


def to_prune(items: list[PlanItem]) -> list[PlanItem]:
    return [i for i in items if i.kind == "remove"]


def hourly_cost(spec: dict[str, Any] | None) -> tuple[Decimal, str] | None:
    """(hourly price x instances at minimum capacity, currency symbol) of a deployment spec; None when the
    price book has no price for it."""
    if spec is None:
        return None
    from model_specs.cost import estimate_cost
    from model_specs.errors import EmdUserError

    try:
        est = estimate_cost(
            region=spec["region"],
            instance_type=spec["instance_type"],
            service_type=spec["service_type"],
            model_size_gb=0,
        )
    except (EmdUserError, KeyError):
        return None
    if est.target is None or est.target.hourly is None:
        return None
    sp = (spec.get("extra_params") or {}).get("service_params") or {}
    count = sp.get("desired_capacity")
    if count is None:
        count = sp.get("min_capacity", 1)
    return est.target.hourly * count, est.symbol


def total_hourly(specs: list[dict[str, Any] | None]) -> dict[str, Decimal]:
    """Hourly cost by currency symbol ($, ¥) of the deployments that have a price."""
    totals: dict[str, Decimal] = {}
    for spec in specs:
        cost = hourly_cost(spec)
        if cost is not None:
            totals[cost[1]] = totals.get(cost[1], Decimal(0)) + cost[0]
    return totals
