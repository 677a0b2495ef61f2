"""One boto3 session per command: --region/--profile, short timeouts, adaptive retries for throttling.

Every client comes from `AwsSession.client`, so the settings are the same everywhere and nothing else in
the CLI builds a boto3 client. Endpoints follow boto3's own configuration (AWS_ENDPOINT_URL,
AWS_ENDPOINT_URL_<SERVICE>), which is how the tests point the CLI at moto.
"""

from __future__ import annotations

import os
from functools import cached_property
from typing import Any

import boto3
from botocore.config import Config

from model_specs.regions import RegionInfo, region_info

CONNECT_TIMEOUT_S = 5
READ_TIMEOUT_S = 60
RUNTIME_READ_TIMEOUT_S = 600
MAX_ATTEMPTS = 5
DEFAULT_POLL_SECONDS = 5.0


def poll_seconds() -> float:
    """How often commands that follow AWS work (stacks, builds, pipelines) ask again: EMD_POLL_SECONDS."""
    try:
        return max(float(os.environ.get("EMD_POLL_SECONDS", DEFAULT_POLL_SECONDS)), 0.05)
    except ValueError:
        return DEFAULT_POLL_SECONDS


def client_config(service: str = "") -> Config:
    """Short connect timeout, adaptive retries (client-side rate limiting + backoff on throttling) unless
    AWS_RETRY_MODE / AWS_MAX_ATTEMPTS say otherwise."""
    retries: dict[str, Any] = {
        "mode": os.environ.get("AWS_RETRY_MODE") or "adaptive",
        "max_attempts": int(os.environ.get("AWS_MAX_ATTEMPTS") or MAX_ATTEMPTS),
    }
    return Config(
        connect_timeout=CONNECT_TIMEOUT_S,
        # model answers (SageMaker's runtime) take longer than control-plane calls
        read_timeout=RUNTIME_READ_TIMEOUT_S if service == "sagemaker-runtime" else READ_TIMEOUT_S,
        retries=retries,  # type: ignore[arg-type]
        user_agent_extra="emd-cli",
    )


class AwsSession:
    """A region (validated against model_specs.regions, China included) and an optional named profile, or
    the temporary credentials of an assumed role (`assume_role`)."""

    def __init__(
        self, region: str, profile: str | None = None, *, credentials: dict[str, str] | None = None
    ) -> None:
        self.region_info: RegionInfo = region_info(region)
        self.region = self.region_info.name
        self.profile = profile
        self._credentials = credentials
        self._clients: dict[str, Any] = {}
        self._regions: dict[str, AwsSession] = {self.region: self}

    @cached_property
    def boto(self) -> boto3.Session:
        # raises botocore ProfileNotFound for an unknown profile (explained by emd_cli.aws.errors)
        if self._credentials is not None:
            return boto3.Session(region_name=self.region, **self._credentials)
        return boto3.Session(profile_name=self.profile, region_name=self.region)

    def in_region(self, region: str) -> AwsSession:
        """The same identity in another region (one session per region, reused)."""
        if region not in self._regions:
            self._regions[region] = AwsSession(region, self.profile, credentials=self._credentials)
        return self._regions[region]

    def assume_role(self, role_arn: str, session_name: str) -> AwsSession:
        """A session in this region acting through `role_arn` (another account's role, e.g. GitOps')."""
        creds = self.client("sts").assume_role(RoleArn=role_arn, RoleSessionName=session_name)["Credentials"]
        return AwsSession(
            self.region,
            credentials={
                "aws_access_key_id": creds["AccessKeyId"],
                "aws_secret_access_key": creds["SecretAccessKey"],
                "aws_session_token": creds["SessionToken"],
            },
        )

    @property
    def partition(self) -> str:
        return self.region_info.partition

    @property
    def url_suffix(self) -> str:
        return self.region_info.url_suffix

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.boto.client(service, config=client_config(service))
        return self._clients[service]

    @cached_property
    def account_id(self) -> str:
        return str(self.client("sts").get_caller_identity()["Account"])

    def arn(self, service: str, resource: str, *, region: bool = True, account: bool = True) -> str:
        """arn:<partition>:<service>:<region>:<account>:<resource> for this session."""
        return (
            f"arn:{self.partition}:{service}:{self.region if region else ''}:"
            f"{self.account_id if account else ''}:{resource}"
        )
