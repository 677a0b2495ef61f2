"""`cdk deploy -c model_id=... -c instance_type=... -c engine_type=... -c service_type=... [-c model_tag=...]
[-c extra_params='{...}'] [-c image_uri=...] [-c model_data_s3_uri=...]` -> one validated Deployment (or None
when no model_id is given). Errors are the CLI's EmdUserErrors."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from model_specs.deployment import Deployment, resolve_deployment
from model_specs.errors import EmdUserError
from model_specs.extra_params import parse_extra_params
from model_specs.registry import DEFAULT_TAG

REQUIRED = ("instance_type", "service_type")
# Every key model_context reads (the shared stacks' are emd_stacks.context.APP_CONTEXT_KEYS).
MODEL_CONTEXT_KEYS = (
    "model_id",
    "instance_type",
    "engine_type",
    "service_type",
    "model_tag",
    "extra_params",
    "image_uri",
    "model_data_s3_uri",
)


@dataclass(frozen=True)
class ModelContext:
    deployment: Deployment
    image_uri: str | None = None
    model_data_s3_uri: str | None = None


def _text(get: Callable[[str], Any], key: str) -> str | None:
    value = get(key)
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else json.dumps(value)


def model_context(get: Callable[[str], Any], *, region: str) -> ModelContext | None:
    model_id = _text(get, "model_id")
    if model_id is None:
        return None
    missing = [k for k in REQUIRED if _text(get, k) is None]
    if missing:
        raise EmdUserError(
            f"context model_id={model_id} also needs {', '.join('-c ' + k + '=...' for k in missing)} "
            "(e.g. -c instance_type=g5.2xlarge -c service_type=sagemaker_realtime)"
        )
    extra = get("extra_params")
    deployment = resolve_deployment(
        model_id=model_id,
        instance_type=str(_text(get, "instance_type")),
        engine_type=_text(get, "engine_type"),
        service_type=str(_text(get, "service_type")),
        region=region,
        model_tag=_text(get, "model_tag") or DEFAULT_TAG,
        extra_params=parse_extra_params(
            extra if isinstance(extra, dict) else _text(get, "extra_params"), source="context extra_params"
        ),
    )
    return ModelContext(
        deployment=deployment,
        image_uri=_text(get, "image_uri"),
        model_data_s3_uri=_text(get, "model_data_s3_uri"),
    )
