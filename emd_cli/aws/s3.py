"""The CLI's own S3 writes: uploads (the GitOps wheel, CDK file assets, templates over CloudFormation's inline
limit, addressed by an https URL of the session's partition), and deletions: a deployment's bundle versions
(`emd destroy`), every version under a prefix (`emd destroy --purge-weights`), a whole versioned bucket before
its stack is deleted (`emd uninstall`: the templates carry no auto-delete Lambda)."""

from __future__ import annotations

from emd_cli.aws.session import AwsSession

BATCH = 1000  # DeleteObjects' limit


def upload(aws: AwsSession, bucket: str, key: str, body: bytes) -> str:
    """Put one object; return its s3:// URI."""
    aws.client("s3").put_object(Bucket=bucket, Key=key, Body=body)
    return f"s3://{bucket}/{key}"


def https_url(aws: AwsSession, bucket: str, key: str) -> str:
    """The object's URL as CloudFormation's TemplateURL takes it (the region's partition suffix)."""
    return f"https://{bucket}.s3.{aws.region}.{aws.url_suffix}/{key}"


def versions_of(aws: AwsSession, bucket: str, key: str) -> set[str]:
    """The version ids the object `key` has (ListObjectVersions, paginated)."""
    pages = aws.client("s3").get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=key)
    return {v["VersionId"] for page in pages for v in page.get("Versions", []) if v["Key"] == key}


def delete_versions(aws: AwsSession, bucket: str, key: str, version_ids: set[str]) -> int:
    """Delete these versions of `key` (an older version becomes the current one); return how many."""
    objects = [{"Key": key, "VersionId": v} for v in sorted(version_ids)]
    s3 = aws.client("s3")
    return sum(_delete(s3, bucket, objects[i : i + BATCH]) for i in range(0, len(objects), BATCH))


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
