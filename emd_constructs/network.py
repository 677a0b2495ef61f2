"""The gateway's network: a new VPC (2 AZs, public + private subnets, one NAT gateway, S3 gateway endpoint,
flow logs) or an existing VPC looked up by id; exactly two private subnets in two AZs are exposed. Also the
VPC that model targets and GitOps smoke tests import by id."""

from __future__ import annotations

import aws_cdk as cdk
import aws_cdk.aws_ec2 as ec2
from constructs import Construct

from emd_constructs.log_groups import log_group
from model_specs.errors import EmdUserError


class GatewayNetwork(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        vpc_id: str | None,
        restrict_default_security_group: bool = True,
    ) -> None:
        """restrict_default_security_group=False leaves out aws-cdk-lib's custom resource (a Lambda asset)
        that strips the new VPC's default security group; `emd bootstrap` does that through the EC2 API."""
        super().__init__(scope, construct_id)
        self.created = vpc_id is None
        if vpc_id is not None:
            self.vpc: ec2.IVpc = ec2.Vpc.from_lookup(self, "Vpc", vpc_id=vpc_id)
        else:
            flow_logs = log_group(self, "FlowLogs")
            self.vpc = ec2.Vpc(
                self,
                "Vpc",
                max_azs=2,
                nat_gateways=1,
                restrict_default_security_group=restrict_default_security_group,
                subnet_configuration=[
                    ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24),
                    ec2.SubnetConfiguration(
                        name="private", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=20
                    ),
                ],
                gateway_endpoints={
                    "S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3)
                },
                flow_logs={
                    "All": ec2.FlowLogOptions(
                        destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs),
                        traffic_type=ec2.FlowLogTrafficType.ALL,
                    )
                },
            )
        self.private_subnets = self._two_private_subnets(vpc_id)

    def _two_private_subnets(self, vpc_id: str | None) -> list[ec2.ISubnet]:
        for subnet_type in (ec2.SubnetType.PRIVATE_WITH_EGRESS, ec2.SubnetType.PRIVATE_ISOLATED):
            try:
                subnets = self.vpc.select_subnets(subnet_type=subnet_type, one_per_az=True).subnets
            except Exception:  # select_subnets raises when the VPC has no subnet of that type
                continue
            if len(subnets) >= 2:
                return list(subnets[:2])
        raise EmdUserError(
            f"VPC {vpc_id} needs private subnets in at least two availability zones for the gateway tasks "
            f"and the model services; leave vpc_id out to create a suitable VPC"
        )


def imported_vpc(scope: Construct, construct_id: str, *, vpc_id: str, subnet_ids: list[str]) -> ec2.IVpc:
    """A VPC and its private subnets known only by id (tokens from SSM or service_params). Their AZs are
    placeholders and their route tables unknown: nothing EMD builds reads either, so CDK's warning on each
    such subnet (in `emd plan`'s output since @aws-cdk/core:annotationsInValidationReport) is acknowledged for
    `scope` and its children."""
    cdk.Annotations.of(scope).acknowledge_warning(
        "@aws-cdk/aws-ec2:noSubnetRouteTableId", "EMD never reads the route table of a subnet imported by id"
    )
    return ec2.Vpc.from_vpc_attributes(
        scope,
        construct_id,
        vpc_id=vpc_id,
        availability_zones=[cdk.Fn.select(i, cdk.Fn.get_azs()) for i in range(len(subnet_ids))],
        private_subnet_ids=subnet_ids,
    )
