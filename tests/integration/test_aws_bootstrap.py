"""`emd bootstrap` and `emd uninstall` run as a user runs them (a subprocess), against the AWS double (moto
server + CodeBuild/CodePipeline executor, tests/support/aws_double.py): no `cdk bootstrap`, no Docker."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from tests.support.aws_double import AwsDouble
from tests.support.cli import environ_without, run_emd

pytestmark = [pytest.mark.integration]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def double(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AwsDouble]:
    server = AwsDouble(tmp_path_factory.mktemp("aws-double-bootstrap")).start()
    try:
        yield server
    finally:
        server.stop()


def emd(double: AwsDouble, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return run_emd(*args, env={**environ_without("AWS_"), **double.env(), "COLUMNS": "200"}, timeout=timeout)


def emd_parameters(double: AwsDouble) -> dict[str, str]:
    pages = double.client("ssm").get_paginator("get_parameters_by_path").paginate(Path="/emd", Recursive=True)
    return {p["Name"]: p["Value"] for page in pages for p in page["Parameters"]}


def stack_tags(double: AwsDouble, name: str) -> dict[str, str]:
    stack = double.client("cloudformation").describe_stacks(StackName=name)["Stacks"][0]
    return {t["Key"]: t["Value"] for t in stack.get("Tags", [])}


@pytest.mark.slow
def test_bootstrap_then_rerun_then_uninstall(double: AwsDouble) -> None:
    first = emd(double, "bootstrap", "--region", "us-east-1", "--yes")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Creating EMD-Bootstrap" in first.stdout and "Creating EMD-Gateway" in first.stdout
    assert "Building the gateway image gateway-" in first.stdout
    assert "Traceback" not in first.stdout + first.stderr
    # no exposure option: HTTPS through CloudFront, which this machine can reach, with what it costs
    text = " ".join(first.stdout.split())
    assert "gateway: HTTPS from the internet on a *.cloudfront.net address" in text
    assert "(the default: reachable from this machine without a domain; --internal keeps it" in text
    assert "extra monthly cost: CloudFront data transfer out and HTTPS requests, free up to 1 TB" in text
    params = emd_parameters(double)
    assert {"/emd/bootstrap/pipeline-name", "/emd/bootstrap/artifact-bucket-name", "/emd/gateway/url"} <= set(
        params
    )
    assert params["/emd/gateway/exposure"] == "cloudfront"
    assert params["/emd/gateway/url"].startswith("https://") and params["/emd/gateway/url"].endswith(
        ".cloudfront.net"
    )
    from emd_cli.version import emd_version

    assert stack_tags(double, "EMD-Bootstrap")["emd:version"] == emd_version()
    assert stack_tags(double, "EMD-Gateway")["emd:version"] == emd_version()
    # the gateway image was built by the bootstrap's CodeBuild project and pushed to its repository
    repo = params["/emd/bootstrap/ecr-repository-name"]
    tags = [i.get("imageTag") for i in double.client("ecr").list_images(repositoryName=repo)["imageIds"]]
    assert len(tags) == 1 and tags[0].startswith("gateway-")
    # the new VPC's default security group lets nothing in or out
    ec2 = double.client("ec2")
    (default_sg,) = ec2.describe_security_groups(
        Filters=[
            {"Name": "vpc-id", "Values": [params["/emd/gateway/vpc-id"]]},
            {"Name": "group-name", "Values": ["default"]},
        ]
    )["SecurityGroups"]
    assert default_sg["IpPermissions"] == [] and default_sg["IpPermissionsEgress"] == []

    double.calls(reset=True)
    again = emd(double, "bootstrap", "--region", "us-east-1", "--yes")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "EMD-Bootstrap is up to date" in again.stdout and "EMD-Gateway is up to date" in again.stdout
    assert "*.cloudfront.net address" in again.stdout and "(as deployed)" in again.stdout
    assert "is in ECR already" in again.stdout
    calls = double.calls()
    assert calls["codebuild.StartBuild"] == 0 and calls["cloudformation.ExecuteChangeSet"] == 0

    gone = emd(double, "uninstall", "--region", "us-east-1", "--yes")
    assert gone.returncode == 0, gone.stdout + gone.stderr
    assert "EMD is uninstalled from us-east-1" in gone.stdout
    assert double.client("cloudformation").describe_stacks()["Stacks"] == []
    assert emd_parameters(double) == {}
    assert double.client("s3").list_buckets()["Buckets"] == []
    assert double.client("ecr").describe_repositories()["repositories"] == []
    nothing = emd(double, "uninstall", "--region", "us-east-1", "--yes")
    assert nothing.returncode == 0 and "nothing to remove" in nothing.stdout


def test_bad_flags_are_refused_before_any_aws_call(double: AwsDouble) -> None:
    double.calls(reset=True)
    bad = emd(double, "bootstrap", "--allowed-cidrs", "10.0.0.0/33", "--yes")
    assert bad.returncode == 2
    assert "--allowed-cidrs" in bad.stderr and "10.0.0.0/33" in bad.stderr and "Traceback" not in bad.stderr
    mixed = emd(double, "bootstrap", "--no-gateway", "--internal", "--yes")
    assert mixed.returncode == 2 and "--no-gateway" in mixed.stderr
    assert sum(double.calls().values()) == 0


def test_confirmation_is_needed_off_a_terminal(double: AwsDouble) -> None:
    result = emd(double, "bootstrap", "--no-gateway")
    assert result.returncode == 2 and "--yes" in result.stderr
    assert double.client("cloudformation").describe_stacks()["Stacks"] == []


def test_in_china_the_gateway_stays_internal_and_the_plan_says_what_to_do(double: AwsDouble) -> None:
    result = emd(double, "bootstrap", "--region", "cn-north-1")  # no --yes: the plan, then a refusal
    assert result.returncode == 2 and "--yes" in result.stderr
    text = " ".join(result.stdout.split())
    assert "gateway: an internal load balancer, reachable from its VPC only" in text
    assert "CloudFront serves only an ICP-registered domain: pass --certificate-arn <ACM certificate>" in text
    assert "`emd invoke` reaches SageMaker deployments directly" in text
    assert "extra monthly cost: none" in text
    assert double.client("cloudformation", "cn-north-1").describe_stacks()["Stacks"] == []


def test_a_stack_left_in_rollback_complete_is_explained_then_replaced(double: AwsDouble, monkeypatch) -> None:
    from emd_cli.aws.errors import AwsFailure
    from emd_cli.aws.session import AwsSession
    from emd_cli.aws.stacks import deploy_stack

    for key, value in double.env().items():
        monkeypatch.setenv(key, value)
    aws = AwsSession("us-east-1")
    out = Console(file=open(os.devnull, "w"))  # noqa: SIM115
    failing = _endpoint_config_template("ml.g5.2xlarge")  # moto's SageMaker refuses ml.g5.*
    with pytest.raises(AwsFailure, match=r"ROLLBACK_COMPLETE.*EndpointConfig"):
        deploy_stack(aws, name="EMD-Test", template=failing, console=out)
    good = _endpoint_config_template("ml.g4dn.xlarge")
    with pytest.raises(AwsFailure, match=r"is in ROLLBACK_COMPLETE: its creation failed .*--yes"):
        deploy_stack(aws, name="EMD-Test", template=good, console=out)
    asked: list[str] = []
    result = deploy_stack(
        aws, name="EMD-Test", template=good, console=out, confirm_cleanup=lambda m: asked.append(m) or True
    )
    assert result.status == "CREATE_COMPLETE" and "Delete it now?" in asked[0]
    double.client("cloudformation").delete_stack(StackName="EMD-Test")


@pytest.mark.timeout(60)
def test_a_change_set_that_was_never_executed_does_not_block_the_creation(
    double: AwsDouble, monkeypatch
) -> None:
    """An interrupted run can leave a stack in REVIEW_IN_PROGRESS (its CREATE change set not executed): the
    next run creates the stack instead of waiting for that status to end (it never does)."""
    from emd_cli.aws.session import AwsSession
    from emd_cli.aws.stacks import deploy_stack

    for key, value in double.env().items():
        monkeypatch.setenv(key, value)
    template = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}
    cfn = double.client("cloudformation")
    cfn.create_change_set(
        StackName="EMD-Review",
        ChangeSetName="left",
        ChangeSetType="CREATE",
        TemplateBody=json.dumps(template),
    )
    assert cfn.describe_stacks(StackName="EMD-Review")["Stacks"][0]["StackStatus"] == "REVIEW_IN_PROGRESS"
    out = Console(file=open(os.devnull, "w"))  # noqa: SIM115
    result = deploy_stack(AwsSession("us-east-1"), name="EMD-Review", template=template, console=out)
    assert result.status == "CREATE_COMPLETE" and result.changed
    cfn.delete_stack(StackName="EMD-Review")


def _endpoint_config_template(instance: str) -> dict[str, Any]:
    return {
        "Resources": {
            "Model": {
                "Type": "AWS::SageMaker::Model",
                "Properties": {
                    "ExecutionRoleArn": "arn:aws:iam::123456789012:role/x",
                    "PrimaryContainer": {"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/x:1"},
                },
            },
            "EndpointConfig": {
                "Type": "AWS::SageMaker::EndpointConfig",
                "Properties": {
                    "ProductionVariants": [
                        {
                            "ModelName": {"Fn::GetAtt": ["Model", "ModelName"]},
                            "VariantName": "main",
                            "InitialInstanceCount": 1,
                            "InstanceType": instance,
                        }
                    ]
                },
            },
        }
    }


def test_vpc_lookup_groups_subnets_by_their_routes(double: AwsDouble, monkeypatch) -> None:
    from emd_cli.aws.session import AwsSession
    from emd_cli.aws.vpc_lookup import vpc_context

    for key, value in double.env().items():
        monkeypatch.setenv(key, value)
    ec2 = double.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)

    def subnet(cidr: str, az: str) -> str:
        return ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=az)["Subnet"]["SubnetId"]

    public = [subnet("10.40.0.0/24", "us-east-1a"), subnet("10.40.1.0/24", "us-east-1b")]
    private = [subnet("10.40.8.0/22", "us-east-1a"), subnet("10.40.12.0/22", "us-east-1b")]
    isolated = subnet("10.40.20.0/24", "us-east-1a")
    public_rt = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=public_rt, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    nat = ec2.create_nat_gateway(SubnetId=public[0], AllocationId=ec2.allocate_address()["AllocationId"])
    private_rt = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(
        RouteTableId=private_rt,
        DestinationCidrBlock="0.0.0.0/0",
        NatGatewayId=nat["NatGateway"]["NatGatewayId"],
    )
    for s in public:
        ec2.associate_route_table(RouteTableId=public_rt, SubnetId=s)
    for s in private:
        ec2.associate_route_table(RouteTableId=private_rt, SubnetId=s)

    key, value = vpc_context(AwsSession("us-east-1"), vpc)
    assert key == (
        f"vpc-provider:account=123456789012:filter.vpc-id={vpc}:region=us-east-1:returnAsymmetricSubnets=true"
    )
    groups = {g["type"]: sorted(s["subnetId"] for s in g["subnets"]) for g in value["subnetGroups"]}
    assert groups == {"Public": sorted(public), "Private": sorted(private), "Isolated": [isolated]}
    assert value["vpcCidrBlock"] == "10.40.0.0/16"
    assert json.dumps(value)  # what CDK reads from context must be JSON


@pytest.mark.slow
def test_a_rerun_keeps_the_client_cidr_blocks(double: AwsDouble) -> None:
    region = "us-east-1"  # the double's build executor serves this region
    first = emd(
        double, "bootstrap", "--region", region, "--internal", "--allowed-cidrs", "10.20.0.0/16", "--yes"
    )
    assert first.returncode == 0, first.stdout + first.stderr
    assert emd_parameters_in(double, region)["/emd/gateway/allowed-cidrs"] == "10.20.0.0/16"

    double.calls(reset=True)
    again = emd(double, "bootstrap", "--region", region, "--yes")  # an upgrade run, no option
    assert again.returncode == 0, again.stdout + again.stderr
    text = " ".join(again.stdout.split())
    assert "clients limited as deployed (--allowed-cidrs changes them)); clients from 10.20.0.0/16" in text
    assert "EMD-Gateway is up to date" in again.stdout
    assert double.calls()["cloudformation.ExecuteChangeSet"] == 0

    opened = emd(double, "bootstrap", "--region", region, "--allowed-cidrs", "0.0.0.0/0", "--yes")
    assert opened.returncode == 0, opened.stdout + opened.stderr
    assert emd_parameters_in(double, region)["/emd/gateway/allowed-cidrs"] == "0.0.0.0/0"
    gone = emd(double, "uninstall", "--region", region, "--yes")
    assert gone.returncode == 0, gone.stdout + gone.stderr


def emd_parameters_in(double: AwsDouble, region: str) -> dict[str, str]:
    ssm = double.client("ssm", region)
    pages = ssm.get_paginator("get_parameters_by_path").paginate(Path="/emd", Recursive=True)
    return {p["Name"]: p["Value"] for page in pages for p in page["Parameters"]}
