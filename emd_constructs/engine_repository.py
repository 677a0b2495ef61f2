"""ECR repository for EMD engine images, tagged immutably with a content hash computed by the build."""

from __future__ import annotations

import aws_cdk as cdk
import aws_cdk.aws_ecr as ecr
from constructs import Construct

KEEP_UNTAGGED = 10


class EngineRepository(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, keep_untagged: int = KEEP_UNTAGGED) -> None:
        super().__init__(scope, construct_id)
        self.repository = ecr.Repository(
            self,
            "Repository",
            image_scan_on_push=True,
            image_tag_mutability=ecr.TagMutability.IMMUTABLE,
            encryption=ecr.RepositoryEncryption.AES_256,
            lifecycle_rules=[
                ecr.LifecycleRule(
                    description=f"keep the last {keep_untagged} untagged images",
                    tag_status=ecr.TagStatus.UNTAGGED,
                    max_image_count=keep_untagged,
                )
            ],
            removal_policy=cdk.RemovalPolicy.DESTROY,
            empty_on_delete=True,
        )
