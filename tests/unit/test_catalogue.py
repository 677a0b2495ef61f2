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
from model_specs.schema import Accelerator, ModelType


@pytest.fixture()
def data_copy(tmp_path: Path) -> Path:
    dst = tmp_path / "data"
    shutil.copytree(DATA_DIR, dst)
    return dst


def _edit_yaml(path: Path, edit) -> None:  # type: ignore[no-untyped-def]
    raw = yaml.safe_load(path.read_text())
    edit(raw)
    path.write_text(yaml.safe_dump(raw, sort_keys=False))


def test_packaged_catalogue_loads_with_breadth() -> None:
    cat = catalogue()
    counts = Counter(m.type for m in cat.models.values())
    assert len(cat.models) >= 45
    assert counts[ModelType.llm] >= 30 and counts[ModelType.vlm] >= 4
    assert counts[ModelType.embedding] >= 4 and counts[ModelType.rerank] >= 1 and counts[ModelType.asr] >= 2
    assert set(cat.engines) == {"vllm", "tgi", "lmdeploy", "llama.cpp", "ollama", "huggingface"}
    families = {i.family for i in cat.instances.values()}
    assert {"g4dn", "g5", "g6", "g6e", "p4d", "p4de", "p5", "inf2"} <= families
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


def test_every_model_fits_somewhere_in_us_east_1() -> None:
    cat = catalogue()
    missing = [m.id for m in cat.models.values() if compat.smallest_instance(cat, m, "us-east-1") is None]
    assert missing == []


def test_architecture_facts_are_consistent() -> None:
    for m in catalogue().models.values():
        assert m.num_attention_heads % m.num_kv_heads == 0, m.id
        assert m.default_engine in m.engines, m.id
        if m.dtype.startswith("awq"):
            assert m.bytes_per_param < 1 and "AWQ" in m.hf_id, m.id
        else:
            assert m.bytes_per_param >= 0.5, m.id


def test_china_flags_follow_the_licence_decisions() -> None:
    cat = catalogue()
    for m in cat.models.values():
        vendor = m.hf_id.split("/")[0]
        if vendor in ("meta-llama", "google"):
            assert not m.allow_china_region, m.id
        if vendor in ("Qwen", "deepseek-ai", "THUDM", "internlm", "OpenGVLab"):
            assert m.allow_china_region, m.id


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


def test_us_prices_cover_every_instance_and_china_only_offered_ones() -> None:
    cat = catalogue()
    for region in ("us-east-1", "us-west-2"):
        rp = cat.prices.regions[region]
        assert set(rp.ec2_hourly) == set(cat.instances) == set(rp.sagemaker_hourly)
        # SageMaker hosting costs more than the same EC2 instance
        assert all(rp.sagemaker_hourly[n] > rp.ec2_hourly[n] for n in cat.instances)
    cn = cat.prices.regions["cn-north-1"]
    assert cn.ec2_hourly and all("cn-north-1" in cat.instances[n].regions for n in cn.ec2_hourly)


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


def test_unknown_field_and_bad_heads_are_refused(data_copy: Path) -> None:
    path = data_copy / "models" / "llama.yaml"
    _edit_yaml(path, lambda ms: ms[0].update(contxt_length=4096))
    with pytest.raises(CatalogueError, match=r"llama\.yaml.*Llama-3\.1-8B-Instruct.*contxt_length"):
        load_catalogue(data_copy)
    _edit_yaml(path, lambda ms: (ms[0].pop("contxt_length"), ms[0].update(num_kv_heads=5)))
    with pytest.raises(
        CatalogueError, match=r"num_attention_heads \(32\) is not a multiple of num_kv_heads \(5\)"
    ):
        load_catalogue(data_copy)


def test_invalid_yaml_names_the_file(data_copy: Path) -> None:
    (data_copy / "models" / "mistral.yaml").write_text("- id: [unclosed\n")
    with pytest.raises(CatalogueError, match=r"mistral\.yaml: not valid YAML"):
        load_catalogue(data_copy)


def test_cross_reference_errors(data_copy: Path) -> None:
    models = data_copy / "models" / "gemma.yaml"
    _edit_yaml(models, lambda ms: ms[0]["engines"].update({"vlm-turbo": {}}))
    with pytest.raises(
        CatalogueError, match=r"gemma\.yaml: entry 'gemma-3-1b-it': field engines: unknown engine"
    ):
        load_catalogue(data_copy)
    shutil.copy(DATA_DIR / "models" / "gemma.yaml", models)

    _edit_yaml(models, lambda ms: ms[0]["engines"].update({"huggingface": {}}))
    with pytest.raises(CatalogueError, match=r"engines\.huggingface: engine huggingface does not serve llm"):
        load_catalogue(data_copy)
    shutil.copy(DATA_DIR / "models" / "gemma.yaml", models)

    _edit_yaml(models, lambda ms: ms[0].update(default_engine="lmdeploy"))
    with pytest.raises(CatalogueError, match=r"default_engine 'lmdeploy' is not one of this model's engines"):
        load_catalogue(data_copy)
    shutil.copy(DATA_DIR / "models" / "gemma.yaml", models)

    shutil.copy(DATA_DIR / "models" / "qwen.yaml", data_copy / "models" / "qwen_copy.yaml")
    with pytest.raises(
        CatalogueError, match=r"qwen_copy\.yaml: entry 'Qwen2.5-0.5B-Instruct'.*already defined"
    ):
        load_catalogue(data_copy)
    (data_copy / "models" / "qwen_copy.yaml").unlink()

    prices = data_copy / "prices.yaml"
    _edit_yaml(prices, lambda p: p["regions"]["cn-north-1"]["ec2_hourly"].update({"p5.48xlarge": 700.0}))
    with pytest.raises(CatalogueError, match=r"prices\.yaml: entry 'cn-north-1'.*p5\.48xlarge.*not offer"):
        load_catalogue(data_copy)
    shutil.copy(DATA_DIR / "prices.yaml", prices)

    _edit_yaml(prices, lambda p: p["regions"]["us-east-1"]["sagemaker_hourly"].update({"x9.huge": 1.0}))
    with pytest.raises(CatalogueError, match=r"entry 'us-east-1': field sagemaker_hourly: unknown instance"):
        load_catalogue(data_copy)
    shutil.copy(DATA_DIR / "prices.yaml", prices)

    inst = data_copy / "instances.yaml"
    _edit_yaml(inst, lambda d: d["instances"][0]["regions"].append("mars-east-1"))
    with pytest.raises(
        CatalogueError, match=r"instances\.yaml: entry 'g4dn\.xlarge': field regions.*mars-east-1"
    ):
        load_catalogue(data_copy)
    _edit_yaml(inst, lambda d: d.update(extras=[]))
    with pytest.raises(CatalogueError, match=r"unexpected top-level key"):
        load_catalogue(data_copy)
    shutil.copy(DATA_DIR / "instances.yaml", inst)
    assert len(load_catalogue(data_copy).models) == len(catalogue().models)
