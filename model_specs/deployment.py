"""A validated Deployment: model x engine x instance x service x region (+ tag and extra params).

resolve_deployment() is the single entry point used by the CLI, app.py (cdk context) and GitOps:
every mistake becomes an EmdUserError before any AWS call or synth.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from functools import cached_property
from typing import Any

from pydantic import BaseModel, ConfigDict

from model_specs import compat
from model_specs.catalogue import Catalogue, catalogue
from model_specs.errors import EmdUserError, unknown_value_error
from model_specs.extra_params import ExtraParams, parse_extra_params
from model_specs.machine import MachineFacts, engine_problem, local_choices
from model_specs.regions import RegionInfo, region_info
from model_specs.registry import DEFAULT_TAG, api_key_secret_name, registry_parameter_name
from model_specs.schema import EngineSpec, InstanceSpec, ModelSpec, ServiceType

TAG_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,30}$")
STACK_PREFIX = "EMD-Model-"
LOCAL_INSTANCE = "local"  # Deployment.instance_type of a deployment on this machine


def validate_tag(tag: str) -> str:
    if not TAG_PATTERN.fullmatch(tag):
        raise EmdUserError(
            f"invalid model tag {tag!r}: use 1-31 lowercase letters, digits or '-', starting with a letter "
            f"or digit (e.g. 'dev', 'prod', 'v2')"
        )
    return tag


def deployment_slug(model_id: str, model_tag: str) -> str:
    """Readable and collision-free: a hash of the exact '<model-id>/<tag>' follows the sanitized name."""
    readable = re.sub(r"[^a-z0-9]+", "-", model_id.lower()).strip("-")[:60]
    digest = hashlib.sha256(f"{model_id}/{model_tag}".encode()).hexdigest()[:8]
    return f"{readable}-{model_tag}-{digest}"


class Deployment(BaseModel):
    """Everything needed to build one model stack. Construct with resolve_deployment()."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    model_id: str
    model_tag: str = DEFAULT_TAG
    engine_type: str
    instance_type: str  # bare EC2 name, no ml. prefix; LOCAL_INSTANCE for service type local
    service_type: ServiceType
    region: str
    extra_params: ExtraParams = ExtraParams()
    # service type local: this machine's facts as an instance (model_specs.machine), not a catalogued one
    machine: InstanceSpec | None = None

    @cached_property
    def _cat(self) -> Catalogue:
        return catalogue()

    @property
    def model(self) -> ModelSpec:
        return self._cat.model(self.model_id)

    @property
    def engine(self) -> EngineSpec:
        return self._cat.engine(self.engine_type)

    @property
    def instance(self) -> InstanceSpec:
        return self.machine if self.machine is not None else self._cat.instance(self.instance_type)

    @property
    def region_info(self) -> RegionInfo:
        return region_info(self.region)

    @property
    def route(self) -> str:
        return f"{self.model_id}/{self.model_tag}"

    @property
    def slug(self) -> str:
        return deployment_slug(self.model_id, self.model_tag)

    @property
    def stack_name(self) -> str:
        return STACK_PREFIX + self.slug

    @property
    def sagemaker_instance_type(self) -> str:
        return f"ml.{self.instance_type}"

    @property
    def sagemaker_endpoint_name(self) -> str:
        given = self.extra_params.service_params.sagemaker_endpoint_name
        return given or f"emd-{self.slug}"[:63].rstrip("-")

    @property
    def tensor_parallel_degree(self) -> int:
        return compat.tensor_parallel_degree(self.engine, self.instance)

    @property
    def registry_parameter_name(self) -> str:
        return registry_parameter_name(self.model_id, self.model_tag)

    @property
    def api_key_secret_name(self) -> str | None:
        """None for an explicitly public deployment."""
        if self.extra_params.service_params.public:
            return None
        return api_key_secret_name(self.model_id, self.model_tag)

    def engine_cli_args(self) -> str:
        """Catalogue defaults for this engine followed by the user's engine_params.cli_args."""
        defaults = self.model.engines[self.engine_type].cli_args
        return " ".join(a for a in (defaults, self.extra_params.engine_params.cli_args) if a).strip()

    def engine_environment(self) -> dict[str, str]:
        env = dict(self.model.engines[self.engine_type].environment)
        env.update(self.extra_params.engine_params.environment)
        return env

    def to_public_dict(self) -> dict[str, Any]:
        """deployment.json for the pipeline bundle: no secret values."""
        return {
            "model_id": self.model_id,
            "model_tag": self.model_tag,
            "engine_type": self.engine_type,
            "instance_type": self.instance_type,
            "service_type": self.service_type.value,
            "region": self.region,
            "stack_name": self.stack_name,
            "extra_params": self.extra_params.without_secrets(),
        }


def resolve_deployment(
    *,
    model_id: str,
    instance_type: str,
    engine_type: str | None = None,
    service_type: str,
    region: str,
    model_tag: str = DEFAULT_TAG,
    extra_params: str | dict[str, Any] | ExtraParams | None = None,
    cat: Catalogue | None = None,
) -> Deployment:
    """Validate every input against the catalogue and compatibility rules; EmdUserError on the first problem
    of each kind, listing what would be accepted."""
    cat = cat or catalogue()
    info = region_info(region)
    model = cat.model(model_id)
    engine = cat.engine(engine_type or model.default_engine)
    instance = cat.instance(instance_type)
    try:
        service = ServiceType(service_type)
    except ValueError:
        raise unknown_value_error("service type", service_type, [s.value for s in ServiceType]) from None
    params = _checked_params(model_tag, extra_params)
    verdict = compat.check(cat, model, engine, instance, service, info.name)
    if not verdict.ok:
        fits = compat.fitting_instances(cat, model, engine, service, info.name)[:5]
        if fits:
            hint = (
                f" Smallest instances that fit {model.id} on {engine.name}/{service.value} in {info.name}: "
                + ", ".join(i.name for i in fits)
            )
        else:
            advice = compat.multi_instance_advice(cat, model, engine, service, info.name)
            hint = " " + (
                advice
                or f"No catalogued instance runs {model.id} on {engine.name}/{service.value} in {info.name}."
            )
        raise _refused(
            f"{model.id} on {instance.name} with {engine.name} ({service.value}, {info.name}) is refused",
            verdict.reasons,
            hint,
        )
    _check_params(params, local=False)
    return Deployment(
        model_id=model.id,
        model_tag=model_tag,
        engine_type=engine.name,
        instance_type=instance.name,
        service_type=service,
        region=info.name,
        extra_params=params,
    )


def _refused(subject: str, reasons: Iterable[str], hint: str) -> EmdUserError:
    return EmdUserError(f"{subject}: {'; '.join(reasons)}.{hint}")


def _checked_params(model_tag: str, extra_params: str | dict[str, Any] | ExtraParams | None) -> ExtraParams:
    """The tag validated and the extra params parsed (their cross-field rules come after the fit check)."""
    validate_tag(model_tag)
    return extra_params if isinstance(extra_params, ExtraParams) else parse_extra_params(extra_params)


def _check_params(params: ExtraParams, *, local: bool) -> None:
    mp = params.model_params
    if local and mp.model_files_s3_path is not None:
        raise EmdUserError(
            "model_params.model_files_s3_path is for AWS targets; on this machine give "
            "model_params.model_files_local_path"
        )
    if not local and mp.model_files_local_path is not None:
        raise EmdUserError(
            "model_params.model_files_local_path is for -s local (files on this machine); on AWS give "
            "model_params.model_files_s3_path"
        )
    sp = params.service_params
    if sp.min_capacity is not None and sp.max_capacity is not None and sp.min_capacity > sp.max_capacity:
        raise EmdUserError(
            f"service_params.min_capacity ({sp.min_capacity}) is greater than "
            f"max_capacity ({sp.max_capacity})"
        )
    if sp.public and sp.api_key is not None:
        raise EmdUserError("service_params: 'public': true and an 'api_key' exclude each other; choose one")


def _local_engine(cat: Catalogue, model: ModelSpec, facts: MachineFacts, machine: InstanceSpec) -> EngineSpec:
    """The model's default engine when it runs here, else its first engine that does, else the default (whose
    refusal then says why)."""
    names = [model.default_engine] + [e for e in model.engines if e != model.default_engine]
    for name in names:
        engine = cat.engine(name)
        if name in facts.engines and compat.check(cat, model, engine, machine, ServiceType.local, "local").ok:
            return engine
    return cat.engine(model.default_engine)


def resolve_local_deployment(
    *,
    model_id: str,
    facts: MachineFacts,
    engine_type: str | None = None,
    region: str,
    model_tag: str = DEFAULT_TAG,
    extra_params: str | dict[str, Any] | ExtraParams | None = None,
    cat: Catalogue | None = None,
) -> Deployment:
    """A deployment on this machine (service type local): compat's rules against the machine's facts, and an
    installed engine. A refusal names the reasons and the catalogue models that would fit here."""
    cat = cat or catalogue()
    model = cat.model(model_id)
    params = _checked_params(model_tag, extra_params)
    machine = facts.as_instance()
    engine = cat.engine(engine_type) if engine_type else _local_engine(cat, model, facts, machine)
    reasons = list(compat.check(cat, model, engine, machine, ServiceType.local, "local").reasons)
    if engine.name in model.engines and (problem := engine_problem(engine, facts)):
        reasons.append(problem)
    if reasons:
        fits = local_choices(cat, facts)
        hint = (
            " Models that fit here: "
            + ", ".join(f"{m.id} (-e {e.name})" for m, e in fits[:8])
            + (f", … ({len(fits)} in all)." if len(fits) > 8 else ".")
            if fits
            else " No catalogue model fits here with the engines installed."
        )
        raise _refused(
            f"{model.id} with {engine.name} cannot run on this machine ({facts.describe()})", reasons, hint
        )
    _check_params(params, local=True)
    return Deployment(
        model_id=model.id,
        model_tag=model_tag,
        engine_type=engine.name,
        instance_type=LOCAL_INSTANCE,
        service_type=ServiceType.local,
        region=region_info(region).name,
        extra_params=params,
        machine=machine,
    )
