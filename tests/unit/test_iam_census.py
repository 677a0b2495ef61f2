"""IAM census over every synthesized template (tests/unit/all_templates.py), against two independent
references (tests/unit/iam_reference.py): the CloudFormation registry's handler permissions and the Service
Authorization Reference.

- The deploy role grants what the model stacks' resource types need and nothing else: every registry handler
  action of every type in every model template is granted or excluded with a reason (NOT_GRANTED), and every
  granted action belongs to such a type or has a reason of its own (BEYOND_HANDLERS).
- Nothing is granted on Resource "*" without a condition that could be scoped to resources.
- Every condition key is one that each action of its statement supports.
"""

from __future__ import annotations

import fnmatch
import json
from typing import Any

import pytest

from emd_constructs.deploy_role_policy import BEYOND_HANDLERS, NOT_GRANTED
from tests.unit.iam_reference import condition_keys, expand, registry_handlers, resource_types, supports
from tests.unit.stack_fixtures import as_list

pytestmark = pytest.mark.slow

NOT_RESOURCES = {"AWS::CDK::Metadata"}


def _policies(template: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    out = {}
    for logical_id, res in template["Resources"].items():
        props = res.get("Properties", {})
        if res["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            out[logical_id] = props["PolicyDocument"]["Statement"]
        if res["Type"] == "AWS::IAM::Role":
            for p in props.get("Policies", []):
                out[f"{logical_id}/{p['PolicyName']}"] = p["PolicyDocument"]["Statement"]
    return out


def _deploy_role_statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    (role_id,) = [k for k in template["Resources"] if k.startswith("DeployCloudFormationRole")
                  and template["Resources"][k]["Type"] == "AWS::IAM::Role"]  # fmt: skip
    return [
        s
        for res in template["Resources"].values()
        if res["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")
        and {"Ref": role_id} in res["Properties"].get("Roles", [])
        for s in res["Properties"]["PolicyDocument"]["Statement"]
    ]


@pytest.fixture(scope="module")
def model_types(all_templates) -> set[str]:
    return {
        res["Type"]
        for s in all_templates.values()
        if s.kind == "model"
        for res in s.template["Resources"].values()
    } - NOT_RESOURCES


@pytest.fixture(scope="module")
def handler_actions(model_types) -> dict[str, set[str]]:
    """{handler action: the resource types whose handlers call it}"""
    out: dict[str, set[str]] = {}
    for cfn_type in model_types:
        for permissions in registry_handlers()[cfn_type].values():
            for action in permissions:
                out.setdefault(action, set()).add(cfn_type)
    return out


@pytest.fixture(scope="module", params=["us-east-1", "cn-north-1"])
def granted(all_templates, request) -> set[str]:
    statements = _deploy_role_statements(all_templates[f"{request.param}/bootstrap"].template)
    return {a for s in statements if s["Effect"] == "Allow" for a in as_list(s["Action"])}


def _covers(patterns, action: str) -> bool:
    return any(fnmatch.fnmatchcase(action, p) for p in patterns)


def test_templates_of_every_service_type_and_both_partitions(all_templates, model_types):
    # model stack descriptions end with "(<service type>)"
    models = [s for s in all_templates.values() if s.kind == "model"]
    services = {s.template["Description"].rsplit("(", 1)[1].rstrip(")") for s in models}
    assert services == {"sagemaker_realtime", "sagemaker_async", "ecs", "ec2"}
    assert {s.region for s in all_templates.values() if s.kind == "model"} == {"us-east-1", "cn-north-1"}
    assert "AWS::SageMaker::InferenceComponent" in model_types  # scale to zero
    missing = sorted(t for t in model_types if t not in registry_handlers())
    assert missing == [], f"resource types without registry handlers to derive permissions from: {missing}"


def test_every_handler_action_is_granted_or_excluded_with_a_reason(handler_actions, granted):
    uncovered = {
        action: sorted(types)
        for action, types in handler_actions.items()
        if not _covers(granted, action) and action not in granted and not _covers(NOT_GRANTED, action)
    }
    assert uncovered == {}


def test_reads_are_never_excluded(model_types, granted):
    """Read handlers run after every create and update: what they call must be granted (unless the Service
    Authorization Reference does not know it at all)."""
    reads = {a for t in model_types for a in registry_handlers()[t].get("read", [])}
    excluded = {a for a in reads if not _covers(granted, a) and expand(a)}
    assert excluded == set()


def test_nothing_is_granted_that_no_template_needs(handler_actions, granted):
    unneeded = sorted(
        g for g in granted
        if g not in handler_actions and g not in BEYOND_HANDLERS
        and not any(fnmatch.fnmatchcase(a, g) for a in handler_actions)
    )  # fmt: skip
    assert unneeded == []
    stale = sorted(p for p in NOT_GRANTED if not any(fnmatch.fnmatchcase(a, p) for a in handler_actions))
    assert stale == [], "exclusions that no resource type needs any more"
    # an exclusion is never granted (a wildcard exclusion such as ssm:Get* may keep one named action)
    assert not set(granted) & set(NOT_GRANTED)
    assert [p for p in NOT_GRANTED if "*" not in p and _covers(granted, p)] == []


def test_deploy_role_has_no_service_wildcards_and_no_secrets(granted):
    assert not [g for g in granted if g.endswith(":*")]
    assert not [g for g in granted if g.startswith("secretsmanager:")]
    assert "iam:UpdateAssumeRolePolicy" not in granted


def _unscopable(action_pattern: str) -> bool:
    actions = expand(action_pattern)
    assert actions, f"{action_pattern} is not in the Service Authorization Reference"
    return all(not resource_types(a) for a in actions)


def test_no_unconditioned_wildcard_resource_that_could_be_scoped(all_templates):
    """Resource "*" without a condition only for actions that take no resource ARN at all."""
    found = []
    for name, synth in all_templates.items():
        for policy, statements in _policies(synth.template).items():
            for s in statements:
                if s["Effect"] != "Allow" or "*" not in as_list(s["Resource"]) or s.get("Condition"):
                    continue
                found += [f"{name} {policy} {a}" for a in as_list(s["Action"]) if not _unscopable(a)]
    assert found == []


def test_every_condition_key_is_supported_by_every_action_of_its_statement(all_templates):
    unsupported = []
    for name, synth in all_templates.items():
        for policy, statements in _policies(synth.template).items():
            for s in statements:
                for operator_keys in s.get("Condition", {}).values():
                    for key in operator_keys:
                        for pattern in as_list(s["Action"]):
                            bad = [a for a in expand(pattern) if not supports(a, key)]
                            if bad:
                                unsupported.append(f"{name} {policy} {key}: {bad[:3]}")
    assert unsupported == []


def test_census_counts(all_templates, capsys):
    """The numbers the review reported: actions granted on Resource "*" across every template."""
    on_star, unconditioned = set(), set()
    for synth in all_templates.values():
        for statements in _policies(synth.template).values():
            for s in statements:
                if s["Effect"] == "Allow" and "*" in as_list(s["Resource"]):
                    on_star |= set(as_list(s["Action"]))
                    if not s.get("Condition"):
                        unconditioned |= set(as_list(s["Action"]))
    with capsys.disabled():
        print(f"\nIAM census: {len(on_star)} actions on Resource *, {len(unconditioned)} without a "
              f"condition: {json.dumps(sorted(unconditioned))}")
    assert not [a for a in on_star if a.endswith(":*") or a == "*"]
    assert all(condition_keys(a) is not None for p in unconditioned for a in expand(p))
