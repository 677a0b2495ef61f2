"""From the command line's flags to a validated Deployment (against this machine for -s local, else against
the instance type), and what a local deployment will run. Shared by `emd plan` and `emd deploy`."""

from __future__ import annotations

from typing import Any

import click

from emd_cli.cost_cmd import _catalogue_names
from emd_cli.options import default_region, require

LOCAL = "local"


def resolve(
    *,
    model_id: str | None,
    service_type: str | None,
    instance_type: str | None,
    engine_type: str | None,
    model_tag: str,
    region: str | None,
    extra_params: str | None,
) -> Any:
    """The validated Deployment: against this machine for -s local, else against the instance type. Missing
    flags are asked for on a terminal (model first), else refused."""
    from model_specs.deployment import resolve_deployment, resolve_local_deployment

    model_id = require(model_id, "--model-id", _catalogue_names("model"))
    service_type = require(service_type, "--service-type", _catalogue_names("service"))

    if service_type == LOCAL:
        from model_specs import machine
        from model_specs.catalogue import catalogue

        if instance_type:
            raise click.UsageError(
                f"-s local runs on this machine: drop -i {instance_type} (the machine's RAM, CPUs and GPUs "
                "are checked instead)"
            )
        return resolve_local_deployment(
            model_id=model_id,
            facts=machine.detect(catalogue()),
            engine_type=engine_type,
            region=default_region(region),
            model_tag=model_tag,
            extra_params=extra_params,
        )
    return resolve_deployment(
        model_id=model_id,
        instance_type=require(instance_type, "--instance-type", _catalogue_names("instance")),
        engine_type=engine_type,
        service_type=service_type,
        region=default_region(region),
        model_tag=model_tag,
        extra_params=extra_params,
    )


def local_plan(dep: Any) -> dict[str, str]:
    """What `emd deploy -s local` runs, by label: nothing on AWS, no cost."""
    from emd_cli.targets.local_weights import weights_source
    from model_specs import compat

    machine = dep.instance
    gpus = f"{machine.gpus} x {machine.gpu_model}" if machine.gpus else "no GPU"
    sp = dep.extra_params.service_params
    key = "none: public" if sp.public else "given in service_params" if sp.api_key else "generated"
    need = compat.required_memory_gib(dep.model, compat.devices_used(dep.engine, machine), dep.engine)
    return {
        "Route": dep.route,
        "Runs on": f"this machine ({machine.vcpus} CPUs, {machine.memory_gib:.1f} GiB RAM, {gpus})",
        "Engine": f"{dep.engine_type} {dep.engine_cli_args()}".strip(),
        "Weights": weights_source(dep),
        "Memory": f"needs ~{need:.1f} GiB, {compat.usable_memory_gib(machine, dep.engine):.1f} GiB usable",
        "API key": key + " (digest for the gateway, value in a 0600 file)" if not sp.public else key,
        "Serves on": "the local gateway on 127.0.0.1, shared by every local deployment (no AWS, no cost)",
    }
