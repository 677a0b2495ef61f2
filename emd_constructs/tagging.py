"""The tags every EMD resource carries: emd:model-id and emd:tag (plus emd:component for shared stacks).

Call at the end of a stack's constructor: besides the Tags aspect it tags the IAM roles of aws-cdk-lib's
singleton custom-resource providers (raw CfnResources the aspect cannot reach).
"""

from __future__ import annotations

import aws_cdk as cdk
from constructs import IConstruct

SHARED = "_shared"
MODEL_ID_KEY = "emd:model-id"
TAG_KEY = "emd:tag"
COMPONENT_KEY = "emd:component"


def tag_deployment(
    scope: IConstruct, model_id: str, model_tag: str, extra: dict[str, str] | None = None
) -> None:
    tags = {MODEL_ID_KEY: model_id, TAG_KEY: model_tag, **(extra or {})}
    for key, value in tags.items():
        cdk.Tags.of(scope).add(key, value)
    if isinstance(scope, cdk.Stack):
        _tag_provider_roles(scope, tags)


def tag_shared(scope: IConstruct, component: str) -> None:
    """Shared stacks: emd:model-id=_shared, emd:tag=_shared, emd:component=<component>."""
    tag_deployment(scope, SHARED, SHARED, {COMPONENT_KEY: component})


def _tag_provider_roles(stack: cdk.Stack, tags: dict[str, str]) -> None:
    rendered = [{"Key": k, "Value": v} for k, v in sorted(tags.items())]
    for child in stack.node.children:
        if child.node.id.startswith("Custom::") and child.node.id.endswith("CustomResourceProvider"):
            role = child.node.try_find_child("Role")
            if isinstance(role, cdk.CfnResource):
                role.add_property_override("Tags", rendered)
