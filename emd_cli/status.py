"""`emd status`: every deployment of every target this emd has (local always; AWS when available, and never
an error for a user without AWS credentials): route, where, engine, stage, URL, uptime, PIDs, reason."""

from __future__ import annotations

import json
from typing import Any

import click

from emd_cli.errors import UserError
from emd_cli.options import json_option, profile_option, region_option


def _uptime(seconds: Any) -> str:
    if not isinstance(seconds, int):
        return "-"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s" if minutes else f"{secs}s"


def _pids(details: dict[str, Any]) -> str:
    pids = details.get("pids") or {}
    parts = []
    if pids.get("adapter"):
        parts.append(f"adapter {pids['adapter']}")
    if pids.get("engine"):
        parts.append("engine " + ",".join(str(p) for p in pids["engine"]))
    if pids.get("gateway"):
        parts.append(f"gateway {pids['gateway']}")
    return "\n".join(parts) or "-"


def _follow(route: str | None, region: str | None, profile: str | None) -> None:
    """Follow an AWS deployment's pipeline execution (stages, build phases, stack events) until it ends."""
    if route is None:
        raise click.UsageError("--follow needs a deployment: emd status <model-id>/<tag> --follow")
    from rich.console import Console

    from emd_cli.targets import aws_target

    aws_target(region=region, profile=profile).follow(route, Console(stderr=True, highlight=False))  # type: ignore[attr-defined]


STAGE_STYLE = {
    "in service": "green",
    "scaled to zero": "cyan",
    "starting": "yellow",
    "building": "yellow",
    "deploying": "yellow",
}


@click.command("status", short_help="List deployments: stage, URL, uptime, processes.")
@click.argument("route", required=False, metavar="[MODEL_ID/TAG]")
@json_option
@click.option(
    "--follow",
    is_flag=True,
    help="AWS: follow the deployment's running pipeline execution to its end first (needs MODEL_ID/TAG).",
)
@region_option
@profile_option
def status(route: str | None, as_json: bool, follow: bool, region: str | None, profile: str | None) -> None:
    """Show every deployment (or one): where it runs, its stage, base URL, uptime and, for local ones, the
    PIDs of the engine adapter, the engine and the gateway. Processes that died, or whose PID now belongs to
    another program, show as stopped with the reason. The API key is never shown.

    \b
    Examples:
      emd status
      emd status SmolLM2-135M-Instruct-GGUF/dev --json
      emd status Qwen2.5-7B-Instruct/dev --follow --region us-east-1
    """
    from emd_cli.targets import all_targets, normalize_route

    wanted = normalize_route(route) if route else None
    if follow:
        _follow(wanted, region, profile)
    rows = []
    problems = []
    for target in all_targets(region=region, profile=profile):
        try:
            rows += target.statuses(wanted)
        except Exception as exc:  # AWS without credentials must not hide the local deployments
            problems.append({"target": target.name, "error": _why_unavailable(exc)})
    if as_json:
        click.echo(
            json.dumps({"deployments": [r.to_json() for r in rows], "unavailable": problems}, indent=2)
        )
        return
    if not rows and wanted:
        unchecked = "".join(f" ({p['target']} not checked: {p['error']})" for p in problems)
        raise UserError(f"no deployment {wanted}{unchecked}")
    for p in problems:
        click.echo(f"note: {p['target']} deployments not listed: {p['error']}", err=True)
    if not rows:
        click.echo("No deployments. Try: emd deploy --model-id SmolLM2-135M-Instruct-GGUF -s local")
        return
    from rich.table import Table

    from emd_cli.render import console

    table = Table(title="EMD deployments")
    for col in ("route", "where", "engine", "stage", "base URL", "cost", "uptime", "PIDs"):
        table.add_column(col, overflow="fold", no_wrap=col != "PIDs")
    for r in rows:
        where = "local" if r.target == "local" else f"{r.service_type} {r.instance_type or ''}".strip()
        stage = f"[{STAGE_STYLE.get(r.stage, 'red')}]{r.stage}[/]"
        table.add_row(
            r.route,
            where,
            r.engine_type,
            stage,
            r.base_url or "-",
            r.hourly_cost or "-",
            _uptime(r.details.get("uptime_seconds")),
            _pids(r.details),
        )
    out = console()
    out.print(table)
    for r in rows:
        if r.reason:
            out.print(f"{r.route}: {r.stage}: {r.reason}")
    for note in _internal_gateway_notes(rows):
        out.print(note)


def _internal_gateway_notes(rows: list[Any]) -> list[str]:
    """One line per region whose AWS deployments sit behind an internal gateway: what to do from outside its
    VPC (the base URLs shown are reachable from the VPC only)."""
    from emd_cli.exposure import INTERNAL, outside_vpc_advice

    behind: dict[str, list[Any]] = {}
    for r in rows:
        if r.target == "aws" and r.base_url and r.details.get("gateway_exposure") == INTERNAL:
            behind.setdefault(r.details.get("region") or "?", []).append(r)
    notes = []
    for region, found in sorted(behind.items()):
        realtime = any(r.service_type == "sagemaker_realtime" for r in found)
        advice = outside_vpc_advice(region, sagemaker_direct=realtime)
        notes.append(
            f"note: the gateway {found[0].base_url} is internal, reachable from its VPC only. From "
            f"elsewhere: {advice}"
        )
    return notes


def _why_unavailable(exc: Exception) -> str:
    """AWS's one line (no credentials: what to run) for an AWS error; the exception's own text otherwise."""
    from emd_cli.aws.errors import explain, is_aws_error

    return explain(exc).message if is_aws_error(exc) else f"{type(exc).__name__}: {exc}"
