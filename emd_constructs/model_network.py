"""Network for ECS/EC2 model targets: the user's VPC/subnets (service_params) or the gateway's, read from SSM
(/emd/gateway/*), plus the engine security group that admits only the gateway's tasks on the engine port."""

from __future__ import annotations

import aws_cdk as cdk
import aws_cdk.aws_ec2 as ec2
import aws_cdk.aws_ssm as ssm
from constructs import Construct

from emd_constructs.engine_settings import ENGINE_PORT
from emd_constructs.network import imported_vpc
from model_specs.deployment import Deployment
from model_specs.registry import PARAM_GATEWAY_SECURITY_GROUP as PARAM_SECURITY_GROUP
from model_specs.registry import PARAM_GATEWAY_SUBNETS as PARAM_SUBNETS
from model_specs.registry import PARAM_GATEWAY_VPC_ID as PARAM_VPC_ID

GATEWAY_SUBNET_COUNT = 2


class ModelNetwork(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, deployment: Deployment) -> None:
        super().__init__(scope, construct_id)
        sp = deployment.extra_params.service_params
        if sp.vpc_id and sp.subnet_ids:
            vpc_id, subnet_ids = sp.vpc_id, list(sp.subnet_ids)
        else:
            vpc_id = sp.vpc_id or ssm.StringParameter.value_for_string_parameter(self, PARAM_VPC_ID)
            listed = ssm.StringListParameter.value_for_typed_list_parameter(self, PARAM_SUBNETS)
            subnet_ids = [cdk.Fn.select(i, listed) for i in range(GATEWAY_SUBNET_COUNT)]
        self.vpc = imported_vpc(self, "Vpc", vpc_id=vpc_id, subnet_ids=subnet_ids)
        azs = self.vpc.availability_zones
        self.subnets = ec2.SubnetSelection(
            subnets=[
                # the AZ is a placeholder CDK wants; targets never render it (see Ec2ModelInstance)
                ec2.Subnet.from_subnet_attributes(self, f"Subnet{i}", subnet_id=s, availability_zone=azs[i])
                for i, s in enumerate(subnet_ids)
            ]
        )
        self.gateway_security_group = ec2.SecurityGroup.from_security_group_id(
            self,
            "GatewaySecurityGroup",
            ssm.StringParameter.value_for_string_parameter(self, PARAM_SECURITY_GROUP),
            allow_all_outbound=False,
            mutable=False,
        )
        self.engine_security_group = ec2.SecurityGroup(
            self,
            "EngineSecurityGroup",
            vpc=self.vpc,
            description=f"EMD engine {deployment.route}: port {ENGINE_PORT} from the gateway only",
            allow_all_outbound=True,
        )
        self.engine_security_group.add_ingress_rule(
            self.gateway_security_group, ec2.Port.tcp(ENGINE_PORT), "EMD gateway tasks"
        )
