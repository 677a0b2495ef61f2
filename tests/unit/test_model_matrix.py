"""Matrix: (model, engine, instance, service, region) combinations drawn from the catalogue, with options
(VPC given, scale to zero, public), all synthesized in one App with cdk-nag; cfn-lint (zero errors and
warnings) and the China partition check on every template."""

from __future__ import annotations

import itertools

import pytest

from model_specs import compat
from model_specs.catalogue import catalogue
from model_specs.schema import ServiceType
from tests.cdk_checks import cfn_lint_findings, nag_violations, templates_of
from tests.unit.model_stack_helpers import Variant, build_app, registry_entry
from tests.unit.stack_fixtures import china_partition_literals

pytestmark = pytest.mark.slow

REGIONS = ("us-east-1", "cn-north-1", "us-west-2")
TARGETS = (ServiceType.sagemaker_realtime, ServiceType.sagemaker_async, ServiceType.ecs, ServiceType.ec2)
VPC = {
    "vpc_id": "vpc-0123456789abcdef0",
    "subnet_ids": ["subnet-0aaaaaaaaaaaaaaa1", "subnet-0bbbbbbbbbbbbbbb2"],
}
OPTIONS = {
    "default": None,
    "vpc": {"service_params": VPC},
    "zero": {"service_params": {"min_capacity": 0, "max_capacity": 2}},
    "public": {"service_params": {"public": True, "max_capacity": 2}},
}
MAX_COMBOS = 48
# always in the matrix: what the catalogue's newer rules admit
# (region, service, model, engine, instance, option)
REQUIRED = (
    ("us-east-1", "sagemaker_realtime", "Qwen3-30B-A3B", "vllm", "g6e.12xlarge", "default"),  # MoE
    ("us-west-2", "ecs", "Qwen3-8B-FP8", "vllm", "g6.xlarge", "vpc"),  # FP8 on Ada
    ("us-east-1", "ec2", "gpt-oss-20b", "vllm", "g6.xlarge", "public"),  # MXFP4
    (
        "us-east-1",
        "sagemaker_async",
        "Qwen2.5-7B-Instruct",
        "vllm-neuron",
        "inf2.xlarge",
        "zero",
    ),  # Inferentia2
)


def matrix() -> dict[str, Variant]:
    """Round-robin over (region, target) buckets of fitting (model, engine, instance) combinations (smallest
    and largest fitting instance), so the sample stays spread out as the catalogue grows; options in turn per
    target."""
    cat = catalogue()
    buckets: list[list[tuple[str, str, str, str, str]]] = []
    for region in REGIONS:
        for service in TARGETS:
            bucket = []
            for model in cat.models.values():
                for engine_name in model.engines:
                    fits = compat.fitting_instances(cat, model, cat.engine(engine_name), service, region)
                    for instance in dict.fromkeys([f.name for f in fits[:1] + fits[-1:]]):
                        bucket.append((region, service.value, model.id, engine_name, instance))
            per_model: dict[str, list[tuple[str, str, str, str, str]]] = {}
            for entry in bucket:
                per_model.setdefault(entry[2], []).append(entry)
            # interleave models so the first picks of each bucket are different models
            bucket = [e for group in itertools.zip_longest(*per_model.values()) for e in group if e]
            if bucket:
                buckets.append(bucket)
    picked = []
    for i in range(max(len(b) for b in buckets)):
        picked += [b[i] for b in buckets if i < len(b)]
    options = list(OPTIONS)
    out: dict[str, Variant] = {}
    per_target: dict[str, int] = {}
    combos = [(*c, None) for c in picked[: MAX_COMBOS - len(REQUIRED)]] + list(REQUIRED)
    for n, (region, service, model_id, engine_name, instance, fixed) in enumerate(combos):
        per_target[service] = per_target.get(service, -1) + 1
        option = fixed or options[per_target[service] % len(options)]
        if option == "vpc" and service not in (ServiceType.ecs.value, ServiceType.ec2.value):
            option = "zero"
        if option == "zero" and service == ServiceType.sagemaker_realtime.value and region.startswith("cn-"):
            option = "default"  # refused there (no inference components): see test_model_stack_targets
        key = f"{region}/{service}/{model_id}/{engine_name}/{instance}/{option}"
        out[key] = Variant(
            model_id,
            instance,
            engine_name,
            service,
            region=region,
            model_tag=f"m{n}",
            extra_params=OPTIONS[option],
        )
    return out


MATRIX = matrix()


def test_matrix_covers_the_required_combinations():
    keys = list(MATRIX)
    assert len(keys) == MAX_COMBOS
    for region, service, model_id, engine, instance, _ in REQUIRED:
        assert any(k.startswith(f"{region}/{service}/{model_id}/{engine}/{instance}/") for k in keys)
        cat = catalogue()
        assert compat.check(
            cat, cat.model(model_id), cat.engine(engine), cat.instance(instance), ServiceType(service), region
        ).ok
    assert {k.split("/")[1] for k in keys} == {t.value for t in TARGETS}
    assert any(k.startswith("cn-north-1/") for k in keys)
    assert {k.rsplit("/", 1)[1] for k in keys} == set(OPTIONS)
    assert len({k.split("/")[2] for k in keys}) >= 2 and len({k.split("/")[4] for k in keys}) >= 3


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory):
    outdir = tmp_path_factory.mktemp("matrix")
    app, stacks = build_app(outdir, MATRIX)
    findings = nag_violations(app)
    by_name = templates_of(outdir)
    return findings, {key: by_name[stack.stack_name] for key, stack in stacks.items()}


def test_cdk_nag_clean_on_every_stack(synthesized):
    assert synthesized[0] == []


@pytest.mark.parametrize("key", list(MATRIX))
def test_cfn_lint_clean(synthesized, key):
    template = synthesized[1][key]
    region = MATRIX[key].region
    assert cfn_lint_findings(template, [region]) == []
    if region.startswith("cn-"):
        assert china_partition_literals(template) == []
    d = MATRIX[key].deployment()
    _, entry = registry_entry(template)
    assert entry["model_id"] == d.model_id and entry["service_type"] == d.service_type.value
