"""Registry entries as model stacks register them, for the serving tests (unit and integration)."""

from __future__ import annotations

from model_specs.registry import RegistryEntry, api_key_secret_name


def http_entry(
    model_id: str, tag: str, base_url: str, public: bool = False, secret: bool = True
) -> RegistryEntry:
    return RegistryEntry(
        model_id=model_id,
        model_tag=tag,
        model_type="llm",
        service_type="ecs",
        backend="http",
        base_url=base_url,
        api_key_secret_name=api_key_secret_name(model_id, tag) if secret and not public else None,
        public=public,
    )


def sm_entry(model_id: str, tag: str, endpoint: str) -> RegistryEntry:
    return RegistryEntry(
        model_id=model_id,
        model_tag=tag,
        model_type="llm",
        service_type="sagemaker_realtime",
        backend="sagemaker",
        endpoint_name=endpoint,
        api_key_secret_name=api_key_secret_name(model_id, tag),
    )
