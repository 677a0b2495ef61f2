"""The shared stacks as `emd bootstrap` synthesizes them: plain CloudFormation that needs no `cdk bootstrap`
(no BootstrapVersion parameter or rule, no file or Docker asset, no Lambda), the gateway image taken from the
bootstrap's ECR repository by tag, cdk-nag and cfn-lint clean, partition-clean in China. The model template
the pipeline deploys has no BootstrapVersion either."""

from __future__ import annotations

import json
from pathlib import Path

import aws_cdk as cdk
import pytest

from emd_stacks.context import AppConfig
from emd_stacks.shared_synth import AssetsFound, refuse_assets, shared_app, synth_shared_stacks
from tests.cdk_checks import cfn_lint_findings, nag_violations, templates_of
from tests.unit.stack_fixtures import china_partition_literals, resources_of

TAG = "gateway-0123456789abcdef0123"
INLINE_LIMIT = 51_200  # CloudFormation's TemplateBody limit; emd bootstrap sends EMD-Bootstrap inline


def _synth(tmp_path_factory: pytest.TempPathFactory, region: str, **config: object) -> tuple[dict, list[str]]:
    outdir = tmp_path_factory.mktemp(f"shared-{region}")
    app = shared_app(AppConfig(region=region, **config), outdir, gateway_image_tag=TAG)  # type: ignore[arg-type]
    findings = nag_violations(app)
    refuse_assets(outdir)
    return templates_of(outdir), findings


@pytest.fixture(scope="module")
def us_east(tmp_path_factory):
    return _synth(tmp_path_factory, "us-east-1")


@pytest.fixture(scope="module")
def china(tmp_path_factory):
    return _synth(tmp_path_factory, "cn-north-1")


def test_no_bootstrap_version_no_lambda_no_custom_resource(us_east):
    templates, _ = us_east
    assert set(templates) == {"EMD-Bootstrap", "EMD-Gateway"}
    for name, template in templates.items():
        assert "BootstrapVersion" not in template.get("Parameters", {}), name
        assert "CheckBootstrapVersion" not in template.get("Rules", {}), name
        types = {r["Type"] for r in template["Resources"].values()}
        assert not {t for t in types if t.startswith("Custom::") or t == "AWS::Lambda::Function"}, name
        assert "cdk-hnb659fds" not in json.dumps(template), name


def test_gateway_image_comes_from_the_bootstrap_repository_by_tag(us_east):
    gateway = us_east[0]["EMD-Gateway"]
    (task,) = resources_of(gateway, "AWS::ECS::TaskDefinition").values()
    image = json.dumps(task["Properties"]["ContainerDefinitions"][0]["Image"])
    assert TAG in image
    params = gateway["Parameters"]
    assert any(p.get("Default") == "/emd/bootstrap/ecr-repository-name" for p in params.values())
    # built by the bootstrap's (x86_64) CodeBuild project
    assert task["Properties"]["RuntimePlatform"]["CpuArchitecture"] == "X86_64"


def test_buckets_are_emptied_by_emd_uninstall_not_by_a_lambda(us_east):
    bootstrap = us_east[0]["EMD-Bootstrap"]
    buckets = resources_of(bootstrap, "AWS::S3::Bucket")
    assert len(buckets) == 2
    assert all(b.get("DeletionPolicy") == "Delete" for b in buckets.values())
    (repo,) = resources_of(bootstrap, "AWS::ECR::Repository").values()
    assert repo["Properties"]["EmptyOnDelete"] is True  # a native property, no custom resource


def test_inline_size_and_nag_and_lint_clean(us_east):
    templates, findings = us_east
    assert findings == []
    for name, template in templates.items():
        assert len(json.dumps(template, separators=(",", ":"))) < INLINE_LIMIT, name
        assert cfn_lint_findings(template, ["us-east-1"]) == [], name


def test_china_partition_clean(china):
    templates, findings = china
    assert findings == []
    for name, template in templates.items():
        assert china_partition_literals(template) == [], name
        assert cfn_lint_findings(template, ["cn-north-1"]) == [], name


def test_an_asset_is_refused(tmp_path):
    app = cdk.App(outdir=str(tmp_path))
    stack = cdk.Stack(app, "WithAsset")
    source = tmp_path / "src"
    source.mkdir()
    (source / "f.txt").write_text("x")
    cdk.aws_s3_assets.Asset(stack, "File", path=str(source))
    app.synth()
    with pytest.raises(AssetsFound, match="WithAsset"):
        refuse_assets(tmp_path)


def test_no_gateway_means_one_stack(tmp_path):
    templates = synth_shared_stacks(
        AppConfig(region="us-west-2", gateway=False), tmp_path, gateway_image_tag=None
    )
    assert templates.gateway is None
    assert "AWS::CodePipeline::Pipeline" in {r["Type"] for r in templates.bootstrap["Resources"].values()}


def test_model_template_for_the_pipeline_needs_no_cdk_bootstrap(tmp_path):
    from emd_stacks.synth import synth_model_stack
    from model_specs.deployment import resolve_deployment

    dep = resolve_deployment(
        model_id="SmolLM2-135M-Instruct-GGUF",
        instance_type="g4dn.xlarge",
        service_type="sagemaker_realtime",
        region="us-east-1",
    )
    template = json.loads(Path(synth_model_stack(dep, tmp_path)).read_text())
    assert "BootstrapVersion" not in template.get("Parameters", {})
    assert "Rules" not in template
    assert {"EngineImageUri", "ModelDataS3Uri"} <= set(template["Parameters"])
    outputs = template["Outputs"]
    assert json.loads(outputs["Deployment"]["Value"]) == {
        "engine_type": "llama.cpp",
        "instance_type": "g4dn.xlarge",
        "service_type": "sagemaker_realtime",
        "model_type": "llm",
        "public": False,
    }
