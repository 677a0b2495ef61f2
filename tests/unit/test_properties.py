"""Property tests (hypothesis): random model ids, tags and extra-params never crash; they resolve or raise
EmdUserError with a message that names the bad value and never echoes an API key."""

from __future__ import annotations

import re
import string

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emd_cli.main import cli
from model_specs.catalogue import catalogue
from model_specs.deployment import TAG_PATTERN, deployment_slug, resolve_deployment, validate_tag
from model_specs.errors import EmdUserError
from model_specs.extra_params import ExtraParams, parse_extra_params
from model_specs.registry import registry_parameter_name

MODEL_IDS = sorted(catalogue().models)
SECTIONS = list(ExtraParams.model_fields)
KNOWN_KEYS = sorted({k for s in SECTIONS for k in ExtraParams.model_fields[s].annotation.model_fields})
CFN_STACK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,127}$")
SSM_NAME = re.compile(r"^/[A-Za-z0-9_.\-/]{1,1010}$")

model_ids = st.one_of(
    st.sampled_from(MODEL_IDS),
    st.text(max_size=40),
    st.sampled_from(MODEL_IDS).map(lambda m: m.lower()),
    st.sampled_from(MODEL_IDS).map(lambda m: m[:-1]),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-1000, 1000) | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
keys = st.one_of(st.sampled_from(SECTIONS + KNOWN_KEYS), st.text(min_size=1, max_size=12))
nested = st.dictionaries(
    keys, st.one_of(json_values, st.dictionaries(keys, json_values, max_size=4)), max_size=5
)


@given(model_ids)
@settings(max_examples=150, deadline=None)
def test_any_model_id_resolves_or_is_a_user_error(model_id: str) -> None:
    try:
        dep = resolve_deployment(
            model_id=model_id, instance_type="g5.48xlarge", service_type="ec2", region="us-east-1"
        )
    except EmdUserError as exc:
        assert model_id not in MODEL_IDS or "refused" in str(exc)
        if model_id not in MODEL_IDS:
            assert repr(model_id) in str(exc)
    else:
        assert dep.model_id == model_id in MODEL_IDS


@given(model_ids)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_cli_never_crashes_on_a_model_id(model_id: str) -> None:
    res = CliRunner().invoke(
        cli,
        ["cost", "--model-id", model_id, "-i", "g5.2xlarge", "-s", "ec2", "--json", "--region", "us-east-1"],
    )
    assert res.exit_code in (0, 2), res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)
    assert "Traceback" not in res.output
    assert (res.exit_code == 0) == (model_id in MODEL_IDS)


@given(st.one_of(st.text(max_size=40), st.from_regex(TAG_PATTERN, fullmatch=True)))
@settings(max_examples=200, deadline=None)
def test_tags_are_valid_names_or_user_errors(tag: str) -> None:
    try:
        validate_tag(tag)
    except EmdUserError as exc:
        assert not TAG_PATTERN.fullmatch(tag) and repr(tag) in str(exc)
        return
    assert TAG_PATTERN.fullmatch(tag)
    for model_id in MODEL_IDS:
        assert CFN_STACK_NAME.fullmatch("EMD-Model-" + deployment_slug(model_id, tag))
        assert SSM_NAME.fullmatch(registry_parameter_name(model_id, tag))


@given(st.one_of(nested, json_values))
@settings(max_examples=300, deadline=None)
def test_random_extra_params_parse_or_are_user_errors(raw: object) -> None:
    try:
        params = parse_extra_params(raw if isinstance(raw, dict) else __import__("json").dumps(raw))
    except EmdUserError as exc:
        msg = str(exc)
        if isinstance(raw, dict):
            for key in raw:
                if key not in SECTIONS:
                    assert f"unknown key {key!r}" in msg
                elif isinstance(raw[key], dict):
                    allowed = ExtraParams.model_fields[key].annotation.model_fields
                    for sub in raw[key]:
                        if sub not in allowed:
                            assert f"unknown key {f'{key}.{sub}'!r}" in msg
    else:
        assert isinstance(params, ExtraParams)
        assert isinstance(raw, dict) and set(raw) <= set(SECTIONS)


@given(
    st.text(alphabet=string.ascii_letters + string.digits, min_size=12, max_size=30).map(lambda s: "sk-" + s),
    st.one_of(st.just(None), st.just("as-list"), st.just("as-dict")),
    nested,
)
@settings(max_examples=200, deadline=None)
def test_api_key_value_is_never_echoed(secret: str, shape: str | None, extra: dict) -> None:
    value: object = secret if shape is None else [secret] if shape == "as-list" else {"k": secret}
    service = extra.get("service_params") if isinstance(extra.get("service_params"), dict) else {}
    raw = {**extra, "service_params": {**service, "api_key": value}}
    try:
        params = parse_extra_params(raw)
    except EmdUserError as exc:
        assert secret not in str(exc)
    else:
        assert secret not in repr(params) and secret not in str(params.without_secrets())
