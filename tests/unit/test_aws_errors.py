"""botocore's errors as one line with the right exit code (2: the user's setup, 1: AWS failed), and the CLI
turning any of them into that line instead of a traceback."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ProfileNotFound,
)
from click.testing import CliRunner

from emd_cli.aws.errors import AWS, USER, explain, is_aws_error


def client_error(code: str, message: str, operation: str = "CreateChangeSet") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


def test_no_credentials_and_unknown_profile_are_the_users_to_fix():
    problem = explain(NoCredentialsError())
    assert (
        problem.exit_code == USER
        and "no AWS credentials" in problem.message
        and "--profile" in problem.message
    )
    assert explain(ProfileNotFound(profile="prod")).exit_code == USER
    assert explain(NoRegionError()).exit_code == USER


def test_access_denied_names_the_action():
    exc = client_error(
        "AccessDenied",
        "User: arn:aws:iam::123456789012:user/dev is not authorized to perform: "
        "cloudformation:CreateChangeSet on resource: EMD-Bootstrap",
    )
    problem = explain(exc, "us-east-1")
    assert problem.exit_code == USER
    assert "cloudformation:CreateChangeSet" in problem.message and "us-east-1" in problem.message
    assert "\n" not in problem.message


def test_access_denied_without_an_action_in_the_message_names_the_operation():
    problem = explain(client_error("AccessDeniedException", "denied", "StartPipelineExecution"))
    assert "StartPipelineExecution" in problem.message


@pytest.mark.parametrize("code", ["ExpiredToken", "ExpiredTokenException", "RequestExpired"])
def test_expired_token(code):
    problem = explain(client_error(code, "The security token included in the request is expired"))
    assert problem.exit_code == USER and "expired" in problem.message


def test_throttling_after_retries_is_an_aws_failure():
    problem = explain(client_error("ThrottlingException", "Rate exceeded", "DescribeStacks"))
    assert problem.exit_code == AWS and "DescribeStacks" in problem.message


def test_a_region_without_the_service():
    session = boto3.Session()
    service, region = "sagemaker-geospatial", "eu-west-1"
    offered = session.get_available_regions(service)
    assert offered and region not in offered
    exc = EndpointConnectionError(endpoint_url=f"https://{service}.{region}.amazonaws.com/")
    problem = explain(exc, region)
    assert problem.exit_code == USER and "not offered in eu-west-1" in problem.message


def test_an_unreachable_endpoint_is_a_network_problem():
    exc = EndpointConnectionError(endpoint_url="https://cloudformation.us-east-1.amazonaws.com/")
    problem = explain(exc, "us-east-1")
    assert problem.exit_code == AWS and "network" in problem.message


def test_other_errors_keep_their_code_and_message():
    problem = explain(client_error("ValidationError", "Stack X does not exist", "DescribeStacks"))
    assert problem.exit_code == AWS and "ValidationError: Stack X does not exist" in problem.message
    assert is_aws_error(NoCredentialsError()) and not is_aws_error(ValueError())


def test_the_cli_prints_one_line_not_a_traceback(monkeypatch):
    from emd_cli import main

    def no_credentials(*args, **kwargs):
        raise NoCredentialsError()

    monkeypatch.setattr("emd_cli.aws.session.AwsSession.client", no_credentials)
    result = CliRunner().invoke(main.cli, ["uninstall", "--region", "us-east-1", "--yes"])
    assert result.exit_code == 2
    assert "no AWS credentials" in result.output and "Traceback" not in result.output
