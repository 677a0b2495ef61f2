"""EMD-GitOps synthesized through `emd gitops synth` (which runs cdk-nag and cfn-lint itself and fails on
any finding): the pipeline's stages and steps, waves with a smoke test after each, the prune step, the model
stacks fed from SSM and tagged, the target stack; China (cn-north-1) with no aws-only literal; 20 entries
across 2 environments in one App."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template
from click.testing import CliRunner

from emd_cli.main import cli
from emd_stacks.template_checks import templates_of
from model_specs.gitops import GitOpsPlan
from tests.unit.stack_fixtures import unbounded_logs

pytestmark = pytest.mark.slow

ACCOUNT = "111111111111"
CONNECTION = f"arn:aws:codeconnections:us-east-1:{ACCOUNT}:connection/0a1b2c3d"
MODELS = """\
environments:
  staging:
    waves:
      - deployments:
          - {model_id: Qwen2.5-0.5B-Instruct, tag: stg, instance: g4dn.xlarge, service: sagemaker_realtime}
  prod:
    account: "222222222222"
    region: us-west-2
    waves:
      - name: canary
        deployments:
          - {model_id: Qwen2.5-0.5B-Instruct, tag: prod, instance: g4dn.xlarge, service: ecs}
      - deployments:
          - {model_id: bge-m3, tag: prod, instance: g4dn.xlarge, service: ec2}
          - {model_id: bge-reranker-v2-m3, tag: prod, instance: g4dn.xlarge, service: sagemaker_async}
"""
CHINA_MODELS = """\
prune: false
deployments:
  - {model_id: Qwen2.5-0.5B-Instruct, tag: cn, instance: g4dn.xlarge, service: sagemaker_realtime}
  - {model_id: Qwen2.5-0.5B-Instruct, tag: cnw, instance: g4dn.xlarge, service: ecs, region: cn-northwest-1}
"""


def synth(tmp: Path, models: str, *args: str) -> Path:
    (tmp / "models.yaml").write_text(models)
    out = tmp / "cdk.out"
    result = CliRunner().invoke(
        cli, ["gitops", "synth", str(tmp / "models.yaml"), "--outdir", str(out), "--account", ACCOUNT, *args]
    )
    assert result.exit_code == 0, result.output
    assert "cdk-nag and cfn-lint clean" in result.output
    return out


@pytest.fixture(scope="module")
def assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = ["--source", "github:my-org/models", "--connection-arn", CONNECTION, "--region", "us-east-1"]
    return synth(tmp_path_factory.mktemp("gitops"), MODELS, *source)


@pytest.fixture(scope="module")
def templates(assembly: Path) -> dict[str, dict[str, Any]]:
    return templates_of(assembly)


@pytest.fixture(scope="module")
def pipeline(templates: dict[str, dict[str, Any]]) -> dict[str, Any]:
    (resource,) = [
        r for r in templates["EMD-GitOps"]["Resources"].values() if r["Type"] == "AWS::CodePipeline::Pipeline"
    ]
    return resource["Properties"]


def actions(pipeline: dict[str, Any], stage: str) -> list[tuple[str, str, int]]:
    (found,) = [s for s in pipeline["Stages"] if s["Name"] == stage]
    return [(a["Name"], a["ActionTypeId"]["Provider"], a["RunOrder"]) for a in found["Actions"]]


def project_commands(template: dict[str, Any], step_command: str) -> dict[str, Any]:
    """The CodeBuild project whose buildspec runs `step_command`."""
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::CodeBuild::Project":
            spec = resource["Properties"]["Source"].get("BuildSpec", "")
            if step_command in json.dumps(spec):
                return resource["Properties"]
    raise AssertionError(f"no project runs {step_command}")


def test_stages_in_order_one_per_wave_then_prune(pipeline: dict[str, Any]):
    names = [s["Name"] for s in pipeline["Stages"]]
    waves = ["staging-wave1", "prod-canary", "prod-wave2"]
    assert names == ["Source", "Build", "UpdatePipeline", "Targets", *waves, "Prune"]
    assert pipeline["PipelineType"] == "V2"


def test_each_wave_builds_first_deploys_its_stacks_then_smoke_tests(pipeline: dict[str, Any]):
    wave = actions(pipeline, "prod-wave2")
    assert wave[0] == ("Build", "CodeBuild", 1)
    assert wave[-1] == ("SmokeTest", "CodeBuild", 4)
    deploys = {name.split(".")[0] for name, provider, _ in wave if provider == "CloudFormation"}
    assert len(deploys) == 2 and all(d.startswith("EMD-Model-") for d in deploys)
    assert all(order in (2, 3) for name, provider, order in wave if provider == "CloudFormation")
    canary = actions(pipeline, "prod-canary")
    assert [a[0] for a in canary][0::3] == ["Build", "SmokeTest"]


def test_targets_get_their_stack_before_any_wave(pipeline: dict[str, Any]):
    targets = actions(pipeline, "Targets")
    assert {name.split(".")[0] for name, _, _ in targets} == {
        "Target-us-east-1-111111111111",
        "Target-us-west-2-222222222222",
    }


def test_github_source_through_the_connection(pipeline: dict[str, Any]):
    (source,) = pipeline["Stages"][0]["Actions"]
    assert source["ActionTypeId"]["Provider"] == "CodeStarSourceConnection"
    assert source["Configuration"]["ConnectionArn"] == CONNECTION
    assert source["Configuration"]["FullRepositoryId"] == "my-org/models"
    assert source["Configuration"]["BranchName"] == "main"


def test_synth_step_runs_emd_gitops_synth_with_the_settings(templates: dict[str, dict[str, Any]]):
    template = templates["EMD-GitOps"]
    project = project_commands(template, "emd_cli gitops synth models.yaml --outdir cdk.out")
    env = {v["Name"]: v["Value"] for v in project["Environment"]["EnvironmentVariables"]}
    settings = json.loads(env["EMD_GITOPS_SETTINGS"])
    assert settings["source"] == "github:my-org/models" and settings["account"] == ACCOUNT
    assert settings["emd_install"] == "emd" and "api_key" not in json.dumps(template)


def test_steps_assume_only_the_target_roles(templates: dict[str, dict[str, Any]]):
    template = Template.from_json(templates["EMD-GitOps"])
    template.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Action": "sts:AssumeRole",
                                # partition literal: the pipeline's region is known (aws-cn in China)
                                "Resource": "arn:aws:iam::222222222222:role/EMD-GitOps-target-us-west-2",
                            }
                        )
                    ]
                )
            }
        },
    )  # fmt: skip
    build = project_commands(templates["EMD-GitOps"], "python3 -m serving.gitops build --stage prod-wave2")
    assert build["TimeoutInMinutes"] == 480


def test_prune_step_reaches_every_target_role_and_its_record(templates: dict[str, dict[str, Any]]):
    text = json.dumps(templates["EMD-GitOps"])
    project_commands(
        templates["EMD-GitOps"], "python3 -m serving.gitops prune --plan ../../emd-gitops/plan.json"
    )
    assert ":iam::*:role/EMD-GitOps-target-*" in text
    assert "parameter/emd/gitops/pipelines/EMD-GitOps/targets" in text


def test_cross_account_pipeline_encrypts_artifacts_with_a_rotated_key(templates: dict[str, dict[str, Any]]):
    Template.from_json(templates["EMD-GitOps"]).has_resource_properties(
        "AWS::KMS::Key", {"EnableKeyRotation": True}
    )


def model_stack(templates: dict[str, dict[str, Any]], stage: str) -> tuple[str, dict[str, Any]]:
    ((path, template),) = [
        (p, t) for p, t in templates.items() if p.startswith(f"assembly-{stage}/EMD-Model-")
    ]
    return path, template


def test_model_stacks_read_the_build_outputs_from_ssm(templates: dict[str, dict[str, Any]]):
    _, template = model_stack(templates, "prod-canary")
    params = template["Parameters"]
    assert params["EngineImageUri"]["Type"] == "AWS::SSM::Parameter::Value<String>"
    assert (
        params["EngineImageUri"]["Default"]
        == "/emd/gitops/artifacts/Qwen2.5-0.5B-Instruct/prod/EngineImageUri"
    )
    assert (
        params["ModelDataS3Uri"]["Default"]
        == "/emd/gitops/artifacts/Qwen2.5-0.5B-Instruct/prod/ModelDataS3Uri"
    )
    spec = template["Metadata"]["EMD::Deployment"]
    assert (spec["service_type"], spec["region"], spec["model_tag"]) == ("ecs", "us-west-2", "prod")


def test_model_stacks_carry_the_pipeline_tag(assembly: Path, templates: dict[str, dict[str, Any]]):
    path, _ = model_stack(templates, "staging-wave1")
    configs = list((assembly / path.split("/")[0]).glob("*.config.json"))
    tags = json.loads(configs[0].read_text())["Tags"]
    assert tags == {"emd:gitops": "EMD-GitOps", "emd:model-id": "Qwen2.5-0.5B-Instruct", "emd:tag": "stg"}


def test_every_log_is_kept_30_days(templates: dict[str, dict[str, Any]]):
    gitops = templates["EMD-GitOps"]
    projects = [r for r in gitops["Resources"].values() if r["Type"] == "AWS::CodeBuild::Project"]
    assert len(projects) >= 5  # synth, self-mutation, build, smoke test, prune
    for path, template in templates.items():
        assert unbounded_logs(template) == [], path


def test_target_stack_role_and_smoke_project(templates: dict[str, dict[str, Any]]):
    template = Template.from_json(templates["assembly-Target-us-west-2-222222222222/EMD-GitOps-Target"])
    template.has_resource_properties(
        "AWS::IAM::Role",
        {
            "RoleName": "EMD-GitOps-target-us-west-2",
            "AssumeRolePolicyDocument": {
                "Statement": [Match.object_like({"Principal": {"AWS": Match.string_like_regexp(ACCOUNT)}})]
            },
        },
    )
    template.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Action": "cloudformation:DeleteStack",
                                "Condition": {"StringEquals": {"aws:ResourceTag/emd:gitops": "EMD-GitOps"}},
                            }
                        )
                    ]
                )
            }
        },
    )
    template.has_resource_properties(
        "AWS::CodeBuild::Project",
        {"Name": "EMD-GitOps-smoke", "VpcConfig": Match.object_like({"VpcId": Match.any_value()})},
    )


def test_plan_json_and_step_sources(assembly: Path):
    plan = GitOpsPlan.model_validate_json((assembly / "emd-gitops/plan.json").read_text())
    assert [s.name for s in plan.stages] == ["staging-wave1", "prod-canary", "prod-wave2"]
    wave2 = plan.stage("prod-wave2")
    assert wave2.target.account == "222222222222" and wave2.target.role_name == "EMD-GitOps-target-us-west-2"
    assert [e.model_type for e in wave2.entries] == ["embedding", "rerank"]
    assert all((assembly / e.template).is_file() for s in plan.stages for e in s.entries)
    assert (assembly / "emd-gitops/src/serving/gitops/__main__.py").is_file()
    assert (assembly / "emd-gitops/src/model_specs/data").is_dir()


def test_china_without_prune(tmp_path: Path):
    out = synth(tmp_path, CHINA_MODELS, "--region", "cn-north-1", "--source", "s3")
    templates = templates_of(out)
    for path, template in templates.items():
        assert "arn:aws:" not in json.dumps(template), path
    pipeline = next(
        r for r in templates["EMD-GitOps"]["Resources"].values() if r["Type"] == "AWS::CodePipeline::Pipeline"
    )
    assert [s["Name"] for s in pipeline["Properties"]["Stages"]] == [
        "Source", "Build", "UpdatePipeline", "Targets", "cn-north-1-wave1", "cn-northwest-1-wave1"
    ]  # fmt: skip
    gitops = Template.from_json(templates["EMD-GitOps"])
    gitops.has_resource_properties(
        "AWS::Events::Rule", {"EventPattern": Match.object_like({"source": ["aws.s3"]})}
    )
    gitops.has_output("SourceBucketName", {})
    synth_env = json.dumps(project_commands(templates["EMD-GitOps"], "emd_cli gitops synth")["Environment"])
    assert "PIP_INDEX_URL" in synth_env
    # CDK Pipelines' projects and the source bucket's notifications handler log to groups with retention
    for path, template in templates.items():
        assert unbounded_logs(template) == [], path


def test_twenty_entries_across_two_environments_in_one_app(tmp_path: Path):
    entries = {
        env: "\n".join(
            f"          - {{model_id: Qwen2.5-0.5B-Instruct, tag: {env}{i}, instance: g4dn.xlarge, service: "
            f"{('sagemaker_realtime', 'sagemaker_async', 'ecs', 'ec2')[i % 4]}}}"
            for i in range(10)
        )
        for env in ("stg", "prod")
    }
    models = "environments:\n" + "".join(
        f"  {env}:\n    region: {region}\n    waves:\n      - deployments:\n{entries[env]}\n"
        for env, region in (("stg", "us-east-1"), ("prod", "us-west-2"))
    )
    (tmp_path / "models.yaml").write_text(models)
    out = tmp_path / "cdk.out"
    result = CliRunner().invoke(
        cli, ["gitops", "synth", str(tmp_path / "models.yaml"), "--outdir", str(out), "--no-checks"]
    )
    assert result.exit_code == 2 and "the pipeline's own account must be known" in result.output
    result = CliRunner().invoke(
        cli,
        [
            "gitops",
            "synth",
            str(tmp_path / "models.yaml"),
            "--outdir",
            str(out),
            "--no-checks",
            "--account",
            ACCOUNT,
        ],
    )
    assert result.exit_code == 0, result.output
    templates = templates_of(out)
    assert sum(1 for p in templates if "/EMD-Model-" in p) == 20
    plan = GitOpsPlan.model_validate_json((out / "emd-gitops/plan.json").read_text())
    assert [(s.name, len(s.entries)) for s in plan.stages] == [("stg-wave1", 10), ("prod-wave1", 10)]
