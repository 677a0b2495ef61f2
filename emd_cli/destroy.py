"""`emd destroy`: remove one deployment and everything created for it (processes, port, state, key; on AWS
its stack and secret), and say what could not be removed (exit 1 then)."""

from __future__ import annotations

import click

from emd_cli.options import interactive, profile_option, region_option, target_option


@click.command("destroy", short_help="Remove a deployment and everything created for it.")
@click.argument("route", metavar="MODEL_ID/TAG")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@target_option
@click.option(
    "--purge-weights",
    is_flag=True,
    help="AWS: also delete the model's cached weights from the artifact bucket (kept by default for the "
    "next deployment; never while another tag of the same model uses them).",
)
@region_option
@profile_option
def destroy(
    route: str, yes: bool, target: str | None, purge_weights: bool, region: str | None, profile: str | None
) -> None:
    """Remove a deployment. Locally: stop its engine adapter and engine, free their ports, remove its state,
    log and API key, and stop the local gateway when no local deployment is left. On AWS: stop its running
    pipeline executions, delete its stack (events shown) and its API key secret; the cached weights stay
    unless --purge-weights.

    \b
    Examples:
      emd destroy SmolLM2-135M-Instruct-GGUF/dev
      emd destroy SmolLM2-135M-Instruct-GGUF/dev --yes
      emd destroy Qwen2.5-7B-Instruct/prod --region us-west-2 --purge-weights --yes
    """
    from emd_cli.render import console
    from emd_cli.targets import find_target, normalize_route

    name = normalize_route(route)
    chosen = find_target(name, target, region=region, profile=profile)
    if purge_weights and chosen.name != "aws":
        raise click.UsageError("--purge-weights is for AWS deployments (weights cached in S3)")
    where = "this machine" if chosen.name == "local" else "AWS"
    if not yes:
        if not interactive():
            raise click.UsageError(f"destroying {name} needs confirmation: add --yes")
        import questionary

        if not questionary.confirm(f"Destroy {name} on {where}?", default=False).ask():
            raise click.Abort()
    out = console()
    if chosen.name == "aws":
        report = chosen.destroy(name, console=out, purge_weights=purge_weights)  # type: ignore[call-arg]
    else:
        report = chosen.destroy(name, console=out)
    for line in report.removed:
        out.print(f"[green]✔[/green] {line}")
    for line in report.left:
        out.print(f"[red]✘ not removed:[/red] {line}")
    if report.left:
        raise click.ClickException(f"{name} was not removed completely: see above")
    out.print(f"{name} destroyed.")
