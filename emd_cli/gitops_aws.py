"""Every AWS call of `emd gitops` (boto3), in one module so it can move onto the CLI's shared boto3 layer
(emd_cli.aws) when that lands: sessions per target, the CDK bootstrap check, uploads to the CDK staging
bucket, stack deploys through change sets, and the deployed model stacks that `emd gitops plan` compares with.

Endpoints follow boto3's configuration (AWS_ENDPOINT_URL), which is how the tests point it at moto.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from model_specs.gitops import GITOPS_TAG_KEY, PlanTarget, target_role_name, targets_parameter_name
from model_specs.gitops_state import DeployedStack, list_model_stacks
from model_specs.regions import region_info

CDK_QUALIFIER = "hnb659fds"
CDK_BOOTSTRAP_VERSION_PARAMETER = f"/cdk-bootstrap/{CDK_QUALIFIER}/version"
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]
_CONFIG = Config(connect_timeout=5, read_timeout=60, retries={"mode": "adaptive", "max_attempts": 8})


class GitOpsAwsError(Exception):
    """Something the user must fix in their account (one line), e.g. no CDK bootstrap."""


def session(region: str, profile: str | None = None) -> boto3.Session:
    return boto3.Session(profile_name=profile, region_name=region)


def client(sess: boto3.Session, service: str, region: str | None = None) -> Any:
    return sess.client(service, region_name=region or sess.region_name, config=_CONFIG)


def account_id(sess: boto3.Session) -> str:
    return str(client(sess, "sts").get_caller_identity()["Account"])


def staging_bucket(account: str, region: str) -> str:
    """The file-asset bucket `cdk bootstrap` creates (default qualifier)."""
    return f"cdk-{CDK_QUALIFIER}-assets-{account}-{region}"


def require_cdk_bootstrap(sess: boto3.Session, account: str, region: str) -> None:
    ssm = client(sess, "ssm", region)
    try:
        ssm.get_parameter(Name=CDK_BOOTSTRAP_VERSION_PARAMETER)
    except ssm.exceptions.ParameterNotFound:
        raise GitOpsAwsError(
            f"account {account} is not CDK-bootstrapped in {region} (no {CDK_BOOTSTRAP_VERSION_PARAMETER}): "
            f"run `npx cdk bootstrap aws://{account}/{region}` first (CDK Pipelines needs it)"
        ) from None


def require_codecommit_repository(sess: boto3.Session, name: str) -> None:
    cc = client(sess, "codecommit")
    try:
        cc.get_repository(repositoryName=name)
    except cc.exceptions.RepositoryDoesNotExistException:
        raise GitOpsAwsError(
            f"CodeCommit repository {name!r} does not exist in {sess.region_name}: create it "
            f"(aws codecommit create-repository --repository-name {name}) or check --source"
        ) from None


def upload(sess: boto3.Session, bucket: str, key: str, body: bytes, region: str | None = None) -> str:
    """Put an object; return its s3:// URI."""
    client(sess, "s3", region).put_object(Bucket=bucket, Key=key, Body=body)
    return f"s3://{bucket}/{key}"


def template_url(bucket: str, key: str, region: str) -> str:
    return f"https://s3.{region}.{region_info(region).url_suffix}/{bucket}/{key}"


@dataclass(frozen=True)
class StackDeploy:
    name: str
    region: str
    tags: dict[str, str]
    template_url: str | None = None  # one of the two
    template_body: str | None = None


def deploy_stack(
    sess: boto3.Session, stack: StackDeploy, say: Callable[[str], None], poll: float = 5.0
) -> str:
    """Create or update through a change set and wait; return the final status ('unchanged' when nothing
    changed). GitOpsAwsError with CloudFormation's reason when it fails."""
    cfn = client(sess, "cloudformation", stack.region)
    exists = _stack_status(cfn, stack.name) not in (None, "REVIEW_IN_PROGRESS")
    change_set = create_change_set(cfn, stack, exists, poll)
    if change_set is None:
        return "unchanged"
    say(f"{stack.name} ({stack.region}): {'updating' if exists else 'creating'}")
    return execute_change_set(cfn, stack.name, change_set, poll)


def create_change_set(cfn: Any, stack: StackDeploy, exists: bool, poll: float) -> str | None:
    """The change set's name once CloudFormation has computed it; None when there is nothing to change."""
    name = f"emd-gitops-{int(time.time())}"
    template = (
        {"TemplateURL": stack.template_url} if stack.template_url else {"TemplateBody": stack.template_body}
    )
    cfn.create_change_set(
        StackName=stack.name,
        ChangeSetName=name,
        ChangeSetType="UPDATE" if exists else "CREATE",
        Capabilities=CAPABILITIES,
        Tags=[{"Key": k, "Value": v} for k, v in sorted(stack.tags.items())],
        **template,
    )
    while True:
        cs = cfn.describe_change_set(StackName=stack.name, ChangeSetName=name)
        if cs["Status"] not in ("CREATE_PENDING", "CREATE_IN_PROGRESS"):
            break
        time.sleep(poll)
    if cs["Status"] == "FAILED":
        reason = cs.get("StatusReason", "")
        if "didn't contain changes" in reason or "No updates" in reason:
            cfn.delete_change_set(StackName=stack.name, ChangeSetName=name)
            return None
        raise GitOpsAwsError(f"{stack.name}: change set failed: {reason}")
    return name


def execute_change_set(cfn: Any, stack_name: str, change_set: str, poll: float) -> str:
    cfn.execute_change_set(StackName=stack_name, ChangeSetName=change_set)
    while True:
        status = _stack_status(cfn, stack_name) or "DELETE_COMPLETE"
        if not status.endswith("_IN_PROGRESS"):
            break
        time.sleep(poll)
    if status not in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
        raise GitOpsAwsError(f"{stack_name}: {status}: {_first_failure(cfn, stack_name)}")
    return status


def _stack_status(cfn: Any, name: str) -> str | None:
    try:
        return str(cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"])
    except cfn.exceptions.ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise


def _first_failure(cfn: Any, name: str) -> str:
    events = cfn.describe_stack_events(StackName=name).get("StackEvents", [])
    for event in reversed(events):
        if event.get("ResourceStatus", "").endswith("FAILED"):
            return f"{event.get('LogicalResourceId')}: {event.get('ResourceStatusReason', '')}"
    return "see the stack's events"


def stack_outputs(sess: boto3.Session, name: str) -> dict[str, str]:
    cfn = client(sess, "cloudformation")
    stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


# ---------------------------------------------------------------- what is deployed (emd gitops plan)


def target_session(sess: boto3.Session, caller_account: str, target: PlanTarget) -> tuple[boto3.Session, str]:
    """The caller's own session in its account; another account through the GitOps target role."""
    account = target.account or caller_account
    if account == caller_account:
        return sess, account  # clients take the target's region (client(sess, service, region))
    arn = f"arn:{region_info(target.region).partition}:iam::{account}:role/{target.role_name}"
    creds = client(sess, "sts", target.region).assume_role(RoleArn=arn, RoleSessionName="emd-gitops-plan")[
        "Credentials"
    ]
    return boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name=target.region,
    ), account


def recorded_targets(sess: boto3.Session, pipeline: str) -> list[PlanTarget]:
    """Targets the pipeline's Prune step recorded (none before its first run)."""
    ssm = client(sess, "ssm")
    try:
        value = ssm.get_parameter(Name=targets_parameter_name(pipeline))["Parameter"]["Value"]
    except ssm.exceptions.ParameterNotFound:
        return []
    return [PlanTarget(**t) for t in json.loads(value)]


def deployed_stacks(
    sess: boto3.Session, account: str, region: str, *, pipeline: str, desired_names: set[str]
) -> list[DeployedStack]:
    """The EMD model stacks of one target; the deployment spec is read for this pipeline's stacks and the
    ones models.yaml names."""
    return list_model_stacks(
        client(sess, "cloudformation", region),
        account,
        region,
        read_specs_of=lambda name, tags: tags.get(GITOPS_TAG_KEY) == pipeline or name in desired_names,
    )


def plan_target(account: str | None, region: str, pipeline: str) -> PlanTarget:
    return PlanTarget(account=account, region=region, role_name=target_role_name(pipeline, region))
