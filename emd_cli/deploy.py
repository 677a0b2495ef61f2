"""`emd deploy`: resolve and validate a deployment (no side effect), pick its target from the service type,
deploy, and show how to call it: base URL, model name, the API key (once), curl and Python snippets."""

from __future__ import annotations

from typing import Any

import click

from emd_cli.options import dockerfile_option, interactive, model_tag_option, profile_option, region_option
from emd_cli.resolve import LOCAL, local_plan, resolve


def _confirm(rows: list[tuple[str, str]], skip: bool, out: Any) -> None:
    from rich.table import Table

    table = Table(show_header=False, box=None, padding=(0, 2))
    for k, v in rows:
        table.add_row(f"[bold]{k}[/bold]", v)
    out.print(table)
    if skip or not interactive():
        return
    import questionary

    if not questionary.confirm("Deploy?", default=True).ask():
        raise click.Abort()


def _aws_cost(dep: Any) -> str:
    """The instance's hourly price and the month at 24 h/day (storage and the key's secret included)."""
    from model_specs.cost import deployment_cost

    est = deployment_cost(dep)
    if est.hourly is None:
        return "no price for this instance in the price book (see emd cost)"
    month = est.fmt(est.monthly_total)
    return f"{est.symbol}{est.hourly}/h; {month}/month at 24 h/day (emd cost for details)"


def print_outcome(outcome: Any, out: Any) -> None:
    """Where to send requests and how; the API key exactly once (inside the export line)."""
    from emd_cli import snippets

    ep = outcome.endpoint
    for note in outcome.notes:
        out.print(f"[dim]{note}[/dim]")
    where = "on this machine" if ep.target == LOCAL else f"on AWS ({ep.region})" if ep.region else "on AWS"
    if outcome.ready:
        out.print(f"\n[bold green]{ep.route} is serving {where}.[/bold green]\n")
    else:
        out.print(f"\n[bold yellow]{ep.route} is still being deployed {where}[/bold yellow] (detached).\n")
    out.print(f"  Base URL  {ep.base_url}")
    out.print(f"  Model     {ep.model}")
    if ep.api_key is None:
        out.print("  API key   none: public deployment")
    elif outcome.api_key_to_show:
        out.print("  API key   shown once, below; `emd invoke` finds it, `emd keys rotate` replaces it")
    else:
        out.print("  API key   unchanged (yours, or the previous deployment's): not shown again")
    click.echo()
    if outcome.api_key_to_show:
        click.echo(f"export {snippets.KEY_VARIABLE}='{outcome.api_key_to_show}'\n")
    click.echo(snippets.curl(ep) + "\n")
    click.echo("python - <<'EOF'\n" + snippets.python(ep) + "EOF\n")
    click.echo(f"Next: emd invoke {ep.route}   |   emd status   |   emd destroy {ep.route}")


@click.command("deploy", short_help="Deploy a model on this machine (-s local) or on AWS.")
@click.option("--model-id", metavar="MODEL_ID", help="Catalogue model id (see emd list-supported-models).")
@click.option(
    "-s",
    "--service-type",
    metavar="SERVICE",
    help="local (this machine), sagemaker_realtime, sagemaker_async, ecs or ec2.",
)
@click.option(
    "-e",
    "--engine-type",
    metavar="ENGINE",
    help="Inference engine; default: the model's (local: one installed here).",
)
@click.option("-i", "--instance-type", metavar="TYPE", help="AWS instance type (not with -s local).")
@model_tag_option
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    help="-s local: port of the local gateway on 127.0.0.1, which every local deployment shares "
    "(default 8080; set by the first local deployment).",
)
@click.option(
    "--extra-params",
    metavar="JSON|@FILE",
    help="JSON object or @file: service_params (api_key, public …), engine_params, model_params "
    "(model_files_local_path for -s local), framework_params.",
)
@dockerfile_option
@click.option(
    "--update", is_flag=True, help="Replace an existing deployment of <model-id>/<tag> (keeps its key)."
)
@click.option(
    "--timeout",
    type=click.FloatRange(1),
    default=600,
    show_default=True,
    help="-s local: seconds to wait for the engine to load the model.",
)
@click.option("--skip-confirm", is_flag=True, help="Do not ask for confirmation on a terminal.")
@region_option
@profile_option
def deploy(
    port: int | None,
    update: bool,
    timeout: float,
    skip_confirm: bool,
    profile: str | None,
    **spec: Any,  # the flags resolve() takes: model, service, engine, instance, tag, region, …
) -> None:
    """Deploy a model and print how to call it (base URL, model name, API key shown once, snippets).

    With -s local the engine and the gateway run on this machine as background processes (logs under
    $XDG_STATE_HOME/emd/local, else ~/.local/state/emd/local), on 127.0.0.1 only; the model must fit this
    machine's RAM, CPUs and GPUs. On AWS (every other service type; after `emd bootstrap`) the key goes to
    Secrets Manager, the bootstrap's pipeline builds and deploys the model stack, and the command follows it
    until the gateway serves the model (Ctrl-C detaches: `emd status <model-id>/<tag> --follow`).

    \b
    Examples:
      emd deploy --model-id SmolLM2-135M-Instruct-GGUF -s local
      emd deploy --model-id SmolLM2-135M-Instruct-GGUF -s local --model-tag demo --port 8090 \\
                 --extra-params '{"service_params": {"public": true}}'
      emd deploy --model-id Qwen2.5-7B-Instruct -i g5.2xlarge -e vllm -s sagemaker_realtime --region us-east-1
      emd deploy --model-id Qwen2.5-7B-Instruct -i g5.2xlarge -s sagemaker_realtime \\
                 --dockerfile-local-path ./Dockerfile
      emd deploy     # on a terminal: a wizard asks for the model, service, engine and instance
    """
    from emd_cli.render import console
    from emd_cli.targets import target_for

    missing = not spec["model_id"] or not spec["service_type"]
    if interactive() and (missing or (spec["service_type"] != LOCAL and not spec["instance_type"])):
        from dataclasses import asdict

        from emd_cli.options import default_region
        from emd_cli.wizard import WIZARD_FLAGS, deploy_wizard

        asked = {flag: spec[flag] for flag in WIZARD_FLAGS}
        spec.update(asdict(deploy_wizard(**asked, region=default_region(spec["region"]))))
    dep = resolve(**spec)
    service = dep.service_type.value
    if service != LOCAL and port is not None:
        raise click.UsageError("--port is for -s local (the local gateway's port)")
    if service == LOCAL and profile is not None:
        raise click.UsageError("--profile is for AWS service types, not -s local")
    from rich.console import Console

    out = console()
    if service == LOCAL:
        target = target_for(service, port=port, ready_timeout=timeout)
        _confirm(list(local_plan(dep).items()), skip_confirm, out)
    else:
        from emd_cli.plan import plan_facts

        target = target_for(service, region=dep.region, profile=profile)
        facts = plan_facts(dep)
        rows = [(k, str(v)) for k, v in facts.items() if isinstance(v, str)]
        _confirm([*rows, ("cost", _aws_cost(dep))], skip_confirm, out)
    given = dep.extra_params.service_params.api_key

    progress = Console(stderr=True, highlight=False)  # spinners on stderr: stdout stays the result
    outcome = target.deploy(
        dep, api_key=given.get_secret_value() if given else None, update=update, console=progress
    )
    print_outcome(outcome, out)
