"""botocore's errors as one clear line: what went wrong and what to do, with the exit code the CLI uses
(2: the user's setup — credentials, permissions, region, profile; 1: AWS itself failed).

The CLI's command group calls `explain` for any exception raised from botocore/boto3, so commands never
print a botocore traceback.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import click

from emd_cli.errors import UserError

USER, AWS = 2, 1

_ACCESS_DENIED = {
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "AuthorizationError",
    "UnauthorizedException",
    "AuthorizationErrorException",
}
_EXPIRED = {"ExpiredToken", "ExpiredTokenException", "RequestExpired", "TokenRefreshRequired"}
_BAD_CREDENTIALS = {
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "InvalidAccessKeyId",
    "AuthFailure",
}
_THROTTLED = {"Throttling", "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded"}
_ACTION = re.compile(r"perform: ([A-Za-z0-9-]+:[A-Za-z0-9*]+)")
_HOST_SERVICE = re.compile(r"https?://([a-z0-9-]+)\.")


@dataclass(frozen=True)
class AwsProblem:
    message: str
    exit_code: int

    def as_click(self) -> click.ClickException:
        exc = UserError(self.message) if self.exit_code == USER else click.ClickException(self.message)
        return exc


class AwsFailure(click.ClickException):
    """Something EMD asked AWS to do failed (a stack, a build, a pipeline execution): exit code 1."""

    exit_code = AWS


def is_aws_error(exc: BaseException) -> bool:
    return type(exc).__module__.split(".")[0] in ("botocore", "boto3")


def error_code(exc: BaseException) -> str | None:
    """AWS's error code of a botocore ClientError ('NoSuchBucket' …); None for any other exception."""
    response = getattr(exc, "response", None)
    if not is_aws_error(exc) or not isinstance(response, dict):
        return None
    return str(response.get("Error", {}).get("Code") or "") or None


def explain(exc: BaseException, region: str | None = None) -> AwsProblem:
    """One line for any botocore/boto3 exception (unknown ones keep their own text, exit 1)."""
    from botocore import exceptions as bx

    if isinstance(exc, bx.NoCredentialsError | bx.PartialCredentialsError):
        return AwsProblem(
            "no AWS credentials found: run `aws configure` (or `aws sso login`), set AWS_PROFILE, or pass "
            "--profile",
            USER,
        )
    if isinstance(exc, bx.ProfileNotFound):
        return AwsProblem(f"{exc}: pass a profile listed by `aws configure list-profiles`", USER)
    if isinstance(exc, bx.NoRegionError):
        return AwsProblem("no AWS region: pass --region or set AWS_REGION", USER)
    if isinstance(exc, bx.TokenRetrievalError | bx.SSOTokenLoadError | bx.UnauthorizedSSOTokenError):
        return AwsProblem(f"the AWS SSO session expired: run `aws sso login` ({exc})", USER)
    if isinstance(exc, bx.EndpointConnectionError | bx.ConnectTimeoutError):
        return _unreachable(exc, region)
    client_error = _client_error(exc)
    if client_error is not None:
        return _explain_client_error(client_error, region)
    return AwsProblem(f"AWS request failed: {exc}", AWS)


def _client_error(exc: BaseException):  # type: ignore[no-untyped-def]
    """The ClientError itself, or the one a boto3 transfer error wraps."""
    from botocore.exceptions import ClientError

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ClientError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _explain_client_error(exc, region: str | None) -> AwsProblem:  # type: ignore[no-untyped-def]
    error = exc.response.get("Error", {})
    code, message = str(error.get("Code", "")), str(error.get("Message", "")).strip()
    operation = exc.operation_name
    where = f" in {region}" if region else ""
    if code in _ACCESS_DENIED:
        found = _ACTION.search(message)
        action = found.group(1) if found else operation
        return AwsProblem(
            f"access denied: your AWS identity may not call {action}{where}; ask an administrator to allow "
            f"it (or use another --profile)",
            USER,
        )
    if code in _EXPIRED:
        return AwsProblem(
            "the AWS session token has expired: refresh your credentials (`aws sso login`, or new temporary "
            "keys) and run the command again",
            USER,
        )
    if code in _BAD_CREDENTIALS:
        return AwsProblem(
            f"AWS rejected the credentials ({code}): check the access key, or the --profile in use", USER
        )
    if code in _THROTTLED:
        return AwsProblem(f"AWS kept throttling {operation}{where} after retries: try again in a minute", AWS)
    if code in ("OptInRequired", "SubscriptionRequiredException"):
        return AwsProblem(f"the service behind {operation} is not enabled for this account{where}", USER)
    return AwsProblem(f"AWS {operation} failed{where}: {code}: {message}".rstrip(": "), AWS)


def _unreachable(exc: BaseException, region: str | None) -> AwsProblem:
    import boto3

    url = str(getattr(exc, "kwargs", {}).get("endpoint_url", "")) or str(exc)
    host = _HOST_SERVICE.search(url)
    service = host.group(1) if host else None
    if region and service:
        session = boto3.Session()
        partition = session.get_partition_for_region(region)
        offered = session.get_available_regions(_boto_service_name(service), partition_name=partition)
        if offered and region not in offered:
            return AwsProblem(
                f"{service} is not offered in {region}: choose another --region (it is offered in e.g. "
                f"{', '.join(sorted(offered)[:4])})",
                USER,
            )
    return AwsProblem(f"could not reach {url}: check the network (proxy, VPN) and try again", AWS)


def _boto_service_name(endpoint_prefix: str) -> str:
    """Endpoint host prefix to the boto3 service name where they differ."""
    names = {"runtime.sagemaker": "sagemaker-runtime", "api.ecr": "ecr", "servicequotas": "service-quotas"}
    return names.get(endpoint_prefix, endpoint_prefix)
