"""--extra-params schema: sections parse, unknown keys named with a did-you-mean, secrets hidden."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from model_specs.errors import EmdUserError
from model_specs.extra_params import ExtraParams, parse_extra_params


def test_empty_and_none_give_defaults() -> None:
    assert parse_extra_params(None) == ExtraParams()
    assert parse_extra_params("") == ExtraParams()
    assert parse_extra_params("{}") == ExtraParams()


def test_every_section_parses_from_json_dict_and_file(tmp_path: Path) -> None:
    raw = {
        "service_params": {
            "min_capacity": 0,
            "max_capacity": 2,
            "vpc_id": "vpc-0123abcd",
            "subnet_ids": ["subnet-0123abcd", "subnet-4567ef01"],
        },
        "engine_params": {"cli_args": "--max-model-len 8192", "environment": {"VLLM_LOGGING_LEVEL": "INFO"}},
        "model_params": {"revision": "main", "model_files_s3_path": "s3://my-bucket/models/qwen"},
        "framework_params": {"limit_concurrency": 64, "log_level": "info"},
    }
    path = tmp_path / "params.json"
    path.write_text(json.dumps(raw))
    parsed = [parse_extra_params(raw), parse_extra_params(json.dumps(raw)), parse_extra_params(f"@{path}")]
    assert parsed[0] == parsed[1] == parsed[2]
    p = parsed[0]
    assert p.service_params.max_capacity == 2 and p.engine_params.environment == {
        "VLLM_LOGGING_LEVEL": "INFO"
    }
    assert p.framework_params.limit_concurrency == 64 and p.model_params.revision == "main"


@pytest.mark.parametrize(
    ("raw", "named", "suggested"),
    [
        ({"service_param": {}}, "service_param", "service_params"),
        ({"service_params": {"min_capacty": 1}}, "service_params.min_capacty", "min_capacity"),
        ({"engine_params": {"cli_arg": "-x"}}, "engine_params.cli_arg", "cli_args"),
        ({"framework_params": {"log_levl": "info"}}, "framework_params.log_levl", "log_level"),
    ],
)
def test_unknown_keys_are_named_with_a_suggestion(raw: dict, named: str, suggested: str) -> None:
    with pytest.raises(EmdUserError) as err:
        parse_extra_params(raw)
    msg = str(err.value)
    assert repr(named) in msg and f"Did you mean {suggested!r}" in msg


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('"text"', "must be a JSON object"),
        ('{"service_params": {"min_capacity": -1}}', "service_params.min_capacity"),
        ('{"service_params": {"vpc_id": "vpc-xyz"}}', "vpc-xyz"),
        ('{"service_params": {"subnet_ids": ["sub-1"]}}', "sub-1"),
        ('{"framework_params": {"log_level": "loud"}}', "log_level"),
        ("@/nonexistent/extra.json", "does not exist"),
    ],
)
def test_bad_values_name_the_field(text: str, needle: str) -> None:
    with pytest.raises(EmdUserError) as err:
        parse_extra_params(text)
    assert needle in str(err.value)


def test_api_key_is_secret_and_never_in_errors_or_public_forms() -> None:
    p = parse_extra_params({"service_params": {"api_key": "sk-abc-123"}})
    assert (
        p.service_params.api_key is not None and p.service_params.api_key.get_secret_value() == "sk-abc-123"
    )
    assert "sk-abc-123" not in repr(p) and "sk-abc-123" not in json.dumps(p.without_secrets())
    with pytest.raises(EmdUserError) as err:
        parse_extra_params({"service_params": {"api_key": ["sk-abc-123"]}})
    assert "api_key" in str(err.value) and "sk-abc-123" not in str(err.value)
