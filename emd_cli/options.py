"""Options shared by commands: the default region, and missing required values (prompt on a TTY only). A
--region or --profile that does not exist is refused while the flags are read (exit 2, before any work)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import click

DEFAULT_REGION = "us-east-1"


def default_region(given: str | None) -> str:
    """--region, else AWS_REGION / AWS_DEFAULT_REGION, else us-east-1."""
    return given or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION


def interactive() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def require(value: str | None, flag: str, choices: Callable[[], Iterable[str]]) -> str:
    """The flag's value; when missing, ask (questionary) on a terminal, else a usage error (exit 2)."""
    if value:
        return value
    options = list(choices())
    if interactive():
        import questionary

        answer = questionary.select(f"{flag}:", choices=options).ask()
        if answer:
            return str(answer)
    shown = ", ".join(options[:12]) + (f", … ({len(options)} in all)" if len(options) > 12 else "")
    raise click.UsageError(f"Missing option '{flag}'. Accepted: {shown}")


def _known_region(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value:
        from model_specs.regions import region_info

        region_info(value)  # EmdUserError: unknown region, did you mean
    return value


def _known_profile(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value:
        from emd_cli.aws.session import AwsSession

        # botocore raises ProfileNotFound for an unconfigured profile: one line (emd_cli.aws.errors), exit 2
        AwsSession(DEFAULT_REGION, value).boto  # noqa: B018
    return value


region_option = click.option(
    "--region",
    metavar="REGION",
    callback=_known_region,
    help="AWS region. Default: AWS_REGION, else AWS_DEFAULT_REGION, else us-east-1.",
)
dockerfile_option = click.option(
    "--dockerfile-local-path",
    "dockerfile_path",
    type=click.Path(path_type=Path),
    metavar="PATH",
    help="Your Dockerfile, built by the build stage on top of the EMD engine image (FROM ${EMD_BASE_IMAGE}, "
    "or no FROM); sets engine_params.dockerfile. Not with -s local.",
)
model_tag_option = click.option(
    "--model-tag", default="dev", show_default=True, help="Deployment tag: clients call <model-id>/<tag>."
)
hours_per_day_option = click.option(
    "--hours-per-day",
    type=click.FloatRange(0, 24),
    default=24,
    show_default=True,
    help="Hours per day the target runs, for the monthly cost (hourly x hours x 30).",
)
json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print machine-readable JSON instead of a table."
)
profile_option = click.option(
    "--profile",
    metavar="PROFILE",
    callback=_known_profile,
    help="AWS named profile (AWS deployments). Default: AWS_PROFILE, else the default chain.",
)
target_option = click.option(
    "--target", type=click.Choice(["local", "aws"]), help="Where the deployment runs, when both have it."
)
yes_option = click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")


def confirm(message: str, yes: bool) -> bool:
    """--yes, or the user's answer on a terminal; without a terminal, a usage error asking for --yes."""
    if yes:
        return True
    if not interactive():
        raise click.UsageError(f"{message} Pass --yes to confirm in a non-interactive shell.")
    return click.confirm(message, default=False)
