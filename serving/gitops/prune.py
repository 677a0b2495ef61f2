"""The Prune step, after every deploy stage: delete the model stacks this pipeline created (stack tag
emd:gitops=<pipeline>) that models.yaml no longer lists, in every target the pipeline ever deployed to, and
nothing else. A removed deployment's API key secret goes too when the pipeline created it, and so do its
build-output parameters. The targets visited are those of this plan plus the ones recorded in the pipeline
account's SSM parameter (model_specs.gitops.targets_parameter_name), so an environment deleted from
models.yaml is cleaned up as well; the record is then rewritten.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from model_specs.gitops import (
    GitOpsPlan,
    PlanTarget,
    artifact_parameter_name,
    targets_parameter_name,
)
from model_specs.gitops_state import DesiredStack, PlanItem, compare, list_model_stacks, to_prune
from model_specs.registry import api_key_secret_name
from serving.gitops.builds import StepError, log
from serving.gitops.keys import delete_own_api_key

ARTIFACT_PARAMETERS = ("EngineImageUri", "ModelDataS3Uri")
SessionFor = Callable[[PlanTarget], tuple[Any, str]]


def recorded_targets(ssm: Any, pipeline: str) -> list[PlanTarget]:
    try:
        value = ssm.get_parameter(Name=targets_parameter_name(pipeline))["Parameter"]["Value"]
    except ssm.exceptions.ParameterNotFound:
        return []
    return [PlanTarget(**t) for t in json.loads(value)]


def record_targets(ssm: Any, pipeline: str, targets: list[PlanTarget]) -> None:
    value = json.dumps([t.model_dump() for t in targets], sort_keys=True)
    ssm.put_parameter(
        Name=targets_parameter_name(pipeline),
        Value=value,
        Type="String",
        Overwrite=True,
        Description=f"Accounts and regions the EMD GitOps pipeline {pipeline} deploys to (its Prune step)",
    )


def desired_in(plan: GitOpsPlan, account: str, region: str, pipeline_account: str) -> list[DesiredStack]:
    return [
        DesiredStack(account, region, e.stack_name, e.route, e.deployment)
        for stage in plan.stages
        if (stage.target.account or pipeline_account) == account and stage.target.region == region
        for e in stage.entries
    ]


def removals(cfn: Any, plan: GitOpsPlan, account: str, region: str, pipeline_account: str) -> list[PlanItem]:
    deployed = list_model_stacks(cfn, account, region, read_specs_of=lambda _name, _tags: False)
    desired = desired_in(plan, account, region, pipeline_account)
    return to_prune(compare(desired, deployed, pipeline=plan.pipeline))


def remove(session: Any, item: PlanItem, pipeline: str) -> None:
    cfn = session.client("cloudformation")
    cfn.delete_stack(StackName=item.stack_name)
    cfn.get_waiter("stack_delete_complete").wait(
        StackName=item.stack_name, WaiterConfig={"Delay": 15, "MaxAttempts": 240}
    )
    model_id, _, tag = item.route.rpartition("/")
    if delete_own_api_key(session.client("secretsmanager"), api_key_secret_name(model_id, tag), pipeline):
        log(f"{item.route}: its API key secret deleted")
    ssm = session.client("ssm")
    names = [artifact_parameter_name(model_id, tag, p) for p in ARTIFACT_PARAMETERS]
    ssm.delete_parameters(Names=names)


def prune(plan: GitOpsPlan, pipeline_session: Any, session_for: SessionFor) -> list[PlanItem]:
    """Delete what left models.yaml; return what was deleted. StepError naming each stack that could "
    "not be."""
    ssm = pipeline_session.client("ssm")
    pipeline_account = plan.pipeline_account or str(
        pipeline_session.client("sts").get_caller_identity()["Account"]
    )
    visits: dict[tuple[str, str], PlanTarget] = {}
    for target in [*plan.targets, *recorded_targets(ssm, plan.pipeline)]:
        resolved = target.model_copy(update={"account": target.account or pipeline_account})
        visits.setdefault((str(resolved.account), resolved.region), resolved)
    deleted, problems, unfinished = [], [], []
    for (account, region), target in visits.items():
        session, _ = session_for(target)
        for item in removals(session.client("cloudformation"), plan, account, region, pipeline_account):
            log(f"prune {item.stack_name} ({item.route}) in {account}/{region}: not in models.yaml")
            try:
                remove(session, item, plan.pipeline)
                deleted.append(item)
            except Exception as exc:  # a failed deletion is reported, the others still run
                problems.append(f"{item.stack_name} in {account}/{region}: {type(exc).__name__}: {exc}")
                unfinished.append(target)
    current = {(t.account or pipeline_account, t.region) for t in plan.targets}
    keep = [t for k, t in visits.items() if k in current or t in unfinished]
    record_targets(ssm, plan.pipeline, keep)
    if problems:
        raise StepError("could not delete: " + "; ".join(problems))
    if not deleted:
        log("prune: nothing to remove")
    return deleted
