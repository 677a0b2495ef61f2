"""`emd keys rotate`: put a new API key in place of a deployment's key (the old one is refused once the
gateway's key cache expires)."""

from __future__ import annotations

import click

from emd_cli.options import profile_option, region_option, target_option


@click.group("keys", short_help="Manage deployments' API keys.")
def keys() -> None:
    """Manage the API keys of deployments.

    \b
    Example:
      emd keys rotate SmolLM2-135M-Instruct-GGUF/dev
    """


@keys.command("rotate")
@click.argument("route", metavar="MODEL_ID/TAG")
@target_option
@region_option
@profile_option
def rotate(route: str, target: str | None, region: str | None, profile: str | None) -> None:
    """Generate a new API key for a deployment and show it once. The old key is refused once the gateway's
    key cache expires (2 s for local deployments, at most 60 s on AWS); `emd invoke` uses the new one.

    \b
    Example:
      emd keys rotate SmolLM2-135M-Instruct-GGUF/dev
    """
    from emd_cli.snippets import KEY_VARIABLE
    from emd_cli.targets import find_target, normalize_route

    name = normalize_route(route)
    key = find_target(name, target, region=region, profile=profile).rotate_key(name, api_key=None)
    click.echo(f"New API key for {name} (shown once):", err=True)
    click.echo(f"export {KEY_VARIABLE}='{key}'")
