"""Deployment targets behind the lifecycle commands: `base` (the contract), `local` (this machine) and `aws`
(pipeline + CloudFormation). May import model_specs and, lazily, emd_stacks and boto3."""

from __future__ import annotations

from typing import Any

from emd_cli.targets.base import Target
from model_specs.errors import EmdUserError

LOCAL = "local"
TARGET_NAMES = ("local", "aws")


def aws_available() -> bool:
    """Whether this emd has the AWS target (emd_cli.targets.aws)."""
    import importlib.util

    return importlib.util.find_spec("emd_cli.targets.aws") is not None


def aws_target(**options: Any) -> Target:
    """The AWS target (every service type but local); options: region, profile."""
    if not aws_available():
        raise EmdUserError(
            "AWS deployments are not available in this version of emd; deploy on this machine with -s local"
        )
    from emd_cli.targets.aws import AwsTarget

    return AwsTarget(**options)  # type: ignore[no-any-return]


def local_target(**options: Any) -> Target:
    from emd_cli.targets.local import LocalTarget

    return LocalTarget(**options)


def target_for(service_type: str, **options: Any) -> Target:
    """LocalTarget for `local` (options: port, ready_timeout), else AwsTarget (options: region, profile)."""
    return local_target(**options) if service_type == LOCAL else aws_target(**options)


def target_named(name: str, **options: Any) -> Target:
    return local_target(**options) if name == LOCAL else aws_target(**options)


def all_targets(**aws_options: Any) -> list[Target]:
    """The local target, then the AWS one when this emd has it."""
    targets: list[Target] = [local_target()]
    if aws_available():
        targets.append(aws_target(**aws_options))
    return targets


def normalize_route(route: str) -> str:
    """'<model-id>/<tag>', or '<model-id>' for tag dev (as the gateway accepts it)."""
    from model_specs.registry import DEFAULT_TAG

    route = route.strip()
    return route if "/" in route else f"{route}/{DEFAULT_TAG}"


def find_target(route: str, target: str | None = None, **aws_options: Any) -> Target:
    """The target that holds `route`: the local state first, then AWS (when this emd has it). The same route
    on both asks for --target; an AWS lookup that fails (no credentials …) only matters when the route is not
    local."""
    if target is not None:
        chosen = target_named(target, **aws_options)
        if chosen.endpoint(route) is None:
            raise EmdUserError(_not_found(route, f"no {target} deployment {route!r}"))
        return chosen
    local = local_target()
    found = [local] if local.endpoint(route) is not None else []
    aws_problem = ""
    if aws_available():
        try:
            aws = aws_target(**aws_options)
            if aws.endpoint(route) is not None:
                found.append(aws)
        except EmdUserError as exc:
            aws_problem = f" (AWS not checked: {exc})"
        except Exception as exc:  # no credentials, no network: the local answer stands
            aws_problem = f" (AWS not checked: {type(exc).__name__}: {exc})"
    if len(found) > 1:
        raise EmdUserError(
            f"{route} is deployed both on this machine and on AWS: add --target local or --target aws"
        )
    if not found:
        raise EmdUserError(_not_found(route, f"no deployment {route!r}{aws_problem}"))
    return found[0]


def _not_found(route: str, first: str) -> str:
    from emd_cli.targets.local import LocalTarget

    return LocalTarget().not_found_message(route, first)
