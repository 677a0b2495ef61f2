"""`emd cost`: what a deployment costs (build, storage, target instance), from model_specs.cost."""

from __future__ import annotations

import json

import click

from emd_cli.options import default_region, hours_per_day_option, json_option, region_option, require


def _catalogue_names(kind: str):  # type: ignore[no-untyped-def]
    def names() -> list[str]:
        from model_specs.catalogue import catalogue

        cat = catalogue()
        return sorted({"model": cat.models, "instance": cat.instances, "service": cat.services}[kind])

    return names


def model_options(fn):  # type: ignore[no-untyped-def]
    """--model-id, -i, -e, -s shared by cost and plan (missing ones are prompted for on a terminal)."""
    for opt in reversed(
        (
            click.option(
                "--model-id", metavar="MODEL_ID", help="Catalogue model id (see emd list-supported-models)."
            ),
            click.option(
                "-i",
                "--instance-type",
                metavar="TYPE",
                help="EC2 instance type, e.g. g5.2xlarge (an ml. prefix is accepted).",
            ),
            click.option(
                "-e", "--engine-type", metavar="ENGINE", help="Inference engine; default: the model's."
            ),
            click.option(
                "-s",
                "--service-type",
                metavar="SERVICE",
                help="sagemaker_realtime, sagemaker_async, ecs, ec2 or local.",
            ),
        )
    ):
        fn = opt(fn)
    return fn


@click.command("cost", short_help="Estimate build, storage and hosting cost.")
@model_options
@region_option
@hours_per_day_option
@click.option(
    "--build-minutes",
    type=click.FloatRange(0),
    default=10,
    show_default=True,
    help="CodeBuild minutes per deployment.",
)
@click.option(
    "--model-size-gb", type=click.FloatRange(0), help="Model files in S3 (default: catalogue weights)."
)
@click.option(
    "--image-size-gb",
    type=click.FloatRange(0),
    default=2,
    show_default=True,
    help="Engine image size in ECR.",
)
@click.option("--public", is_flag=True, help="No API key (no Secrets Manager secret).")
@json_option
def cost(
    model_id: str | None,
    instance_type: str | None,
    engine_type: str | None,
    service_type: str | None,
    region: str | None,
    hours_per_day: float,
    build_minutes: float,
    model_size_gb: float | None,
    image_size_gb: float,
    public: bool,
    as_json: bool,
) -> None:
    """Estimate the cost of a deployment: one-time build, monthly storage, and the target instance.

    Prices come from the packaged price book (model_specs/data/prices.yaml); China regions are in CNY.
    The combination is not checked for fit here (emd plan does that); a warning says when plan
    would refuse it.

    \b
    Examples:
      emd cost --model-id Qwen2.5-7B-Instruct -i g5.2xlarge -s sagemaker_realtime
      emd cost --model-id Qwen2.5-3B-Instruct -i g4dn.xlarge -s ec2 --region cn-north-1 \\
               --model-size-gb 5 --image-size-gb 2 --build-minutes 10 --hours-per-day 8 --json
    """
    from model_specs import compat
    from model_specs.catalogue import catalogue
    from model_specs.cost import estimate_cost
    from model_specs.regions import region_info
    from model_specs.schema import ServiceType

    cat = catalogue()
    model = cat.model(require(model_id, "--model-id", _catalogue_names("model")))
    instance = cat.instance(require(instance_type, "--instance-type", _catalogue_names("instance")))
    service_name = require(service_type, "--service-type", _catalogue_names("service"))
    engine = cat.engine(engine_type or model.default_engine)
    info = region_info(default_region(region))
    est = estimate_cost(
        region=info.name,
        instance_type=instance.name,
        service_type=service_name,
        model_size_gb=round(model.weights_gib, 2) if model_size_gb is None else model_size_gb,
        image_size_gb=image_size_gb,
        build_minutes=build_minutes,
        hours_per_day=hours_per_day,
        api_key_secret=not public,
        cat=cat,
    )
    verdict = compat.check(cat, model, engine, instance, ServiceType(service_name), info.name)
    warnings = [] if verdict.ok else [f"emd plan would refuse this combination: {'; '.join(verdict.reasons)}"]
    if as_json:
        click.echo(
            json.dumps(
                {
                    "model_id": model.id,
                    "instance_type": instance.name,
                    "engine_type": engine.name,
                    "service_type": service_name,
                    **est.to_dict(),
                    "warnings": warnings,
                },
                indent=2,
            )
        )
        return
    from emd_cli.render import console, print_cost

    out = console()
    print_cost(est, out)
    for w in warnings:
        click.echo(f"warning: {w}", err=True)
