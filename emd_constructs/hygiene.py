"""Template hygiene for cfn-lint's zero-warning bar: aws-cdk-lib adds a few DependsOn entries that a GetAtt
already enforces (W3005). Removing them changes nothing at deploy time."""

from __future__ import annotations

import aws_cdk as cdk
import aws_cdk.aws_iam as iam
from constructs import IConstruct


def drop_dependency(resource: IConstruct, target: IConstruct) -> None:
    res, dep = resource.node.default_child or resource, target.node.default_child or target
    if isinstance(res, cdk.CfnResource) and isinstance(dep, cdk.CfnResource):
        res.remove_resource_dependency(dep)


def cdk_providers(stack: cdk.Stack) -> list[IConstruct]:
    """aws-cdk-lib's singleton custom-resource providers in the stack (Custom::…CustomResourceProvider:
    auto-delete of bucket objects and images, the default security group's restriction)."""
    return [
        child
        for child in stack.node.children
        if child.node.id.startswith("Custom::") and child.node.id.endswith("CustomResourceProvider")
    ]


def drop_provider_role_dependencies(stack: cdk.Stack) -> None:
    """CDK's singleton custom-resource providers: Handler DependsOn Role."""
    for child in cdk_providers(stack):
        handler, role = child.node.try_find_child("Handler"), child.node.try_find_child("Role")
        if handler is not None and role is not None:
            drop_dependency(handler, role)


def keep_only_policy_dependency(resource: IConstruct, role: iam.Role) -> None:
    """`resource` DependsOn [role policy, role] where its RoleArn GetAtt already orders it after the role."""
    cfn = resource.node.default_child
    policy = role.node.try_find_child("DefaultPolicy")
    if isinstance(cfn, cdk.CfnResource) and policy is not None:
        policy_cfn = policy.node.default_child
        assert isinstance(policy_cfn, cdk.CfnResource)
        cfn.add_override("DependsOn", [cdk.Stack.of(resource).get_logical_id(policy_cfn)])


def set_depends_on(resource: IConstruct, targets: list[IConstruct]) -> None:
    """Replace `resource`'s DependsOn with `targets` (those not already implied by a Ref/GetAtt)."""
    cfn = resource.node.default_child or resource
    assert isinstance(cfn, cdk.CfnResource)
    stack = cdk.Stack.of(resource)
    ids = []
    for target in targets:
        t = target.node.default_child or target
        assert isinstance(t, cdk.CfnResource)
        ids.append(stack.get_logical_id(t))
    cfn.add_override("DependsOn", ids)
