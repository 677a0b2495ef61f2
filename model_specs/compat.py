"""Compatibility computed from facts: GPU memory for weights + KV-cache headroom, tensor-parallel degree,
accelerator support, model type support and regional availability."""

from __future__ import annotations

from dataclasses import dataclass

from model_specs.catalogue import Catalogue
from model_specs.regions import CHINA_REGIONS
from model_specs.schema import Accelerator, EngineSpec, InstanceSpec, ModelSpec, ModelType, ServiceType

# Fraction of accelerator memory an engine may use (vLLM's --gpu-memory-utilization default is 0.9).
GPU_MEMORY_UTILIZATION = 0.9
CPU_MEMORY_UTILIZATION = 0.75
# Tokens of KV cache that must fit beside the weights (one request at this length, or several shorter).
KV_HEADROOM_TOKENS = 4096
KV_BYTES_PER_ELEMENT = 2
# CUDA context, activations and graphs, per GPU.
RUNTIME_OVERHEAD_GIB_PER_GPU = 1.5
# Engines that shard a model with tensor parallelism across all GPUs of the instance.
TENSOR_PARALLEL_ENGINES = frozenset({"vllm", "tgi", "lmdeploy"})
SAGEMAKER_SERVICES = frozenset({ServiceType.sagemaker_realtime, ServiceType.sagemaker_async})


def kv_cache_gib(model: ModelSpec, tokens: int) -> float:
    per_token = 2 * model.num_layers * model.num_kv_heads * model.head_dim * KV_BYTES_PER_ELEMENT
    return per_token * tokens / 2**30


def required_memory_gib(model: ModelSpec, gpus: int = 1) -> float:
    """Accelerator memory (all devices together) a model needs to serve with KV-cache headroom."""
    kv = 0.0
    if model.type in (ModelType.llm, ModelType.vlm):
        kv = kv_cache_gib(model, min(model.context_length, KV_HEADROOM_TOKENS))
    return model.weights_gib * 1.05 + kv + RUNTIME_OVERHEAD_GIB_PER_GPU * max(gpus, 1)


def usable_memory_gib(instance: InstanceSpec) -> float:
    if instance.accelerator is Accelerator.cpu:
        return instance.memory_gib * CPU_MEMORY_UTILIZATION
    return instance.total_gpu_memory_gib * GPU_MEMORY_UTILIZATION


def tensor_parallel_degree(engine: EngineSpec | str, instance: InstanceSpec) -> int:
    name = engine if isinstance(engine, str) else engine.name
    if instance.accelerator is Accelerator.cpu or name not in TENSOR_PARALLEL_ENGINES:
        return 1
    if instance.accelerator is Accelerator.inferentia:
        return instance.gpus * 2  # two NeuronCores per Inferentia2 device
    return max(instance.gpus, 1)


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


def check(
    cat: Catalogue, model: ModelSpec, engine: EngineSpec, instance: InstanceSpec, service: ServiceType, region: str
) -> Verdict:
    """Every reason the combination cannot work (empty when it can)."""
    reasons: list[str] = []
    if engine.name not in model.engines:
        reasons.append(f"{model.id} does not run on engine {engine.name} (it runs on: {', '.join(model.engines)})")
    if model.type not in engine.model_types:
        reasons.append(f"engine {engine.name} does not serve {model.type.value} models")
    if instance.accelerator not in engine.accelerators:
        reasons.append(
            f"engine {engine.name} does not support {instance.accelerator.value} instances like {instance.name} "
            f"(it supports: {', '.join(a.value for a in engine.accelerators)})"
        )
    if region in CHINA_REGIONS and not model.allow_china_region:
        reasons.append(f"{model.id} may not be deployed in China regions ({region})")
    svc = cat.services.get(service.value)
    if svc is not None and not _region_ok(svc.regions, region):
        reasons.append(f"service {service.value} is not available in {region}")
    if not instance_offered(instance, service, region):
        where = "SageMaker" if service in SAGEMAKER_SERVICES else "EC2"
        reasons.append(f"{where} does not offer {instance.name} in {region}")
    if service is ServiceType.local and instance.accelerator is not Accelerator.cpu:
        pass  # local runs on the user's machine; the instance type only sizes the check
    need = required_memory_gib(model, instance.gpus if instance.accelerator is not Accelerator.cpu else 1)
    have = usable_memory_gib(instance)
    if need > have:
        kind = "memory" if instance.accelerator is Accelerator.cpu else "accelerator memory"
        reasons.append(
            f"{model.id} needs ~{need:.1f} GiB of {kind} (weights {model.weights_gib:.1f} GiB + KV cache and "
            f"runtime headroom); {instance.name} offers {have:.1f} GiB usable"
        )
    tp = tensor_parallel_degree(engine, instance)
    if tp > 1 and model.num_attention_heads % tp:
        reasons.append(
            f"tensor-parallel degree {tp} ({instance.name}) does not divide {model.id}'s "
            f"{model.num_attention_heads} attention heads"
        )
    return Verdict(ok=not reasons, reasons=tuple(reasons))


def fitting_instances(
    cat: Catalogue, model: ModelSpec, engine: EngineSpec, service: ServiceType, region: str
) -> list[InstanceSpec]:
    """Instances on which the combination works, cheapest first (by price where known, else by memory)."""
    ok = [i for i in cat.instances.values() if check(cat, model, engine, i, service, region).ok]
    prices = cat.prices.regions.get(region) or cat.prices.regions.get("us-east-1")
    table = {}
    if prices is not None:
        table = prices.sagemaker_hourly if service in SAGEMAKER_SERVICES else prices.ec2_hourly
    return sorted(ok, key=lambda i: (table.get(i.name, float("inf")), i.total_gpu_memory_gib, i.memory_gib, i.name))


def smallest_instance(cat: Catalogue, model: ModelSpec, region: str = "us-east-1") -> InstanceSpec | None:
    """Cheapest instance for the model's default engine on SageMaker real-time (or EC2 for CPU engines)."""
    engine = cat.engine(model.default_engine)
    for service in (ServiceType.sagemaker_realtime, ServiceType.ec2):
        found = fitting_instances(cat, model, engine, service, region)
        if found:
            return found[0]
    return None
