"""The one way EMD creates an S3 bucket: public access blocked, TLS only, encrypted at rest with SSE-S3 (the
only encryption ALB access logs accept; the artifact bucket's README promise too)."""

from __future__ import annotations

from typing import Any

import aws_cdk.aws_s3 as s3
from constructs import Construct


def private_bucket(scope: Construct, construct_id: str, **props: Any) -> s3.Bucket:
    return s3.Bucket(
        scope,
        construct_id,
        encryption=s3.BucketEncryption.S3_MANAGED,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        **props,
    )
