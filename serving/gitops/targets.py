"""A boto3 session in a target account and region: the pipeline's steps assume the role that EMD-GitOps-Target
created there (model_specs.gitops.target_role_name). Endpoints follow boto3's own configuration
(AWS_ENDPOINT_URL), which is how the tests point the steps at moto."""

from __future__ import annotations

from typing import Any

import boto3

from model_specs.gitops import PlanTarget

SESSION_NAME = "emd-gitops"


def current_account(base: boto3.Session) -> str:
    return str(base.client("sts").get_caller_identity()["Account"])


def target_session(target: PlanTarget, base: boto3.Session | None = None) -> tuple[boto3.Session, str]:
    """(session acting through the target's role, the target's account)."""
    base = base or boto3.Session(region_name=target.region)
    account = target.account or current_account(base)
    creds: dict[str, Any] = base.client("sts", region_name=target.region).assume_role(
        RoleArn=target.role_arn(account), RoleSessionName=SESSION_NAME
    )["Credentials"]
    session = boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name=target.region,
    )
    return session, account
