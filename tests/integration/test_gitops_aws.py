"""`emd gitops plan` and the pipeline's steps against moto server on 127.0.0.1: plan (added, changed in place
or replacing, removed, untouched, a stack not created by GitOps), prune (only this pipeline's stacks that left
the file, in every target including one that left models.yaml, with their key secrets and build parameters),
API key secrets, builds through the bootstrap's CodeBuild project, and the smoke test through the real gateway
in front of llama.cpp."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner

from emd_cli.main import cli
from model_specs.gitops import GitOpsPlan, PlanEntry, PlanStage, PlanTarget, artifact_parameter_name
from model_specs.models_file import load_models_file
from model_specs.registry import RegistryEntry, api_key_secret_name, registry_parameter_name
from serving.gitops.builds import Bootstrap, build_entries, bundle_prefix
from serving.gitops.keys import ensure_api_keys
from serving.gitops.prune import prune
from serving.gitops.smoke import Route, SmokeFailure, check_routes
from serving.gitops.targets import target_session
from tests.integration.conftest import REGION, Gateway
from tests.support.aws_double import AwsDouble

pytestmark = pytest.mark.integration

ACCOUNT = "123456789012"  # moto's default account
OTHER_ACCOUNT = "222222222222"
MODEL = "Qwen2.5-0.5B-Instruct"


@pytest.fixture
def moto_env(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    return moto_url


def session_in(account: str) -> boto3.Session:
    """The default account, or another one through an assumed role (moto keeps accounts apart)."""
    base = boto3.Session(region_name=REGION)
    if account == ACCOUNT:
        return base
    creds = base.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/test-setup", RoleSessionName="test-setup"
    )["Credentials"]
    return boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name=REGION,
    )


def spec(tag: str, instance: str = "g4dn.xlarge", service: str = "ecs") -> dict[str, Any]:
    from model_specs.deployment import resolve_deployment

    d = resolve_deployment(
        model_id=MODEL, instance_type=instance, service_type=service, region=REGION, model_tag=tag
    )
    return d.to_public_dict()


def deploy_fake_model_stack(account: str, tag: str, pipeline: str | None, **kw: str) -> str:
    """A stack as a model stack looks to DescribeStacks/GetTemplate: name, tags, description, metadata."""
    s = spec(tag, **kw)
    template = {
        "Description": f"EMD model {MODEL}/{tag}: {s['engine_type']} on {s['instance_type']} "
        "({s['service_type']})",
        "Metadata": {"EMD::Deployment": s},
        "Resources": {
            "Registry": {
                "Type": "AWS::SSM::Parameter",
                "Properties": {"Type": "String", "Name": registry_parameter_name(MODEL, tag), "Value": "{}"},
            }
        },
    }
    tags = [{"Key": "emd:model-id", "Value": MODEL}, {"Key": "emd:tag", "Value": tag}]
    if pipeline:
        tags.append({"Key": "emd:gitops", "Value": pipeline})
    sess = session_in(account)
    sess.client("cloudformation").create_stack(
        StackName=s["stack_name"], TemplateBody=json.dumps(template), Tags=tags
    )
    return str(s["stack_name"])


def stack_names(account: str) -> set[str]:
    cfn = session_in(account).client("cloudformation")
    return {
        s["StackName"]
        for page in cfn.get_paginator("describe_stacks").paginate()
        for s in page["Stacks"]
        if s["StackStatus"] != "DELETE_COMPLETE"
    }


def entry_yaml(tag: str, instance: str = "g4dn.xlarge", service: str = "ecs") -> str:
    return f"  - {{model_id: {MODEL}, tag: {tag}, instance: {instance}, service: {service}}}\n"


@pytest.fixture
def scenario(moto_env: str, tmp_path: Path) -> dict[str, Any]:
    """models.yaml against what is deployed, with tags unique to this test."""
    run = uuid.uuid4().hex[:6]
    t = {name: f"{name}-{run}" for name in ("keep", "grow", "svc", "new", "gone", "cli", "other", "far")}
    pipeline = f"GitOps-{run}"
    names = {
        "keep": deploy_fake_model_stack(ACCOUNT, t["keep"], pipeline),
        "grow": deploy_fake_model_stack(ACCOUNT, t["grow"], pipeline),
        "svc": deploy_fake_model_stack(ACCOUNT, t["svc"], pipeline, service="sagemaker_realtime"),
        "gone": deploy_fake_model_stack(ACCOUNT, t["gone"], pipeline),
        "cli": deploy_fake_model_stack(ACCOUNT, t["cli"], None),  # emd deploy: never GitOps'
        "other": deploy_fake_model_stack(ACCOUNT, t["other"], "Another-GitOps"),
        "far": deploy_fake_model_stack(
            OTHER_ACCOUNT, t["far"], pipeline
        ),  # an environment that left the file
    }
    models = tmp_path / "models.yaml"
    models.write_text(
        "deployments:\n"
        + entry_yaml(t["keep"])
        + entry_yaml(t["grow"], instance="g4dn.2xlarge")
        + entry_yaml(t["svc"])
        + entry_yaml(t["new"])
    )
    return {"tags": t, "pipeline": pipeline, "names": names, "models": models}


def test_plan_reports_each_kind_and_changes_nothing(scenario: dict[str, Any]):
    t, names = scenario["tags"], scenario["names"]
    before = stack_names(ACCOUNT)
    result = CliRunner().invoke(
        cli,
        [
            "gitops",
            "plan",
            str(scenario["models"]),
            "--name",
            scenario["pipeline"],
            "--region",
            REGION,
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    kinds = {item["route"].split("/")[1]: item["kind"] for item in data["items"]}
    assert kinds == {t["keep"]: "untouched", t["grow"]: "change", t["svc"]: "change", t["new"]: "add",
                     t["gone"]: "remove"}  # fmt: skip
    by_tag = {item["route"].split("/")[1]: item for item in data["items"]}
    assert by_tag[t["grow"]]["changes"] == [
        {"field": "instance_type", "before": "g4dn.xlarge", "after": "g4dn.2xlarge", "replacing": None}
    ]
    assert by_tag[t["svc"]]["replacing"] is True
    assert any(c["field"] == "service_type" and c["replacing"] for c in by_tag[t["svc"]]["changes"])
    assert names["cli"] not in result.output and names["other"] not in result.output
    # now: keep, grow (g4dn.xlarge), svc (SageMaker ml.g4dn.xlarge), gone; after: keep, grow (2xlarge),
    # svc, new
    assert set(data["hourly_before"]) == {"$"} and data["hourly_after"]["$"] != data["hourly_before"]["$"]
    assert stack_names(ACCOUNT) == before  # plan changed nothing


def test_plan_table(scenario: dict[str, Any]):
    result = CliRunner().invoke(
        cli,
        ["gitops", "plan", str(scenario["models"]), "--name", scenario["pipeline"], "--region", REGION],
        env={"COLUMNS": "300"},
    )
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "1 to add, 2 to change, 1 to remove, 1 untouched" in text
    assert "instance_type: 'g4dn.xlarge' -> 'g4dn.2xlarge' (in place)" in text
    assert "replacing: another service type" in text
    assert "Hourly cost (instances at minimum capacity): $" in text


def test_plan_refuses_an_invalid_file_before_any_aws_call(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens: a call would fail
    (tmp_path / "models.yaml").write_text("deployments:\n" + entry_yaml("x", instance="g4dn.xlarg"))
    result = CliRunner().invoke(cli, ["gitops", "plan", str(tmp_path / "models.yaml"), "--region", REGION])
    assert result.exit_code == 2
    assert (
        "models.yaml:2: deployments[0] (Qwen2.5-0.5B-Instruct/x): instance: unknown instance type"
        in result.output
    )


def plan_for(models_path: Path, pipeline: str, targets: list[PlanTarget] | None = None) -> GitOpsPlan:
    """The plan.json `emd gitops synth` would write (without synthesizing: prune needs no template)."""
    models = load_models_file(models_path, default_region=REGION)
    target = PlanTarget(account=None, region=REGION, role_name=f"{pipeline}-target-{REGION}")
    entries = [
        PlanEntry(
            route=e.route,
            stack_name=e.deployment.stack_name,
            model_type="llm",
            api_key_secret_name=e.deployment.api_key_secret_name,
            deployment=e.deployment.to_public_dict(),
            template="unused.json",
        )
        for e in models.entries
    ]
    return GitOpsPlan(
        pipeline=pipeline,
        pipeline_account=ACCOUNT,
        pipeline_region=REGION,
        prune=True,
        targets=targets or [target],
        stages=[
            PlanStage(
                name="us-east-1-wave1", environment="us-east-1", wave="wave1", target=target, entries=entries
            )
        ],
    )


def test_prune_deletes_only_this_pipelines_stacks_that_left_the_file(scenario: dict[str, Any]):
    t, names, pipeline = scenario["tags"], scenario["names"], scenario["pipeline"]
    secrets = session_in(ACCOUNT).client("secretsmanager")
    secrets.create_secret(
        Name=api_key_secret_name(MODEL, t["gone"]),
        SecretString="emd-x",
        Tags=[{"Key": "emd:gitops", "Value": pipeline}],
    )
    secrets.create_secret(Name=api_key_secret_name(MODEL, t["cli"]), SecretString="emd-y")
    ssm = session_in(ACCOUNT).client("ssm")
    ssm.put_parameter(
        Name=artifact_parameter_name(MODEL, t["gone"], "EngineImageUri"), Value="r:x", Type="String"
    )
    far = PlanTarget(account=OTHER_ACCOUNT, region=REGION, role_name=f"{pipeline}-target-{REGION}")
    # an earlier run deployed to the other account: its target is on record
    ssm.put_parameter(
        Name=f"/emd/gitops/pipelines/{pipeline}/targets", Value=json.dumps([far.model_dump()]), Type="String"
    )
    plan = plan_for(scenario["models"], pipeline)

    deleted = prune(plan, boto3.Session(region_name=REGION), target_session)

    assert sorted(i.stack_name for i in deleted) == sorted([names["gone"], names["far"]])
    left = stack_names(ACCOUNT)
    assert {names["keep"], names["grow"], names["svc"], names["cli"], names["other"]} <= left
    assert names["gone"] not in left and names["far"] not in stack_names(OTHER_ACCOUNT)
    listed = {s["Name"] for s in secrets.list_secrets()["SecretList"]}
    assert api_key_secret_name(MODEL, t["gone"]) not in listed  # created by this pipeline: removed with it
    assert api_key_secret_name(MODEL, t["cli"]) in listed  # not this pipeline's: kept
    assert (
        ssm.get_parameters(Names=[artifact_parameter_name(MODEL, t["gone"], "EngineImageUri")])["Parameters"]
        == []
    )
    recorded = json.loads(
        ssm.get_parameter(Name=f"/emd/gitops/pipelines/{pipeline}/targets")["Parameter"]["Value"]
    )
    assert recorded == [{"account": ACCOUNT, "region": REGION, "role_name": f"{pipeline}-target-{REGION}"}]
    assert prune(plan, boto3.Session(region_name=REGION), target_session) == []  # a second run: nothing left


def test_api_keys_are_created_once_tagged_and_never_printed(
    moto_env: str, capsys: pytest.CaptureFixture[str]
):
    tag = f"k-{uuid.uuid4().hex[:6]}"
    entry = PlanEntry(
        route=f"{MODEL}/{tag}",
        stack_name="EMD-Model-x",
        model_type="llm",
        api_key_secret_name=api_key_secret_name(MODEL, tag),
        deployment={"model_id": MODEL, "model_tag": tag},
        template="t.json",
    )
    public = entry.model_copy(update={"api_key_secret_name": None, "route": f"{MODEL}/{tag}-open"})
    client = boto3.client("secretsmanager", region_name=REGION)
    assert ensure_api_keys(client, [entry, public], "P") == [api_key_secret_name(MODEL, tag)]
    value = client.get_secret_value(SecretId=api_key_secret_name(MODEL, tag))["SecretString"]
    assert value.startswith("emd-") and len(value) > 40
    tags = {
        t["Key"]: t["Value"] for t in client.describe_secret(SecretId=api_key_secret_name(MODEL, tag))["Tags"]
    }
    assert tags == {"emd:model-id": MODEL, "emd:tag": tag, "emd:gitops": "P"}
    assert ensure_api_keys(client, [entry], "P") == []  # exists: untouched
    assert client.get_secret_value(SecretId=api_key_secret_name(MODEL, tag))["SecretString"] == value
    # pruned, then added back within the recovery window: the secret is restored with its key
    client.delete_secret(SecretId=api_key_secret_name(MODEL, tag), RecoveryWindowInDays=7)
    assert ensure_api_keys(client, [entry], "P") == []
    assert client.get_secret_value(SecretId=api_key_secret_name(MODEL, tag))["SecretString"] == value
    assert value not in capsys.readouterr().out


def test_build_runs_the_bootstrap_project_and_publishes_its_outputs(moto_env: str, tmp_path: Path):
    session = boto3.Session(region_name=REGION)
    run = uuid.uuid4().hex[:6]
    bucket, project = f"emd-artifacts-{run}", f"emd-build-{run}"
    session.client("s3").create_bucket(Bucket=bucket)
    session.client("codebuild").create_project(
        name=project,
        source={"type": "S3", "location": f"{bucket}/pipeline/source.zip"},
        artifacts={"type": "NO_ARTIFACTS"},
        environment={"type": "LINUX_CONTAINER", "image": "std:7.0", "computeType": "BUILD_GENERAL1_LARGE"},
        serviceRole=f"arn:aws:iam::{ACCOUNT}:role/build",
    )  # fmt: skip
    ssm = session.client("ssm")
    ssm.put_parameter(Name="/emd/bootstrap/artifact-bucket-name", Value=bucket, Type="String", Overwrite=True)
    ssm.put_parameter(
        Name="/emd/bootstrap/codebuild-project-name", Value=project, Type="String", Overwrite=True
    )
    s = spec(f"b-{run}")
    (tmp_path / "assembly").mkdir()
    (tmp_path / "assembly" / "model.template.json").write_text('{"Parameters": {"EngineImageUri": {}}}')
    entry = PlanEntry(
        route=f"{MODEL}/{s['model_tag']}", stack_name=s["stack_name"], model_type="llm",
        api_key_secret_name=None, deployment=s, template="model.template.json",
    )  # fmt: skip
    prefix = bundle_prefix("P", entry)
    outputs = {
        "Parameters": {"EngineImageUri": "r:vllm-abc", "ModelDataS3Uri": f"s3://{bucket}/models/m/sha/"}
    }
    # what the bootstrap buildspec's artifacts section writes (moto runs no build)
    session.client("s3").put_object(
        Bucket=bucket, Key=f"{prefix}output/parameters.json", Body=json.dumps(outputs)
    )
    src = Path(__file__).resolve().parents[2]

    build_entries(
        session, REGION, [entry], pipeline="P", assembly=tmp_path / "assembly", src=src, run_id="r1"
    )

    body = session.client("s3").get_object(Bucket=bucket, Key=f"{prefix}source.zip")["Body"].read()
    names = zipfile.ZipFile(io.BytesIO(body)).namelist()
    assert {
        "template.json",
        "deployment.json",
        "serving/build/prepare.py",
        "model_specs/catalogue.py",
    } <= set(names)
    assert json.loads(zipfile.ZipFile(io.BytesIO(body)).read("deployment.json")) == s
    published = {
        p["Name"]: p["Value"]
        for p in ssm.get_parameters(
            Names=[
                artifact_parameter_name(MODEL, s["model_tag"], n)
                for n in ("EngineImageUri", "ModelDataS3Uri")
            ]
        )["Parameters"]
    }
    assert sorted(published.values()) == sorted(outputs["Parameters"].values())
    assert Bootstrap(bucket, project)


# ---------------------------------------------------------------- smoke test through the real gateway


@pytest.fixture(scope="module")
def smoke_gateway(
    aws: dict[str, Any], adapter: str, sagemaker_runtime: str, gateway_factory: Callable[..., Gateway]
) -> Iterator[tuple[Gateway, str]]:
    tag = f"smoke-{uuid.uuid4().hex[:6]}"
    entry = RegistryEntry(
        model_id="SmolLM2-135M-Instruct", model_tag=tag, model_type="llm", service_type="ecs", backend="http",
        base_url=adapter + "/v1", api_key_secret_name=api_key_secret_name("SmolLM2-135M-Instruct", tag),
    )  # fmt: skip
    aws["ssm"].put_parameter(
        Name=registry_parameter_name(entry.model_id, tag), Value=entry.model_dump_json(), Type="String"
    )
    plan_entry = PlanEntry(
        route=entry.route, stack_name="EMD-Model-smoke", model_type="llm",
        api_key_secret_name=entry.api_key_secret_name, template="t.json",
        deployment={"model_id": entry.model_id, "model_tag": tag},
    )  # fmt: skip
    ensure_api_keys(aws["secrets"], [plan_entry], "P")  # the key the Build step would create
    yield gateway_factory(sagemaker_runtime, name="gitops-smoke"), entry.route


@pytest.mark.slow
def test_smoke_check_through_the_gateway(aws: dict[str, Any], smoke_gateway: tuple[Gateway, str], capsys):  # type: ignore[no-untyped-def]
    gateway, route = smoke_gateway
    secret = api_key_secret_name(*route.split("/"))

    def read_key(name: str) -> str:
        return str(aws["secrets"].get_secret_value(SecretId=name)["SecretString"])

    results = check_routes([Route(route, "llm", secret)], gateway.url, read_key, deadline_seconds=60)
    assert results[0].startswith(f"{route}: listed, 200 in ")
    out = capsys.readouterr().out
    assert f"[emd-smoke] {route}: listed, 200" in out and read_key(secret) not in out

    missing = Route(route.replace("smoke-", "absent-"), "llm", secret)
    with pytest.raises(SmokeFailure) as info:
        check_routes([missing], gateway.url, read_key, deadline_seconds=0.5, sleep=lambda _s: None)
    assert f"{missing.route}: not in /v1/models after" in str(info.value)
    assert read_key(secret) not in str(info.value) + capsys.readouterr().out
    assert read_key(secret) not in "\n".join(gateway.log_lines())


# ---------------------------------------------------------------- emd gitops init


@pytest.fixture(scope="module")
def double(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AwsDouble]:
    """moto server with CloudFormation models of CodeBuild projects and CodePipeline pipelines, which plain
    moto skips (a GetAtt on one fails): EMD-GitOps can be created to the end."""
    server = AwsDouble(tmp_path_factory.mktemp("gitops-double")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.slow
def test_init_deploys_the_pipeline_then_plan_compares_with_it(
    double: AwsDouble, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    for key, value in double.env().items():
        monkeypatch.setenv(key, value)
    region = "us-west-2"  # the region's CDK bootstrap and stacks are this test's
    models = tmp_path / "models.yaml"
    not_bootstrapped = CliRunner().invoke(
        cli, ["gitops", "init", "--region", region, "--models", str(models)]
    )
    assert not_bootstrapped.exit_code == 2, not_bootstrapped.output
    assert f"not CDK-bootstrapped in {region}" in not_bootstrapped.output
    assert f"npx cdk bootstrap aws://{ACCOUNT}/{region}" in not_bootstrapped.output
    double.client("ssm", region).put_parameter(
        Name="/cdk-bootstrap/hnb659fds/version", Value="30", Type="String"
    )
    staging = f"cdk-hnb659fds-assets-{ACCOUNT}-{region}"
    double.client("s3", region).create_bucket(
        Bucket=staging, CreateBucketConfiguration={"LocationConstraint": region}
    )

    result = CliRunner().invoke(cli, ["gitops", "init", "--region", region, "--models", str(models)])

    assert result.exit_code == 0, result.output
    assert f"kept {models}" in result.output  # the first, refused run wrote the starter
    cfn = double.client("cloudformation", region)
    stack = cfn.describe_stacks(StackName="EMD-GitOps")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert {t["Key"]: t["Value"] for t in stack["Tags"]}["emd:component"] == "gitops"
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    pipeline = double.client("codepipeline", region).get_pipeline(name=outputs["PipelineName"])["pipeline"]
    stages = [s["name"] for s in pipeline["stages"]]
    assert stages[:3] == ["Source", "Build", "UpdatePipeline"] and stages[-1] == "Prune"
    projects = double.client("codebuild", region).list_projects()["projects"]
    assert len(projects) >= 4  # synth, self-mutation, the wave's build and smoke steps, prune
    assert f"aws s3 cp source.zip s3://{outputs['SourceBucketName']}/source.zip" in result.output
    keys = [o["Key"] for o in double.client("s3", region).list_objects_v2(Bucket=staging)["Contents"]]
    assert any(k.startswith("emd-gitops/") and k.endswith(".whl") for k in keys)

    plan = CliRunner().invoke(cli, ["gitops", "plan", str(models), "--region", region, "--json"])
    assert plan.exit_code == 0, plan.output
    items = json.loads(plan.output)["items"]
    assert [(i["kind"], i["route"]) for i in items] == [("add", "Qwen2.5-0.5B-Instruct/dev")]

    again = CliRunner().invoke(cli, ["gitops", "init", "--region", region, "--models", str(models)])
    assert again.exit_code == 0, again.output
    assert "EMD-GitOps is up to date" in again.output
