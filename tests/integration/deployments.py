"""The deployments the serving integration tests register (in moto's SSM and Secrets Manager) and the keys
they use; the `registered` and `gw` fixtures in conftest.py set them up once per session."""

from __future__ import annotations

import json
from typing import Any

import openai

from model_specs.registry import ASYNC_IO_PREFIX, RegistryEntry, registry_parameter_name
from tests.entries import http_entry, sm_entry
from tests.integration.conftest import Gateway

MODEL = "SmolLM2-135M-Instruct"
KEY_DEV = "sk-dev-0123456789abcdef"
KEY_SM = "sk-sm-fedcba9876543210"
KEY_VICTIM = "sk-victim-5555"
PROMPT_MARKER = "zebra-lighthouse-prompt"
ASYNC_BUCKET = "emd-artifacts-async-test"
MESSAGES = [{"role": "user", "content": f"Say hello. ({PROMPT_MARKER})"}]


def register(
    aws: dict[str, Any], entry: RegistryEntry, key: str | None = None, json_secret: bool = False
) -> None:
    aws["ssm"].put_parameter(
        Name=registry_parameter_name(entry.model_id, entry.model_tag),
        Value=entry.model_dump_json(),
        Type="String",
        Overwrite=True,
    )
    if key is not None and entry.api_key_secret_name:
        value = json.dumps({"api_key": key}) if json_secret else key
        aws["secrets"].create_secret(Name=entry.api_key_secret_name, SecretString=value)


def async_entry(model_id: str, tag: str, endpoint: str) -> RegistryEntry:
    """As the async model stack registers it: inputs under <bucket>/emd-async/<model>/<tag>/input/."""
    return sm_entry(model_id, tag, endpoint).model_copy(
        update={
            "service_type": "sagemaker_async",
            "backend": "sagemaker_async",
            "s3_input_path": f"s3://{ASYNC_BUCKET}/{ASYNC_IO_PREFIX}/{model_id}/{tag}/input/",
        }
    )


def client(gw: Gateway, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0, timeout=60)


def register_all(aws: dict[str, Any], adapter: str) -> None:
    """The deployments every gateway test may route to."""
    register(aws, http_entry(MODEL, "dev", adapter + "/v1"), KEY_DEV)
    register(aws, sm_entry(MODEL, "sm", "emd-smollm2-sm"), KEY_SM, json_secret=True)
    register(aws, sm_entry(MODEL, "broken", "emd-broken"), KEY_SM)
    register(aws, http_entry("open-model", "dev", adapter, public=True))
    register(aws, http_entry("nokey-model", "dev", adapter, secret=False))
    aws["s3"].create_bucket(Bucket=ASYNC_BUCKET)
    register(aws, async_entry("async-model", "dev", "emd-async"), KEY_DEV)
    register(aws, async_entry("async-model", "broken", "emd-async-broken"), KEY_DEV)
    register(aws, async_entry("async-model", "silent", "emd-async-silent"), KEY_DEV)
