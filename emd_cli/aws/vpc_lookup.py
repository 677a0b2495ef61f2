"""`emd bootstrap --vpc-id`: the context entry that CDK's Vpc.from_lookup reads, computed through the EC2 API
the way the cdk CLI's VPC context provider does (subnets grouped as Public, Private or Isolated by their
route tables), so the gateway stack synthesizes in-process without the cdk CLI."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from emd_cli.aws.session import AwsSession
from model_specs.errors import EmdUserError

SUBNET_NAME_TAG = "aws-cdk:subnet-name"


def vpc_context(aws: AwsSession, vpc_id: str) -> tuple[str, dict[str, Any]]:
    """(context key, context value) for Vpc.from_lookup(vpc_id=vpc_id) in aws.region and account."""
    ec2 = aws.client("ec2")
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}]).get("Vpcs", [])
    if not vpcs:
        raise EmdUserError(f"--vpc-id {vpc_id}: no such VPC in {aws.region} (account {aws.account_id})")
    vpc_filter = [{"Name": "vpc-id", "Values": [vpc_id]}]
    subnets = [
        s
        for page in ec2.get_paginator("describe_subnets").paginate(Filters=vpc_filter)
        for s in page["Subnets"]
    ]
    tables = [
        t
        for page in ec2.get_paginator("describe_route_tables").paginate(Filters=vpc_filter)
        for t in page["RouteTables"]
    ]
    main = next((t for t in tables if any(a.get("Main") for a in t.get("Associations", []))), None)
    by_subnet = {a["SubnetId"]: t for t in tables for a in t.get("Associations", []) if a.get("SubnetId")}
    groups: dict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)
    for subnet in sorted(subnets, key=lambda s: (s["AvailabilityZone"], s["SubnetId"])):
        table = by_subnet.get(subnet["SubnetId"], main) or {}
        kind = _subnet_type(table)
        tags = {t["Key"]: t["Value"] for t in subnet.get("Tags", [])}
        groups[(tags.get(SUBNET_NAME_TAG, kind), kind)].append(
            {
                "subnetId": subnet["SubnetId"],
                "cidr": subnet["CidrBlock"],
                "availabilityZone": subnet["AvailabilityZone"],
                "routeTableId": table.get("RouteTableId", ""),
            }
        )
    key = (
        f"vpc-provider:account={aws.account_id}:filter.vpc-id={vpc_id}:region={aws.region}"
        ":returnAsymmetricSubnets=true"
    )
    value = {
        "vpcId": vpc_id,
        "vpcCidrBlock": vpcs[0]["CidrBlock"],
        "ownerAccountId": vpcs[0].get("OwnerId", aws.account_id),
        "availabilityZones": [],
        "subnetGroups": [
            {"name": name, "type": kind, "subnets": members} for (name, kind), members in groups.items()
        ],
    }
    return key, value


def _subnet_type(table: dict[str, Any]) -> str:
    routes = table.get("Routes", [])
    if any(str(r.get("GatewayId", "")).startswith("igw-") for r in routes):
        return "Public"
    egress = (
        "NatGatewayId",
        "TransitGatewayId",
        "NetworkInterfaceId",
        "InstanceId",
        "VpcPeeringConnectionId",
    )
    if any(r.get(k) for r in routes for k in egress):
        return "Private"
    return "Isolated"
