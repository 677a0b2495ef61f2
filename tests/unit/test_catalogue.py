"""The packaged catalogue: loads, has the promised breadth, keeps the reference prices, and a broken copy
fails with a message naming file, entry and field."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest
import yaml

from model_specs import compat
from model_specs.catalogue import DATA_DIR, catalogue, load_catalogue
from model_specs.errors import CatalogueError, EmdUserError
from model_specs.schema import (
    CHECKPOINT_FACTS,
    DTYPE_BYTES_PER_PARAM,
    Accelerator,
    ModelSpec,
    ModelType,
    ServiceType,
)


@pytest.fixture()
def data_copy(tmp_path: Path) -> Path:
    dst = tmp_path / "data"
    shutil.copytree(DATA_DIR, dst)
    return dst


def _edit_yaml(path: Path, edit) -> None:  # type: ignore[no-untyped-def]
    raw = yaml.safe_load(path.read_text())
    edit(raw)
    path.write_text(yaml.safe_dump(raw, sort_keys=False))


# what issue 13 asks the catalogue to carry (besides the models it had)
NAMED_MODELS = (
    "Qwen3-235B-A22B", "Qwen3-235B-A22B-FP8", "Qwen3-30B-A3B-Instruct-2507", "Qwen3-30B-A3B-Thinking-2507",
    "Qwen3-8B-AWQ", "Qwen3-32B-AWQ", "Qwen3-8B-FP8", "Qwen3-32B-FP8", "QwQ-32B", "gpt-oss-20b",
    "gpt-oss-120b",
    "DeepSeek-R1", "DeepSeek-R1-0528-Qwen3-8B", "GLM-4-32B-0414", "GLM-Z1-32B-0414", "gemma-3-4b-it",
    "gemma-3-12b-it", "gemma-3-27b-it", "Mistral-Small-3.1-24B-Instruct-2503", "Qwen2.5-VL-32B-Instruct",
    "Qwen2.5-VL-72B-Instruct", "Qwen2.5-VL-72B-Instruct-AWQ", "InternVL2_5-8B", "InternVL3-8B",
    "UI-TARS-1.5-7B",
    "Qwen3-Embedding-4B", "Qwen3-Reranker-4B", "bge-reranker-large", "bce-embedding-base_v1",
)  # fmt: skip


def test_packaged_catalogue_loads_with_breadth() -> None:
    cat = catalogue()
    counts = Counter(m.type for m in cat.models.values())
    assert len(cat.models) >= 95
    assert counts[ModelType.llm] >= 55 and counts[ModelType.vlm] >= 15
    assert counts[ModelType.embedding] >= 6 and counts[ModelType.rerank] >= 5 and counts[ModelType.asr] >= 2
    assert [m for m in NAMED_MODELS if m not in cat.models] == []
    assert sum(m.moe for m in cat.models.values()) >= 8 and {"fp8", "mxfp4", "awq-int4"} <= {
        m.dtype for m in cat.models.values()
    }
    # Inferentia2 builds of Qwen2.5
    assert {"Qwen2.5-0.5B-Instruct", "Qwen2.5-7B-Instruct"} <= {
        m.id for m in cat.models.values() if "vllm-neuron" in m.engines
    }
    assert set(cat.engines) == {
        "vllm",
        "vllm-neuron",
        "tgi",
        "lmdeploy",
        "llama.cpp",
        "ollama",
        "huggingface",
    }
    families = {i.family for i in cat.instances.values()}
    assert {"g4dn", "g5", "g6", "g6e", "p4d", "p4de", "p5", "p5e", "p5en", "inf2"} <= families
    assert {Accelerator.gpu, Accelerator.inferentia, Accelerator.cpu} == {
        i.accelerator for i in cat.instances.values()
    }
    for required in (
        "Qwen2.5-0.5B-Instruct",
        "Qwen2.5-72B-Instruct-AWQ",
        "Qwen3-32B",
        "DeepSeek-R1-Distill-Llama-70B",
        "Llama-3.3-70B-Instruct",
        "GLM-4-9B-0414",
        "gemma-3-27b-it",
        "Qwen2.5-VL-72B-Instruct",
        "bge-m3",
        "bge-reranker-v2-m3",
        "jina-embeddings-v3",
        "whisper-large-v3-turbo",
        "SmolLM2-135M-Instruct-GGUF",
    ):
        assert required in cat.models


def test_engine_images_are_pinned() -> None:
    for engine in catalogue().engines.values():
        image, _, tag = engine.base_image.rpartition(":")
        assert image and tag and tag != "latest", engine.base_image


def test_every_model_fits_somewhere_in_us_east_1_or_says_what_would() -> None:
    cat = catalogue()
    missing = [m for m in cat.models.values() if compat.smallest_instance(cat, m, "us-east-1") is None]
    # only models no single instance holds, each with a variant that fits
    assert [m.id for m in missing] == ["DeepSeek-R1-BF16"]
    for m in missing:
        advice = compat.multi_instance_advice(
            cat, m, cat.engine(m.default_engine), ServiceType.sagemaker_realtime, "us-east-1"
        )
        assert advice and "What would fit:" in advice, m.id


def test_size_matches_parameter_count_and_dtype() -> None:
    wrong = []
    for m in catalogue().models.values():
        low, high = DTYPE_BYTES_PER_PARAM[m.dtype]
        if not low <= m.weights_gb / m.params_b <= high:
            wrong.append(
                f"{m.id}: {m.weights_gb} GB / {m.params_b}B = {m.bytes_per_param:.2f} B/param ({m.dtype})"
            )
        if m.dtype.startswith("awq"):
            assert "AWQ" in m.hf_id, m.id
        assert m.default_engine in m.engines, m.id
    assert wrong == []


def test_gguf_entries_name_a_gguf_repository_and_one_file_of_it() -> None:
    """A build downloads from hf_id: a GGUF entry names the repository that holds the quantized files (by
    convention <org>/<name>-GGUF), and each GGUF engine takes the one file of the entry's quantization."""
    gguf_engines = {"llama.cpp", "ollama"}
    models = catalogue().models.values()
    ggufs = [m for m in models if m.dtype.startswith("gguf")]
    assert ggufs
    for m in ggufs:
        assert m.hf_id.endswith("-GGUF"), f"{m.id}: {m.hf_id} is not a GGUF repository"
        quantization = m.dtype.removeprefix("gguf-").upper()
        for name in gguf_engines & set(m.engines):
            file = m.engines[name].model_file or ""
            assert file.endswith(".gguf") and quantization in file.upper(), f"{m.id} on {name}: {file!r}"
    assert all(not gguf_engines & set(m.engines) for m in models if m not in ggufs)


def test_size_cross_check_catches_a_wrong_entry(data_copy: Path) -> None:
    # 7.62B parameters cannot be 5.58 GB of bf16: the test above would name this entry
    m = catalogue().model("Qwen2.5-7B-Instruct-AWQ").model_copy(update={"dtype": "bf16"})
    low, _ = DTYPE_BYTES_PER_PARAM[m.dtype]
    assert m.weights_gb / m.params_b < low
    _edit_yaml(data_copy / "models" / "qwen.yaml", lambda ms: ms[0].update(dtype="int3"))
    with pytest.raises(CatalogueError, match=r"qwen\.yaml.*Qwen2\.5-0\.5B-Instruct.*unknown dtype 'int3'"):
        load_catalogue(data_copy)


def test_every_entry_says_where_its_facts_come_from_and_what_is_unverified() -> None:
    cat = catalogue()
    for m in cat.models.values():
        assert m.source.strip(), m.id
        assert set(m.unverified) <= CHECKPOINT_FACTS, m.id
    # facts read from a config.json copy in this catalogue's sources are not flagged
    assert "num_layers" not in cat.model("Qwen3-235B-A22B").unverified
    assert cat.model("SmolLM2-135M-Instruct-GGUF").unverified == []  # size measured from the shipped file
    with pytest.raises(ValueError, match=r"unverified names \['layers'\]"):
        ModelSpec.model_validate({**cat.model("Qwen3-8B").model_dump(), "unverified": ["layers"]})


def test_moe_entries_state_total_and_active_parameters() -> None:
    cat = catalogue()
    big = cat.model("Qwen3-235B-A22B")
    assert (big.params_b, big.active_params_b, big.num_experts, big.experts_per_token) == (
        235.1,
        22.0,
        128,
        8,
    )
    for m in cat.models.values():
        if m.moe:
            assert m.active_params_b < m.params_b and m.experts_per_token < m.num_experts, m.id
    with pytest.raises(ValueError, match="together"):
        ModelSpec.model_validate({**big.model_dump(), "num_experts": None})


# vLLM 0.11's reasoning parsers (docs.vllm.ai/en/v0.11.2/features/reasoning_outputs)
VLLM_REASONING_PARSERS = {
    "deepseek_r1", "deepseek_v3", "ernie45", "glm45", "granite", "hunyuan_a13b", "minimax_m2_append_think",
    "qwen3",
}  # fmt: skip


def test_reasoning_models_get_their_reasoning_parsed_on_vllm() -> None:
    cat = catalogue()
    reasoning = [m for m in cat.models.values() if m.reasoning]
    assert len(reasoning) >= 25
    for m in reasoning:
        args = m.engines["vllm"].cli_args.split()
        if m.architecture == "GptOssForCausalLM":
            assert "--reasoning-parser" not in args, m.id  # vLLM parses gpt-oss's harmony format itself
            continue
        parser = args[args.index("--reasoning-parser") + 1]
        assert parser in VLLM_REASONING_PARSERS, m.id
        # templates that open <think> themselves (QwQ, R1, 2507 Thinking) need deepseek_r1, hybrid Qwen3 qwen3
        if m.id.startswith(("QwQ", "DeepSeek")) or "Thinking" in m.id:
            assert parser == "deepseek_r1", m.id
    for m in cat.models.values():
        if not m.reasoning:
            assert all("--reasoning-parser" not in e.cli_args for e in m.engines.values()), m.id


def test_china_flags_follow_the_licence_decisions() -> None:
    cat = catalogue()
    for m in cat.models.values():
        vendor = m.hf_id.split("/")[0]
        if vendor in ("meta-llama", "google"):
            assert not m.allow_china_region, m.id
        if vendor in ("Qwen", "deepseek-ai", "THUDM", "internlm", "OpenGVLab", "openai", "mistralai", "BAAI"):
            assert m.allow_china_region, m.id
    # what China regions can run: the new MoE/FP8 models need g6e/p5-class GPUs that aws-cn does not offer
    china = {m.id for m in cat.models.values() if compat.smallest_instance(cat, m, "cn-northwest-1")}
    assert {"Qwen2.5-72B-Instruct-AWQ", "gpt-oss-20b", "QwQ-32B-AWQ"} <= china
    assert not {"Qwen3-8B-FP8", "DeepSeek-R1", "gemma-3-4b-it"} & china


def test_reference_prices_are_kept_exactly() -> None:
    p = catalogue().prices.regions
    us, cn = p["us-east-1"], p["cn-north-1"]
    assert (us.currency, cn.currency) == ("USD", "CNY")
    assert us.sagemaker_hourly["g4dn.xlarge"] == 0.736 and us.ec2_hourly["g4dn.xlarge"] == 0.526
    assert (us.s3_gb_month, us.s3_free_tier_gb) == (0.023, 5)
    assert us.codebuild_per_minute["BUILD_GENERAL1_LARGE"] == 0.005
    assert (us.codepipeline_per_pipeline_month, us.codepipeline_free_pipelines) == (1.00, 1)
    assert (us.ecr_gb_month, us.secrets_manager_secret_month) == (0.10, 0.40)
    assert cn.sagemaker_hourly["g4dn.xlarge"] == 6.18 and cn.ec2_hourly["g4dn.xlarge"] == 4.42
    assert (cn.s3_gb_month, cn.codebuild_per_minute["BUILD_GENERAL1_LARGE"]) == (0.21, 0.08)
    assert (cn.codepipeline_per_pipeline_month, cn.ecr_gb_month, cn.secrets_manager_secret_month) == (
        7.00,
        0.42,
        3.36,
    )


def unpriced(cat) -> list[str]:  # type: ignore[no-untyped-def]
    """Every (region, service, instance) the catalogue offers in a price-book region without a price there."""
    out = []
    for region, rp in cat.prices.regions.items():
        for inst in cat.instances.values():
            if region in inst.regions and inst.name not in rp.ec2_hourly:
                out.append(f"{region} EC2 {inst.name}")
            if region in inst.sagemaker_regions and inst.name not in rp.sagemaker_hourly:
                out.append(f"{region} SageMaker ml.{inst.name}")
    return out


def test_every_offered_instance_has_a_price_in_every_priced_region() -> None:
    cat = catalogue()
    assert {"us-east-1", "us-west-2", "cn-north-1", "cn-northwest-1"} <= set(cat.prices.regions)
    assert unpriced(cat) == []
    for region in ("us-east-1", "us-west-2"):
        rp = cat.prices.regions[region]
        assert {"p5e.48xlarge", "p5en.48xlarge", "g6e.xlarge", "inf2.48xlarge"} <= set(rp.sagemaker_hourly)
        # SageMaker hosting costs more than the same EC2 instance
        assert all(rp.sagemaker_hourly[n] > rp.ec2_hourly[n] for n in rp.sagemaker_hourly)
    assert {"g5.xlarge", "p4d.24xlarge"} <= set(cat.prices.regions["cn-northwest-1"].sagemaker_hourly)


def test_a_missing_price_is_caught(data_copy: Path) -> None:
    _edit_yaml(
        data_copy / "prices.yaml",
        lambda p: p["regions"]["us-west-2"]["ec2"]["h200-estimate"].pop("p5en.48xlarge"),
    )
    assert unpriced(load_catalogue(data_copy)) == ["us-west-2 EC2 p5en.48xlarge"]


def test_every_price_has_a_dated_source_and_estimates_say_so() -> None:
    book = catalogue().prices
    for region, rp in book.regions.items():
        for sagemaker, table in ((False, rp.ec2_hourly), (True, rp.sagemaker_hourly)):
            for name in table:
                source = book.source(region, name, sagemaker)
                assert source is not None and source.taken_on.year >= 2024, (region, name)
                assert source.estimated == source.source.startswith("ESTIMATE"), (region, name)
    assert book.source("us-east-1", "p5en.48xlarge", True).estimated  # type: ignore[union-attr]
    assert not book.source("us-east-1", "g5.xlarge", False).estimated  # type: ignore[union-attr]
    assert book.source("cn-north-1", "g4dn.xlarge", True).source.startswith("EMD architecture")  # type: ignore[union-attr]


def test_china_offers_fewer_instance_types() -> None:
    cat = catalogue()
    bj = {i.family for i in cat.instances.values() if "cn-north-1" in i.regions}
    nx = {i.family for i in cat.instances.values() if "cn-northwest-1" in i.regions}
    assert "g4dn" in bj and {"g4dn", "g5", "p4d"} <= nx
    assert not ({"g6", "g6e", "p5", "inf2"} & (bj | nx))


def test_lookups_accept_ml_prefix_and_suggest() -> None:
    cat = catalogue()
    assert cat.instance("ml.g5.2xlarge") is cat.instance("g5.2xlarge")
    with pytest.raises(EmdUserError, match=r"Did you mean .*Qwen2\.5-7B-Instruct"):
        cat.model("Qwen2.5-7B-Instuct")


def test_broken_field_names_file_entry_and_field(data_copy: Path) -> None:
    def edit(models: list) -> None:  # type: ignore[type-arg]
        next(m for m in models if m["id"] == "Qwen2.5-14B-Instruct")["num_layers"] = "many"

    _edit_yaml(data_copy / "models" / "qwen.yaml", edit)
    with pytest.raises(CatalogueError) as err:
        load_catalogue(data_copy)
    msg = str(err.value)
    assert "qwen.yaml" in msg and "'Qwen2.5-14B-Instruct'" in msg and "num_layers" in msg


def test_invalid_yaml_names_the_file(data_copy: Path) -> None:
    (data_copy / "models" / "mistral.yaml").write_text("- id: [unclosed\n")
    with pytest.raises(CatalogueError, match=r"mistral\.yaml: not valid YAML"):
        load_catalogue(data_copy)


BROKEN_COPIES = {
    "unknown field": (
        "models/llama.yaml",
        lambda ms: ms[0].update(contxt_length=4096),
        r"llama\.yaml.*Llama-3\.1-8B-Instruct.*contxt_length",
    ),
    "bad heads": (
        "models/llama.yaml",
        lambda ms: ms[0].update(num_kv_heads=5),
        r"num_attention_heads \(32\) is not a multiple of num_kv_heads \(5\)",
    ),
    "unknown engine": (
        "models/gemma.yaml",
        lambda ms: ms[0]["engines"].update({"vlm-turbo": {}}),
        r"gemma\.yaml: entry 'gemma-3-1b-it': field engines: unknown engine",
    ),
    "engine of another type": (
        "models/gemma.yaml",
        lambda ms: ms[0]["engines"].update({"huggingface": {}}),
        r"engines\.huggingface: engine huggingface does not serve llm",
    ),
    "default engine not listed": (
        "models/gemma.yaml",
        lambda ms: ms[0].update(default_engine="lmdeploy"),
        r"default_engine 'lmdeploy' is not one of this model's engines",
    ),
    "model id twice": (
        "models/gemma.yaml",
        lambda ms: ms.append({**ms[0], "id": "Qwen2.5-0.5B-Instruct"}),
        r"entry 'Qwen2\.5-0\.5B-Instruct'.*already defined",
    ),
    "unknown base model": (
        "models/gemma.yaml",
        lambda ms: ms[0].update(base_model="gemma-9"),
        r"gemma-3-1b-it.*base_model: 'gemma-9' is not a catalogue model id",
    ),
    "price of an instance not offered": (
        "prices.yaml",
        lambda p: p["regions"]["cn-north-1"]["ec2"]["cny-estimate"].update({"p5.48xlarge": 700.0}),
        r"prices\.yaml: entry 'cn-north-1'.*p5\.48xlarge.*not offer",
    ),
    "price of an unknown instance": (
        "prices.yaml",
        lambda p: p["regions"]["us-east-1"]["sagemaker"]["reference"].update({"x9.huge": 1.0}),
        r"entry 'us-east-1': field sagemaker: unknown instance",
    ),
    "unknown price source": (
        "prices.yaml",
        lambda p: p["regions"]["us-east-1"]["ec2"].update({"rumour": {"x1.rare": 0.5}}),
        r"us-east-1\.ec2: unknown price source",
    ),
    "priced twice": (
        "prices.yaml",
        lambda p: p["regions"]["us-east-1"]["ec2"]["h200-estimate"].update({"g5.xlarge": 0.5}),
        r"g5\.xlarge is priced twice",
    ),
    "unknown region": (
        "instances.yaml",
        lambda d: d["instances"][0]["regions"].append("mars-east-1"),
        r"instances\.yaml: entry 'g4dn\.xlarge': field regions.*mars-east-1",
    ),
    "unknown top-level key": ("instances.yaml", lambda d: d.update(extras=[]), r"unexpected top-level key"),
}


def test_an_unedited_copy_loads(data_copy: Path) -> None:
    assert len(load_catalogue(data_copy).models) == len(catalogue().models)


@pytest.mark.parametrize(("file", "edit", "match"), list(BROKEN_COPIES.values()), ids=list(BROKEN_COPIES))
def test_a_broken_copy_is_refused_naming_what_is_wrong(data_copy: Path, file: str, edit, match: str) -> None:  # type: ignore[no-untyped-def]
    _edit_yaml(data_copy / file, edit)
    with pytest.raises(CatalogueError, match=match):
        load_catalogue(data_copy)
