"""S3 deletions the CLI does itself: every version under a prefix (`emd destroy --purge-weights`), a whole
versioned bucket before its stack is deleted (`emd uninstall`: the templates carry no auto-delete Lambda)."""

from __future__ import annotations

from emd_cli.aws.session import AwsSession

BATCH = 1000  # DeleteObjects' limit


def delete_prefix(aws: AwsSession, bucket: str, prefix: str = "") -> int:
    """Delete every object version and delete marker under `prefix`; return how many were deleted."""
    s3 = aws.client("s3")
    deleted = 0
    batch: list[dict[str, str]] = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Versions", []) + page.get("DeleteMarkers", []):
            batch.append({"Key": item["Key"], "VersionId": item["VersionId"]})
            if len(batch) == BATCH:
                deleted += _delete(s3, bucket, batch)
                batch = []
    if batch:
        deleted += _delete(s3, bucket, batch)
    return deleted


def _delete(s3: object, bucket: str, objects: list[dict[str, str]]) -> int:
    answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": objects, "Quiet": True})  # type: ignore[attr-defined]
    errors = answer.get("Errors", [])
    if errors:
        first = errors[0]
        raise RuntimeError(f"could not delete s3://{bucket}/{first.get('Key')}: {first.get('Message')}")
    return len(objects)
