"""From the command line's flags to a validated Deployment (against this machine for -s local, else against
the instance type), and what a local deployment will run. Shared by `emd plan` and `emd deploy`."""

from __future__ import annotations

from pathlib import Path
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
    dockerfile_path: Path | None = None,
) -> Any:
    """The validated Deployment: against this machine for -s local, else against the instance type. Missing
    flags are asked for on a terminal (model first), else refused. dockerfile_path (--dockerfile-local-path)
    fills engine_params.dockerfile."""
    from model_specs.deployment import resolve_deployment, resolve_local_deployment

    model_id = require(model_id, "--model-id", _catalogue_names("model"))
    service_type = require(service_type, "--service-type", _catalogue_names("service"))
    services = _catalogue_names("service")()
    if service_type not in services:  # before asking for an instance type that -s local would not need
        from model_specs.errors import unknown_value_error

        raise unknown_value_error("service type", service_type, services)

    if service_type == LOCAL:
        if dockerfile_path is not None:
            raise click.UsageError(
                "--dockerfile-local-path builds an engine image on AWS; -s local runs the engine installed "
                "on this machine (no Docker): drop it"
            )
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
        extra_params=with_dockerfile(extra_params, dockerfile_path) if dockerfile_path else extra_params,
    )


def with_dockerfile(extra_params: str | None, path: Path) -> Any:
    """--extra-params with engine_params.dockerfile set to the text of `path` (EmdUserError: one line)."""
    from model_specs.errors import EmdUserError
    from model_specs.extra_params import DOCKERFILE_MAX_BYTES, parse_extra_params
    from model_specs.images import custom_dockerfile

    flag = f"--dockerfile-local-path {str(path)!r}"
    params = parse_extra_params(extra_params)
    for given in ("image_uri", "dockerfile"):
        if getattr(params.engine_params, given):
            raise EmdUserError(
                f"{flag}: give an image used as is (engine_params.image_uri) or one Dockerfile built on "
                f"EMD's, not both --dockerfile-local-path and engine_params.{given}"
            )
    try:
        if path.is_dir():
            raise EmdUserError(f"{flag} is a folder, not a file: give the Dockerfile itself")
        size = path.stat().st_size
        if size > DOCKERFILE_MAX_BYTES:
            raise EmdUserError(f"{flag} is {size} bytes: at most {DOCKERFILE_MAX_BYTES} are accepted")
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise EmdUserError(f"{flag} does not exist") from None
    except UnicodeDecodeError:
        raise EmdUserError(f"{flag} is not UTF-8 text") from None
    except OSError as exc:
        raise EmdUserError(f"{flag} cannot be read: {exc.strerror or exc}") from None
    try:
        custom_dockerfile(text)
    except ValueError as exc:
        raise EmdUserError(f"{flag}: {exc}") from None
    engine = params.engine_params.model_copy(update={"dockerfile": text})
    return params.model_copy(update={"engine_params": engine})


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
