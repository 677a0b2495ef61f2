"""The build's weights step with the real huggingface_hub client against the local hub and moto's S3:
streamed into S3 without touching the disk, cached by revision behind a verified marker, resumed after a
cut connection or a dead build, one-line errors for what a user can fix."""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket

import boto3
import pytest
from botocore.stub import Stubber

from model_specs.catalogue import catalogue
from serving.build import contract, prepare, transfer
from serving.build.sources import WeightsError, describe_hub_error, select_hub
from serving.build.weights import use_given_location, weights_prefix
from tests.support.build_env import build_environment

BUCKET = "emd-weights-test"
MODEL_ID, HF_ID = "Qwen2.5-7B-Instruct", "Qwen/Qwen2.5-7B-Instruct"
GGUF_MODEL = "SmolLM2-135M-Instruct-GGUF"
GGUF_HF_ID = catalogue().model(GGUF_MODEL).hf_id  # a GGUF repository (QuantFactory/…-GGUF)
MiB = 1024 * 1024


@pytest.fixture
def build(tmp_path, monkeypatch, moto_url, hf_hub):
    """A source bundle and CodeBuild's environment; 5 MiB parts (S3's minimum) keep the repositories small."""
    monkeypatch.setattr(transfer, "MIN_PART", 5 * MiB)
    monkeypatch.setattr(transfer, "RETRY_PAUSE", 0.0)
    build_environment(monkeypatch, tmp_path, moto_url, BUCKET, EMD_PROGRESS_SECONDS="0.05")
    return tmp_path


def deploy(root, model_id=MODEL_ID, engine="vllm", **model_params):
    (root / "deployment.json").write_text(json.dumps({
        "model_id": model_id, "model_tag": "dev", "engine_type": engine,
        "stack_name": "EMD-Model-test", "extra_params": {"model_params": model_params},
    }))  # fmt: skip


def write_repo(hub, repo_id, files, gated=False):
    shutil.rmtree(hub.root / repo_id, ignore_errors=True)
    hub.gated.discard(repo_id)
    return hub.add_repo(repo_id, files, gated=gated)


def objects():
    listing = boto3.client("s3").list_objects_v2(Bucket=BUCKET).get("Contents", [])
    return {o["Key"]: o["Size"] for o in listing}


def test_first_build_streams_into_s3_then_a_redeploy_moves_nothing(build, hf_hub, capsys):
    files = {
        "config.json": '{"architectures": ["Qwen2ForCausalLM"]}',
        "model-00001-of-00002.safetensors": os.urandom(12 * MiB + 123),
        "model-00002-of-00002.safetensors": os.urandom(3 * MiB),
    }
    write_repo(hf_hub, HF_ID, files)
    deploy(build)
    assert prepare.main(["weights"]) == 0
    commit = hf_hub.commit(HF_ID)
    prefix = weights_prefix(MODEL_ID, commit)  # main resolved to the commit
    total = sum(len(v) if isinstance(v, bytes) else len(v.encode()) for v in files.values())
    assert objects() == {
        prefix + "config.json": len(files["config.json"]),
        prefix + "model-00001-of-00002.safetensors": 12 * MiB + 123,
        prefix + "model-00002-of-00002.safetensors": 3 * MiB,
        prefix + contract.COMPLETION_MARKER: pytest.approx(1, abs=10_000),
    }
    s3 = boto3.client("s3")
    big = s3.get_object(Bucket=BUCKET, Key=prefix + "model-00001-of-00002.safetensors")["Body"].read()
    assert big == files["model-00001-of-00002.safetensors"]
    marker = json.loads(s3.get_object(Bucket=BUCKET, Key=prefix + contract.COMPLETION_MARKER)["Body"].read())
    assert marker["revision"] == commit and marker["bytes"] == total
    hub_sha = {f.path: f.sha256 for f in hf_hub.files(HF_ID) if f.sha256}
    assert {f["path"]: f["sha256"] for f in marker["files"] if f["path"] in hub_sha} == hub_sha
    state = prepare.read_state()
    assert state["model_data_s3_uri"] == f"s3://{BUCKET}/{prefix}"
    assert state["weights"]["downloaded"] == total == hf_hub.stats.bytes_sent
    assert state["weights"]["uploaded"] == total
    log = capsys.readouterr().out
    assert "MB/s" in log and "ETA" in log and "(100%)" in log

    hf_hub.stats.reset()
    assert prepare.main(["weights"]) == 0
    again = prepare.read_state()["weights"]
    assert again["cached"] is True and again["downloaded"] == again["uploaded"] == 0
    assert again["s3_calls"] == 2  # the marker and one listing
    assert hf_hub.stats.bytes_sent == 0
    assert list(hf_hub.stats.requests) == ["GET api"]  # main -> commit, nothing else


def test_a_cut_connection_is_resumed_and_a_dead_build_continues_where_it_stopped(build, hf_hub, capsys):
    data = os.urandom(22 * MiB)
    write_repo(hf_hub, HF_ID, {"model.safetensors": data, "config.json": "{}"})
    deploy(build)
    hf_hub.drop_after(7 * MiB)  # cut once: the same build asks again from byte 7 MiB
    assert prepare.main(["weights"]) == 0
    assert f"bytes={7 * MiB}-" in hf_hub.stats.ranges
    assert hf_hub.stats.bytes_sent == len(data) + 2
    assert "resuming" in capsys.readouterr().out

    # a build that dies after two 5 MiB parts: cut at 13 MiB, then every retry fails at once
    s3 = boto3.client("s3")
    for obj in s3.list_objects_v2(Bucket=BUCKET)["Contents"]:
        s3.delete_object(Bucket=BUCKET, Key=obj["Key"])
    hf_hub.stats.reset()
    hf_hub.drop_after(13 * MiB)
    hf_hub.drop_after(0, times=transfer.MAX_ATTEMPTS - 1, path="model.safetensors")
    assert prepare.main(["weights"]) == 1
    assert "download failed" in capsys.readouterr().err
    prefix = weights_prefix(MODEL_ID, hf_hub.commit(HF_ID))
    assert prefix + contract.COMPLETION_MARKER not in objects()
    unfinished = s3.list_multipart_uploads(Bucket=BUCKET)["Uploads"]
    assert [u["Key"] for u in unfinished] == [prefix + "model.safetensors"]

    hf_hub.stats.reset()
    assert prepare.main(["weights"]) == 0
    out = capsys.readouterr().out
    assert "resuming at 10.0 MiB (2 parts in S3)" in out
    assert hf_hub.stats.ranges == [f"bytes={10 * MiB}-"]
    assert hf_hub.stats.bytes_sent == len(data) - 10 * MiB + 2  # + config.json
    assert s3.get_object(Bucket=BUCKET, Key=prefix + "model.safetensors")["Body"].read() == data
    state = prepare.read_state()["weights"]
    assert state["files_resumed"] == 1 and state["read_back"] == len(data)  # checked against the hub's sha256
    assert not s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads")


def test_a_hub_that_ignores_range_gets_the_file_copied_from_the_start(build, hf_hub, capsys):
    data = os.urandom(12 * MiB)
    write_repo(hf_hub, HF_ID, {"model.safetensors": data})
    deploy(build)
    hf_hub.ignore_ranges = True
    hf_hub.drop_after(7 * MiB)
    assert prepare.main(["weights"]) == 0
    assert "cannot resume; copying it from the start" in capsys.readouterr().out
    assert hf_hub.stats.ranges == [f"bytes={7 * MiB}-"]  # answered with the whole file: not resumable
    assert hf_hub.stats.requests["GET cdn"] == 3  # cut, refused 200 for a Range, the copy from byte 0
    prefix = weights_prefix(MODEL_ID, hf_hub.commit(HF_ID))
    s3 = boto3.client("s3")
    assert s3.get_object(Bucket=BUCKET, Key=prefix + "model.safetensors")["Body"].read() == data
    assert not s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads")


def test_objects_without_a_marker_are_verified_before_reuse(build, hf_hub):
    data = os.urandom(6 * MiB)
    write_repo(hf_hub, HF_ID, {"model.safetensors": data, "config.json": "{}"})
    deploy(build)
    assert prepare.main(["weights"]) == 0
    prefix = weights_prefix(MODEL_ID, hf_hub.commit(HF_ID))
    s3 = boto3.client("s3")
    s3.delete_object(Bucket=BUCKET, Key=prefix + contract.COMPLETION_MARKER)  # died before the marker
    hf_hub.stats.reset()
    assert prepare.main(["weights"]) == 0
    assert hf_hub.stats.bytes_sent == 2  # config.json only: the LFS file matched the hub's sha256
    assert prepare.read_state()["weights"]["read_back"] == len(data)

    # same size, other bytes: the marker no longer matches (ETag) and the copy is redone
    s3.put_object(Bucket=BUCKET, Key=prefix + "model.safetensors", Body=os.urandom(6 * MiB))
    hf_hub.stats.reset()
    assert prepare.main(["weights"]) == 0
    assert hf_hub.stats.bytes_sent == len(data) + 2
    assert s3.get_object(Bucket=BUCKET, Key=prefix + "model.safetensors")["Body"].read() == data


def test_corrupted_download_is_refused_and_leaves_nothing_to_resume(build, hf_hub, monkeypatch, capsys):
    write_repo(hf_hub, HF_ID, {"model.safetensors": os.urandom(11 * MiB)})
    deploy(build)
    real = transfer.WeightsCopier._download

    def flip_one_byte(self, remote, start, sink):
        real(self, remote, start, lambda chunk: sink(chunk[:-1] + bytes([chunk[-1] ^ 1])))

    monkeypatch.setattr(transfer.WeightsCopier, "_download", flip_one_byte)
    assert prepare.main(["weights"]) == 1
    assert "does not match the hub's" in capsys.readouterr().err
    assert objects() == {}
    assert not boto3.client("s3").list_multipart_uploads(Bucket=BUCKET).get("Uploads")


def test_gguf_engine_copies_only_its_file(build, hf_hub):
    write_repo(hf_hub, GGUF_HF_ID, {
        "SmolLM2-135M-Instruct.Q4_1.gguf": b"GGUF" + os.urandom(1000),
        "SmolLM2-135M-Instruct.Q8_0.gguf": b"GGUF" + os.urandom(2000),
        "model.safetensors": os.urandom(3000),
    })  # fmt: skip
    deploy(build, GGUF_MODEL, "llama.cpp")
    assert prepare.main(["weights"]) == 0
    wanted = "SmolLM2-135M-Instruct.Q4_1.gguf"
    prefix = weights_prefix(GGUF_MODEL, hf_hub.commit(GGUF_HF_ID), wanted)
    assert sorted(objects()) == [prefix + contract.COMPLETION_MARKER, prefix + wanted]


def _published(name):
    ssm = boto3.client("ssm")
    try:
        return ssm.get_parameter(Name=name)["Parameter"]["Value"]
    except ssm.exceptions.ParameterNotFound:
        return None


@pytest.mark.slow
def test_the_build_publishes_the_folder_and_exports_it(build, hf_hub, capsys):
    """The build writes the weights folder to its SSM parameter (named by the revision asked for and the GGUF
    file pattern) after the completion marker, with the commit folder; a cache hit writes it again; and
    `outputs` exports it for a directly deployed stack's custom resource (serving/build_resource)."""
    from model_specs.weights_cache import file_pattern, weights_parameter_name

    wanted = "SmolLM2-135M-Instruct.Q4_1.gguf"
    write_repo(hf_hub, GGUF_HF_ID, {wanted: b"GGUF" + os.urandom(1000), "README.md": "# SmolLM2"})
    name = weights_parameter_name(GGUF_MODEL, None, file_pattern(catalogue().model(GGUF_MODEL), "llama.cpp"))
    ssm = boto3.client("ssm")
    if _published(name) is not None:
        ssm.delete_parameter(Name=name)

    deploy(build, GGUF_MODEL, "llama.cpp")
    assert prepare.main(["weights"]) == 0
    folder = _published(name)
    assert folder == weights_prefix(GGUF_MODEL, hf_hub.commit(GGUF_HF_ID), wanted)
    assert sorted(objects()) == [folder + contract.COMPLETION_MARKER, folder + wanted]
    assert prepare.read_state()["model_data_s3_uri"] == f"s3://{BUCKET}/{folder}"
    tags = ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=name)["TagList"]
    assert {t["Key"]: t["Value"] for t in tags} == {"emd:model-id": GGUF_MODEL, "emd:tag": "dev"}

    ssm.delete_parameter(Name=name)
    hf_hub.stats.reset()
    assert prepare.main(["weights"]) == 0
    assert _published(name) == folder and hf_hub.stats.bytes_sent == 0  # cache hit, published again
    capsys.readouterr()
    assert prepare.main(["outputs"]) == 0
    assert capsys.readouterr().out == f"export EMD_MODEL_DATA_S3_URI=s3://{BUCKET}/{folder}\n"


def test_purged_weights_take_the_builds_pointers_with_them(build, hf_hub):
    """`emd destroy --purge-weights` deletes a model's cache folders and its /emd/weights parameters (not
    those of a model whose id merely starts the same); `emd uninstall` deletes them all."""
    import types

    from emd_cli.targets.aws import _purge_weights, delete_weights_parameters

    write_repo(hf_hub, GGUF_HF_ID, {"SmolLM2-135M-Instruct.Q4_1.gguf": b"GGUF" + os.urandom(100)})
    deploy(build, GGUF_MODEL, "llama.cpp")
    assert prepare.main(["weights"]) == 0
    ssm = boto3.client("ssm")
    others = [f"/emd/weights/{GGUF_MODEL}-v2/r{i}" for i in range(11)]  # more than one DeleteParameters call
    for name in others:
        ssm.put_parameter(Name=name, Value="models/x/", Type="String", Overwrite=True)
    aws = types.SimpleNamespace(client=boto3.client)
    removed, left = _purge_weights(aws, BUCKET, GGUF_MODEL, f"{GGUF_MODEL}/dev", [], [], [])
    assert left == [] and removed[-1] == f"1 weights parameter(s) under /emd/weights/{GGUF_MODEL}/"
    assert objects() == {} and [_published(n) for n in others] == ["models/x/"] * 11
    assert delete_weights_parameters(aws) >= 11  # with what earlier tests' builds published
    assert ssm.get_parameters_by_path(Path="/emd/weights", Recursive=True)["Parameters"] == []


def test_a_given_s3_prefix_publishes_nothing(build, hf_hub):
    boto3.client("s3").put_object(Bucket=BUCKET, Key="mine/smol/model.gguf", Body=b"GGUF")
    deploy(build, GGUF_MODEL, "llama.cpp", model_files_s3_path=f"s3://{BUCKET}/mine/smol")
    names = [p["Name"] for p in boto3.client("ssm").describe_parameters()["Parameters"]]
    assert prepare.main(["weights"]) == 0
    after = [p["Name"] for p in boto3.client("ssm").describe_parameters()["Parameters"]]
    assert after == names


def test_gated_repository_needs_the_token_from_secrets_manager(build, hf_hub, capsys):
    write_repo(hf_hub, HF_ID, {"config.json": "{}", "model.safetensors": b"x" * 100}, gated=True)
    deploy(build)
    assert prepare.main(["weights"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        f"[emd-build] error: {HF_ID} on Hugging Face is gated: accept its terms on the model's page and "
        "store a read token as the Secrets Manager secret emd/hf-token"
    )
    secrets = boto3.client("secretsmanager")
    secrets.create_secret(Name="emd/hf-token", SecretString="hf_wrong_token_456")
    try:
        assert prepare.main(["weights"]) == 1
        assert "has no access to it" in capsys.readouterr().err
        secrets.put_secret_value(SecretId="emd/hf-token", SecretString=next(iter(hf_hub.tokens)))
        assert prepare.main(["weights"]) == 0
    finally:
        secrets.delete_secret(SecretId="emd/hf-token", ForceDeleteWithoutRecovery=True)
    out = capsys.readouterr()
    assert next(iter(hf_hub.tokens)) not in out.out + out.err


def test_missing_repository_and_revision_are_one_line(build, hf_hub, capsys):
    shutil.rmtree(hf_hub.root / HF_ID, ignore_errors=True)
    deploy(build)
    assert prepare.main(["weights"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"[emd-build] error: repository {HF_ID} was not found on Hugging Face")
    assert "\n" not in err
    write_repo(hf_hub, HF_ID, {"config.json": "{}"})
    deploy(build, revision="v9")
    assert prepare.main(["weights"]) == 1
    assert "revision 'v9' of Qwen/Qwen2.5-7B-Instruct was not found" in capsys.readouterr().err


def test_given_s3_prefix_is_used_in_place(build, hf_hub):
    boto3.client("s3").put_object(Bucket=BUCKET, Key="mine/qwen/config.json", Body=b"{}")
    deploy(build, model_files_s3_path=f"s3://{BUCKET}/mine/qwen")
    assert prepare.main(["weights"]) == 0
    assert prepare.read_state()["model_data_s3_uri"] == f"s3://{BUCKET}/mine/qwen/"
    assert hf_hub.stats.total_requests == 0
    deploy(build, model_files_s3_path=f"s3://{BUCKET}/empty")
    with pytest.raises(WeightsError, match="holds no objects"):
        prepare.step_weights()


def test_access_denied_on_the_bucket_is_one_line():
    s3 = boto3.client("s3", region_name="us-east-1")
    with Stubber(s3) as stub:
        stub.add_client_error("list_objects_v2", "AccessDenied", "Access Denied", 403)
        with pytest.raises(WeightsError) as denied:
            use_given_location(s3, "s3://their-bucket/models/x", print)
    assert str(denied.value).startswith("access denied on s3://their-bucket/models/x/ (ListObjectsV2)")


def test_disk_full_is_one_line(monkeypatch, capsys):
    def full():
        raise OSError(errno.ENOSPC, "No space left on device", "/tmp/x")

    monkeypatch.setitem(prepare.STEPS, "image", full)
    assert prepare.main(["image"]) == 1
    err = capsys.readouterr().err
    assert "disk full on the build host writing /tmp/x" in err and "codebuild_compute_type" in err


def test_source_selection_and_modelscope_errors():
    assert select_hub(None, "cn-north-1", "qwen/Qwen2.5-7B-Instruct") == "modelscope"
    assert select_hub(None, "cn-northwest-1", None) == "huggingface"  # no ModelScope id
    assert select_hub(None, "eu-west-1", "qwen/Qwen2.5-7B-Instruct") == "huggingface"
    assert select_hub("huggingface", "cn-north-1", "qwen/x") == "huggingface"  # set at bootstrap
    with pytest.raises(WeightsError, match="EMD_WEIGHTS_HUB='hf' is not a hub"):
        select_hub("hf", "us-east-1", None)

    # the modelscope SDK's exception classes are matched by name: it is not installed in tests
    not_found = type("NotExistError", (Exception,), {})
    denied = type("PermissionDeniedError", (Exception,), {})
    assert describe_hub_error(not_found(), "modelscope", "qwen/x", None, "master").startswith(
        "repository qwen/x was not found on ModelScope"
    )
    assert "is gated" in describe_hub_error(denied(), "modelscope", "qwen/x", None, "master")
    assert describe_hub_error(TimeoutError(), "modelscope", "qwen/x", None, "master") is None


def test_an_unreachable_hub_is_one_line(build, monkeypatch, capsys):
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed}")
    deploy(build)
    assert prepare.main(["weights"]) == 1
    err = capsys.readouterr().err.strip()
    expected = f"[emd-build] error: cannot reach Hugging Face (http://127.0.0.1:{closed}) for {HF_ID}: "
    assert err.startswith(expected)
    assert "model_files_s3_path" in err and "\n" not in err
