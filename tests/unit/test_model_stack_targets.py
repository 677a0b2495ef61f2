"""Model stacks per target and option, synthesized once in one App with cdk-nag: SageMaker real-time (with and
without scale to zero), async, ECS and EC2 (gateway network or a given VPC), China, public, artifact modes."""

from __future__ import annotations

import json

import pytest

from emd_constructs.engine_settings import ENGINE_PORT, compile_seconds, root_volume_gib, startup_seconds
from emd_constructs.sagemaker_endpoint import startup_timeouts
from emd_stacks.model_inputs import engine_image_tag
from model_specs.catalogue import catalogue
from model_specs.deployment import resolve_deployment
from tests.cdk_checks import cfn_lint_findings, nag_violations, templates_of
from tests.unit.model_stack_helpers import (
    Variant,
    build_app,
    one,
    registry_entry,
    render,
    ssm_parameter_logical_id,
    with_build_outputs,
)
from tests.unit.stack_fixtures import as_list, china_partition_literals, resources_of, tags_of

pytestmark = pytest.mark.slow

Q7 = "Qwen2.5-7B-Instruct"
SMOL = "SmolLM2-135M-Instruct-GGUF"
VPC = {
    "vpc_id": "vpc-0123456789abcdef0",
    "subnet_ids": ["subnet-0aaaaaaaaaaaaaaa1", "subnet-0bbbbbbbbbbbbbbb2"],
}
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/emd-engines:vllm-given"

VARIANTS = {
    "rt": Variant(
        Q7,
        "g5.2xlarge",
        "vllm",
        "sagemaker_realtime",
        model_tag="rt",
        extra_params={"service_params": {"min_capacity": 1, "max_capacity": 3}},
    ),
    "rt0": Variant(
        Q7,
        "g5.2xlarge",
        "vllm",
        "sagemaker_realtime",
        model_tag="zero",
        extra_params={"service_params": {"min_capacity": 0, "max_capacity": 2}},
    ),
    "async": Variant(Q7, "g5.2xlarge", "vllm", "sagemaker_async", model_tag="async"),
    "async_out": Variant(
        Q7,
        "g5.2xlarge",
        "vllm",
        "sagemaker_async",
        model_tag="asyncout",
        extra_params={"service_params": {"s3_output_path": "s3://my-results/emd"}},
    ),
    "ecs": Variant(
        Q7, "g5.2xlarge", "vllm", "ecs", model_tag="ecs", extra_params={"service_params": {"max_capacity": 4}}
    ),
    "ecs_zero": Variant(
        Q7,
        "g5.2xlarge",
        "vllm",
        "ecs",
        model_tag="ecszero",
        extra_params={"service_params": {"min_capacity": 0, "max_capacity": 2}},
    ),
    "ecs_vpc": Variant(
        Q7, "g5.2xlarge", "vllm", "ecs", model_tag="ecsvpc", extra_params={"service_params": VPC}
    ),
    "ec2": Variant(Q7, "g5.2xlarge", "vllm", "ec2", model_tag="ec2"),
    "ec2_public_vpc": Variant(
        SMOL,
        "m7i.xlarge",
        "llama.cpp",
        "ec2",
        model_tag="pub",
        extra_params={"service_params": {"public": True, **VPC}},
    ),
    "cn_rt": Variant(
        SMOL, "g4dn.xlarge", "llama.cpp", "sagemaker_realtime", region="cn-north-1", model_tag="cn"
    ),
    "cn_ecs": Variant(SMOL, "g4dn.xlarge", "llama.cpp", "ecs", region="cn-north-1", model_tag="cnecs"),
    "params": Variant(
        Q7,
        "g5.2xlarge",
        "vllm",
        "sagemaker_realtime",
        model_tag="pipeline",
        stack_kwargs={"artifact_parameters": True},
    ),
    "given": Variant(
        Q7,
        "g5.2xlarge",
        "vllm",
        "ecs",
        model_tag="given",
        extra_params={"model_params": {"model_files_s3_path": "s3://my-weights/qwen7b"}},
        stack_kwargs={"image_uri": IMAGE},
    ),
    "inf2_rt": Variant(Q7, "inf2.xlarge", "vllm-neuron", "sagemaker_realtime", model_tag="inf2"),
    "inf2_ecs": Variant(Q7, "inf2.xlarge", "vllm-neuron", "ecs", model_tag="inf2ecs"),
    "revision": Variant(
        Q7,
        "g5.2xlarge",
        "vllm",
        "sagemaker_realtime",
        model_tag="rev",
        extra_params={"model_params": {"revision": "v1.1"}},
    ),
}


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    outdir = tmp_path_factory.mktemp("model-stacks")
    app, stacks = build_app(outdir, VARIANTS)
    findings = nag_violations(app)
    by_name = templates_of(outdir)
    templates = {key: by_name[stack.stack_name] for key, stack in stacks.items()}
    return findings, templates, stacks


@pytest.fixture(scope="module")
def templates(synth):
    return synth[1]


def test_cdk_nag_clean(synth):
    assert synth[0] == []


@pytest.mark.parametrize("key", list(VARIANTS))
def test_cfn_lint_clean(templates, key):
    assert cfn_lint_findings(templates[key], [VARIANTS[key].region]) == []


@pytest.mark.parametrize("key", ["cn_rt", "cn_ecs"])
def test_china_templates_have_no_global_partition_literals(templates, key):
    assert china_partition_literals(templates[key]) == []
    assert "arn:aws-cn:" in json.dumps(templates[key]) or "AWS::Partition" in json.dumps(templates[key])


def test_stack_name_is_the_deployment_stack_name(synth):
    stacks = synth[2]
    for key, stack in stacks.items():
        assert stack.stack_name == VARIANTS[key].deployment().stack_name
    assert len({s.stack_name for s in stacks.values()}) == len(stacks)


# ---------------------------------------------------------------- every target


@pytest.mark.parametrize("key", list(VARIANTS))
def test_every_role_has_the_bootstrap_permissions_boundary(templates, key):
    t = templates[key]
    boundary = ssm_parameter_logical_id(t, "/emd/bootstrap/model-permissions-boundary-arn")
    roles = resources_of(t, "AWS::IAM::Role")
    assert roles
    for role in roles.values():
        assert role["Properties"]["PermissionsBoundary"] == {"Ref": boundary}


@pytest.mark.parametrize("key", list(VARIANTS))
def test_tags_on_taggable_resources(templates, key):
    d = VARIANTS[key].deployment()
    checked = 0
    for res in templates[key]["Resources"].values():
        if res["Type"] in (
            "AWS::IAM::Role",
            "AWS::SageMaker::Endpoint",
            "AWS::SageMaker::Model",
            "AWS::ECS::Cluster",
            "AWS::EC2::Instance",
            "AWS::SNS::Topic",
            "AWS::EC2::SecurityGroup",
            "AWS::Logs::LogGroup",
            "AWS::ECS::TaskDefinition",
        ):
            assert tags_of(res).get("emd:model-id") == d.model_id, res["Type"]
            assert tags_of(res).get("emd:tag") == d.model_tag, res["Type"]
            checked += 1
    registry = [r for r in resources_of(templates[key], "AWS::SSM::Parameter").values()]
    assert registry[0]["Properties"]["Tags"] == {"emd:model-id": d.model_id, "emd:tag": d.model_tag}
    assert checked >= 2


@pytest.mark.parametrize("key", list(VARIANTS))
def test_registry_entry_names_the_secret_never_a_value(templates, key):
    d = VARIANTS[key].deployment()
    name, entry = registry_entry(templates[key])
    assert name == d.registry_parameter_name == f"/emd/models/{d.model_id}/{d.model_tag}"
    assert entry["model_id"] == d.model_id and entry["model_tag"] == d.model_tag
    assert entry["stack_name"] == d.stack_name and entry["region"] == d.region
    if d.extra_params.service_params.public:
        assert entry["public"] is True and "api_key_secret_name" not in entry
    else:
        assert entry["api_key_secret_name"] == f"emd/{d.model_id}/{d.model_tag}/api-key"
    # a directly deployed stack's own key secret has its value generated by Secrets Manager: no value here
    text = json.dumps(templates[key])
    assert '"SecretString"' not in text and "resolve:secretsmanager" not in text


@pytest.mark.parametrize("key", list(VARIANTS))
def test_alarms_and_log_retention(templates, key):
    t = templates[key]
    assert resources_of(t, "AWS::CloudWatch::Alarm")
    for group in resources_of(t, "AWS::Logs::LogGroup").values():
        assert group["Properties"]["RetentionInDays"] == 30


# ---------------------------------------------------------------- SageMaker real-time


def test_realtime_model_reads_an_uncompressed_s3_prefix_with_the_adapter_environment(templates):
    d = VARIANTS["rt"].deployment()
    model = one(templates["rt"], "AWS::SageMaker::Model")
    container = model["PrimaryContainer"]
    source = container["ModelDataSource"]["S3DataSource"]
    assert source["S3DataType"] == "S3Prefix" and source["CompressionType"] == "None"
    build = next(iter(resources_of(templates["rt"], "Custom::EmdModelBuild")))
    assert render(source["S3Uri"]) == f"<GetAtt:{build}.ModelDataS3Uri>"
    env = container["Environment"]
    assert env["EMD_ENGINE"] == "vllm" and env["EMD_MODEL_ID"] == d.model_id
    assert env["EMD_MODEL_DIR"] == "/opt/ml/model" and env["EMD_TENSOR_PARALLEL"] == "1"
    assert env["EMD_ENGINE_ARGS"] == d.engine_cli_args()
    assert render(container["Image"]) == f"<GetAtt:{build}.ImageUri>"


def test_realtime_endpoint_config_timeouts_and_autoscaling(templates):
    d = VARIANTS["rt"].deployment()
    (variant,) = one(templates["rt"], "AWS::SageMaker::EndpointConfig")["ProductionVariants"]
    assert variant["InstanceType"] == "ml.g5.2xlarge" and variant["InitialInstanceCount"] == 1
    timeouts = startup_timeouts(d)
    assert variant["ModelDataDownloadTimeoutInSeconds"] == timeouts["model_data_download_timeout_in_seconds"]
    assert (
        variant["ContainerStartupHealthCheckTimeoutInSeconds"]
        == timeouts["container_startup_health_check_timeout_in_seconds"]
    )
    endpoint = one(templates["rt"], "AWS::SageMaker::Endpoint")
    assert endpoint["EndpointName"] == d.sagemaker_endpoint_name
    target = one(templates["rt"], "AWS::ApplicationAutoScaling::ScalableTarget")
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 3)
    assert target["ResourceId"] == f"endpoint/{d.sagemaker_endpoint_name}/variant/AllTraffic"
    policy = one(templates["rt"], "AWS::ApplicationAutoScaling::ScalingPolicy")
    spec = policy["TargetTrackingScalingPolicyConfiguration"]["PredefinedMetricSpecification"]
    assert spec["PredefinedMetricType"] == "SageMakerVariantConcurrentRequestsPerModelHighResolution"
    _, entry = registry_entry(templates["rt"])
    assert entry["backend"] == "sagemaker" and entry["endpoint_name"] == d.sagemaker_endpoint_name
    metrics = {
        a["Properties"]["MetricName"]
        for a in resources_of(templates["rt"], "AWS::CloudWatch::Alarm").values()
    }
    assert metrics == {"Invocation5XXErrors", "ModelLatency"}


def test_timeouts_grow_with_the_weights_and_stay_within_sagemaker_limits():
    small = resolve_deployment(
        model_id=Q7,
        instance_type="g5.2xlarge",
        engine_type="vllm",
        service_type="sagemaker_realtime",
        region="us-east-1",
    )
    big = resolve_deployment(
        model_id="Qwen2.5-72B-Instruct",
        instance_type="g5.48xlarge",
        engine_type="vllm",
        service_type="sagemaker_realtime",
        region="us-east-1",
    )
    s, b = startup_timeouts(small), startup_timeouts(big)
    for key in s:
        assert 60 <= s[key] <= b[key] <= 3600
    assert b["model_data_download_timeout_in_seconds"] > s["model_data_download_timeout_in_seconds"]
    assert root_volume_gib(big) > root_volume_gib(small) > 2 * small.model.weights_gib


def test_neuron_start_up_allows_for_the_first_compilation_within_the_limits(templates):
    """vllm-neuron compiles on its first start (about a minute per GB of weights): the start-up health check
    waits for it on SageMaker (≤ 3600 s) and ECS (start period + retries x interval, interval ≤ 300 s)."""
    neuron, gpu = VARIANTS["inf2_rt"].deployment(), VARIANTS["rt"].deployment()
    assert neuron.model == gpu.model and compile_seconds(gpu) == 0
    assert compile_seconds(neuron) >= 60 * neuron.model.weights_gb
    (variant,) = one(templates["inf2_rt"], "AWS::SageMaker::EndpointConfig")["ProductionVariants"]
    (gpu_variant,) = one(templates["rt"], "AWS::SageMaker::EndpointConfig")["ProductionVariants"]
    waited = variant["ContainerStartupHealthCheckTimeoutInSeconds"]
    assert startup_seconds(neuron) < waited <= 3600
    assert waited - gpu_variant["ContainerStartupHealthCheckTimeoutInSeconds"] >= compile_seconds(neuron)
    for model in catalogue().models.values():  # every Neuron model gets its compilation within the limit
        if "vllm-neuron" in model.engines:
            d = resolve_deployment(
                model_id=model.id, instance_type="inf2.8xlarge", engine_type="vllm-neuron",
                service_type="sagemaker_realtime", region="us-east-1",
            )  # fmt: skip
            timeout = startup_timeouts(d)["container_startup_health_check_timeout_in_seconds"]
            assert startup_seconds(d) < timeout <= 3600, model.id
    containers = one(templates["inf2_ecs"], "AWS::ECS::TaskDefinition")["ContainerDefinitions"]
    check = next(c for c in containers if c["Name"] == "engine")["HealthCheck"]
    assert check["Interval"] <= 300 and check["StartPeriod"] <= 300 and check["Retries"] <= 10
    assert check["StartPeriod"] + check["Retries"] * check["Interval"] >= startup_seconds(neuron)


def test_scale_to_zero_uses_an_inference_component(templates):
    d = VARIANTS["rt0"].deployment()
    t = templates["rt0"]
    (variant,) = one(t, "AWS::SageMaker::EndpointConfig")["ProductionVariants"]
    assert "ModelName" not in variant
    assert variant["ManagedInstanceScaling"] == {
        "Status": "ENABLED",
        "MinInstanceCount": 0,
        "MaxInstanceCount": 2,
    }
    component = one(t, "AWS::SageMaker::InferenceComponent")
    assert (
        component["Specification"]["ComputeResourceRequirements"]["NumberOfAcceleratorDevicesRequired"] == 1
    )
    assert component["RuntimeConfig"] == {"CopyCount": 1}
    target = one(t, "AWS::ApplicationAutoScaling::ScalableTarget")
    assert (
        target["MinCapacity"] == 0
        and target["ScalableDimension"] == "sagemaker:inference-component:DesiredCopyCount"
    )
    kinds = {
        p["Properties"]["PolicyType"]
        for p in resources_of(t, "AWS::ApplicationAutoScaling::ScalingPolicy").values()
    }
    assert kinds == {"TargetTrackingScaling", "StepScaling"}
    alarms = {a["Properties"]["MetricName"] for a in resources_of(t, "AWS::CloudWatch::Alarm").values()}
    assert "NoCapacityInvocationFailures" in alarms
    _, entry = registry_entry(t)
    assert entry["inference_component_name"] == component["InferenceComponentName"]
    assert entry["endpoint_name"] == d.sagemaker_endpoint_name


@pytest.mark.parametrize("key", ["rt", "rt0", "async", "cn_rt"])
def test_sagemaker_models_are_network_isolated_and_offline(templates, key):
    model = one(templates[key], "AWS::SageMaker::Model")
    assert model["EnableNetworkIsolation"] is True
    env = model["PrimaryContainer"]["Environment"]
    assert env["HF_HUB_OFFLINE"] == "1" and env["VLLM_NO_USAGE_STATS"] == "1"


@pytest.mark.parametrize("key", ["rt", "rt0", "async", "cn_rt"])
def test_sagemaker_log_groups_exist_before_the_endpoint_and_expire(templates, key):
    d = VARIANTS[key].deployment()
    t = templates[key]
    groups = {
        r["Properties"]["LogGroupName"]: (logical_id, r)
        for logical_id, r in resources_of(t, "AWS::Logs::LogGroup").items()
        if "LogGroupName" in r["Properties"]  # not the build custom resource's (a generated name)
    }
    expected = {f"/aws/sagemaker/Endpoints/{d.sagemaker_endpoint_name}"}
    if key == "rt0":
        expected.add(f"/aws/sagemaker/InferenceComponents/{d.sagemaker_endpoint_name[:59]}-ic")
    assert set(groups) == expected
    (endpoint,) = resources_of(t, "AWS::SageMaker::Endpoint").values()
    for logical_id, group in groups.values():
        assert group["Properties"]["RetentionInDays"] == 30
        assert group["DeletionPolicy"] == "Delete"
        assert logical_id in endpoint["DependsOn"]
    # the execution role writes only to these groups
    (role,) = [k for k, r in resources_of(t, "AWS::IAM::Role").items() if "sagemaker." in json.dumps(r)]
    log_statements = [
        s
        for p in resources_of(t, "AWS::IAM::Policy").values()
        if {"Ref": role} in p["Properties"]["Roles"]
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if any(a.startswith("logs:") for a in as_list(s["Action"]))
    ]
    assert log_statements
    for s in log_statements:
        for resource in as_list(s["Resource"]):
            assert resource["Fn::GetAtt"][0] in {lid for lid, _ in groups.values()}


def test_ecs_tasks_cannot_reach_the_instance_role(templates):
    t = templates["ecs"]
    data = one(t, "AWS::EC2::LaunchTemplate")["LaunchTemplateData"]
    assert data["MetadataOptions"] == {"HttpPutResponseHopLimit": 1, "HttpTokens": "required"}
    user_data = render(data["UserData"]["Fn::Base64"])
    assert "ECS_AWSVPC_BLOCK_IMDS=true" in user_data
    assert "ECS_ENABLE_AWSLOGS_EXECUTIONROLE_OVERRIDE=true" in user_data


def test_ecs_host_role_only_registers_with_its_cluster(templates):
    t = templates["ecs"]
    (profile,) = resources_of(t, "AWS::IAM::InstanceProfile").values()
    (host_role,) = [r["Ref"] for r in profile["Properties"]["Roles"]]
    statements = [
        s
        for p in resources_of(t, "AWS::IAM::Policy").values()
        if {"Ref": host_role} in p["Properties"]["Roles"]
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    actions = {a for s in statements for a in as_list(s["Action"])}
    assert actions == {
        "ecs:RegisterContainerInstance",
        "ecs:DeregisterContainerInstance",
        "ecs:Submit*",
        "ecs:Poll",
        "ecs:StartTelemetrySession",
        "ecs:DiscoverPollEndpoint",
    }
    assert [s["Action"] for s in statements if s["Resource"] == "*"] == ["ecs:DiscoverPollEndpoint"]


# ---------------------------------------------------------------- SageMaker async


def test_async_output_topics_and_backlog_scaling(templates):
    d = VARIANTS["async"].deployment()
    t = templates["async"]
    config = one(t, "AWS::SageMaker::EndpointConfig")["AsyncInferenceConfig"]
    out = config["OutputConfig"]
    assert render(out["S3OutputPath"]).endswith(f"/emd-async/{d.model_id}/{d.model_tag}/output/")
    assert set(out["NotificationConfig"]) == {"SuccessTopic", "ErrorTopic"}
    topics = resources_of(t, "AWS::SNS::Topic")
    assert len(topics) == 2 and all("KmsMasterKeyId" in tp["Properties"] for tp in topics.values())
    policies = json.dumps(resources_of(t, "AWS::SNS::TopicPolicy"))
    assert policies.count("aws:SecureTransport") == 2
    target = one(t, "AWS::ApplicationAutoScaling::ScalableTarget")
    assert target["MinCapacity"] == 0
    scaling = resources_of(t, "AWS::ApplicationAutoScaling::ScalingPolicy").values()
    tracking = [p for p in scaling if p["Properties"]["PolicyType"] == "TargetTrackingScaling"]
    custom = tracking[0]["Properties"]["TargetTrackingScalingPolicyConfiguration"][
        "CustomizedMetricSpecification"
    ]
    assert custom["MetricName"] == "ApproximateBacklogSizePerInstance"
    alarms = {a["Properties"]["MetricName"] for a in resources_of(t, "AWS::CloudWatch::Alarm").values()}
    assert "HasBacklogWithoutCapacity" in alarms
    _, entry = registry_entry(t)
    assert entry["backend"] == "sagemaker_async"
    # the gateway uploads requests there (its role may write only under emd-async/)
    assert render(entry["s3_input_path"]).endswith(f"/emd-async/{d.model_id}/{d.model_tag}/input/")


def test_async_given_output_path(templates):
    out = one(templates["async_out"], "AWS::SageMaker::EndpointConfig")["AsyncInferenceConfig"][
        "OutputConfig"
    ]
    d = VARIANTS["async_out"].deployment()
    assert out["S3OutputPath"] == f"s3://my-results/emd/emd-async/{d.model_id}/asyncout/output/"
    assert f"my-results/emd/emd-async/{d.model_id}/asyncout/*" in json.dumps(templates["async_out"])


# ---------------------------------------------------------------- ECS


def test_ecs_hosts_gpu_ami_imdsv2_and_encrypted_gp3(templates):
    d = VARIANTS["ecs"].deployment()
    t = templates["ecs"]
    data = one(t, "AWS::EC2::LaunchTemplate")["LaunchTemplateData"]
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    (device,) = data["BlockDeviceMappings"]
    assert device["Ebs"] == {
        "DeleteOnTermination": True,
        "Encrypted": True,
        "VolumeSize": root_volume_gib(d),
        "VolumeType": "gp3",
    }
    assert "amazon-linux-2023/gpu/recommended" in json.dumps(t["Parameters"])
    assert "KeyName" not in data
    provider = one(t, "AWS::ECS::CapacityProvider")["AutoScalingGroupProvider"]
    assert provider["ManagedScaling"]["Status"] == "ENABLED"
    group = one(t, "AWS::AutoScaling::AutoScalingGroup")
    assert (group["MinSize"], group["MaxSize"]) == ("0", "4")


def _scaling_policies(template):
    policies = resources_of(template, "AWS::ApplicationAutoScaling::ScalingPolicy").values()
    return [p["Properties"] for p in policies]


def test_ecs_min_zero_scales_to_and_from_zero_on_the_gateways_metrics(templates):
    d = VARIANTS["ecs_zero"].deployment()
    t = templates["ecs_zero"]
    policies = _scaling_policies(t)
    steps = [p for p in policies if p["PolicyType"] == "StepScaling"]
    exact = [p for p in steps if p["StepScalingPolicyConfiguration"]["AdjustmentType"] == "ExactCapacity"]
    assert len(exact) == 1
    assert exact[0]["StepScalingPolicyConfiguration"]["StepAdjustments"] == [
        {"MetricIntervalUpperBound": 0, "ScalingAdjustment": 0}
    ]
    alarms = list(resources_of(t, "AWS::CloudWatch::Alarm").values())
    (idle,) = [a["Properties"] for a in alarms if a["Properties"].get("MetricName") == "Requests"]
    assert idle["Namespace"] == "EMD/Gateway" and idle["Statistic"] == "Sum"
    assert idle["Dimensions"] == [{"Name": "Route", "Value": d.route}]
    assert idle["TreatMissingData"] == "breaching" and idle["EvaluationPeriods"] == 15
    assert idle["ComparisonOperator"] == "LessThanThreshold" and idle["Threshold"] == 1
    (wake,) = [a["Properties"] for a in alarms if a["Properties"].get("MetricName") == "NoCapacity"]
    assert wake["Namespace"] == "EMD/Gateway" and wake["Dimensions"] == [{"Name": "Route", "Value": d.route}]
    target = one(t, "AWS::ApplicationAutoScaling::ScalableTarget")
    assert target["MinCapacity"] == 0
    # without min_capacity 0: CPU target tracking only, never to zero
    plain = templates["ecs"]
    assert [p["PolicyType"] for p in _scaling_policies(plain)] == ["TargetTrackingScaling"]
    assert "EMD/Gateway" not in json.dumps(plain)


def test_ecs_stacks_name_their_cluster_for_emd_status(templates):
    (cluster_id,) = resources_of(templates["ecs_zero"], "AWS::ECS::Cluster")
    assert templates["ecs_zero"]["Outputs"]["ClusterName"]["Value"] == {"Ref": cluster_id}
    assert "ClusterName" not in templates["rt"]["Outputs"]


def test_ecs_task_gpu_health_check_weights_and_cloud_map(templates):
    t = templates["ecs"]
    containers = {c["Name"]: c for c in one(t, "AWS::ECS::TaskDefinition")["ContainerDefinitions"]}
    engine, weights = containers["engine"], containers["weights"]
    assert engine["ResourceRequirements"] == [{"Type": "GPU", "Value": "1"}]
    assert "/ping" in " ".join(engine["HealthCheck"]["Command"])
    assert engine["DependsOn"] == [{"Condition": "SUCCESS", "ContainerName": "weights"}]
    # the weights are copied by the engine image itself: no public registry to reach (China)
    assert weights["Essential"] is False and weights["Image"] == engine["Image"]
    assert weights["Command"][0] == "fetch-weights" and weights["Command"][2] == "/opt/ml/model"
    assert render(weights["Command"][1]).endswith(".ModelDataS3Uri>")  # the stack's build (an s3:// URI)
    assert weights["Environment"] == [{"Name": "AWS_REGION", "Value": "us-east-1"}]
    assert engine["PortMappings"][0]["ContainerPort"] == ENGINE_PORT
    service = one(t, "AWS::ECS::Service")
    assert service["ServiceRegistries"] and service["CapacityProviderStrategy"]
    discovery = one(t, "AWS::ServiceDiscovery::Service")
    ns_param = ssm_parameter_logical_id(t, "/emd/gateway/namespace-id")
    assert discovery["NamespaceId"] == {"Ref": ns_param}
    _, entry = registry_entry(t)
    name_param = ssm_parameter_logical_id(t, "/emd/gateway/namespace-name")
    assert entry["backend"] == "http"
    assert entry["base_url"] == f"http://{discovery['Name']}.<Ref:{name_param}>:{ENGINE_PORT}/v1"
    target = one(t, "AWS::ApplicationAutoScaling::ScalableTarget")
    assert target["ScalableDimension"] == "ecs:service:DesiredCount" and target["MaxCapacity"] == 4


def test_ecs_engine_reachable_only_from_the_gateway(templates):
    t = templates["ecs"]
    (ingress,) = resources_of(t, "AWS::EC2::SecurityGroupIngress").values()
    sg_param = ssm_parameter_logical_id(t, "/emd/gateway/security-group-id")
    assert ingress["Properties"]["SourceSecurityGroupId"] == {"Ref": sg_param}
    assert ingress["Properties"]["FromPort"] == ingress["Properties"]["ToPort"] == ENGINE_PORT
    for group in resources_of(t, "AWS::EC2::SecurityGroup").values():
        assert "SecurityGroupIngress" not in group["Properties"]


def test_ecs_network_from_gateway_ssm_or_given_vpc(templates):
    default, given = templates["ecs"], templates["ecs_vpc"]
    ssm_param = ssm_parameter_logical_id(default, "/emd/gateway/private-subnet-ids")
    assert default["Parameters"][ssm_param]["Type"] == "AWS::SSM::Parameter::Value<List<String>>"
    subnets = one(default, "AWS::AutoScaling::AutoScalingGroup")["VPCZoneIdentifier"]
    assert subnets == [{"Fn::Select": [i, {"Ref": ssm_param}]} for i in range(2)]
    assert "/emd/gateway/vpc-id" not in json.dumps(given.get("Parameters", {}))
    assert "/emd/gateway/private-subnet-ids" not in json.dumps(given.get("Parameters", {}))
    assert one(given, "AWS::AutoScaling::AutoScalingGroup")["VPCZoneIdentifier"] == VPC["subnet_ids"]
    groups = resources_of(given, "AWS::EC2::SecurityGroup").values()
    assert all(g["Properties"]["VpcId"] == VPC["vpc_id"] for g in groups)


# ---------------------------------------------------------------- EC2


def test_ec2_instance_systemd_engine_ssm_no_ssh(templates):
    t = templates["ec2"]
    instance = one(t, "AWS::EC2::Instance")
    assert "KeyName" not in instance and "AvailabilityZone" not in instance
    user_data = render(instance["UserData"]["Fn::Base64"])
    assert (
        "Restart=always" in user_data and "systemctl enable --now --no-block emd-engine.service" in user_data
    )
    assert "--gpus all" in user_data and "EMD_ENGINE=vllm" in user_data
    data = one(t, "AWS::EC2::LaunchTemplate")["LaunchTemplateData"]
    assert data["MetadataOptions"] == {
        "HttpEndpoint": "enabled",
        "HttpPutResponseHopLimit": 1,  # the engine container (Docker bridge) gets no instance credentials
        "HttpTokens": "required",
    }
    assert instance["LaunchTemplate"]["LaunchTemplateId"] == {
        "Ref": next(iter(resources_of(t, "AWS::EC2::LaunchTemplate")))
    }
    (device,) = instance["BlockDeviceMappings"]
    assert device["Ebs"]["Encrypted"] is True and device["Ebs"]["VolumeType"] == "gp3"
    (role,) = [r for r in resources_of(t, "AWS::IAM::Role").values() if "ec2." in json.dumps(r)]
    assert "AmazonSSMManagedInstanceCore" in json.dumps(role["Properties"]["ManagedPolicyArns"])
    (ingress,) = resources_of(t, "AWS::EC2::SecurityGroupIngress").values()
    assert (
        ingress["Properties"]["FromPort"] == ENGINE_PORT and "SourceSecurityGroupId" in ingress["Properties"]
    )
    _, entry = registry_entry(t)
    logical = next(iter(resources_of(t, "AWS::EC2::Instance")))
    assert entry["base_url"] == f"http://<GetAtt:{logical}.PrivateIp>:{ENGINE_PORT}/v1"


def test_ec2_cpu_instance_has_no_gpu_flag(templates):
    user_data = render(one(templates["ec2_public_vpc"], "AWS::EC2::Instance")["UserData"]["Fn::Base64"])
    assert "--gpus" not in user_data and "EMD_ENGINE=llama.cpp" in user_data
    assert "amazon-linux-2023/recommended" in json.dumps(templates["ec2_public_vpc"]["Parameters"])


# ---------------------------------------------------------------- artifacts


def test_pipeline_mode_declares_exactly_the_build_parameters(templates):
    from serving.build import contract
    from serving.build.prepare import template_configuration

    t = templates["params"]
    declared = {k for k, v in t["Parameters"].items() if "Default" not in v}
    assert declared == {contract.PARAM_ENGINE_IMAGE_URI, contract.PARAM_MODEL_DATA_S3_URI}
    state = {"engine_image_uri": "1.dkr/x:vllm-1", "model_data_s3_uri": "s3://b/models/m/r/"}
    config = template_configuration(t, state, {"model_id": "m", "model_tag": "t"})
    assert config["Parameters"] == {
        "EngineImageUri": "1.dkr/x:vllm-1",
        "ModelDataS3Uri": "s3://b/models/m/r/",
    }
    container = one(t, "AWS::SageMaker::Model")["PrimaryContainer"]
    assert container["Image"] == {"Ref": "EngineImageUri"}
    assert container["ModelDataSource"]["S3DataSource"]["S3Uri"] == {"Ref": "ModelDataS3Uri"}


def test_given_image_and_user_weights(templates):
    t = templates["given"]
    containers = {c["Name"]: c for c in one(t, "AWS::ECS::TaskDefinition")["ContainerDefinitions"]}
    assert containers["engine"]["Image"] == IMAGE
    assert containers["weights"]["Command"][1] == "s3://my-weights/qwen7b/"
    assert "my-weights/qwen7b/*" in json.dumps(t)
    assert "EngineImageUri" not in t.get("Parameters", {})


def test_revision_goes_into_the_build_inputs(templates):
    """The build resolves the revision (a branch to its commit): it travels in the asset's deployment.json,
    whose hash is the asset key, so another revision is another build."""
    import io
    import zipfile

    from emd_constructs.bundles import direct_build_bundle

    keys = {}
    for key in ("rt", "revision"):
        (build,) = resources_of(templates[key], "Custom::EmdModelBuild").values()
        keys[key] = build["Properties"]["SourceKey"]
        bundle = direct_build_bundle(VARIANTS[key].deployment().to_public_dict())
        deployment = json.loads(zipfile.ZipFile(io.BytesIO(bundle)).read("deployment.json"))
        assert deployment["extra_params"].get("model_params", {}).get("revision") == (
            "v1.1" if key == "revision" else None
        )
    assert keys["rt"] != keys["revision"]


@pytest.mark.parametrize("key", ["rt", "ecs", "ec2_public_vpc", "cn_rt", "revision"])
def test_direct_stacks_read_the_weights_folder_their_build_returns(templates, key):
    """No folder guessed at synth time and no SSM parameter read before the build ran: the weights folder is
    the build custom resource's output, and the grant follows it."""
    t = templates[key]
    (build,) = resources_of(t, "Custom::EmdModelBuild")
    assert all(r.endswith(f"/<GetAtt:{build}.WeightsPrefix>*") for r in _weights_reads(t))
    assert "/emd/weights/" not in json.dumps(t)


def _weights_reads(template) -> list[str]:
    policies = resources_of(template, "AWS::IAM::Policy").values()
    statements = [s for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"]]
    reads = [render(s["Resource"]) for s in statements if "s3:GetObject" in json.dumps(s["Action"])]
    assert reads
    return reads


def test_pipeline_and_given_stacks_run_no_build_and_create_no_secret(templates):
    for key in ("params", "given"):
        assert "/emd/weights/" not in json.dumps(templates[key].get("Parameters", {})), key
        types = {r["Type"] for r in templates[key]["Resources"].values()}
        assert not types & {"Custom::EmdModelBuild", "AWS::Lambda::Function", "AWS::SecretsManager::Secret"}
    # the build fills ModelDataS3Uri with a commit folder of this model's cache
    assert all(r.endswith(f"/models/{Q7}/*") for r in _weights_reads(templates["params"]))


def test_engine_image_tag_matches_the_build_stage():
    from emd_stacks.model_inputs import REPO_ROOT
    from model_specs.catalogue import catalogue
    from model_specs.images import image_hash, image_tag

    engine = catalogue().engine("vllm")
    expected = image_tag("vllm", image_hash(REPO_ROOT, engine.model_dump(mode="json"), engine.base_image))
    assert engine_image_tag(VARIANTS["rt"].deployment()) == expected
    assert engine_image_tag(VARIANTS["cn_rt"].deployment()).startswith("llama.cpp-")


def test_scale_to_zero_realtime_is_refused_in_china(tmp_path):
    from emd_stacks.model import ModelStack
    from model_specs.errors import EmdUserError
    from tests.unit.stack_fixtures import make_app

    v = Variant(
        SMOL,
        "g4dn.xlarge",
        "llama.cpp",
        "sagemaker_realtime",
        region="cn-north-1",
        extra_params={"service_params": {"min_capacity": 0}},
    )
    with pytest.raises(
        EmdUserError, match=r"min_capacity=0 on sagemaker_realtime .* cn-north-1 does not offer"
    ):
        ModelStack(make_app(tmp_path), v.deployment())


# Named resources (endpoint, inference component, registry parameter, Cloud Map service) cannot be replaced
# in place: a new logical id would create the replacement under the same name first, and fail.
PINNED = {
    "rt": {
        "Endpoint8024A810": "AWS::SageMaker::Endpoint",
        "RegistrationParameter2B4756D8": "AWS::SSM::Parameter",
    },
    "rt0": {"EndpointInferenceComponent1F4AB702": "AWS::SageMaker::InferenceComponent"},
    "async": {"Endpoint8024A810": "AWS::SageMaker::Endpoint"},
    "ecs": {
        "EngineService074B2F4E": "AWS::ECS::Service",
        "EngineServiceCloudmapService77078A7E": "AWS::ServiceDiscovery::Service",
        "RegistrationParameter2B4756D8": "AWS::SSM::Parameter",
    },
    "ec2": {"RegistrationParameter2B4756D8": "AWS::SSM::Parameter"},
}


@pytest.mark.parametrize("key", list(PINNED))
def test_named_resources_keep_their_logical_ids(templates, key):
    resources = templates[key]["Resources"]
    for logical_id, cfn_type in PINNED[key].items():
        assert resources.get(logical_id, {}).get("Type") == cfn_type, logical_id


@pytest.mark.parametrize("key", ["ec2", "ec2_public_vpc"])
def test_ec2_user_data_is_valid_bash_and_writes_the_unit(templates, key, tmp_path):
    import subprocess

    instance = one(templates[key], "AWS::EC2::Instance")
    user_data = with_build_outputs(render(instance["UserData"]["Fn::Base64"]))
    script = tmp_path / "user-data.sh"
    script.write_text(user_data)
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    unit = user_data.split("<<'EMD_UNIT'\n", 1)[1].split("\nEMD_UNIT", 1)[0]
    service = unit.split("[Service]", 1)[1]
    assert "Restart=always" in service and "ExecStartPre=/usr/local/bin/emd-prepare" in service
    assert "ExecStart=/usr/bin/docker run --rm --name emd-engine" in service
    assert "Environment=DOCKER_CONFIG=/etc/emd/docker" in service
    prepare = user_data.split("<<'EMD_PREPARE'\n", 1)[1].split("\nEMD_PREPARE", 1)[0]
    script.write_text(prepare)
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    # images pulled with ECR's credential helper, weights copied by the engine image: no public registry
    assert '"credHelpers": {"' in prepare and '": "ecr-login"}' in prepare
    assert " fetch-weights s3://" in prepare and "public.ecr.aws" not in prepare
    env = user_data.split("<<'EMD_ENV'\n", 1)[1].split("\nEMD_ENV", 1)[0]
    keys = {line.split("=", 1)[0] for line in env.splitlines()}
    assert {"EMD_ENGINE", "EMD_MODEL_ID", "EMD_ENGINE_ARGS", "EMD_MODEL_DIR", "EMD_TENSOR_PARALLEL"} <= keys


def test_no_model_stack_pulls_from_a_public_registry(templates):
    """China regions cannot reach public.ecr.aws or Docker Hub: every image comes from the account's ECR."""
    for key, template in templates.items():
        text = json.dumps(template)
        assert "public.ecr.aws" not in text and "docker.io" not in text, key
