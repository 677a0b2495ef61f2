"""Desired against deployed: add, change (in place or replacing, and why), remove only this pipeline's stacks,
untouched, stacks deployed outside GitOps, hourly cost."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from model_specs.deployment import resolve_deployment
from model_specs.gitops_state import (
    DeployedStack,
    DesiredStack,
    compare,
    hourly_cost,
    replacement_reason,
    spec_changes,
    to_prune,
    total_hourly,
)

ACCOUNT, REGION, PIPELINE = "111111111111", "us-east-1", "EMD-GitOps"


def spec(tag: str, **kw: Any) -> dict[str, Any]:
    args = {"model_id": "Qwen2.5-0.5B-Instruct", "instance_type": "g4dn.xlarge", "service_type": "ecs"}
    args.update(kw)
    return resolve_deployment(region=REGION, model_tag=tag, **args).to_public_dict()


def desired(s: dict[str, Any]) -> DesiredStack:
    return DesiredStack(ACCOUNT, REGION, s["stack_name"], f"{s['model_id']}/{s['model_tag']}", s)


def deployed(
    s: dict[str, Any], pipeline: str | None = PIPELINE, status: str = "CREATE_COMPLETE"
) -> DeployedStack:
    tags = {"emd:model-id": s["model_id"], "emd:tag": s["model_tag"]}
    if pipeline:
        tags["emd:gitops"] = pipeline
    return DeployedStack(s["stack_name"], ACCOUNT, REGION, status, tags, s if pipeline else None)


def kinds(items) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {i.route: i.kind for i in items}


def test_add_change_remove_untouched_and_what_never_appears():
    same, grown, gone, foreign, other_pipeline = (spec(t) for t in ("same", "grown", "gone", "cli", "other"))
    new = spec("new")
    bigger = spec("grown", instance_type="g4dn.2xlarge")
    items = compare(
        [desired(same), desired(bigger), desired(new)],
        [
            deployed(same),
            deployed(grown),
            deployed(gone),
            deployed(foreign, pipeline=None),  # emd deploy
            deployed(other_pipeline, pipeline="Other-GitOps"),
            DeployedStack("MyOwnStack", ACCOUNT, REGION, "CREATE_COMPLETE", {}, None),
        ],
        pipeline=PIPELINE,
    )
    assert kinds(items) == {
        "Qwen2.5-0.5B-Instruct/same": "untouched",
        "Qwen2.5-0.5B-Instruct/grown": "change",
        "Qwen2.5-0.5B-Instruct/new": "add",
        "Qwen2.5-0.5B-Instruct/gone": "remove",
    }
    (change,) = [i for i in items if i.kind == "change"]
    assert [(c.field, c.before, c.after, c.replacing) for c in change.changes] == [
        ("instance_type", "g4dn.xlarge", "g4dn.2xlarge", None)
    ]
    assert [i.stack_name for i in to_prune(items)] == [gone["stack_name"]]


def test_a_stack_from_emd_deploy_with_a_desired_name_is_taken_over_not_removed():
    cli = spec("prod")
    stack = DeployedStack(
        cli["stack_name"],
        ACCOUNT,
        REGION,
        "CREATE_COMPLETE",
        {"emd:model-id": "Qwen2.5-0.5B-Instruct", "emd:tag": "prod"},
        None,
        description="EMD model Qwen2.5-0.5B-Instruct/prod: vllm on g4dn.xlarge (ecs)",
    )
    (item,) = compare([desired(cli)], [stack], pipeline=PIPELINE)
    assert item.kind == "change" and item.adopted
    assert (
        item.deployed is not None and item.deployed["instance_type"] == "g4dn.xlarge"
    )  # from the description


def test_a_failed_stack_is_redeployed():
    s = spec("x")
    (item,) = compare([desired(s)], [deployed(s, status="UPDATE_ROLLBACK_FAILED")], pipeline=PIPELINE)
    assert item.kind == "change" and item.changes == []


def test_service_change_replaces_everything():
    changes = spec_changes(spec("a"), spec("a", service_type="ec2"))
    service = next(c for c in changes if c.field == "service_type")
    assert service.replacing == "another service type: every resource of the stack is replaced"


def test_replacement_rules():
    assert (
        replacement_reason("sagemaker_realtime", "instance_type") is None
    )  # new endpoint config, same endpoint
    assert replacement_reason("sagemaker_realtime", "extra_params.service_params.sagemaker_endpoint_name")
    assert replacement_reason("ec2", "engine_type") == (
        "the EC2 instance's user data changes: the instance is replaced"
    )
    assert replacement_reason("ecs", "engine_type") is None
    assert replacement_reason("ecs", "extra_params.service_params.subnet_ids")
    assert replacement_reason("sagemaker_async", "extra_params.service_params.max_capacity") is None


def test_nested_extra_params_are_compared_by_key():
    before = spec("a", extra_params={"service_params": {"min_capacity": 1, "max_capacity": 2}})
    after = spec("a", extra_params={"service_params": {"min_capacity": 1, "max_capacity": 4}})
    (change,) = spec_changes(before, after)
    assert (change.field, change.before, change.after) == ("extra_params.service_params.max_capacity", 2, 4)


def test_hourly_cost_counts_instances_at_minimum_capacity():
    one = hourly_cost(spec("a"))
    assert one is not None and one[1] == "$" and one[0] > 0
    two = hourly_cost(spec("b", extra_params={"service_params": {"min_capacity": 2, "max_capacity": 3}}))
    zero = hourly_cost(spec("c", extra_params={"service_params": {"min_capacity": 0, "max_capacity": 1}}))
    assert two == (one[0] * 2, "$") and zero == (Decimal(0), "$")
    assert total_hourly([spec("a"), None, spec("d")]) == {"$": one[0] * 2}
