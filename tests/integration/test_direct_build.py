"""A directly deployed model stack's build custom resource (serving/build_resource/handler.py) against the AWS
double after `emd bootstrap`: the handler starts the bootstrap's CodeBuild project on the stack's build inputs
(the asset emd_constructs/model_build.py uploads), polls it while it runs, returns the image and weights the
build exported, attaches to a build already running on the same inputs, fails with the build's own reason,
and gives up with what to do before CloudFormation's hour is over. And the stack's API key secret: created by
CloudFormation with a generated value, rotated by `emd keys rotate`, deleted with the stack."""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from emd_constructs.bundles import direct_build_bundle
from model_specs.catalogue import catalogue
from model_specs.deployment import Deployment, resolve_deployment
from serving.build_resource import handler
from tests.support.aws_double import AwsDouble
from tests.support.cli import environ_without, run_emd
from tests.support.hf_server import HubServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
MODEL = "SmolLM2-135M-Instruct-GGUF"
HF_REPO = catalogue().model(MODEL).hf_id
ASSETS = "cdk-hnb659fds-assets-123456789012-us-east-1"  # the CDK bootstrap's asset bucket


@dataclass
class Direct:
    double: AwsDouble
    hub: HubServer
    project: str

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = environ_without("AWS_", "EMD_")
        env.update(self.double.env(), XDG_STATE_HOME=str(self.double.workdir / "state"))
        return run_emd(*args, env=env)


@pytest.fixture(scope="module")
def direct(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Direct]:
    home = tmp_path_factory.mktemp("direct-build")
    with HubServer(home / "hub") as hub:
        hub.add_repo(HF_REPO, {"SmolLM2-135M-Instruct.Q4_1.gguf": b"GGUF" + bytes(4096), "README.md": "tiny"})
        double = AwsDouble(home / "double", extra_env=hub.env()).start()
        try:
            d = Direct(double, hub, "")
            boot = d.run("bootstrap", "--region", "us-east-1", "--yes", "--no-gateway")
            assert boot.returncode == 0, boot.stdout + boot.stderr
            ssm = double.client("ssm")
            d.project = ssm.get_parameter(Name="/emd/bootstrap/codebuild-project-name")["Parameter"]["Value"]
            double.client("s3").create_bucket(Bucket=ASSETS)
            yield d
        finally:
            double.stop()


@pytest.fixture
def aws_env(direct: Direct, monkeypatch: pytest.MonkeyPatch) -> None:
    """The handler's boto3 clients reach the double, as Lambda's reach AWS."""
    for key, value in direct.double.env().items():
        monkeypatch.setenv(key, value)


def deployment(tag: str, **model_params: str) -> Deployment:
    extra = {"model_params": model_params} if model_params else None
    return resolve_deployment(
        model_id=MODEL, instance_type="g4dn.xlarge", engine_type="llama.cpp", service_type="sagemaker_async",
        region="us-east-1", model_tag=tag, extra_params=extra,
    )  # fmt: skip


def upload_inputs(direct: Direct, d: Deployment) -> str:
    """The asset as `cdk deploy` publishes it: the build inputs under their hash."""
    bundle = direct_build_bundle(d.to_public_dict())
    key = hashlib.sha256(bundle).hexdigest() + ".zip"
    direct.double.client("s3").put_object(Bucket=ASSETS, Key=key, Body=bundle)
    return key


def event(direct: Direct, d: Deployment, key: str, request: str = "Create", **extra: Any) -> dict[str, Any]:
    return {
        "RequestType": request,
        "ResourceType": "Custom::EmdModelBuild",
        "LogicalResourceId": "ArtifactsBuild",
        "ResourceProperties": {
            "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:EMD-Model-x-onEvent",
            "ProjectName": direct.project,
            "SourceBucket": ASSETS,
            "SourceKey": key,
            "Environment": {
                "EMD_DEPLOYMENT_ID": "cdk-deploy",
                "EMD_MODEL_ID": d.model_id,
                "EMD_MODEL_TAG": d.model_tag,
                "EMD_STACK_NAME": d.stack_name,
            },
        },
        **extra,
    }


def wait(started: dict[str, Any], create: dict[str, Any], timeout: float = 120) -> dict[str, Any]:
    """The Provider framework's waiter: is_complete with onEvent's result merged into the event."""
    polled = {**create, **started}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = handler.is_complete(polled)
        if result["IsComplete"]:
            return result
        time.sleep(0.3)
    raise AssertionError("the build did not finish")


def test_a_build_runs_on_the_inputs_and_hands_over_the_image_and_weights(
    direct: Direct, aws_env: None
) -> None:
    from emd_stacks.model_inputs import engine_image_tag

    d = deployment("direct")
    create = event(direct, d, upload_inputs(direct, d))
    direct.double.hold_builds_file.touch()  # the build stays in progress until released
    try:
        started = handler.on_event(create)
        build_id = started["PhysicalResourceId"]
        assert build_id.startswith(direct.project + ":") and started["Data"]["BuildId"] == build_id
        assert handler.is_complete({**create, **started}) == {"IsComplete": False}
        # the same inputs again (a deploy tried again after CloudFormation's hour): the running build
        again = handler.on_event(create)
        assert again["PhysicalResourceId"] == build_id
        # another deployment's inputs are not this build's (no second build: it would race this one's push)
        other = deployment("other")
        location = f"{ASSETS}/{upload_inputs(direct, other)}"
        assert handler.running_build(direct.double.client("codebuild"), direct.project, location) is None
        # waiting longer than the handler may: a failure that says what to do, the build goes on
        stale = {**create, **started, "Data": {**started["Data"], "WaitingSince": str(time.time() - 3400)}}
        with pytest.raises(handler.BuildFailed, match=r"is still running .* run the same cdk deploy again"):
            handler.is_complete(stale)
    finally:
        direct.double.hold_builds_file.unlink()
    data = wait(started, create)["Data"]
    build = direct.double.client("codebuild").batch_get_builds(ids=[build_id])["builds"][0]
    assert build["source"]["location"] == f"{ASSETS}/{create['ResourceProperties']['SourceKey']}"
    assert build["buildStatus"] == "SUCCEEDED"
    # the image the build pushed carries the tag the stack would compute at synth time
    repository = direct.double.client("ssm").get_parameter(Name="/emd/bootstrap/ecr-repository-name")
    assert data["ImageUri"].endswith(f"/{repository['Parameter']['Value']}:{engine_image_tag(d)}")
    bucket = direct.double.client("ssm").get_parameter(Name="/emd/bootstrap/artifact-bucket-name")
    commit = direct.hub.commit(HF_REPO)
    assert data["ModelDataS3Uri"] == f"s3://{bucket['Parameter']['Value']}/{data['WeightsPrefix']}"
    assert data["WeightsPrefix"].startswith(f"models/{MODEL}/{commit}") and data["WeightsPrefix"].endswith(
        "/"
    )
    listed = direct.double.client("s3").list_objects_v2(
        Bucket=bucket["Parameter"]["Value"], Prefix=data["WeightsPrefix"]
    )
    assert any(o["Key"].endswith(".gguf") for o in listed["Contents"])


def test_a_failed_build_fails_with_its_own_reason(direct: Direct, aws_env: None) -> None:
    d = deployment("badrev", revision="no-such-rev")
    create = event(direct, d, upload_inputs(direct, d))
    started = handler.on_event(create)
    with pytest.raises(handler.BuildFailed) as failed:
        wait(started, create)
    message = str(failed.value)
    assert message.startswith(f"build {started['PhysicalResourceId']} failed in phase PRE_BUILD: ")
    assert "no-such-rev" in message and "Error while executing command" not in message
    assert "(log: " in message and "\n" not in message


def test_delete_leaves_the_cached_artifacts_and_calls_nothing(direct: Direct, aws_env: None) -> None:
    d = deployment("direct")
    gone = event(direct, d, "k.zip", "Delete", PhysicalResourceId="p:1")
    direct.double.calls(reset=True)
    assert handler.on_event(gone) == {"PhysicalResourceId": "p:1"}
    assert handler.is_complete(gone) == {"IsComplete": True}
    assert direct.double.calls() == Counter()


def test_the_stack_secret_is_generated_rotated_by_emd_and_deleted_with_the_stack(
    direct: Direct, tmp_path: Path
) -> None:
    """The secret resource exactly as the direct stack declares it, deployed through the double's
    CloudFormation: a generated value, `emd keys rotate` writes the secret the stack created, and deleting
    the stack deletes it."""
    from emd_stacks.model import ModelStack
    from tests.unit.stack_fixtures import make_app

    d = deployment("keyed")
    app = make_app(tmp_path)
    stack = ModelStack(app, d, own_api_key=True)
    template = app.synth().get_stack_artifact(stack.artifact_id).template
    (secret,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::SecretsManager::Secret"]
    cfn = direct.double.client("cloudformation")
    cfn.create_stack(StackName=d.stack_name, TemplateBody=json.dumps({"Resources": {"ApiKey": secret}}))
    sm = direct.double.client("secretsmanager")
    name = template["Outputs"]["ApiKeySecretName"]["Value"]
    assert name == f"emd/{MODEL}/keyed/api-key"
    generated = sm.get_secret_value(SecretId=name)["SecretString"]
    assert len(generated) == 48 and generated.isalnum()
    tags = {t["Key"]: t["Value"] for t in sm.describe_secret(SecretId=name)["Tags"]}
    assert tags == {"emd:model-id": MODEL, "emd:tag": "keyed"}

    rotated = direct.run("keys", "rotate", f"{MODEL}/keyed", "--region", "us-east-1")
    assert rotated.returncode == 0, rotated.stdout + rotated.stderr
    new_key = rotated.stdout.split("'")[1]
    assert sm.get_secret_value(SecretId=name)["SecretString"] == new_key != generated

    cfn.delete_stack(StackName=d.stack_name)
    names = [s["Name"] for s in sm.list_secrets()["SecretList"]]
    assert name not in names


def test_keys_rotate_writes_the_existing_secret_a_direct_stack_names(direct: Direct) -> None:
    """`-c api_key_secret_name=emd/team/api-key`: the registry entry names that secret, and `emd keys rotate`
    rotates it (not emd/<model-id>/<tag>/api-key, which does not exist)."""
    from model_specs.registry import registry_parameter_name
    from tests.entries import sm_entry

    sm = direct.double.client("secretsmanager")
    sm.create_secret(Name="emd/team/api-key", SecretString="emd-old-team-key")
    entry = sm_entry(MODEL, "team", "emd-team").model_copy(update={"api_key_secret_name": "emd/team/api-key"})
    direct.double.client("ssm").put_parameter(
        Name=registry_parameter_name(MODEL, "team"), Value=entry.model_dump_json(), Type="String"
    )
    rotated = direct.run("keys", "rotate", f"{MODEL}/team", "--region", "us-east-1")
    assert rotated.returncode == 0, rotated.stdout + rotated.stderr
    new_key = rotated.stdout.split("'")[1]
    assert sm.get_secret_value(SecretId="emd/team/api-key")["SecretString"] == new_key != "emd-old-team-key"
