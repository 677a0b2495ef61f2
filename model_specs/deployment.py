"""A validated Deployment: model x engine x instance x service x region (+ tag and extra params).

resolve_deployment() is the single entry point used by the CLI, app.py (cdk context) and GitOps:
every mistake becomes an EmdUserError before any AWS call or synth.
"""

from __future__ import annotations

import hashlib
import re
from functools import cached_property
from typing import Any

from pydantic import BaseModel, ConfigDict

from model_specs import compat
from model_specs.catalogue import Catalogue, catalogue
from model_specs.errors import EmdUserError, unknown_value_error
from model_specs.extra_params import ExtraParams, parse_extra_params
from model_specs.regions import RegionInfo, region_info
from model_specs.registry import DEFAULT_TAG, api_key_secret_name, registry_parameter_name
from model_specs.schema import EngineSpec, InstanceSpec, ModelSpec, ServiceType

TAG_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,30}$")
STACK_PREFIX = "EMD-Model-"


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
    instance_type: str  # bare EC2 name, no ml. prefix
    service_type: ServiceType
    region: str
    extra_params: ExtraParams = ExtraParams()

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
        return self._cat.instance(self.instance_type)

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
    validate_tag(model_tag)
    params = extra_params if isinstance(extra_params, ExtraParams) else parse_extra_params(extra_params)
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
        raise EmdUserError(
            f"{model.id} on {instance.name} with {engine.name} ({service.value}, {info.name}) is refused: "
            + "; ".join(verdict.reasons)
            + "."
            + hint
        )
    sp = params.service_params
    if sp.min_capacity is not None and sp.max_capacity is not None and sp.min_capacity > sp.max_capacity:
        raise EmdUserError(
            f"service_params.min_capacity ({sp.min_capacity}) is greater than "
            f"max_capacity ({sp.max_capacity})"
        )
    if sp.public and sp.api_key is not None:
        raise EmdUserError("service_params: 'public': true and an 'api_key' exclude each other; choose one")
    return Deployment(
        model_id=model.id,
        model_tag=model_tag,
        engine_type=engine.name,
        instance_type=instance.name,
        service_type=service,
        region=info.name,
        extra_params=params,
    )
