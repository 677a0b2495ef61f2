"""`npx cdk deploy -c model_id=…` on its own: the model stack's build custom resource (emd_constructs/
model_build.py: what it runs, with which permissions, within which timeouts, and when it runs again), its API
key secret (emd_constructs/api_key_secret.py) or an existing one named by context, and the handler's parts
that need no AWS (tests/integration/test_direct_build.py runs it against the AWS double)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from emd_constructs.model_build import TOTAL_TIMEOUT, WAIT_SECONDS, waiter_name
from emd_stacks.model_context import model_context
from model_specs.errors import EmdUserError
from serving.build_resource import handler
from tests.cdk_checks import templates_of
from tests.unit.model_stack_helpers import Variant, render
from tests.unit.stack_fixtures import as_list, make_app, resources_of

Q7 = "Qwen2.5-7B-Instruct"
SMOL = "SmolLM2-135M-Instruct-GGUF"
DIRECT = {"own_api_key": True}
VARIANTS = {
    "rt": Variant(Q7, "g5.2xlarge", "vllm", "sagemaker_realtime", stack_kwargs=DIRECT),
    # the same deployment with another scaling: no build input changed
    "rt_scaled": Variant(
        Q7, "g5.2xlarge", "vllm", "sagemaker_realtime",
        extra_params={"service_params": {"max_capacity": 3}}, stack_kwargs=DIRECT,
    ),
    "cn_ecs": Variant(SMOL, "g4dn.xlarge", "llama.cpp", "ecs", region="cn-north-1", stack_kwargs=DIRECT),
    "existing_key": Variant(
        Q7, "g5.2xlarge", "vllm", "ecs", model_tag="shared",
        stack_kwargs={**DIRECT, "api_key_secret_name": "emd/team/api-key"},
    ),
    "public": Variant(
        SMOL, "m7i.xlarge", "llama.cpp", "ec2", model_tag="pub",
        extra_params={"service_params": {"public": True}}, stack_kwargs=DIRECT,
    ),
}  # fmt: skip

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def templates(tmp_path_factory) -> dict[str, dict[str, Any]]:
    from emd_stacks.model import ModelStack

    found = {}
    for group in ([k for k in VARIANTS if k != "rt_scaled"], ["rt_scaled"]):  # rt_scaled: rt's stack name
        outdir = tmp_path_factory.mktemp("direct")
        app = make_app(outdir)
        stacks = {
            key: ModelStack(app, VARIANTS[key].deployment(), **VARIANTS[key].stack_kwargs) for key in group
        }
        app.synth()
        by_name = templates_of(outdir)
        found.update({key: by_name[stack.stack_name] for key, stack in stacks.items()})
    return found


def _build(template: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    ((logical_id, build),) = resources_of(template, "Custom::EmdModelBuild").items()
    return logical_id, build


def _ssm(template: dict[str, Any], name: str) -> dict[str, str]:
    (logical_id,) = [k for k, p in template["Parameters"].items() if p.get("Default") == name]
    return {"Ref": logical_id}


def _statements_of(template: dict[str, Any], role_prefix: str) -> list[dict[str, Any]]:
    return [
        s
        for p in resources_of(template, "AWS::IAM::Policy").values()
        if any(r["Ref"].startswith(role_prefix) for r in p["Properties"]["Roles"])
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]


def test_the_custom_resource_runs_the_bootstraps_project_on_the_asset(templates):
    t = templates["rt"]
    d = VARIANTS["rt"].deployment()
    logical_id, build = _build(t)
    props = build["Properties"]
    assert props["ProjectName"] == _ssm(t, "/emd/bootstrap/codebuild-project-name")
    assert props["SourceBucket"] == {"Fn::Sub": "cdk-hnb659fds-assets-${AWS::AccountId}-us-east-1"}
    assert props["SourceKey"].endswith(".zip")
    assert props["Environment"] == {
        "EMD_DEPLOYMENT_ID": "cdk-deploy",
        "EMD_MODEL_ID": d.model_id,
        "EMD_MODEL_TAG": d.model_tag,
        "EMD_STACK_NAME": d.stack_name,
    }
    assert build["DeletionPolicy"] == "Delete"
    # the model resources take the build's outputs
    container = next(iter(resources_of(t, "AWS::SageMaker::Model").values()))["Properties"][
        "PrimaryContainer"
    ]
    assert container["Image"] == {"Fn::GetAtt": [logical_id, "ImageUri"]}
    assert container["ModelDataSource"]["S3DataSource"]["S3Uri"] == {
        "Fn::GetAtt": [logical_id, "ModelDataS3Uri"]
    }
    assert t["Outputs"]["BuildId"]["Value"] == {"Fn::GetAtt": [logical_id, "BuildId"]}


def test_an_unchanged_build_input_means_no_new_build(templates):
    """CloudFormation calls the provider only when a property changes: another scaling leaves the build
    inputs (what the build reads of the deployment) and so every property as it was."""
    assert _build(templates["rt"])[1]["Properties"] == _build(templates["rt_scaled"])[1]["Properties"]
    assert _build(templates["rt"])[1]["Properties"] != _build(templates["cn_ecs"])[1]["Properties"]


def test_provider_timeouts_stay_within_cloudformations_limits(templates):
    t = templates["rt"]
    (machine,) = resources_of(t, "AWS::StepFunctions::StateMachine").values()
    definition = render(machine["Properties"]["DefinitionString"])
    retry = {
        k: float(v)
        for k, v in re.findall(r'"(IntervalSeconds|MaxAttempts|BackoffRate)":([\d.]+)', definition)
    }
    assert retry["IntervalSeconds"] * retry["MaxAttempts"] == TOTAL_TIMEOUT.to_seconds() == 3600
    assert retry["IntervalSeconds"] == 30 and retry["BackoffRate"] == 1
    assert machine["Properties"]["StateMachineName"] == waiter_name(VARIANTS["rt"].deployment().stack_name)
    functions = resources_of(t, "AWS::Lambda::Function")
    handlers = {f["Properties"]["Handler"]: f["Properties"] for f in functions.values()}
    for entry in ("handler.on_event", "handler.is_complete"):
        assert handlers[entry]["Runtime"] == "python3.12" and handlers[entry]["Timeout"] == 60
        assert handlers[entry]["Environment"]["Variables"] == {"EMD_WAIT_SECONDS": str(int(WAIT_SECONDS))}
    assert TOTAL_TIMEOUT.to_seconds() - WAIT_SECONDS > 2 * 30  # the handler's message comes first
    # every function logs to the stack's own log group, kept 30 days
    groups = resources_of(t, "AWS::Logs::LogGroup")
    for function in functions.values():
        group = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        assert groups[group]["Properties"]["RetentionInDays"] == 30


def test_the_handler_may_only_run_this_project_and_read_its_log(templates):
    t = templates["rt"]
    statements = _statements_of(t, "ArtifactsBuildHandlerRole")
    actions = {a for s in statements for a in as_list(s["Action"])}
    assert actions == {
        "codebuild:StartBuild",
        "codebuild:BatchGetBuilds",
        "codebuild:ListBuildsForProject",
        "logs:GetLogEvents",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    }
    project = _ssm(t, "/emd/bootstrap/codebuild-project-name")["Ref"]
    build_logs = _ssm(t, "/emd/bootstrap/codebuild-log-group-name")["Ref"]
    for s in statements:
        resource = render(s["Resource"])
        if any(a.startswith("codebuild:") for a in as_list(s["Action"])):
            assert resource == f"arn:aws:codebuild:us-east-1:<Ref:AWS::AccountId>:project/<Ref:{project}>"
        elif s["Action"] == "logs:GetLogEvents":
            assert resource.endswith(f":log-group:<Ref:{build_logs}>:log-stream:*")
        else:  # its own log group
            assert resource.startswith("<GetAtt:ArtifactsBuildLogs")
    # no role of the stack reads any secret: the gateway reads the key, nothing in the model stack does
    every = [
        s
        for p in resources_of(t, "AWS::IAM::Policy").values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    assert not [a for s in every for a in as_list(s["Action"]) if a.startswith(("secretsmanager:", "s3:Put"))]


def test_china_template_names_no_global_partition(templates):
    from emd_stacks.template_checks import china_partition_literals

    t = templates["cn_ecs"]
    assert china_partition_literals(t) == []
    assert "arn:aws-cn:codebuild:cn-north-1:" in json.dumps(t)


def test_the_stack_creates_its_key_secret_with_a_generated_value(templates):
    t = templates["rt"]
    d = VARIANTS["rt"].deployment()
    ((logical_id, secret),) = resources_of(t, "AWS::SecretsManager::Secret").items()
    props = secret["Properties"]
    assert props["Name"] == d.api_key_secret_name == f"emd/{Q7}/dev/api-key"
    # the generator's settings are constants: a later deploy changes nothing, so a rotated value stays
    assert props["GenerateSecretString"] == {
        "ExcludePunctuation": True,
        "IncludeSpace": False,
        "PasswordLength": 48,
    }
    assert "SecretString" not in props and '"SecretString"' not in json.dumps(t)
    assert secret["DeletionPolicy"] == "Delete"
    assert {x["Key"]: x["Value"] for x in props["Tags"]} == {"emd:model-id": Q7, "emd:tag": "dev"}
    assert (
        props == resources_of(templates["rt_scaled"], "AWS::SecretsManager::Secret")[logical_id]["Properties"]
    )
    # its name, never its value, in the outputs; the registry entry waits for it
    assert t["Outputs"]["ApiKeySecretName"]["Value"] == d.api_key_secret_name
    assert logical_id not in json.dumps(t["Outputs"])
    (registry,) = [
        k for k, r in resources_of(t, "AWS::SSM::Parameter").items() if "/emd/models/" in json.dumps(r)
    ]
    assert logical_id in t["Resources"][registry]["DependsOn"]


def test_an_existing_secret_is_used_by_name_and_a_public_model_has_none(templates):
    t = templates["existing_key"]
    assert not resources_of(t, "AWS::SecretsManager::Secret")
    assert t["Outputs"]["ApiKeySecretName"]["Value"] == "emd/team/api-key"
    assert '\\"api_key_secret_name\\":\\"emd/team/api-key\\"' in json.dumps(t)
    public = templates["public"]
    assert (
        not resources_of(public, "AWS::SecretsManager::Secret")
        and "ApiKeySecretName" not in public["Outputs"]
    )


BASE = {"model_id": Q7, "instance_type": "g5.2xlarge", "engine_type": "vllm", "service_type": "ecs"}


@pytest.mark.parametrize(
    "change, message",
    [
        ({"api_key_secret_name": "team/key"}, r"is not a name the gateway may read: use emd/<name>/api-key"),
        ({"api_key_secret_name": "emd/hf-token"}, "e.g. emd/Qwen2.5-7B-Instruct/dev/api-key"),
        (
            {"api_key_secret_name": "emd/a/api-key", "extra_params": '{"service_params": {"public": true}}'},
            "public deployment has no API key",
        ),
        (
            {"extra_params": '{"service_params": {"api_key": "sk-123"}}'},
            "cdk deploy does not take a key value",
        ),
    ],
)
def test_bad_key_context_is_refused_in_one_line(change, message):
    with pytest.raises(EmdUserError, match=message) as refused:
        model_context({**BASE, **change}.get, region="us-east-1")
    assert "sk-123" not in str(refused.value)


def test_an_existing_secret_name_is_accepted():
    got = model_context({**BASE, "api_key_secret_name": "emd/team/api-key"}.get, region="us-east-1")
    assert got is not None and got.api_key_secret_name == "emd/team/api-key"


def test_waiter_names_keep_the_prefix_and_fit():
    long = "EMD-Model-" + "x" * 60 + "-production-0123abcd"
    name = waiter_name(long)
    assert len(name) == 80 and name.startswith("EMD-Model-") and name.endswith("-0123abcd-BuildWaiter")
    assert waiter_name("EMD-Model-a-dev-0123abcd") == "EMD-Model-a-dev-0123abcd-BuildWaiter"


# ---------------------------------------------------------------- the handler's parts without AWS


def test_a_build_without_its_exported_outputs_names_the_cause():
    build = {"id": "p:1", "exportedEnvironmentVariables": [{"name": "EMD_ENGINE_IMAGE_URI", "value": "r:t"}]}
    with pytest.raises(handler.BuildFailed, match="update the shared stacks"):
        handler.outputs(build)
    build["exportedEnvironmentVariables"].append(
        {"name": "EMD_MODEL_DATA_S3_URI", "value": "s3://b/models/m/c/"}
    )
    uri = "s3://b/models/m/c/"
    assert handler.outputs(build) == {
        "BuildId": "p:1", "ImageUri": "r:t", "ModelDataS3Uri": uri, "WeightsPrefix": "models/m/c/"
    }  # fmt: skip


def test_a_failure_without_a_log_gives_codebuilds_reason():
    build = {
        "id": "p:2",
        "buildStatus": "TIMED_OUT",
        "phases": [
            {"phaseType": "PRE_BUILD", "phaseStatus": "SUCCEEDED"},
            {"phaseType": "BUILD", "phaseStatus": "TIMED_OUT", "contexts": [{"message": "Build timed out"}]},
        ],
    }
    assert handler.failure_reason(build) == "build p:2 timed out in phase BUILD: Build timed out"


def test_the_reason_is_the_failed_steps_own_error_line(monkeypatch):
    """A failed image step is followed by post_build's parameters step, which only says an earlier phase
    failed: the reason is the first error line of the log tail."""
    lines = [
        "[emd-build] image: building r:llama.cpp-1",
        "[emd-build] error: docker build failed: base image not found",
        "[Container] Entering phase POST_BUILD",
        "[emd-build] error: an earlier build phase failed; not writing parameters.json",
    ]

    class Logs:
        def get_log_events(self, **kwargs: Any) -> dict[str, Any]:
            assert kwargs["logGroupName"] == "g" and kwargs["startFromHead"] is False
            return {"events": [{"message": m} for m in lines]}

    monkeypatch.setattr(handler.boto3, "client", lambda service: Logs())
    build = {
        "id": "p:3",
        "buildStatus": "FAILED",
        "phases": [
            {"phaseType": "BUILD", "phaseStatus": "FAILED", "contexts": [{"message": "exit status 1"}]}
        ],
        "logs": {"groupName": "g", "streamName": "s"},
    }
    assert handler.failure_reason(build) == (
        "build p:3 failed in phase BUILD: docker build failed: base image not found (log: g s)"
    )
