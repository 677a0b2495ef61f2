"""`cdk deploy -c model_id=... -c instance_type=... -c engine_type=... -c service_type=... [-c model_tag=...]
[-c extra_params='{...}'] [-c image_uri=...] [-c model_data_s3_uri=...] [-c api_key_secret_name=...]` -> one
validated Deployment (or None when no model_id is given). Errors are the CLI's EmdUserErrors."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from model_specs.deployment import Deployment, resolve_deployment
from model_specs.errors import EmdUserError
from model_specs.extra_params import parse_extra_params
from model_specs.registry import API_KEY_SECRET_SUFFIX, DEFAULT_TAG, SECRET_PREFIX

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
    "api_key_secret_name",
)
# the gateway may read only these secrets (model_specs.registry.API_KEY_SECRETS_ARN_NAME)
_KEY_SECRET_NAME = re.compile(rf"^{SECRET_PREFIX}/[\w.@+=/-]+/{API_KEY_SECRET_SUFFIX}$")


@dataclass(frozen=True)
class ModelContext:
    deployment: Deployment
    image_uri: str | None = None
    model_data_s3_uri: str | None = None
    api_key_secret_name: str | None = None


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
    if "api_key" in (_text(get, "extra_params") or ""):
        _refuse_api_key_value(extra)
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
        api_key_secret_name=_key_secret_name(_text(get, "api_key_secret_name"), deployment),
    )


def _key_secret_name(name: str | None, deployment: Deployment) -> str | None:
    """-c api_key_secret_name: an existing secret to take the key from instead of one the stack creates."""
    if name is None:
        return None
    if deployment.api_key_secret_name is None:
        raise EmdUserError(
            f"context api_key_secret_name={name} and service_params public=true exclude each other: a public "
            "deployment has no API key"
        )
    if not _KEY_SECRET_NAME.fullmatch(name):
        raise EmdUserError(
            f"context api_key_secret_name={name!r} is not a name the gateway may read: use "
            f"{SECRET_PREFIX}/<name>/{API_KEY_SECRET_SUFFIX}, e.g. {deployment.api_key_secret_name}"
        )
    return name


def _refuse_api_key_value(extra: Any) -> None:
    """A key given in -c extra_params would be written into the template (and cdk.out, the shell history)."""
    try:
        data = extra if isinstance(extra, dict) else json.loads(str(extra))
    except ValueError:
        return  # parse_extra_params names the JSON error
    if isinstance(data, dict) and "api_key" in (data.get("service_params") or {}):
        raise EmdUserError(
            "context extra_params service_params.api_key: cdk deploy does not take a key value (it would be "
            "written into the template); store it with `aws secretsmanager create-secret --name "
            "emd/<model-id>/<tag>/api-key --secret-string <key>` and pass "
            "-c api_key_secret_name=<that name>, or leave it out and the stack generates one"
        )
