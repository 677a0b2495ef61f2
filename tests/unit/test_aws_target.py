"""The AWS target's pure parts: routes, where a deployment is from its stack and its latest execution, the
hourly cost, and a gateway this machine cannot reach."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from rich.console import Console

from emd_cli.aws.pipeline import ActionView
from emd_cli.targets.aws import AwsTarget, _endpoint_stage, _hourly_cost, _stage, parse_route, stack_name_of
from emd_cli.targets.base import Endpoint, Stage
from model_specs.errors import EmdUserError
from tests.support.servers import free_port


def execution(status: str) -> SimpleNamespace:
    return SimpleNamespace(id="e1", status=status)


def action(stage: str, error: str | None = None) -> ActionView:
    return ActionView(stage, "A", "Failed" if error else "InProgress", "CodeBuild", None, error, None)


def test_routes():
    assert parse_route("Qwen2.5-7B-Instruct/prod") == ("Qwen2.5-7B-Instruct", "prod")
    assert parse_route("Qwen2.5-7B-Instruct") == ("Qwen2.5-7B-Instruct", "dev")
    assert stack_name_of("Qwen2.5-7B-Instruct") == stack_name_of("Qwen2.5-7B-Instruct/dev")
    with pytest.raises(EmdUserError, match="<model-id>/<tag>"):
        parse_route("/prod")


@pytest.mark.parametrize(
    ("stack", "latest", "act", "stage"),
    [
        (None, execution("InProgress"), action("Build"), Stage.BUILDING),
        ({"StackStatus": "CREATE_IN_PROGRESS"}, execution("InProgress"), action("Deploy"), Stage.DEPLOYING),
        ({"StackStatus": "CREATE_COMPLETE"}, execution("Succeeded"), None, Stage.IN_SERVICE),
        ({"StackStatus": "UPDATE_COMPLETE"}, None, None, Stage.IN_SERVICE),
        ({"StackStatus": "DELETE_IN_PROGRESS"}, None, None, Stage.DELETING),
        (
            {"StackStatus": "ROLLBACK_COMPLETE"},
            execution("Failed"),
            action("Deploy", "stack failed"),
            Stage.FAILED,
        ),
    ],
)
def test_stage_from_stack_and_execution(stack, latest, act, stage):
    assert _stage(stack, latest, act)[0] == stage


def test_a_failed_build_says_where_and_why():
    stage, reason = _stage(None, execution("Failed"), action("Build", "Build terminated: PRE_BUILD"))
    assert (
        stage == Stage.FAILED
        and reason == "last deployment failed in the Build stage: Build terminated: PRE_BUILD"
    )
    stage, reason = _stage({"StackStatus": "UPDATE_COMPLETE"}, execution("Failed"), action("Build", "x"))
    assert stage == Stage.IN_SERVICE and "failed" in (reason or "")  # the previous version still serves


def test_a_sagemaker_endpoint_refines_in_service():
    assert _endpoint_stage({"EndpointStatus": "Creating"}, None)[0] == Stage.DEPLOYING
    assert _endpoint_stage({"EndpointStatus": "Failed", "FailureReason": "no capacity"}, None) == (
        Stage.FAILED,
        "no capacity",
    )


def test_hourly_cost_comes_from_the_price_book():
    assert _hourly_cost("us-east-1", "g5.2xlarge", "sagemaker_realtime") == "$1.515/h"
    assert _hourly_cost("cn-north-1", "g4dn.xlarge", "ec2").startswith("¥")  # type: ignore[union-attr]
    assert _hourly_cost("us-east-1", None, "ec2") is None


def test_an_unreachable_gateway_ends_the_wait_soon(monkeypatch: pytest.MonkeyPatch):
    import emd_cli.targets.aws as aws_target

    pauses: list[float] = []  # the waits between tries, recorded instead of slept
    monkeypatch.setattr(aws_target.time, "sleep", pauses.append)
    endpoint = Endpoint("m/dev", "aws", f"http://127.0.0.1:{free_port()}/v1", "m/dev", "llm", "k")
    notes = AwsTarget("us-east-1")._wait_until_served(endpoint, Console(quiet=True))
    assert sum(pauses) < 30  # a few refused connections, not the 300 s wait for the route
    assert len(notes) == 1 and "not reachable from this machine" in notes[0]


def test_an_internal_gateway_out_of_reach_names_the_ways_around_it():
    from emd_cli.invoke import around_an_internal_gateway
    from emd_cli.targets.base import TargetError

    closed = f"http://127.0.0.1:{free_port()}/v1"
    ecs = Endpoint(
        "m/dev", "aws", closed, "m/dev", "llm", "k", region="us-east-1", gateway_exposure="internal"
    )
    with pytest.raises(TargetError) as info:
        around_an_internal_gateway(ecs)
    message = str(info.value)
    assert f"the gateway {closed} is internal (reachable from its VPC only)" in message
    assert "emd bootstrap --region us-east-1 --cloudfront" in message and "inside its VPC" in message
    china = Endpoint(
        "m/dev", "aws", closed, "m/dev", "llm", "k", region="cn-north-1", gateway_exposure="internal"
    )
    with pytest.raises(TargetError, match="--certificate-arn") as info:
        around_an_internal_gateway(china)
    assert "--cloudfront" not in str(info.value)
    public = Endpoint("m/dev", "aws", closed, "m/dev", "llm", "k", gateway_exposure="cloudfront")
    assert around_an_internal_gateway(public) is public  # not internal: the usual connection error applies
