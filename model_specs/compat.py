"""Compatibility computed from facts: accelerator memory for the weights (every expert of a MoE) plus KV-cache
headroom, the tensor-parallel degree against the attention and KV heads, accelerator and model-type support of
the engine, the GPU generation a weights format needs (FP8, MXFP4), what Inferentia2 compiles, and where the
service and the instance are offered. Every refusal is a sentence naming the numbers. check() is pure and
cheap (no scan of the catalogue) so callers may cache it; the advice for models no single instance can hold
(multi_instance_advice) runs only on the refusal path."""

from __future__ import annotations

import functools
import re
import shlex
from dataclasses import dataclass

from model_specs.catalogue import Catalogue, catalogue
from model_specs.regions import CHINA_REGIONS
from model_specs.schema import (
    Accelerator,
    EngineSpec,
    InstanceSpec,
    ModelSpec,
    ModelType,
    MultiGpu,
    ServiceType,
)

# Fraction of accelerator memory an engine may use (vLLM's --gpu-memory-utilization default is 0.9).
GPU_MEMORY_UTILIZATION = 0.9
# On CPU the OS, the adapter and the page cache need their share of RAM.
CPU_MEMORY_UTILIZATION = 0.75
# KV-cache tokens that must fit beside the weights when the engine arguments set no maximum length.
KV_HEADROOM_TOKENS = 4096
KV_BYTES_PER_ELEMENT = 2
# Loaded weights carry some extra (non-quantized embeddings, buffers) beyond params x bytes.
WEIGHTS_OVERHEAD = 1.05
# CUDA / Neuron runtime context, activations and graphs, per device.
RUNTIME_OVERHEAD_GIB_PER_GPU = 1.5
# Engine flags that set the longest sequence the engine reserves KV cache for.
MAX_LEN_FLAGS = ("--max-model-len", "--max-total-tokens", "--session-len", "--n_ctx", "--ctx-size", "-c")
# vllm-neuron (NxD Inference, Neuron SDK 2.27) compiles these dense decoder architectures, unquantized.
NEURON_DTYPES = frozenset({"bf16", "fp16"})
NEURON_ARCHITECTURES = frozenset({"LlamaForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM"})
# CUDA compute capability a weights format needs. FP8 W8A8 runs natively from 8.9 (Ada, Hopper); older GPUs
# only get vLLM's weight-only FP8 Marlin fallback, which has no FP8 MoE path, so EMD requires native FP8.
# MXFP4 (gpt-oss): vLLM's Mxfp4Config asks for 8.0+: Hopper runs its own MXFP4 MoE kernels (Triton /
# FlashInfer), Ampere and Ada go through the Marlin MXFP4 fallback, Turing (T4) is refused.
MIN_COMPUTE_CAPABILITY = {"fp8": 8.9, "mxfp4": 8.0}
DTYPE_NEEDS = {
    "fp8": "FP8 weights, which need an Ada or Hopper GPU (compute capability 8.9+, native FP8)",
    "mxfp4": "MXFP4 weights, which need compute capability 8.0+ (vLLM runs them natively on Hopper and "
    "through its Marlin fallback on Ampere and Ada)",
}
SAGEMAKER_SERVICES = frozenset({ServiceType.sagemaker_realtime, ServiceType.sagemaker_async})
GENERATIVE = frozenset({ModelType.llm, ModelType.vlm})


def kv_cache_gib(model: ModelSpec, tokens: int) -> float:
    per_token = 2 * model.num_layers * model.num_kv_heads * model.head_dim * KV_BYTES_PER_ELEMENT
    return per_token * tokens / 2**30


@functools.lru_cache(maxsize=1024)
def _split_args(cli_args: str) -> tuple[str, ...]:
    """shlex.split once per distinct argument string: it ran for every (model, instance) checked, and was most
    of the time a catalogue-wide compatibility pass took."""
    return tuple(shlex.split(cli_args))


def max_sequence_tokens(model: ModelSpec, engine: EngineSpec | str | None = None) -> int:
    """Tokens of KV cache to reserve: the engine's configured maximum length when its default arguments set
    one (an engine refuses to start when that much KV cache does not fit), else min(context, 4096)."""
    name = engine.name if isinstance(engine, EngineSpec) else (engine or model.default_engine)
    defaults = model.engines.get(name)
    if defaults is not None:
        args = _split_args(defaults.cli_args)
        for i, arg in enumerate(args):
            flag, _, value = arg.partition("=")
            if flag in MAX_LEN_FLAGS:
                value = value or (args[i + 1] if i + 1 < len(args) else "")
                if re.fullmatch(r"\d+", value):
                    return min(int(value), model.context_length)
    return min(model.context_length, KV_HEADROOM_TOKENS)


def required_memory_gib(model: ModelSpec, gpus: int = 1, engine: EngineSpec | str | None = None) -> float:
    """Accelerator memory (all devices used, together) a model needs: weights, KV cache for one sequence of
    the engine's maximum length (generative models only), runtime overhead per device."""
    kv = 0.0
    if model.type in GENERATIVE:
        kv = kv_cache_gib(model, max_sequence_tokens(model, engine))
    return model.weights_gib * WEIGHTS_OVERHEAD + kv + RUNTIME_OVERHEAD_GIB_PER_GPU * max(gpus, 1)


def devices_used(engine: EngineSpec | None, instance: InstanceSpec) -> int:
    """Accelerators the engine puts the model on: all of them, or one for single-device engines."""
    if instance.accelerator is Accelerator.cpu:
        return 0
    if engine is not None and engine.multi_gpu is MultiGpu.single:
        return 1
    return instance.gpus


def usable_memory_gib(instance: InstanceSpec, engine: EngineSpec | None = None) -> float:
    """Memory the engine can fill: RAM on CPU instances, else the devices it uses (all if engine is None)."""
    if instance.accelerator is Accelerator.cpu:
        return instance.memory_gib * CPU_MEMORY_UTILIZATION
    return devices_used(engine, instance) * instance.gpu_memory_gib * GPU_MEMORY_UTILIZATION


def tensor_parallel_degree(engine: EngineSpec | str, instance: InstanceSpec) -> int:
    """Shards per layer: all GPUs for tensor-parallel engines, 2 NeuronCores per Inferentia2 device, or 1."""
    if instance.accelerator is Accelerator.cpu:
        return 1
    if isinstance(engine, str):
        engine = catalogue().engine(engine)
    if engine.multi_gpu is not MultiGpu.tensor_parallel:
        return 1
    if instance.accelerator is Accelerator.inferentia:
        return instance.gpus * 2
    return max(instance.gpus, 1)


def tensor_parallel_problem(model: ModelSpec, tp: int) -> str | None:
    """Why `tp` shards cannot split the model's attention, or None. Query heads must divide evenly; KV heads
    must divide evenly too, or (fewer KV heads than shards) be replicated, which needs tp % kv_heads == 0."""
    if tp <= 1:
        return None
    if model.num_attention_heads % tp:
        return f"does not divide {model.id}'s {model.num_attention_heads} attention heads"
    kv = model.num_kv_heads
    if (kv >= tp and kv % tp) or (kv < tp and tp % kv):
        return f"cannot shard or replicate {model.id}'s {kv} KV heads evenly"
    return None


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reasons: tuple[str, ...]


def _region_ok(regions: list[str], region: str) -> bool:
    return "*" in regions or region in regions


def instance_offered(instance: InstanceSpec, service: ServiceType, region: str) -> bool:
    if service is ServiceType.local:
        return True
    regions = instance.sagemaker_regions if service in SAGEMAKER_SERVICES else instance.regions
    return _region_ok(regions, region)


def _support_reasons(model: ModelSpec, engine: EngineSpec, instance: InstanceSpec) -> list[str]:
    reasons: list[str] = []
    if engine.name not in model.engines:
        reasons.append(
            f"{model.id} does not run on engine {engine.name} (it runs on: {', '.join(model.engines)})"
        )
    if model.type not in engine.model_types:
        reasons.append(f"engine {engine.name} does not serve {model.type.value} models")
    if instance.accelerator not in engine.accelerators:
        supported = ", ".join(a.value for a in engine.accelerators)
        reasons.append(
            f"engine {engine.name} does not support {instance.accelerator.value} instances like "
            f"{instance.name} (it supports: {supported})"
        )
    if not model.fp16_safe and instance.accelerator is Accelerator.gpu and not instance.bf16:
        reasons.append(
            f"{model.id} needs bfloat16 (fp16 overflows) and the {instance.gpu_model} of {instance.name} "
            "has no bfloat16 support"
        )
    if instance.accelerator is Accelerator.inferentia and not neuron_compiles(model):
        reasons.append(
            f"Inferentia2 ({instance.name}) runs bf16/fp16 Llama, Qwen2.5 and Qwen3 dense text models "
            f"compiled by vllm-neuron; {model.id} is a {model.dtype} {model.architecture} "
            f"{model.type.value} model"
        )
    needed = MIN_COMPUTE_CAPABILITY.get(model.dtype)
    cc = instance.compute_capability
    if needed is not None and cc is not None and cc < needed:
        reasons.append(
            f"{model.id} has {DTYPE_NEEDS[model.dtype]}; the {instance.gpu_model} of {instance.name} is "
            f"{instance.gpu_arch} (compute capability {cc:.1f})"
        )
    return reasons


def neuron_compiles(model: ModelSpec) -> bool:
    return (
        model.type is ModelType.llm
        and model.dtype in NEURON_DTYPES
        and model.architecture in NEURON_ARCHITECTURES
    )


def _region_reasons(
    cat: Catalogue, model: ModelSpec, instance: InstanceSpec, service: ServiceType, region: str
) -> list[str]:
    if service is ServiceType.local:
        return []  # runs on the user's machine: no AWS region, the instance type only sizes the check
    reasons: list[str] = []
    if region in CHINA_REGIONS and not model.allow_china_region:
        reasons.append(f"{model.id} may not be deployed in China regions ({region}); see its catalogue entry")
    svc = cat.services.get(service.value)
    if svc is not None and not _region_ok(svc.regions, region):
        reasons.append(f"service {service.value} is not available in {region}")
    if not instance_offered(instance, service, region):
        where = (
            f"SageMaker does not offer ml.{instance.name}"
            if service in SAGEMAKER_SERVICES
            else (f"EC2 does not offer {instance.name}")
        )
        reasons.append(f"{where} in {region}")
    return reasons


def _capacity_reasons(model: ModelSpec, engine: EngineSpec, instance: InstanceSpec) -> list[str]:
    reasons: list[str] = []
    used = devices_used(engine, instance)
    need = required_memory_gib(model, used, engine)
    have = usable_memory_gib(instance, engine)
    if need > have:
        if instance.accelerator is Accelerator.cpu:
            kind = "memory"
        elif used < instance.gpus:
            kind = f"accelerator memory ({engine.name} uses one of the {instance.gpus} devices)"
        else:
            kind = "accelerator memory"
        reasons.append(
            f"{model.id} needs ~{need:.1f} GiB of {kind} (weights {model.weights_gib:.1f} GiB + KV cache for "
            f"{max_sequence_tokens(model, engine)} tokens and runtime headroom); {instance.name} offers "
            f"{have:.1f} GiB usable"
        )
    tp = tensor_parallel_degree(engine, instance)
    problem = tensor_parallel_problem(model, tp)
    if problem:
        reasons.append(f"tensor-parallel degree {tp} ({engine.name} on {instance.name}) {problem}")
    return reasons


def check(
    cat: Catalogue,
    model: ModelSpec,
    engine: EngineSpec,
    instance: InstanceSpec,
    service: ServiceType,
    region: str,
) -> Verdict:
    """Every reason the combination cannot work (empty when it can)."""
    reasons = (
        _support_reasons(model, engine, instance)
        + _region_reasons(cat, model, instance, service, region)
        + _capacity_reasons(model, engine, instance)
    )
    return Verdict(ok=not reasons, reasons=tuple(reasons))


def fitting_instances(
    cat: Catalogue, model: ModelSpec, engine: EngineSpec, service: ServiceType, region: str
) -> list[InstanceSpec]:
    """Instances on which the combination works, cheapest first (by price where known, else by memory)."""
    ok = [i for i in cat.instances.values() if check(cat, model, engine, i, service, region).ok]
    prices = cat.prices.regions.get(region) or cat.prices.regions.get("us-east-1")
    table: dict[str, float] = {}
    if prices is not None:
        table = prices.sagemaker_hourly if service in SAGEMAKER_SERVICES else prices.ec2_hourly
    return sorted(
        ok, key=lambda i: (table.get(i.name, float("inf")), i.total_gpu_memory_gib, i.memory_gib, i.name)
    )


def smallest_instance(cat: Catalogue, model: ModelSpec, region: str = "us-east-1") -> InstanceSpec | None:
    """Cheapest instance for the model's default engine on SageMaker real-time, else on EC2."""
    engine = cat.engine(model.default_engine)
    for service in (ServiceType.sagemaker_realtime, ServiceType.ec2):
        found = fitting_instances(cat, model, engine, service, region)
        if found:
            return found[0]
    return None


def multi_instance_advice(
    cat: Catalogue, model: ModelSpec, engine: EngineSpec, service: ServiceType, region: str
) -> str | None:
    """When no single catalogued instance holds the model, say so (EMD deploys one model on one instance) and
    name the variants of the same checkpoint (quantized, converted) that fit, with where. None otherwise."""
    offered = [i for i in cat.instances.values() if i.accelerator is not Accelerator.cpu]
    if not offered:
        return None
    largest = max(offered, key=lambda i: usable_memory_gib(i, engine))
    need = required_memory_gib(model, devices_used(engine, largest), engine)
    if need <= usable_memory_gib(largest, engine):
        return None
    root = model.base_model or model.id
    fits: list[str] = []
    for other in cat.models.values():
        if other.id == model.id or root not in (other.id, other.base_model):
            continue
        other_engine = cat.engine(other.default_engine)
        where = [i.name for i in fitting_instances(cat, other, other_engine, service, region)]
        if where:
            fits.append(f"{other.id} ({other.dtype}) on {', '.join(where)}")
    advice = (
        f"{model.id} needs ~{need:.0f} GiB of accelerator memory, more than any single catalogued instance "
        f"offers (largest: {largest.name}, {usable_memory_gib(largest, engine):.0f} GiB usable), and EMD "
        "deploys a model on one instance."
    )
    if fits:
        advice += " What would fit: " + "; ".join(fits) + "."
    return advice
