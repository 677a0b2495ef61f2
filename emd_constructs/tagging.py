"""The tags every EMD resource carries: emd:model-id and emd:tag (plus emd:component for shared stacks).

Call at the end of a stack's constructor: besides the Tags aspect it tags the stack itself and the IAM roles
of aws-cdk-lib's singleton custom-resource providers (raw CfnResources the aspect cannot reach).

Stack tags are set explicitly (@aws-cdk/core:explicitStackTags: Tags.of(stack) reaches only the resources):
the deploy puts them on the stack, where GitOps plan and prune read them (emd:gitops, emd:model-id, emd:tag)
and the GitOps target role's DeleteStack condition matches emd:gitops.
"""

from __future__ import annotations

from collections.abc import Mapping

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
    if isinstance(scope, cdk.Stack):
        tag_stack(scope, tags)
        _tag_provider_roles(scope, tags)
    else:
        for key, value in tags.items():
            cdk.Tags.of(scope).add(key, value)


def tag_stack(stack: cdk.Stack, tags: Mapping[str, str]) -> None:
    """The stack's resources (Tags aspect) and the stack itself (its tags in the cloud assembly)."""
    for key, value in tags.items():
        cdk.Tags.of(stack).add(key, value)
        stack.tags.set_tag(key, value)


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
