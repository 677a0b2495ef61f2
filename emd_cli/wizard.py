"""`emd deploy` on a terminal with flags missing: ask for each missing one (questionary), offering only what
works — a fuzzy model search, then the services, engines and instances the compatibility rules accept for
that model in the region, each with its hourly price. The command then shows the plan and cost and asks to
confirm. Every choice list is a plain function, so tests check them without a terminal; the prompts take
prompt_toolkit's `input`/`output` (a pipe in tests)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from model_specs import compat
from model_specs.catalogue import Catalogue, catalogue
from model_specs.cost import price_region_for
from model_specs.errors import EmdUserError
from model_specs.schema import EngineSpec, InstanceSpec, ModelSpec, ServiceType

LOCAL = "local"
AWS_SERVICES = (
    ServiceType.sagemaker_realtime,
    ServiceType.sagemaker_async,
    ServiceType.ecs,
    ServiceType.ec2,
)


@dataclass(frozen=True)
class Choice:
    value: str
    label: str


@dataclass(frozen=True)
class Answers:
    model_id: str
    service_type: str
    engine_type: str | None
    instance_type: str | None  # None for local


WIZARD_FLAGS = tuple(Answers.__dataclass_fields__)  # the flags the wizard asks for when missing


def hourly(cat: Catalogue, region: str, instance: InstanceSpec, service: ServiceType) -> float | None:
    _, prices, _ = price_region_for(region, cat)
    sagemaker = service in (ServiceType.sagemaker_realtime, ServiceType.sagemaker_async)
    return (prices.sagemaker_hourly if sagemaker else prices.ec2_hourly).get(instance.name)


def _price(cat: Catalogue, region: str, instance: InstanceSpec, service: ServiceType) -> str:
    value = hourly(cat, region, instance, service)
    symbol = "¥" if price_region_for(region, cat)[1].currency == "CNY" else "$"
    return "price n/a" if value is None else f"{symbol}{value:g}/h"


def _engines(model: ModelSpec, cat: Catalogue) -> list[EngineSpec]:
    names = sorted(model.engines, key=lambda n: (n != model.default_engine, n))
    return [cat.engine(n) for n in names]


def model_choices(cat: Catalogue) -> list[Choice]:
    return [
        Choice(m.id, f"{m.type.value}, {m.params_b:g}B, {m.default_engine}")
        for m in sorted(cat.models.values(), key=lambda m: m.id.lower())
    ]


def service_choices(cat: Catalogue, model: ModelSpec, region: str, local_ok: bool) -> list[Choice]:
    """AWS services where some engine of the model fits some instance (with the cheapest), then local."""
    found = []
    for service in AWS_SERVICES:
        cheapest = [
            (fits[0], engine)
            for engine in _engines(model, cat)
            if (fits := compat.fitting_instances(cat, model, engine, service, region))
        ]
        if cheapest:
            instance, engine = min(cheapest, key=lambda p: hourly(cat, region, p[0], service) or float("inf"))
            price = _price(cat, region, instance, service)
            found.append(
                Choice(service.value, f"{service.value} — from {price} ({instance.name}, {engine.name})")
            )
    if local_ok:
        found.append(Choice(LOCAL, "local — this machine, no AWS charges"))
    return found


def engine_choices(cat: Catalogue, model: ModelSpec, service: ServiceType, region: str) -> list[Choice]:
    found = []
    for engine in _engines(model, cat):
        fits = compat.fitting_instances(cat, model, engine, service, region)
        if fits:
            default = " (default)" if engine.name == model.default_engine else ""
            price = _price(cat, region, fits[0], service)
            found.append(Choice(engine.name, f"{engine.name}{default} — from {price} on {fits[0].name}"))
    return found


def instance_choices(
    cat: Catalogue, model: ModelSpec, engine: EngineSpec, service: ServiceType, region: str
) -> list[Choice]:
    found = []
    for i in compat.fitting_instances(cat, model, engine, service, region):
        accel = f"{i.gpus} x {i.gpu_model} {i.gpu_memory_gib:g} GiB" if i.gpus else f"{i.vcpus} vCPUs"
        found.append(Choice(i.name, f"{i.name:<16} {accel:<26} {_price(cat, region, i, service)}"))
    return found


def _local_fits(model_id: str, region: str) -> bool:
    from model_specs import machine
    from model_specs.deployment import resolve_local_deployment

    try:
        resolve_local_deployment(model_id=model_id, facts=machine.detect(catalogue()), region=region)
    except EmdUserError:
        return False
    return True


def deploy_wizard(
    *,
    model_id: str | None,
    service_type: str | None,
    engine_type: str | None,
    instance_type: str | None,
    region: str,
    **prompt_io: Any,
) -> Answers:
    """Ask for what is missing, in order: model, service, engine, instance. prompt_io: prompt_toolkit's
    input/output for the prompts (tests). Ctrl-C or Esc: click.Abort."""
    cat = catalogue()
    model = cat.model(model_id) if model_id else cat.model(_ask_model(cat, prompt_io))
    if service_type is None:
        options = service_choices(cat, model, region, local_ok=_local_fits(model.id, region))
        if not options:
            raise EmdUserError(f"{model.id} fits no catalogued instance in {region}, and not this machine")
        service_type = _select(f"Where should {model.id} run?", options, prompt_io)
    if service_type == LOCAL:
        return Answers(model.id, LOCAL, engine_type, None)
    service = ServiceType(service_type)
    if engine_type is None:
        options = engine_choices(cat, model, service, region)
        if not options:
            raise EmdUserError(f"no engine runs {model.id} on {service.value} in {region}")
        engine_type = options[0].value if len(options) == 1 else _select("Engine:", options, prompt_io)
    if instance_type is None:
        options = instance_choices(cat, model, cat.engine(engine_type), service, region)
        if not options:
            raise EmdUserError(f"no catalogued instance runs {model.id} on {engine_type}/{service.value}")
        instance_type = _select(f"Instance ({region}, cheapest first):", options, prompt_io)
    return Answers(model.id, service.value, engine_type, instance_type)


def _ask_model(cat: Catalogue, prompt_io: dict[str, Any]) -> str:
    import questionary
    from prompt_toolkit.completion import FuzzyWordCompleter

    options = model_choices(cat)
    ids = [c.value for c in options]
    answer = questionary.autocomplete(
        "Model (type to search):",
        choices=ids,
        completer=FuzzyWordCompleter(ids, meta_dict={c.value: c.label for c in options}),
        validate=lambda text: text in cat.models or "pick a model from the list (Tab completes)",
        **prompt_io,
    ).ask()
    return _answered(answer)


def _select(message: str, options: list[Choice], prompt_io: dict[str, Any]) -> str:
    import questionary

    answer = questionary.select(
        message, choices=[questionary.Choice(c.label, value=c.value) for c in options], **prompt_io
    ).ask()
    return _answered(answer)


def _answered(answer: Any) -> str:
    import click

    if not answer:  # Ctrl-C / Esc: questionary returns None
        raise click.Abort()
    return str(answer)
