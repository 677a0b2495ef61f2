"""EMD-Gateway: ALB/Fargate/VPC/registry-access properties asserted per variant; cfn-lint, cdk-nag and
partition checks. Variants (each synthesized once): default us-east-1 (internal ALB, HTTP, new VPC);
us-west-2 HTTPS + allowed_cidrs + internal ALB; cn-north-1 internet-facing HTTPS; an existing VPC by id;
CloudFront in front of an internal ALB; internet-facing plain HTTP when explicitly allowed."""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Match, Template

from emd_constructs.gateway_service import ASSET_EXCLUDES, gateway_image
from emd_constructs.regional import regional_facts
from emd_stacks.context import AppConfig
from emd_stacks.gateway import (
    PARAM_EXPOSURE,
    PARAM_NAMESPACE_ARN,
    PARAM_NAMESPACE_ID,
    PARAM_NAMESPACE_NAME,
    PARAM_SECURITY_GROUP,
    PARAM_SUBNETS,
    PARAM_URL,
    PARAM_VPC_ID,
    GatewayStack,
)
from model_specs.errors import EmdUserError
from tests.unit.stack_fixtures import (
    as_list,
    china_partition_literals,
    findings,
    make_app,
    policy_statements,
    resources_of,
    synth_stack,
    tags_of,
)

CERT_US = "arn:aws:acm:us-west-2:123456789012:certificate/12345678-1234-1234-1234-123456789012"
CERT_CN = "arn:aws-cn:acm:cn-north-1:123456789012:certificate/12345678-1234-1234-1234-123456789012"
ACCOUNT = "123456789012"
VPC_ID = "vpc-0123456789abcdef0"
LOOKUP_KEY = (
    f"vpc-provider:account={ACCOUNT}:filter.vpc-id={VPC_ID}:region=us-east-1:returnAsymmetricSubnets=true"
)


def _subnet(subnet_id: str, cidr: str, az: str, route_table: str) -> dict:
    return {"subnetId": subnet_id, "cidr": cidr, "availabilityZone": az, "routeTableId": route_table}


LOOKUP_VALUE = {
    "vpcId": VPC_ID,
    "vpcCidrBlock": "10.20.0.0/16",
    "ownerAccountId": ACCOUNT,
    "availabilityZones": [],
    "subnetGroups": [
        {
            "name": "Public",
            "type": "Public",
            "subnets": [
                _subnet("subnet-0aaaaaaaaaaaaaaa1", "10.20.0.0/24", "us-east-1a", "rtb-0aaaaaaaaaaaaaaa1"),
                _subnet("subnet-0aaaaaaaaaaaaaaa2", "10.20.1.0/24", "us-east-1b", "rtb-0aaaaaaaaaaaaaaa1"),
            ],
        },
        {
            "name": "Private",
            "type": "Private",
            "subnets": [
                _subnet("subnet-0bbbbbbbbbbbbbbb1", "10.20.8.0/22", "us-east-1a", "rtb-0bbbbbbbbbbbbbbb1"),
                _subnet("subnet-0bbbbbbbbbbbbbbb2", "10.20.12.0/22", "us-east-1b", "rtb-0bbbbbbbbbbbbbbb2"),
                _subnet("subnet-0bbbbbbbbbbbbbbb3", "10.20.16.0/22", "us-east-1c", "rtb-0bbbbbbbbbbbbbbb3"),
            ],
        },
    ],
}  # fmt: skip


@pytest.fixture(scope="module")
def image_root(tmp_path_factory) -> Path:
    """A stand-in build context (the real serving/gateway/Dockerfile belongs to the gateway code)."""
    root = tmp_path_factory.mktemp("gateway-src")
    (root / "serving" / "gateway").mkdir(parents=True)
    (root / "serving" / "gateway" / "Dockerfile").write_text("FROM scratch\nEXPOSE 8080\n")
    (root / ".venv").mkdir()
    (root / ".venv" / "big").write_text("x")
    (root / "README.md").write_text("docs")
    (root / "model_specs").mkdir()
    (root / "model_specs" / "x.yaml").write_text("a: 1")
    return root


def _synth(tmp_path_factory, image_root, region, context=None, account=None, **config):
    app = make_app(tmp_path_factory.mktemp(f"gw-{region}"), context)
    cfg = AppConfig(region=region, account=account, **config)
    GatewayStack(
        app,
        config=cfg,
        env=cdk.Environment(region=region, account=account),
        image=gateway_image(regional_facts(region), root=image_root),
    )
    return synth_stack(app, "EMD-Gateway"), Path(app.outdir)


@pytest.fixture(scope="module")
def default(tmp_path_factory, image_root):
    return _synth(tmp_path_factory, image_root, "us-east-1")[0]


@pytest.fixture(scope="module")
def default_t(default):
    return Template.from_json(default.template)


@pytest.fixture(scope="module")
def secure(tmp_path_factory, image_root):
    return _synth(
        tmp_path_factory, image_root, "us-west-2",
        certificate_arn=CERT_US, allowed_cidrs=("10.0.0.0/8", "2001:db8::/32"), internal_alb=True,
    )[0]  # fmt: skip


@pytest.fixture(scope="module")
def china(tmp_path_factory, image_root):
    return _synth(tmp_path_factory, image_root, "cn-north-1", certificate_arn=CERT_CN)[0]


@pytest.fixture(scope="module")
def edge(tmp_path_factory, image_root):
    return _synth(tmp_path_factory, image_root, "us-east-1", cloudfront=True)[0]


@pytest.fixture(scope="module")
def insecure(tmp_path_factory, image_root):
    return _synth(tmp_path_factory, image_root, "eu-west-1", allow_insecure_http=True)[0]


def _alb_ingress(template) -> set[tuple[str, int]]:
    sg = next(
        r for r in resources_of(template, "AWS::EC2::SecurityGroup").values()
        if r["Properties"]["GroupDescription"] == "EMD gateway load balancer"
    )  # fmt: skip
    return {
        (json.dumps(i.get("CidrIp") or i.get("CidrIpv6")), i["FromPort"])
        for i in sg["Properties"]["SecurityGroupIngress"]
    }


def _open_ingress(template) -> list[dict]:
    rules = [
        rule
        for sg in resources_of(template, "AWS::EC2::SecurityGroup").values()
        for rule in sg["Properties"].get("SecurityGroupIngress", [])
    ]
    rules += [r["Properties"] for r in resources_of(template, "AWS::EC2::SecurityGroupIngress").values()]
    return [r for r in rules if r.get("CidrIp") == "0.0.0.0/0" or r.get("CidrIpv6") == "::/0"]


@pytest.fixture(scope="module")
def existing_vpc(tmp_path_factory, image_root):
    return _synth(
        tmp_path_factory, image_root, "us-east-1", context={LOOKUP_KEY: LOOKUP_VALUE}, account=ACCOUNT,
        vpc_id=VPC_ID,
    )  # fmt: skip


# ------------------------------------------------------------------ load balancer


def test_stateful_logical_ids_are_pinned(default):
    res = default.template["Resources"]
    assert res["NetworkVpc7FB7348F"]["Type"] == "AWS::EC2::VPC"
    assert res["Namespace9B63B8C8"]["Type"] == "AWS::ServiceDiscovery::PrivateDnsNamespace"
    assert res["GatewayAlbB8EF1839"]["Type"] == "AWS::ElasticLoadBalancingV2::LoadBalancer"


def test_default_alb_is_internal_http_with_access_logs(default, default_t):
    default_t.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::LoadBalancer",
        {
            "Scheme": "internal",
            "LoadBalancerAttributes": Match.array_with(
                [{"Key": "routing.http.drop_invalid_header_fields.enabled", "Value": "true"}]
            ),
        },
    )
    default_t.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::LoadBalancer",
        {"LoadBalancerAttributes": Match.array_with([{"Key": "access_logs.s3.enabled", "Value": "true"}])},
    )
    listeners = resources_of(default.template, "AWS::ElasticLoadBalancingV2::Listener")
    (listener,) = listeners.values()
    assert listener["Properties"]["Port"] == 80 and listener["Properties"]["Protocol"] == "HTTP"
    assert listener["Properties"]["DefaultActions"][0]["Type"] == "forward"
    assert not resources_of(default.template, "AWS::CloudFront::Distribution")


def test_default_ingress_is_the_vpc_only(default):
    (vpc_id,) = resources_of(default.template, "AWS::EC2::VPC")
    assert _alb_ingress(default.template) == {(json.dumps({"Fn::GetAtt": [vpc_id, "CidrBlock"]}), 80)}
    assert not _open_ingress(default.template)


def test_insecure_http_is_internet_facing_only_when_asked(insecure):
    (alb,) = resources_of(insecure.template, "AWS::ElasticLoadBalancingV2::LoadBalancer").values()
    assert alb["Properties"]["Scheme"] == "internet-facing"
    assert all("public" in s["Ref"] for s in alb["Properties"]["Subnets"])
    assert _alb_ingress(insecure.template) == {('"0.0.0.0/0"', 80)}
    assert insecure.nag == []


def test_certificate_gives_https_only_without_a_port_80_listener(secure, china):
    for synth in (secure, china):
        (https,) = resources_of(synth.template, "AWS::ElasticLoadBalancingV2::Listener").values()
        assert https["Properties"]["Port"] == 443 and https["Properties"]["Protocol"] == "HTTPS"
        assert https["Properties"]["DefaultActions"][0]["Type"] == "forward"
        assert {port for _, port in _alb_ingress(synth.template)} == {443}
    (https,) = resources_of(secure.template, "AWS::ElasticLoadBalancingV2::Listener").values()
    assert https["Properties"]["SslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    assert https["Properties"]["Certificates"] == [{"CertificateArn": CERT_US}]
    # a certificate alone makes the ALB internet-facing (HTTPS is safe to expose)
    (alb,) = resources_of(china.template, "AWS::ElasticLoadBalancingV2::LoadBalancer").values()
    assert alb["Properties"]["Scheme"] == "internet-facing"
    assert _alb_ingress(china.template) == {('"0.0.0.0/0"', 443)}


def test_allowed_cidrs_replace_the_open_ingress(secure):
    assert _alb_ingress(secure.template) == {('"10.0.0.0/8"', 443), ('"2001:db8::/32"', 443)}


def test_the_client_cidr_blocks_are_recorded_for_a_rerun(secure, default):
    def recorded(template):
        params = {
            p["Properties"]["Name"]: p["Properties"]
            for p in resources_of(template, "AWS::SSM::Parameter").values()
        }
        return params["/emd/gateway/allowed-cidrs"]["Value"]

    assert recorded(secure.template) == "10.0.0.0/8,2001:db8::/32"
    assert recorded(default.template) == "any"


def test_internal_alb_sits_in_private_subnets(secure, default):
    for synth in (secure, default):
        (alb,) = resources_of(synth.template, "AWS::ElasticLoadBalancingV2::LoadBalancer").values()
        assert alb["Properties"]["Scheme"] == "internal"
        subnets = {s["Ref"] for s in alb["Properties"]["Subnets"]}
        assert subnets and all("private" in s for s in subnets)


def test_cloudfront_serves_https_in_front_of_an_internal_alb(edge):
    t = edge.template
    (alb,) = resources_of(t, "AWS::ElasticLoadBalancingV2::LoadBalancer").values()
    assert alb["Properties"]["Scheme"] == "internal"
    (alb_id,) = resources_of(t, "AWS::ElasticLoadBalancingV2::LoadBalancer")
    (origin,) = resources_of(t, "AWS::CloudFront::VpcOrigin").values()
    assert origin["Properties"]["VpcOriginEndpointConfig"]["Arn"] == {"Ref": alb_id}
    assert origin["Properties"]["VpcOriginEndpointConfig"]["OriginProtocolPolicy"] == "http-only"
    ((dist_id, dist),) = resources_of(t, "AWS::CloudFront::Distribution").items()
    config = dist["Properties"]["DistributionConfig"]
    behavior = config["DefaultCacheBehavior"]
    assert behavior["ViewerProtocolPolicy"] == "https-only"  # never a redirect: keys would travel in clear
    assert set(behavior["AllowedMethods"]) >= {"GET", "POST", "DELETE"}
    assert behavior["CachePolicyId"] == "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"  # CachingDisabled
    assert behavior["OriginRequestPolicyId"] == "b689b0a8-53d0-40ab-baf2-68738e2966ac"  # AllViewerExceptHost
    assert behavior["Compress"] is False
    (o,) = config["Origins"]
    assert o["VpcOriginConfig"]["OriginReadTimeout"] == 120
    url = parameter_value(t, PARAM_URL)
    assert url == {"Fn::Join": ["", ["https://", {"Fn::GetAtt": [dist_id, "DomainName"]}]]}
    exposure = parameter_value(t, PARAM_EXPOSURE)
    assert exposure == "cloudfront"
    (port,) = {p for _, p in _alb_ingress(t)}
    assert port == 80 and not _open_ingress(t)


def test_china_uses_its_tls_policy_and_x86(china):
    (https,) = [
        r["Properties"]
        for r in resources_of(china.template, "AWS::ElasticLoadBalancingV2::Listener").values()
        if r["Properties"]["Port"] == 443
    ]
    assert https["SslPolicy"] == "ELBSecurityPolicy-FS-1-2-Res-2020-10"
    (task,) = resources_of(china.template, "AWS::ECS::TaskDefinition").values()
    assert task["Properties"]["RuntimePlatform"]["CpuArchitecture"] == "X86_64"


# ------------------------------------------------------------------ waits below the front's timeout

WAITS = ("EMD_COLD_START_WAIT", "EMD_ASYNC_WAIT_SECONDS", "EMD_UPSTREAM_READ_TIMEOUT")


def _front_timeout(template) -> int:
    """Seconds the client's side waits for a byte: CloudFront's origin read timeout where a distribution
    fronts the gateway, else the ALB's idle timeout."""
    for dist in resources_of(template, "AWS::CloudFront::Distribution").values():
        (origin,) = dist["Properties"]["DistributionConfig"]["Origins"]
        return origin["VpcOriginConfig"]["OriginReadTimeout"]
    (alb,) = resources_of(template, "AWS::ElasticLoadBalancingV2::LoadBalancer").values()
    attributes = {a["Key"]: a["Value"] for a in alb["Properties"]["LoadBalancerAttributes"]}
    return int(attributes["idle_timeout.timeout_seconds"])


@pytest.mark.parametrize(
    ("variant", "front"),
    [("default", 600), ("secure", 600), ("china", 600), ("insecure", 600), ("edge", 120)],
    ids=["internal", "internal-https", "public-https", "public-http", "cloudfront"],
)
def test_waits_end_before_the_front_gives_up(variant, front, request):
    """A request the gateway holds without sending a byte (cold start, async answer, silent engine) gets the
    gateway's own 503/504 before the ALB or CloudFront drops it with a bare 504."""
    template = request.getfixturevalue(variant).template
    assert _front_timeout(template) == front
    (task,) = resources_of(template, "AWS::ECS::TaskDefinition").values()
    (container,) = task["Properties"]["ContainerDefinitions"]
    env = {e["Name"]: e["Value"] for e in container["Environment"]}
    cold_start, async_wait, silence = (float(env[name]) for name in WAITS)
    # as long as the front allows (a cold start takes minutes), and not a second longer
    assert 0.8 * front <= cold_start < front and 0.8 * front <= async_wait < front
    assert silence < front


# ------------------------------------------------------------------ service


def test_fargate_service_behind_the_alb(default, default_t):
    default_t.has_resource_properties(
        "AWS::ECS::Service",
        {
            "LaunchType": "FARGATE",
            "DeploymentConfiguration": Match.object_like(
                {"DeploymentCircuitBreaker": {"Enable": True, "Rollback": True}, "MinimumHealthyPercent": 100}
            ),
            "NetworkConfiguration": {
                "AwsvpcConfiguration": Match.object_like({"AssignPublicIp": "DISABLED"})
            },
            "LoadBalancers": [Match.object_like({"ContainerPort": 8080})],
        },
    )
    default_t.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::TargetGroup",
        {"HealthCheckPath": "/health", "Matcher": {"HttpCode": "200"}, "Port": 8080, "TargetType": "ip"},
    )
    default_t.has_resource_properties(
        "AWS::ECS::Cluster", {"ClusterSettings": [{"Name": "containerInsights", "Value": "enabled"}]}
    )


def test_task_definition_arm64_env_and_logs(default):
    (task,) = resources_of(default.template, "AWS::ECS::TaskDefinition").values()
    props = task["Properties"]
    assert props["RuntimePlatform"] == {"CpuArchitecture": "ARM64", "OperatingSystemFamily": "LINUX"}
    (container,) = props["ContainerDefinitions"]
    env = {e["Name"]: e["Value"] for e in container["Environment"]}
    trusted = env.pop("EMD_TRUSTED_PROXIES")  # the VPC's CIDR: the ALB, whose X-Forwarded-For is believed
    assert trusted["Fn::GetAtt"][1] == "CidrBlock" and trusted["Fn::GetAtt"][0].startswith("NetworkVpc")
    waits = {k: env.pop(k) for k in WAITS}  # test_waits_end_before_the_front_gives_up
    assert env == {"EMD_REGISTRY_PREFIX": "/emd/models", "AWS_REGION": "us-east-1"}
    assert waits == dict(zip(WAITS, ("540", "540", "300"), strict=True))
    assert container["PortMappings"][0]["ContainerPort"] == 8080
    assert container["LogConfiguration"]["LogDriver"] == "awslogs"
    assert "Secrets" not in container  # keys are read per request from Secrets Manager by name, never env


def test_autoscaling_on_request_count(default_t):
    default_t.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalableTarget", {"MinCapacity": 2, "MaxCapacity": 10}
    )
    default_t.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        {
            "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": Match.object_like(
                {
                    "PredefinedMetricSpecification": Match.object_like(
                        {"PredefinedMetricType": "ALBRequestCountPerTarget"}
                    ),
                    "TargetValue": 500,
                }
            ),
        },
    )


def _task_role_statements(template):
    (task,) = resources_of(template, "AWS::ECS::TaskDefinition").values()
    role_id = task["Properties"]["TaskRoleArn"]["Fn::GetAtt"][0]
    out = []
    for policy in resources_of(template, "AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            out += policy["Properties"]["PolicyDocument"]["Statement"]
    role = template["Resources"][role_id]["Properties"]
    assert "ManagedPolicyArns" not in role and "Policies" not in role
    return out


def test_task_role_reads_only_the_registry_and_keys_and_invokes_only_emd_endpoints(default):
    statements = _task_role_statements(default.template)
    by_sid = {s["Sid"]: s for s in statements}
    assert set(by_sid) == {
        "ReadDeploymentRegistry",
        "ReadApiKeys",
        "InvokeEmdEndpointsByName",
        "InvokeEmdEndpointsByTag",
        "AsyncInferenceObjects",
        "AsyncInferenceListing",
    }
    actions = {a for s in statements for a in as_list(s["Action"])}
    assert actions == {
        "ssm:GetParametersByPath", "ssm:GetParameter", "ssm:GetParameters",
        "secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret",
        "sagemaker:InvokeEndpoint", "sagemaker:InvokeEndpointWithResponseStream",
        "sagemaker:InvokeEndpointAsync",
        "s3:PutObject", "s3:GetObject", "s3:DeleteObject", "s3:ListBucket",
    }  # fmt: skip
    registry = json.dumps(by_sid["ReadDeploymentRegistry"]["Resource"])
    assert ":parameter/emd/models" in registry and ":parameter/emd/models/*" in registry
    # API keys only: emd/<model-id>/<tag>/api-key, never emd/hf-token
    (secrets,) = by_sid["ReadApiKeys"]["Resource"]["Fn::Join"][1][-1:]
    assert secrets.endswith(":secret:emd/*/api-key-??????")
    assert not fnmatch.fnmatchcase("emd/hf-token-AbCdEf", secrets.split(":secret:")[1])
    assert fnmatch.fnmatchcase("emd/Qwen2.5-7B-Instruct/dev/api-key-AbCdEf", secrets.split(":secret:")[1])
    assert ":endpoint/emd-*" in json.dumps(by_sid["InvokeEmdEndpointsByName"]["Resource"])
    assert by_sid["InvokeEmdEndpointsByTag"]["Condition"] == {
        "Null": {"aws:ResourceTag/emd:model-id": "false"}
    }
    # async request objects: only keys under emd-async/, only in this account's buckets
    objects, listing = by_sid["AsyncInferenceObjects"], by_sid["AsyncInferenceListing"]
    assert json.dumps(objects["Resource"]).endswith(':s3:::*/*emd-async/*"')
    same_account = {"s3:ResourceAccount": {"Ref": "AWS::AccountId"}}
    assert objects["Condition"] == {"StringEquals": same_account}
    assert listing["Condition"] == {
        "StringEquals": same_account,
        "StringLike": {"s3:prefix": ["*emd-async/*"]},
    }


def test_no_full_access_policies_no_star_actions(default):
    assert "FullAccess" not in json.dumps(default.template)
    for s in policy_statements(default.template):
        for action in as_list(s["Action"]):
            assert action != "*" and not action.startswith("iam:"), s


# ------------------------------------------------------------------ network, registry, contract


def test_new_vpc_two_azs_one_nat_s3_endpoint_flow_logs(default):
    t = default.template
    assert len(resources_of(t, "AWS::EC2::VPC")) == 1
    assert len(resources_of(t, "AWS::EC2::Subnet")) == 4
    assert len(resources_of(t, "AWS::EC2::NatGateway")) == 1
    (endpoint,) = resources_of(t, "AWS::EC2::VPCEndpoint").values()
    assert endpoint["Properties"]["VpcEndpointType"] == "Gateway"
    assert "s3" in json.dumps(endpoint["Properties"]["ServiceName"])
    (flow,) = resources_of(t, "AWS::EC2::FlowLog").values()
    assert flow["Properties"]["TrafficType"] == "ALL"


def parameter_value(template: dict, name: str) -> object:
    return next(
        p["Properties"]["Value"] for p in resources_of(template, "AWS::SSM::Parameter").values()
        if p["Properties"]["Name"] == name
    )  # fmt: skip


def test_ssm_contract_parameters(default):
    params = {
        p["Properties"]["Name"]: p["Properties"]
        for p in resources_of(default.template, "AWS::SSM::Parameter").values()
    }
    assert set(params) == {
        PARAM_VPC_ID, PARAM_SUBNETS, PARAM_SECURITY_GROUP, PARAM_NAMESPACE_ID, PARAM_NAMESPACE_NAME,
        PARAM_NAMESPACE_ARN, PARAM_URL, PARAM_EXPOSURE, "/emd/gateway/allowed-cidrs",
    }  # fmt: skip
    assert params[PARAM_EXPOSURE]["Value"] == "internal"  # what `emd bootstrap` keeps on a rerun
    assert params[PARAM_SUBNETS]["Type"] == "StringList"
    subnets = params[PARAM_SUBNETS]["Value"]["Fn::Join"][1]
    assert len(subnets) == 2 and all("private" in s["Ref"] for s in subnets)
    sg_id = params[PARAM_SECURITY_GROUP]["Value"]["Fn::GetAtt"][0]
    (service,) = resources_of(default.template, "AWS::ECS::Service").values()
    service_sgs = service["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]["SecurityGroups"]
    assert service_sgs == [{"Fn::GetAtt": [sg_id, "GroupId"]}]
    url = json.dumps(params[PARAM_URL]["Value"])
    assert '"http://"' in url and "DNSName" in url
    (ns_id,) = resources_of(default.template, "AWS::ServiceDiscovery::PrivateDnsNamespace")
    assert default.template["Resources"][ns_id]["Properties"]["Name"] == "emd.internal"
    assert params[PARAM_NAMESPACE_ID]["Value"] == {"Fn::GetAtt": [ns_id, "Id"]}


def test_https_url_parameter(secure):
    url = parameter_value(secure.template, PARAM_URL)
    assert '"https://"' in json.dumps(url)


def test_existing_vpc_is_used_not_created(existing_vpc):
    synth, _ = existing_vpc
    t = synth.template
    assert not resources_of(t, "AWS::EC2::VPC") and not resources_of(t, "AWS::EC2::NatGateway")
    params = {
        p["Properties"]["Name"]: p["Properties"] for p in resources_of(t, "AWS::SSM::Parameter").values()
    }
    assert params[PARAM_VPC_ID]["Value"] == VPC_ID
    # exactly two private subnets in two AZs, even though the VPC has three
    assert params[PARAM_SUBNETS]["Value"] == "subnet-0bbbbbbbbbbbbbbb1,subnet-0bbbbbbbbbbbbbbb2"
    # the default ALB is internal: in the private subnets
    (alb,) = resources_of(t, "AWS::ElasticLoadBalancingV2::LoadBalancer").values()
    assert alb["Properties"]["Subnets"] == ["subnet-0bbbbbbbbbbbbbbb1", "subnet-0bbbbbbbbbbbbbbb2"]


def test_vpc_without_private_subnets_is_refused(tmp_path, image_root):
    value = dict(LOOKUP_VALUE, subnetGroups=[LOOKUP_VALUE["subnetGroups"][0]])
    app = make_app(tmp_path, {LOOKUP_KEY: value})
    with pytest.raises(EmdUserError, match=f"VPC {VPC_ID} needs private subnets in at least two"):
        GatewayStack(
            app,
            config=AppConfig(region="us-east-1", account=ACCOUNT, vpc_id=VPC_ID),
            env=cdk.Environment(region="us-east-1", account=ACCOUNT),
            image=gateway_image(regional_facts("us-east-1"), root=image_root),
        )


def test_missing_dockerfile_is_a_clear_error(tmp_path):
    with pytest.raises(EmdUserError, match=r"serving/gateway/Dockerfile is missing.*gateway=false"):
        gateway_image(regional_facts("us-east-1"), root=tmp_path)


def test_image_asset_is_built_for_arm64_from_the_repo_root_without_local_clutter(existing_vpc):
    _, outdir = existing_vpc
    assets = json.loads((outdir / "EMD-Gateway.assets.json").read_text())
    (image,) = assets["dockerImages"].values()
    assert image["source"]["dockerFile"] == "serving/gateway/Dockerfile"
    assert image["source"]["platform"] == "linux/arm64"
    staged = outdir / image["source"]["directory"]
    assert (staged / "serving" / "gateway" / "Dockerfile").exists()
    assert not (staged / ".venv").exists() and not (staged / "README.md").exists()
    assert (staged / "model_specs" / "x.yaml").exists()
    assert ASSET_EXCLUDES[:3] == ["*", "!model_specs", "!serving"]


def test_everything_taggable_is_tagged(default):
    for cfn_type in (
        "AWS::EC2::VPC", "AWS::ElasticLoadBalancingV2::LoadBalancer", "AWS::ECS::Service",
        "AWS::ECS::Cluster", "AWS::IAM::Role", "AWS::S3::Bucket", "AWS::Logs::LogGroup",
        "AWS::SSM::Parameter",
    ):  # fmt: skip
        found = resources_of(default.template, cfn_type)
        assert found, cfn_type
        for logical_id, res in found.items():
            tags = tags_of(res)
            assert tags.get("emd:model-id") == "_shared", (cfn_type, logical_id)
            assert tags.get("emd:component") == "gateway", (cfn_type, logical_id)


def test_log_retention_and_removal(default):
    for res in resources_of(default.template, "AWS::Logs::LogGroup").values():
        assert res["Properties"]["RetentionInDays"] > 0
        assert res["DeletionPolicy"] == "Delete"
    for res in resources_of(default.template, "AWS::S3::Bucket").values():
        assert res["DeletionPolicy"] == "Delete"


# ------------------------------------------------------------------ template checks


@pytest.mark.parametrize(
    ("variant", "region"),
    [
        ("default", "us-east-1"),
        ("edge", "us-east-1"),
        pytest.param("secure", "us-west-2", marks=pytest.mark.slow),
        pytest.param("existing_vpc", "us-east-1", marks=pytest.mark.slow),
        pytest.param("china", "cn-north-1", marks=pytest.mark.slow),
    ],
)
def test_cdk_nag_and_cfn_lint_clean(variant: str, region: str, request) -> None:
    synth = request.getfixturevalue(variant)
    assert findings(synth[0] if isinstance(synth, tuple) else synth, region) == []


def test_china_partition_correct(china):
    assert china_partition_literals(china.template) == []
