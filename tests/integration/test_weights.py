"""`fetch-weights` (serving/engine/weights.py) against moto's S3 on 127.0.0.1: what the ECS init container and
the EC2 unit run in the engine image to copy a model's weights."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import boto3
import pytest

from serving.engine.weights import WeightsError, fetch_weights
from tests.integration.conftest import FAKE_CREDS, PY, REGION, ROOT

pytestmark = pytest.mark.integration

BUCKET = "emd-weights-test"
FILES = {
    "config.json": b'{"architectures": ["Qwen2ForCausalLM"]}',
    "model-00001-of-00002.safetensors": os.urandom(300_000),
    "model-00002-of-00002.safetensors": os.urandom(120_000),
    "tokenizer/tokenizer.json": b'{"version": "1.0"}',
}


@pytest.fixture(scope="module")
def s3(moto_url: str) -> Any:
    client = boto3.client(
        "s3",
        endpoint_url=moto_url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket=BUCKET)
    for name, body in FILES.items():
        client.put_object(Bucket=BUCKET, Key=f"models/qwen/main/{name}", Body=body)
    client.put_object(Bucket=BUCKET, Key="models/qwen/main/tokenizer/", Body=b"")  # a console folder marker
    client.put_object(Bucket=BUCKET, Key="models/qwen/main-other/stray.bin", Body=b"not this model")
    return client


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_copies_every_file_of_the_prefix_and_nothing_else(s3: Any, tmp_path: Path) -> None:
    # no trailing slash: still the folder, not also models/qwen/main-other/
    report = fetch_weights(s3, f"s3://{BUCKET}/models/qwen/main", tmp_path)
    assert tree(tmp_path) == FILES
    assert (report.files, report.skipped, report.bytes) == (4, 0, sum(len(b) for b in FILES.values()))


def test_a_restart_keeps_complete_files_and_replaces_broken_ones(s3: Any, tmp_path: Path) -> None:
    fetch_weights(s3, f"s3://{BUCKET}/models/qwen/main/", tmp_path)
    broken = tmp_path / "model-00002-of-00002.safetensors"
    broken.write_bytes(b"truncated")
    report = fetch_weights(s3, f"s3://{BUCKET}/models/qwen/main/", tmp_path)
    assert (report.files, report.skipped) == (1, 3)
    assert tree(tmp_path) == FILES


def test_empty_prefix_and_bad_uri_are_clear_errors(s3: Any, tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="no objects under s3://emd-weights-test/models/absent/"):
        fetch_weights(s3, f"s3://{BUCKET}/models/absent/", tmp_path)
    with pytest.raises(WeightsError, match="not an s3://bucket/prefix URI"):
        fetch_weights(s3, "/local/path", tmp_path)


def test_a_key_escaping_the_folder_is_refused(s3: Any, tmp_path: Path) -> None:
    s3.put_object(Bucket=BUCKET, Key="models/evil/main/../../../etc/cron.d/x", Body=b"x")
    with pytest.raises(WeightsError, match="outside the model folder"):
        fetch_weights(s3, f"s3://{BUCKET}/models/evil/main/", tmp_path / "model")
    assert not (tmp_path / "etc").exists()


def run_cli(moto_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **FAKE_CREDS, "AWS_ENDPOINT_URL": moto_url, "AWS_REGION": REGION}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [PY, "-m", "serving.engine", "fetch-weights", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_engine_entry_point_fetches_and_fails_in_one_line(s3: Any, moto_url: str, tmp_path: Path) -> None:
    ok = run_cli(moto_url, f"s3://{BUCKET}/models/qwen/main/", str(tmp_path / "m"))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert tree(tmp_path / "m") == FILES
    missing = run_cli(moto_url, "s3://no-such-bucket-emd/models/x/", str(tmp_path / "n"))
    assert missing.returncode == 1
    assert "cannot copy s3://no-such-bucket-emd/models/x/" in missing.stdout
    assert "Traceback" not in missing.stdout + missing.stderr
    usage = run_cli(moto_url, "s3://only-one-argument/")
    assert usage.returncode == 2 and "usage: fetch-weights" in usage.stderr
