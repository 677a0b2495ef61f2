"""Compatibility rules: memory (weights + KV cache + runtime), tensor-parallel divisibility, engine support,
single-device engines, CPU RAM, Inferentia, regions and China, and the refusal message with what fits."""

from __future__ import annotations

import pytest

from model_specs import compat
from model_specs.catalogue import catalogue
from model_specs.deployment import resolve_deployment
from model_specs.errors import EmdUserError
from model_specs.schema import EngineDefaults, ModelSpec, ServiceType

SM = ServiceType.sagemaker_realtime
EC2 = ServiceType.ec2


def verdict(model: str | ModelSpec, engine: str, instance: str, service=SM, region="us-east-1"):  # type: ignore[no-untyped-def]
    cat = catalogue()
    m = cat.model(model) if isinstance(model, str) else model
    return compat.check(cat, m, cat.engine(engine), cat.instance(instance), service, region)


def variant(model_id: str, **update) -> ModelSpec:  # type: ignore[no-untyped-def]
    return catalogue().model(model_id).model_copy(update=update)


def refusal(model_id: str, instance: str, service: str = "sagemaker_realtime", **kw: str) -> str:
    """The message resolve_deployment refuses this deployment with (us-east-1)."""
    with pytest.raises(EmdUserError) as err:
        resolve_deployment(
            model_id=model_id, instance_type=instance, service_type=service, region="us-east-1", **kw
        )
    return str(err.value)


@pytest.mark.parametrize(
    ("model", "engine", "instance", "service", "region"),
    [
        ("Qwen2.5-7B-Instruct", "vllm", "g5.2xlarge", SM, "us-east-1"),
        ("Qwen2.5-7B-Instruct", "vllm", "ml.g5.12xlarge", SM, "us-west-2"),
        ("Qwen2.5-7B-Instruct-AWQ", "vllm", "g4dn.xlarge", SM, "cn-north-1"),
        ("Qwen2.5-72B-Instruct-AWQ", "lmdeploy", "g4dn.12xlarge", EC2, "cn-northwest-1"),
        ("Qwen2.5-72B-Instruct", "vllm", "g5.48xlarge", ServiceType.ecs, "cn-northwest-1"),
        ("Llama-3.1-70B-Instruct", "vllm", "p4d.24xlarge", SM, "us-east-1"),
        ("Llama-3.1-8B-Instruct", "vllm-neuron", "inf2.xlarge", SM, "us-east-1"),
        ("Qwen2.5-7B-Instruct", "vllm-neuron", "inf2.8xlarge", EC2, "us-west-2"),
        ("Qwen3-235B-A22B-FP8", "vllm", "g6e.48xlarge", EC2, "us-east-1"),
        ("gpt-oss-120b", "vllm", "p5.48xlarge", SM, "us-west-2"),
        ("gpt-oss-20b", "vllm", "g5.xlarge", SM, "us-east-1"),
        ("DeepSeek-R1", "vllm", "p5en.48xlarge", SM, "us-east-1"),
        ("Llama-3.2-3B-Instruct", "vllm", "g5.48xlarge", EC2, "us-east-1"),
        ("SmolLM2-135M-Instruct-GGUF", "llama.cpp", "m7i.xlarge", EC2, "us-east-1"),
        ("SmolLM2-135M-Instruct-GGUF", "llama.cpp", "m5.xlarge", EC2, "cn-north-1"),
        ("bge-m3", "huggingface", "g4dn.xlarge", ServiceType.sagemaker_async, "us-east-1"),
        ("bge-large-en-v1.5", "huggingface", "c7i.xlarge", SM, "us-east-1"),
        ("whisper-large-v3", "vllm", "g5.xlarge", SM, "us-east-1"),
        ("Llama-3.1-8B-Instruct", "vllm", "g5.2xlarge", ServiceType.local, "cn-north-1"),
    ],
)
def test_combinations_that_work(model, engine, instance, service, region) -> None:  # type: ignore[no-untyped-def]
    v = verdict(model, engine, instance, service, region)
    assert v.ok and v.reasons == ()


def test_72b_on_g5_xlarge_is_refused_with_reason_and_what_fits() -> None:
    msg = refusal("Qwen2.5-72B-Instruct", "g5.xlarge", engine_type="vllm")
    assert "needs ~148.6 GiB of accelerator memory (weights 135.4 GiB" in msg
    assert "g5.xlarge offers 21.6 GiB usable" in msg
    listed = msg.split(
        "Smallest instances that fit Qwen2.5-72B-Instruct on vllm/sagemaker_realtime in us-east-1:"
    )
    assert len(listed) == 2
    names = [n.strip() for n in listed[1].split(",")]
    assert names[0] == "g6e.12xlarge" and len(names) == 5
    for name in names:
        assert verdict("Qwen2.5-72B-Instruct", "vllm", name).ok


def test_memory_counts_weights_kv_cache_for_max_len_and_runtime() -> None:
    m = catalogue().model("Qwen2.5-7B-Instruct")
    # 28 layers x 4 KV heads x 128 x 2 (K and V) x 2 bytes = 57344 bytes per token
    assert compat.kv_cache_gib(m, 16000) == pytest.approx(57344 * 16000 / 2**30)
    assert compat.max_sequence_tokens(m, "vllm") == 16000
    assert compat.max_sequence_tokens(m) == 16000  # the default engine's arguments
    need = compat.required_memory_gib(m, 1, "vllm")
    assert need == pytest.approx(m.weights_gib * 1.05 + 57344 * 16000 / 2**30 + 1.5)
    longer = variant(
        "Qwen2.5-7B-Instruct", engines={"vllm": EngineDefaults(cli_args="--max-model-len=32768")}
    )
    assert compat.required_memory_gib(longer, 1, "vllm") > need
    ctx = variant("SmolLM2-135M-Instruct-GGUF", engines={"llama.cpp": EngineDefaults(cli_args="-c 99999")})
    assert compat.max_sequence_tokens(ctx, "llama.cpp") == ctx.context_length  # capped at the model's context
    assert compat.max_sequence_tokens(m, "ollama") == 4096  # no engine arguments: the default headroom
    emb = catalogue().model("bge-m3")
    assert compat.required_memory_gib(emb, 1, "vllm") == pytest.approx(emb.weights_gib * 1.05 + 1.5)


def test_max_len_that_does_not_fit_beside_the_weights_is_refused() -> None:
    # Llama-3.1-8B at 16K fits an A10G; at its full 128K context the KV cache (16 GiB) does not
    assert verdict("Llama-3.1-8B-Instruct", "vllm", "g5.xlarge").ok
    full = variant(
        "Llama-3.1-8B-Instruct", engines={"vllm": EngineDefaults(cli_args="--max-model-len 131072")}
    )
    v = verdict(full, "vllm", "g5.xlarge")
    assert not v.ok and "KV cache for 131072 tokens" in v.reasons[0]


def test_tensor_parallel_degree_must_divide_attention_heads() -> None:
    # 28 heads: TP 4 (g5.12xlarge) works, TP 8 (g5.48xlarge) does not, on any tensor-parallel engine
    assert verdict("Qwen2.5-7B-Instruct", "vllm", "g5.12xlarge").ok
    for engine in ("vllm", "tgi", "lmdeploy"):
        v = verdict("Qwen2.5-7B-Instruct", engine, "g5.48xlarge")
        assert v.reasons == (
            f"tensor-parallel degree 8 ({engine} on g5.48xlarge) does not divide Qwen2.5-7B-Instruct's "
            "28 attention heads",
        )


def test_kv_heads_must_shard_or_replicate_evenly() -> None:
    odd = variant("Llama-3.2-3B-Instruct", num_attention_heads=24, num_kv_heads=3)
    assert "3 KV heads" in (compat.tensor_parallel_problem(odd, 2) or "")  # 3 heads over 2 shards
    assert "3 KV heads" in (compat.tensor_parallel_problem(odd, 4) or "")  # 4 shards, 3 heads: 4 % 3 != 0
    assert compat.tensor_parallel_problem(odd, 3) is None  # one KV head per shard
    replicated = variant("Llama-3.2-3B-Instruct", num_attention_heads=32, num_kv_heads=2)
    assert compat.tensor_parallel_problem(replicated, 8) is None  # each KV head copied to 4 shards
    v = verdict(odd, "vllm", "g5.12xlarge")
    assert not v.ok and any("KV heads" in r for r in v.reasons)


def test_tensor_parallel_degree_per_engine_and_accelerator() -> None:
    cat = catalogue()
    g5_48 = cat.instance("g5.48xlarge")
    assert compat.tensor_parallel_degree("vllm", g5_48) == 8
    assert compat.tensor_parallel_degree(cat.engine("lmdeploy"), g5_48) == 8
    assert compat.tensor_parallel_degree("huggingface", g5_48) == 1
    assert compat.tensor_parallel_degree("llama.cpp", g5_48) == 1  # layer split, not tensor parallel
    assert compat.tensor_parallel_degree("tgi", cat.instance("inf2.24xlarge")) == 12  # 6 devices x 2 cores
    assert compat.tensor_parallel_degree("llama.cpp", cat.instance("m7i.xlarge")) == 1


def test_single_device_engine_counts_one_gpu() -> None:
    big = variant("bge-m3", params_b=10.0, weights_gb=40.0)  # 37 GiB: more than one A10G, less than four
    assert verdict(big, "vllm", "g5.12xlarge").ok
    v = verdict(big, "huggingface", "g5.12xlarge")
    assert (
        not v.ok
        and "huggingface uses one of the 4 devices" in v.reasons[0]
        and "21.6 GiB usable" in v.reasons[0]
    )
    assert compat.usable_memory_gib(catalogue().instance("g5.12xlarge")) == pytest.approx(4 * 24 * 0.9)


def test_cpu_uses_ram_and_gpu_only_engines_are_refused() -> None:
    gguf_30b = variant(
        "SmolLM2-135M-Instruct-GGUF", params_b=30.0, weights_gb=18.0
    )  # ~16.8 GiB of Q4 weights
    v = verdict(gguf_30b, "llama.cpp", "m7i.xlarge", EC2)
    assert (
        not v.ok and "GiB of memory" in v.reasons[0] and "m7i.xlarge offers 12.0 GiB usable" in v.reasons[0]
    )
    assert verdict(gguf_30b, "llama.cpp", "m7i.4xlarge", EC2).ok
    v = verdict("bge-m3", "vllm", "m7i.xlarge", EC2)
    assert v.reasons == ("engine vllm does not support cpu instances like m7i.xlarge (it supports: gpu)",)


def test_engine_must_serve_the_model_and_its_type() -> None:
    v = verdict("Qwen2.5-7B-Instruct", "huggingface", "g5.2xlarge")
    assert (
        "Qwen2.5-7B-Instruct does not run on engine huggingface "
        "(it runs on: vllm, tgi, lmdeploy, vllm-neuron)" in v.reasons
    )
    assert "engine huggingface does not serve llm models" in v.reasons


def test_inferentia_rules() -> None:
    v = verdict("Qwen2.5-7B-Instruct", "vllm", "inf2.xlarge")
    assert any("does not support inferentia" in r for r in v.reasons)
    assert any(
        "does not support gpu" in r
        for r in verdict("Qwen2.5-7B-Instruct", "vllm-neuron", "g5.xlarge").reasons
    )
    awq = variant(
        "Qwen2.5-7B-Instruct-AWQ", engines={"vllm-neuron": EngineDefaults()}, default_engine="vllm-neuron"
    )
    v = verdict(awq, "vllm-neuron", "inf2.xlarge")
    assert v.reasons == (
        "Inferentia2 (inf2.xlarge) runs bf16/fp16 Llama, Qwen2.5 and Qwen3 dense text models compiled by "
        "vllm-neuron; Qwen2.5-7B-Instruct-AWQ is a awq-int4 Qwen2ForCausalLM llm model",
    )
    glm = variant("GLM-4-9B-0414", engines={"vllm-neuron": EngineDefaults()})
    assert "Glm4ForCausalLM" in verdict(glm, "vllm-neuron", "inf2.8xlarge").reasons[0]
    # 32 heads do not split over inf2.24xlarge's 12 NeuronCores (6 chips x 2)
    v = verdict("Llama-3.1-8B-Instruct", "vllm-neuron", "inf2.24xlarge")
    assert v.reasons == (
        "tensor-parallel degree 12 (vllm-neuron on inf2.24xlarge) does not divide Llama-3.1-8B-Instruct's "
        "32 attention heads",
    )
    # NeuronCore memory: 32 GB per Inferentia2 chip, one chip on inf2.xlarge / 8xlarge, 12 on inf2.48xlarge
    cat = catalogue()
    sizes = ("inf2.xlarge", "inf2.8xlarge", "inf2.24xlarge", "inf2.48xlarge")
    assert [cat.instance(n).gpus for n in sizes] == [1, 1, 6, 12]
    assert compat.usable_memory_gib(cat.instance("inf2.48xlarge")) == pytest.approx(12 * 32 * 0.9)
    big = variant("Qwen2.5-7B-Instruct", weights_gb=40.0)
    v = verdict(big, "vllm-neuron", "inf2.xlarge")
    assert not v.ok and "inf2.xlarge offers 28.8 GiB usable" in v.reasons[0]


def test_moe_memory_follows_total_parameters() -> None:
    """Every expert must be resident: Qwen3-235B-A22B needs memory for 235B parameters, not its 22B active."""
    m = catalogue().model("Qwen3-235B-A22B")
    assert m.weights_gib == pytest.approx(470.2e9 / 2**30)
    need = compat.required_memory_gib(m, 8, "vllm")
    assert need > 470.2e9 / 2**30 > 10 * m.active_params_b * 2e9 / 2**30
    v = verdict("Qwen3-235B-A22B", "vllm", "g6e.48xlarge")  # 8 x 48 GB: enough for 22B, not for 235B
    assert not v.ok and "needs ~" in v.reasons[0] and "g6e.48xlarge offers 345.6 GiB usable" in v.reasons[0]
    assert verdict("Qwen3-235B-A22B", "vllm", "p5.48xlarge").ok


def test_fp8_needs_ada_or_hopper() -> None:
    for instance in ("g6.xlarge", "g6e.xlarge", "p5.48xlarge", "p5e.48xlarge", "p5en.48xlarge"):
        assert verdict("Qwen3-8B-FP8", "vllm", instance).ok, instance
    v = verdict("Qwen3-8B-FP8", "vllm", "g5.xlarge")
    assert v.reasons == (
        "Qwen3-8B-FP8 has FP8 weights, which need an Ada or Hopper GPU (compute capability 8.9+, native "
        "FP8); the NVIDIA A10G of g5.xlarge is Ampere (compute capability 8.6)",
    )
    assert not verdict(
        "Qwen3-235B-A22B-FP8", "vllm", "p4de.24xlarge"
    ).ok  # A100 80GB: memory fits, FP8 does not
    msg = refusal("Qwen3-8B-FP8", "g4dn.xlarge", "ec2")
    assert "NVIDIA T4 of g4dn.xlarge is Turing (compute capability 7.5)" in msg
    fits = msg.split("Smallest instances that fit Qwen3-8B-FP8 on vllm/ec2 in us-east-1: ")[1].split(", ")
    assert fits and {f.split(".")[0] for f in fits} <= {"g6", "g6e", "p5", "p5e", "p5en"}


def test_mxfp4_needs_what_vllm_needs() -> None:
    # native on Hopper, Marlin fallback on Ampere (A10G, A100) and Ada (L4, L40S), refused on Turing (T4)
    for instance in ("g5.xlarge", "g6.xlarge", "g6e.xlarge", "p4d.24xlarge", "p5.48xlarge"):
        assert verdict("gpt-oss-20b", "vllm", instance).ok, instance
    v = verdict(
        "gpt-oss-20b", "vllm", "g4dn.12xlarge"
    )  # 4 x 16 GB would hold it: the GPU generation does not
    assert v.reasons == (
        "gpt-oss-20b has MXFP4 weights, which need compute capability 8.0+ (vLLM runs them natively on "
        "Hopper and through its Marlin fallback on Ampere and Ada); the NVIDIA T4 of g4dn.12xlarge is Turing "
        "(compute capability 7.5)",
    )


def test_a_model_no_single_instance_holds_is_refused_with_what_would_fit() -> None:
    msg = refusal("DeepSeek-R1-BF16", "p5en.48xlarge")
    assert "more than any single catalogued instance offers (largest: p5e.48xlarge, 1015 GiB usable)" in msg
    assert "EMD deploys a model on one instance" in msg
    assert msg.endswith("What would fit: DeepSeek-R1 (fp8) on p5e.48xlarge, p5en.48xlarge.")
    # the FP8 original does not fit an 8 x H100 p5 either: only the H200 instances hold it
    assert not verdict("DeepSeek-R1", "vllm", "p5.48xlarge").ok
    cat = catalogue()
    m, e = cat.model("Qwen3-8B"), cat.engine("vllm")
    assert compat.multi_instance_advice(cat, m, e, SM, "us-east-1") is None  # fits somewhere: no such advice


def test_regions_and_china_rules() -> None:
    v = verdict("Llama-3.1-8B-Instruct", "vllm", "g4dn.12xlarge", EC2, "cn-north-1")
    assert v.reasons == (
        "Llama-3.1-8B-Instruct may not be deployed in China regions (cn-north-1); see its catalogue entry",
    )
    assert verdict("Qwen2.5-7B-Instruct", "vllm", "g4dn.12xlarge", EC2, "cn-north-1").ok
    v = verdict("Qwen2.5-7B-Instruct", "vllm", "g5.xlarge", EC2, "cn-north-1")
    assert v.reasons == ("EC2 does not offer g5.xlarge in cn-north-1",)
    assert verdict("Qwen2.5-7B-Instruct", "vllm", "g5.xlarge", SM, "cn-northwest-1").ok
    v = verdict("Qwen2.5-72B-Instruct", "vllm", "p5.48xlarge", SM, "cn-northwest-1")
    assert v.reasons == ("SageMaker does not offer ml.p5.48xlarge in cn-northwest-1",)
    # EC2 offers g6 in sa-east-1 where SageMaker hosting does not
    assert verdict("Qwen2.5-7B-Instruct", "vllm", "g6.xlarge", EC2, "sa-east-1").ok
    assert not verdict("Qwen2.5-7B-Instruct", "vllm", "g6.xlarge", SM, "sa-east-1").ok


def test_service_missing_in_region_is_refused() -> None:
    cat = catalogue()
    svc = cat.services["ecs"].model_copy(update={"regions": ["us-east-1"]})
    patched = type(cat)(
        models=cat.models,
        engines=cat.engines,
        instances=cat.instances,
        services={**cat.services, "ecs": svc},
        prices=cat.prices,
    )
    m, e, i = cat.model("Qwen2.5-7B-Instruct"), cat.engine("vllm"), cat.instance("g5.2xlarge")
    v = compat.check(patched, m, e, i, ServiceType.ecs, "us-west-2")
    assert v.reasons == ("service ecs is not available in us-west-2",)
    assert compat.check(patched, m, e, i, ServiceType.ecs, "us-east-1").ok


def test_fitting_instances_are_cheapest_first_and_all_fit() -> None:
    cat = catalogue()
    m, e = cat.model("Qwen2.5-14B-Instruct"), cat.engine("vllm")
    fits = compat.fitting_instances(cat, m, e, SM, "us-east-1")
    prices = cat.prices.regions["us-east-1"].sagemaker_hourly
    assert fits and [prices[i.name] for i in fits] == sorted(prices[i.name] for i in fits)
    assert all(compat.check(cat, m, e, i, SM, "us-east-1").ok for i in fits)
    refused = set(cat.instances) - {i.name for i in fits}
    assert {"g4dn.xlarge", "g5.xlarge", "inf2.xlarge", "m7i.xlarge"} <= refused
    assert compat.smallest_instance(cat, m, "us-east-1") == fits[0]


def test_china_disallowed_model_has_no_instance_there() -> None:
    cat = catalogue()
    for m in cat.models.values():
        if not m.allow_china_region:
            assert compat.smallest_instance(cat, m, "cn-northwest-1") is None, m.id


def test_fp16_unsafe_models_need_bf16_gpus() -> None:
    v = verdict("gemma-3-4b-it", "vllm", "g4dn.xlarge")
    assert v.reasons == (
        "gemma-3-4b-it needs bfloat16 (fp16 overflows) and the NVIDIA T4 of g4dn.xlarge "
        "has no bfloat16 support",
    )
    assert verdict("gemma-3-4b-it", "vllm", "g5.xlarge").ok
    assert verdict("Qwen2.5-3B-Instruct", "vllm", "g4dn.xlarge").ok  # fp16 is fine for Qwen
