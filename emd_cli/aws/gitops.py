"""What `emd gitops` reads and checks in AWS: the CDK bootstrap that CDK Pipelines needs, a CodeCommit source,
the targets the pipeline recorded, and the EMD model stacks deployed in a target (in the caller's account, or
in another one through the pipeline's target role)."""

from __future__ import annotations

import json

from emd_cli.aws.session import AwsSession
from model_specs.errors import EmdUserError
from model_specs.gitops import GITOPS_TAG_KEY, PlanTarget, target_role_name, targets_parameter_name
from model_specs.gitops_state import DeployedStack, list_model_stacks

CDK_QUALIFIER = "hnb659fds"
CDK_BOOTSTRAP_VERSION_PARAMETER = f"/cdk-bootstrap/{CDK_QUALIFIER}/version"
PLAN_SESSION_NAME = "emd-gitops-plan"


def staging_bucket(aws: AwsSession) -> str:
    """The file-asset bucket `cdk bootstrap` creates (default qualifier) in this account and region."""
    return f"cdk-{CDK_QUALIFIER}-assets-{aws.account_id}-{aws.region}"


def require_cdk_bootstrap(aws: AwsSession) -> None:
    ssm = aws.client("ssm")
    try:
        ssm.get_parameter(Name=CDK_BOOTSTRAP_VERSION_PARAMETER)
    except ssm.exceptions.ParameterNotFound:
        where = f"aws://{aws.account_id}/{aws.region}"
        raise EmdUserError(
            f"account {aws.account_id} is not CDK-bootstrapped in {aws.region} (no "
            f"{CDK_BOOTSTRAP_VERSION_PARAMETER}): run `npx cdk bootstrap {where}` first "
            "(CDK Pipelines needs it)"
        ) from None


def require_codecommit_repository(aws: AwsSession, name: str) -> None:
    cc = aws.client("codecommit")
    try:
        cc.get_repository(repositoryName=name)
    except cc.exceptions.RepositoryDoesNotExistException:
        raise EmdUserError(
            f"CodeCommit repository {name!r} does not exist in {aws.region}: create it "
            f"(aws codecommit create-repository --repository-name {name}) or check --source"
        ) from None


def recorded_targets(aws: AwsSession, pipeline: str) -> list[PlanTarget]:
    """Targets the pipeline's Prune step recorded (none before its first run)."""
    ssm = aws.client("ssm")
    try:
        value = ssm.get_parameter(Name=targets_parameter_name(pipeline))["Parameter"]["Value"]
    except ssm.exceptions.ParameterNotFound:
        return []
    return [PlanTarget(**t) for t in json.loads(value)]


def plan_target(account: str | None, region: str, pipeline: str) -> PlanTarget:
    return PlanTarget(account=account, region=region, role_name=target_role_name(pipeline, region))


def target_session(aws: AwsSession, target: PlanTarget) -> AwsSession:
    """The caller's own identity in the target's region when the target is in its account; otherwise the
    pipeline's target role there."""
    local = aws.in_region(target.region)
    if target.account in (None, aws.account_id):
        return local
    return local.assume_role(target.role_arn(target.account), PLAN_SESSION_NAME)


def deployed_stacks(
    aws: AwsSession, account: str, *, pipeline: str, desired_names: set[str]
) -> list[DeployedStack]:
    """The EMD model stacks of the session's account and region; the deployment spec is read for this
    pipeline's stacks and the ones models.yaml names."""
    return list_model_stacks(
        aws.client("cloudformation"),
        account,
        aws.region,
        read_specs_of=lambda name, tags: tags.get(GITOPS_TAG_KEY) == pipeline or name in desired_names,
    )
