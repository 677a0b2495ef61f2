"""The AWS lifecycle as a user runs it: the real `emd` in a subprocess against the AWS double (moto server +
pipeline executor, tests/support/aws_double.py): bootstrap → deploy → status → invoke → keys rotate →
destroy → uninstall, and the failures on the way (not bootstrapped, quota too small, a build that fails, a
stack that fails, an existing deployment, Ctrl-C and resume).

The executor runs the real build steps (serving.build.prepare: weights through huggingface_hub from the local
hub server, parameters.json; the image step's docker is a stand-in) and deploys the model stack into moto's
CloudFormation. Requests go through the real gateway (reading moto's SSM and Secrets Manager) to a SageMaker
runtime stand-in in front of the llama.cpp engine adapter. The API key must appear nowhere in what moto
recorded, nor in the CLI's output after the one time it is shown.
"""

from __future__ import annotations

import io
import json
import re
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from model_specs.catalogue import catalogue
from tests.integration.conftest import Gateway, fake_sagemaker_runtime, start_gateway, stop
from tests.support.aws_double import DEFAULT_QUOTAS, AwsDouble
from tests.support.cli import environ_without, run_emd
from tests.support.hf_server import HubServer
from tests.support.servers import ServerThread, free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
MODEL = "SmolLM2-135M-Instruct-GGUF"
HF_REPO = catalogue().model(MODEL).hf_id  # the GGUF repository the build downloads from
KEY_LINE = re.compile(r"export EMD_API_KEY='([^']+)'")


@dataclass
class World:
    double: AwsDouble
    gateway: Gateway
    home: Path
    runtime_url: str  # the SageMaker runtime stand-in in front of the engine adapter
    outputs: list[str] = field(default_factory=list)  # every CLI output, for the key-leak check

    def emd(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        result = run_emd(*args, env=self.env(), timeout=timeout)
        self.outputs.append(result.stdout + result.stderr)
        return result

    def env(self) -> dict[str, str]:
        env = environ_without("AWS_", "EMD_")
        env.update(self.double.env(), XDG_STATE_HOME=str(self.home / "state"), COLUMNS="200")
        env["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] = self.runtime_url  # SageMaker straight, no gateway
        return env


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, adapter: str) -> Iterator[World]:
    home = tmp_path_factory.mktemp("aws-lifecycle")
    with HubServer(home / "hub") as hub, ServerThread(fake_sagemaker_runtime(adapter)) as runtime:
        hub.add_repo(HF_REPO, {"SmolLM2-135M-Instruct.Q4_1.gguf": b"GGUF" + bytes(4096), "README.md": "tiny"})
        double = AwsDouble(home / "double", extra_env=hub.env()).start()
        gateway = start_gateway(double.url, runtime.url, home / "gateway.log")
        w = World(double, gateway, home, runtime.url)
        try:
            boot = w.emd("bootstrap", "--region", "us-east-1", "--yes")
            assert boot.returncode == 0, boot.stdout + boot.stderr
            # the gateway runs here, on loopback, in place of the load balancer the gateway stack describes
            double.client("ssm").put_parameter(
                Name="/emd/gateway/url", Value=gateway.url, Type="String", Overwrite=True
            )
            yield w
        finally:
            stop(gateway.proc)
            double.stop()


def deploy_args(
    tag: str, *extra: str, instance: str = "g4dn.xlarge", service: str = "sagemaker_realtime"
) -> list[str]:
    return [
        "deploy", "--model-id", MODEL, "-s", service, "-i", instance, "--model-tag", tag,
        "--region", "us-east-1", "--skip-confirm", *extra,
    ]  # fmt: skip


def secret_names(double: AwsDouble, region: str = "us-east-1") -> list[str]:
    pages = double.client("secretsmanager", region).get_paginator("list_secrets").paginate()
    return [s["Name"] for page in pages for s in page["SecretList"]]


def status_of(world: World, route: str) -> dict[str, Any]:
    result = world.emd("status", route, "--json", "--region", "us-east-1")
    assert result.returncode == 0, result.stdout + result.stderr
    (found,) = [d for d in json.loads(result.stdout)["deployments"] if d["route"] == route]
    return found


# ---------------------------------------------------------------- refusals before anything is created


def test_not_bootstrapped_names_the_command_and_creates_nothing(world: World) -> None:
    result = world.emd(*deploy_args("dev")[:-3], "--region", "us-west-2", "--skip-confirm")
    assert result.returncode == 2, result.stdout + result.stderr
    assert (
        "not bootstrapped in us-west-2" in result.stderr
        and "emd bootstrap --region us-west-2" in result.stderr
    )
    assert secret_names(world.double, "us-west-2") == []


def test_a_quota_too_small_is_refused_with_the_way_to_raise_it(world: World) -> None:
    quotas = json.loads(json.dumps(DEFAULT_QUOTAS))
    for quota in quotas["sagemaker"]:
        if quota["QuotaName"] == "ml.g4dn.xlarge for endpoint usage":
            quota["Value"] = 0.0
    world.double.set_quotas(quotas)
    try:
        result = world.emd(*deploy_args("quota"))
    finally:
        world.double.set_quotas(DEFAULT_QUOTAS)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "'ml.g4dn.xlarge for endpoint usage' is 0" in result.stderr
    assert "request-service-quota-increase --service-code sagemaker" in result.stderr
    assert f"emd/{MODEL}/quota/api-key" not in secret_names(world.double)


def _set_quota(world: World, service: str, name: str, value: float) -> None:
    quotas = json.loads(json.dumps(DEFAULT_QUOTAS))
    for quota in quotas[service]:
        if quota["QuotaName"] == name:
            quota["Value"] = value
    world.double.set_quotas(quotas)


def test_the_quota_must_hold_what_is_in_use_plus_the_deployment(world: World) -> None:
    """SageMaker: one ml.g4dn.xlarge endpoint in service and a quota of 1; EC2: two running g4dn.xlarge (8
    vCPUs) and a G quota of 10 against the 4 of one more."""
    double = world.double
    _sagemaker_endpoint(double, "emd-test-quota")
    ec2 = double.client("ec2")
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    running = [i["InstanceId"] for i in ec2.run_instances(
        ImageId=image, InstanceType="g4dn.xlarge", MinCount=2, MaxCount=2)["Instances"]]  # fmt: skip
    try:
        _set_quota(world, "sagemaker", "ml.g4dn.xlarge for endpoint usage", 1.0)
        sagemaker = world.emd(*deploy_args("quota"))
        _set_quota(world, "ec2", "Running On-Demand G and VT instances", 10.0)
        ecs = world.emd(*deploy_args("quota", service="ecs"))
    finally:
        world.double.set_quotas(DEFAULT_QUOTAS)
        ec2.terminate_instances(InstanceIds=running)
        double.client("sagemaker").delete_endpoint(EndpointName="emd-test-quota")
    assert sagemaker.returncode == 2, sagemaker.stdout + sagemaker.stderr
    text = " ".join(sagemaker.stderr.split())
    assert "'ml.g4dn.xlarge for endpoint usage' is 1 in us-east-1, 1 instances are in use" in text
    assert "needs 1 more. Request 2 in the Service Quotas console" in text
    assert "(https://console.aws.amazon.com/servicequotas/home/services/sagemaker/quotas/L-EMD00000" in text
    assert ecs.returncode == 2, ecs.stdout + ecs.stderr
    text = " ".join(ecs.stderr.split())
    assert "'Running On-Demand G and VT instances' is 10 in us-east-1, 8 vCPUs are in use" in text
    assert "needs 4 more. Request 12" in text and "--quota-code L-DB2E81BA --desired-value 12" in text
    assert f"emd/{MODEL}/quota/api-key" not in secret_names(world.double)


# ---------------------------------------------------------------- failures after the pipeline started


def test_a_build_that_fails_shows_its_phase_and_log_then_destroy_cleans_up(world: World) -> None:
    route = f"{MODEL}/badrev"
    result = world.emd(
        *deploy_args("badrev", "--extra-params", '{"model_params": {"revision": "no-such-rev"}}')
    )
    assert result.returncode == 1, result.stdout + result.stderr
    text = result.stdout + result.stderr
    assert "Build stage failed" in text and "in phase PRE_BUILD" in text, text
    assert "last lines of the build log:" in text and "no-such-rev" in text
    assert "Traceback (most recent call last)" not in result.stderr.split("last lines of the build log:")[0]
    failed = status_of(world, route)
    assert failed["stage"] == "failed" and "Build" in failed["reason"]
    gone = world.emd("destroy", route, "--yes", "--region", "us-east-1")
    assert gone.returncode == 0, gone.stdout + gone.stderr
    assert f"emd/{route}/api-key" not in secret_names(world.double)
    listed = json.loads(world.emd("status", "--json", "--region", "us-east-1").stdout)["deployments"]
    assert route not in {d["route"] for d in listed}


def test_a_failed_public_first_deployment_is_listed_until_destroyed(world: World) -> None:
    route = f"{MODEL}/openbad"
    public = '{"service_params": {"public": true}, "model_params": {"revision": "no-such-rev"}}'
    result = world.emd(*deploy_args("openbad", "--extra-params", public))
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"emd/{route}/api-key" not in secret_names(world.double)  # public: no key, no stack
    failed = status_of(world, route)
    assert failed["stage"] == "failed" and "Build" in failed["reason"]
    assert failed["hourly_cost"] is None  # no stack: nothing runs, nothing costs
    gone = world.emd("destroy", route, "--yes", "--region", "us-east-1")
    assert gone.returncode == 0, gone.stdout + gone.stderr
    assert "bundle versions of s3://" in gone.stdout
    listed = json.loads(world.emd("status", "--json", "--region", "us-east-1").stdout)["deployments"]
    assert route not in {d["route"] for d in listed}


def test_a_stack_that_fails_shows_the_failed_resource_and_its_reason(world: World) -> None:
    route = f"{MODEL}/g5"
    result = world.emd(*deploy_args("g5", instance="g5.2xlarge"))  # moto's SageMaker refuses ml.g5.*
    assert result.returncode == 1, result.stdout + result.stderr
    text = result.stdout + result.stderr
    assert "Deploy stage failed" in text
    assert "(AWS::SageMaker::EndpointConfig)" in text and "ml.g5.2xlarge" in text
    assert status_of(world, route)["stage"] == "failed"
    again = world.emd(*deploy_args("g5", instance="g5.2xlarge"))
    assert again.returncode == 2 and "a failed deployment of" in again.stderr and "--update" in again.stderr
    gone = world.emd("destroy", route, "--yes", "--region", "us-east-1")
    assert gone.returncode == 0, gone.stdout + gone.stderr
    assert "stack EMD-Model-" in gone.stdout


def test_ctrl_c_detaches_and_status_follow_resumes(world: World) -> None:
    route = f"{MODEL}/ctrlc"
    world.double.hold(True)  # executions wait before their Deploy stage
    try:
        deploy = _start(world, *deploy_args("ctrlc"))
        seen = _read_until(deploy, "PrepareArtifacts done", timeout=180)
        deploy.send_signal(signal.SIGINT)
        out, err = deploy.communicate(timeout=60)
        world.outputs.append(seen + out + err)
        assert deploy.returncode == 0, seen + out + err
        assert f"emd status {route} --follow" in err and "still being deployed" in out
        assert KEY_LINE.search(out)  # the key is shown once even when detaching
        follow = _start(world, "status", route, "--follow", "--json", "--region", "us-east-1")
        seen = _read_until(follow, "PrepareArtifacts done", timeout=60)  # it shows where the execution is
        world.double.hold(False)
        out, err = follow.communicate(timeout=120)
    finally:
        world.double.hold(False)
    world.outputs.append(seen + out + err)
    assert follow.returncode == 0, seen + out + err
    assert "Deploy: DeployModelStack done" in err
    (entry,) = json.loads(out)["deployments"]
    assert entry["stage"] == "in service"
    assert world.emd("destroy", route, "--yes", "--region", "us-east-1").returncode == 0


def _start(world: World, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "emd_cli", *args],
        cwd=ROOT,
        env=world.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _read_until(proc: subprocess.Popen[str], text: str, timeout: float) -> str:
    assert proc.stderr is not None
    deadline, seen = time.monotonic() + timeout, ""
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line and proc.poll() is not None:
            break
        seen += line
        if text in line:
            return seen
    raise AssertionError(f"{text!r} never came:\n{seen}")


def test_status_makes_the_same_calls_for_1_and_10_deployments(world: World) -> None:
    def counted_status() -> tuple[int, int]:
        world.double.calls(reset=True)
        result = world.emd("status", "--json", "--region", "us-east-1")
        assert result.returncode == 0, result.stderr
        listed = [d for d in json.loads(result.stdout)["deployments"] if d["route"].startswith(f"{MODEL}/b")]
        return sum(world.double.calls().values()), len(listed)

    routes = world.double.seed_deployments(MODEL, 1, start=100)
    one = counted_status()
    routes += world.double.seed_deployments(MODEL, 9, start=101)
    ten = counted_status()
    try:
        assert one[1] == 1 and ten[1] == 10
        # at most: SSM, DescribeStacks, ListPipelineExecutions, ListActionExecutions, SageMaker Search, ECS
        # DescribeClusters, ListSecrets, ListObjectVersions (the last two: an execution ended without a stack)
        assert ten[0] == one[0] <= 8, (one, ten)
    finally:
        cfn, sm = world.double.client("cloudformation"), world.double.client("secretsmanager")
        for route in routes:
            sm.delete_secret(SecretId=f"emd/{route}/api-key", ForceDeleteWithoutRecovery=True)
            from emd_cli.targets.aws import stack_name_of

            cfn.delete_stack(StackName=stack_name_of(route))


def test_an_internal_gateway_out_of_reach_means_sagemaker_directly(world: World) -> None:
    route = f"{MODEL}/vpc"
    deployed = world.emd(*deploy_args("vpc"))
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    ssm = world.double.client("ssm")
    closed = f"http://127.0.0.1:{free_port()}"  # like an internal load balancer seen from outside its VPC
    for name, value in (("/emd/gateway/url", closed), ("/emd/gateway/exposure", "internal")):
        ssm.put_parameter(Name=name, Value=value, Type="String", Overwrite=True)
    try:
        answer = world.emd("invoke", route, "--prompt", "Say hello.", "--max-tokens", "8")
        listed = world.emd("status", "--region", "us-east-1")
    finally:
        ssm.put_parameter(Name="/emd/gateway/url", Value=world.gateway.url, Type="String", Overwrite=True)
        ssm.put_parameter(Name="/emd/gateway/exposure", Value="cloudfront", Type="String", Overwrite=True)
    assert answer.returncode == 0, answer.stdout + answer.stderr
    assert answer.stdout.strip()  # the engine answered, through SageMaker's runtime
    assert f"the gateway {closed}/v1 is internal (reachable from its VPC only)" in answer.stderr
    assert "calling the SageMaker endpoint emd-" in answer.stderr
    assert listed.returncode == 0, listed.stdout + listed.stderr
    note = " ".join(listed.stdout.split())
    assert f"note: the gateway {closed}/v1 is internal, reachable from its VPC only" in note
    assert "emd bootstrap --region us-east-1 --cloudfront" in note and "`emd invoke` calls" in note
    assert world.emd("destroy", route, "--yes", "--region", "us-east-1").returncode == 0


def test_status_tells_scaled_to_zero_with_one_read_per_service(world: World) -> None:
    """SageMaker: an endpoint at 0 instances (Search); ECS: a deployment's cluster with no task (its service
    at desired 0; DescribeClusters). One call each, however many deployments."""
    double = world.double
    endpoint = "emd-test-scaled-to-zero"
    _sagemaker_endpoint(double, endpoint)
    sm_route = _model_stack(double, "smzero", "sagemaker_realtime", {"EndpointName": {"Value": endpoint}})
    ecs_route = _model_stack(
        double,
        "ecszero",
        "ecs",
        {"ClusterName": {"Value": {"Ref": "Cluster"}}},
        {"Type": "AWS::ECS::Cluster"},
    )
    cluster = _outputs(double, _stack_of(ecs_route))["ClusterName"]
    ecs = double.client("ecs")
    ecs.register_task_definition(
        family="emd-ecszero", containerDefinitions=[{"name": "engine", "image": "x", "memory": 512}]
    )
    ecs.create_service(cluster=cluster, serviceName="engine", taskDefinition="emd-ecszero", desiredCount=1)
    try:
        assert status_of(world, sm_route)["stage"] == "in service"
        assert status_of(world, ecs_route)["stage"] == "in service"
        sm = double.client("sagemaker")
        sm.update_endpoint_weights_and_capacities(
            EndpointName=endpoint,
            DesiredWeightsAndCapacities=[{"VariantName": "main", "DesiredInstanceCount": 0}],
        )
        ecs.update_service(cluster=cluster, service="engine", desiredCount=0)
        double.calls(reset=True)
        result = world.emd("status", "--json", "--region", "us-east-1")
        calls = double.calls()
        assert result.returncode == 0, result.stderr
        rows = {d["route"]: d for d in json.loads(result.stdout)["deployments"]}
        for route in (sm_route, ecs_route):
            assert rows[route]["stage"] == "scaled to zero", rows[route]
            assert "the first one starts" in rows[route]["reason"]
        assert calls["sagemaker.Search"] == 1 and calls["ecs.DescribeClusters"] == 1, calls
    finally:
        cfn = double.client("cloudformation")
        for route in (sm_route, ecs_route):
            cfn.delete_stack(StackName=_stack_of(route))


def _stack_of(route: str) -> str:
    from emd_cli.targets.aws import stack_name_of

    return stack_name_of(route)


def _outputs(double: AwsDouble, stack: str) -> dict[str, str]:
    described = double.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}


def _model_stack(
    double: AwsDouble, tag: str, service: str, outputs: dict[str, Any], resource: dict[str, Any] | None = None
) -> str:
    """A deployment's stack as `emd status` reads it (the model stack's Route, Deployment and given outputs,
    one resource); returns its route."""
    route = f"{MODEL}/{tag}"
    facts = {"service_type": service, "engine_type": "llama.cpp", "instance_type": "g4dn.xlarge"}
    deployment = json.dumps({**facts, "model_type": "llm", "public": True})
    template = {
        "Resources": {"Cluster" if resource else "Topic": resource or {"Type": "AWS::SNS::Topic"}},
        "Outputs": {"Route": {"Value": route}, "Deployment": {"Value": deployment}, **outputs},
    }
    double.client("cloudformation").create_stack(
        StackName=_stack_of(route), TemplateBody=json.dumps(template)
    )
    return route


def _sagemaker_endpoint(double: AwsDouble, name: str) -> None:
    sm = double.client("sagemaker")
    sm.create_model(
        ModelName=name,
        ExecutionRoleArn="arn:aws:iam::123456789012:role/emd-test",
        PrimaryContainer={"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/emd:x"},
    )
    variant = {
        "VariantName": "main",
        "ModelName": name,
        "InitialInstanceCount": 1,
        "InstanceType": "ml.g4dn.xlarge",
    }
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[variant])
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)


# ---------------------------------------------------------------- the whole cycle, then nothing left


def test_the_whole_cycle_leaves_nothing_and_no_key_leaks(world: World) -> None:
    route = f"{MODEL}/dev"
    deployed = world.emd(*deploy_args("dev"))
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert "Build: PrepareArtifacts started" in deployed.stderr
    assert f"{route} is serving on AWS (us-east-1)" in deployed.stdout
    assert f"Base URL  {world.gateway.url}/v1" in deployed.stdout
    key = _key(deployed.stdout)

    entry = status_of(world, route)
    assert entry["stage"] == "in service" and entry["base_url"] == f"{world.gateway.url}/v1"
    assert entry["service_type"] == "sagemaker_realtime" and entry["instance_type"] == "g4dn.xlarge"
    assert entry["hourly_cost"].startswith("$") and entry["hourly_cost"].endswith("/h")

    twice = world.emd(*deploy_args("dev"))
    assert twice.returncode == 2 and "already deployed" in twice.stderr and "--model-tag" in twice.stderr
    updated = world.emd(*deploy_args("dev", "--update"))
    assert updated.returncode == 0, updated.stdout + updated.stderr
    assert "API key   unchanged" in updated.stdout and not KEY_LINE.search(updated.stdout)

    answer = world.emd(
        "invoke", route, "--prompt", "Say hello.", "--max-tokens", "8", "--region", "us-east-1"
    )
    assert answer.returncode == 0, answer.stdout + answer.stderr
    assert answer.stdout.strip()

    rotated = world.emd("keys", "rotate", route, "--region", "us-east-1")
    assert rotated.returncode == 0, rotated.stdout + rotated.stderr
    new_key = _key(rotated.stdout)
    assert new_key != key
    _wait_for_status(world.gateway.url, key, 401)  # the gateway's key cache lasts 1 s here
    _wait_for_status(world.gateway.url, new_key, 200)

    leaks = _recorded_leaks(world.double, {key, new_key})
    assert leaks == [], leaks

    gone = world.emd("destroy", route, "--yes", "--region", "us-east-1")
    assert gone.returncode == 0, gone.stdout + gone.stderr
    assert "stack EMD-Model-" in gone.stdout and f"secret emd/{route}/api-key" in gone.stdout

    removed = world.emd("uninstall", "--region", "us-east-1", "--yes")
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert world.double.client("cloudformation").describe_stacks()["Stacks"] == []
    assert [n for n in secret_names(world.double) if n.startswith("emd/")] == []
    ssm = world.double.client("ssm").get_paginator("get_parameters_by_path")
    assert [p for page in ssm.paginate(Path="/emd", Recursive=True) for p in page["Parameters"]] == []
    assert _running_executions(world.double) == []

    everything = "\n".join(world.outputs)
    assert everything.count(key) == 1 and everything.count(new_key) == 1


def _key(stdout: str) -> str:
    found = KEY_LINE.search(stdout)
    assert found, stdout
    return found.group(1)


def _wait_for_status(gateway: str, key: str, want: int, timeout: float = 30) -> None:
    deadline, got = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        got = httpx.get(f"{gateway}/v1/models", headers={"Authorization": f"Bearer {key}"}, timeout=10)
        if got.status_code == want:
            return
        time.sleep(0.5)
    raise AssertionError(f"{gateway} answered {got.status_code if got else None}, not {want}")


def _running_executions(double: AwsDouble) -> list[str]:
    cp = double.client("codepipeline")
    found = []
    for pipeline in cp.list_pipelines()["pipelines"]:
        summaries = cp.list_pipeline_executions(pipelineName=pipeline["name"])["pipelineExecutionSummaries"]
        found += [s["pipelineExecutionId"] for s in summaries if s["status"] in ("InProgress", "Stopping")]
    return found


def _recorded_leaks(double: AwsDouble, keys: set[str]) -> list[str]:
    """Where a key appears in what moto recorded: pipeline executions and their variables, every S3 object
    version (zip bundles unpacked), templates and stack parameters, SSM parameters, CloudWatch logs."""
    texts: dict[str, str] = {}
    cp = double.client("codepipeline")
    for pipeline in cp.list_pipelines()["pipelines"]:
        name = pipeline["name"]
        for s in cp.list_pipeline_executions(pipelineName=name)["pipelineExecutionSummaries"]:
            execution = cp.get_pipeline_execution(
                pipelineName=name, pipelineExecutionId=s["pipelineExecutionId"]
            )
            texts[f"execution {s['pipelineExecutionId']}"] = json.dumps([s, execution], default=str)
        details = cp.list_action_executions(pipelineName=name)["actionExecutionDetails"]
        texts[f"actions of {name}"] = json.dumps(details, default=str)
    s3 = double.client("s3")
    for bucket in s3.list_buckets()["Buckets"]:
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket["Name"]):
            for version in page.get("Versions", []):
                obj = s3.get_object(Bucket=bucket["Name"], Key=version["Key"], VersionId=version["VersionId"])
                data = obj["Body"].read()
                where = f"s3://{bucket['Name']}/{version['Key']}@{version['VersionId']}"
                texts[where] = data.decode(errors="replace") + json.dumps(obj.get("Metadata", {}))
                if data[:2] == b"PK":
                    with zipfile.ZipFile(io.BytesIO(data)) as zf:
                        for entry in zf.namelist():
                            texts[f"{where}!{entry}"] = zf.read(entry).decode(errors="replace")
    cfn = double.client("cloudformation")
    for stack in cfn.describe_stacks()["Stacks"]:
        template = cfn.get_template(StackName=stack["StackName"])["TemplateBody"]
        texts[f"stack {stack['StackName']}"] = json.dumps([template, stack], default=str)
    ssm = double.client("ssm")
    for page in ssm.get_paginator("describe_parameters").paginate():
        for param in page["Parameters"]:
            value = ssm.get_parameter(Name=param["Name"])["Parameter"]["Value"]
            texts[f"ssm {param['Name']}"] = value
    logs = double.client("logs")
    for group in logs.describe_log_groups()["logGroups"]:
        for stream in logs.describe_log_streams(logGroupName=group["logGroupName"])["logStreams"]:
            events = logs.get_log_events(
                logGroupName=group["logGroupName"], logStreamName=stream["logStreamName"]
            )
            texts[f"log {group['logGroupName']}/{stream['logStreamName']}"] = json.dumps(events["events"])
    assert any(k.startswith("s3://") and "template.json" in k for k in texts), "no bundle was inspected"
    assert any(k.startswith("log ") for k in texts), "no build log was inspected"
    return sorted(where for where, text in texts.items() if any(key in text for key in keys))
