"""The engine container's contract with the adapter (serving/engine): port 8080 and the EMD_* environment.

SageMaker mounts the weights at /opt/ml/model; ECS and EC2 copy them to the same path before the engine
starts, so the adapter sees one layout everywhere.
"""

from __future__ import annotations

import math

from model_specs.deployment import Deployment
from model_specs.schema import Accelerator

ENGINE_PORT = 8080
MODEL_DIR = "/opt/ml/model"
HEALTH_PATH = "/ping"
# NxD Inference (vllm-neuron) compiles the model for its shape on the first start, about a minute per GB of
# weights, unless the weights ship neuron-compiled-artifacts/ for that shape (model_specs/data/engines.yaml)
NEURON_COMPILE_SECONDS_PER_GB = 60
# The weights are on local disk before the engine starts (SageMaker stages them; ECS/EC2 copy them first):
# no engine needs the hub or a usage-statistics endpoint, and SageMaker models run network-isolated. The
# catalogue's or the user's engine environment may override these.
OFFLINE_ENVIRONMENT = {
    "HF_HUB_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
}


def engine_environment(deployment: Deployment, model_dir: str = MODEL_DIR) -> dict[str, str]:
    """Offline defaults, catalogue + user engine environment, then the adapter's EMD_* variables (win)."""
    env = {**OFFLINE_ENVIRONMENT, **deployment.engine_environment()}
    env.update(
        {
            "EMD_ENGINE": deployment.engine_type,
            "EMD_MODEL_ID": deployment.model_id,
            "EMD_SERVED_MODEL_NAME": deployment.model_id,
            "EMD_ENGINE_ARGS": deployment.engine_cli_args(),
            "EMD_TENSOR_PARALLEL": str(deployment.tensor_parallel_degree),
            "EMD_MODEL_DIR": model_dir,
        }
    )
    return env


def load_seconds(deployment: Deployment) -> int:
    """Time to load the weights into accelerator memory, generous: 30 s + 8 s per GiB."""
    return int(30 + 8 * deployment.model.weights_gib)


def compile_seconds(deployment: Deployment) -> int:
    """Neuron engines: the first start's compilation (whether the weights ship compiled artifacts is not known
    at synth time, so it is allowed for); 0 for the others."""
    if Accelerator.inferentia not in deployment.engine.accelerators:
        return 0
    return math.ceil(NEURON_COMPILE_SECONDS_PER_GB * deployment.model.weights_gb)


def startup_seconds(deployment: Deployment) -> int:
    """From the engine's start to its first healthy answer: compilation (Neuron), then loading the weights."""
    return compile_seconds(deployment) + load_seconds(deployment)


def download_seconds(deployment: Deployment) -> int:
    """S3 -> instance storage at a conservative 100 MiB/s, doubled, at least 10 minutes."""
    return int(max(600, 2 * deployment.model.weights_gib * 1024 / 100))


def root_volume_gib(deployment: Deployment) -> int:
    """OS + container images (~60 GiB for GPU engines) + the weights twice (download, page-cache headroom)."""
    return int(100 + 2 * deployment.model.weights_gib)
