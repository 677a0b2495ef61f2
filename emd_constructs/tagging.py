"""The tags every EMD resource carries: emd:model-id and emd:tag (plus emd:component for shared stacks)."""

from __future__ import annotations

import aws_cdk as cdk
from constructs import IConstruct

SHARED = "_shared"
MODEL_ID_KEY = "emd:model-id"
TAG_KEY = "emd:tag"
COMPONENT_KEY = "emd:component"


def tag_deployment(scope: IConstruct, model_id: str, model_tag: str) -> None:
    tags = cdk.Tags.of(scope)
    tags.add(MODEL_ID_KEY, model_id)
    tags.add(TAG_KEY, model_tag)


def tag_shared(scope: IConstruct, component: str) -> None:
    """Shared stacks: emd:model-id=_shared, emd:tag=_shared, emd:component=<component>."""
    tag_deployment(scope, SHARED, SHARED)
    cdk.Tags.of(scope).add(COMPONENT_KEY, component)
