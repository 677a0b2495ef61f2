"""The environment CodeBuild gives the build stage (serving/build), pointed at moto, with an empty bucket."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest


def build_environment(
    monkeypatch: pytest.MonkeyPatch, src: Path, moto_url: str, bucket: str, **extra: str
) -> None:
    """Set CodeBuild's variables for a build whose source bundle is `src`; create `bucket` in moto or empty
    it (objects and unfinished multipart uploads)."""
    for key, value in {
        "CODEBUILD_SRC_DIR": str(src),
        "AWS_ENDPOINT_URL": moto_url,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "EMD_ARTIFACT_BUCKET": bucket,
        "EMD_WEIGHTS_HUB": "huggingface",
        "EMD_HF_TOKEN_SECRET": "emd/hf-token",
        **extra,
    }.items():
        monkeypatch.setenv(key, value)
    s3 = boto3.client("s3")
    if bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket=bucket)
    for obj in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
        s3.delete_object(Bucket=bucket, Key=obj["Key"])
    for upload in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
        s3.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
