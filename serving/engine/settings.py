"""Engine adapter settings from the environment the model stack sets."""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from serving.engine.command import ENGINES, NEURON_ARTIFACTS_SUBDIR, EngineLaunch, build_engine_launch

DEFAULT_ENGINE_PORTS = {"ollama": 11434}
# vllm-neuron compiles here on first start when the weights ship no precompiled artifacts (the model
# directory is read-only on SageMaker)
DEFAULT_NEURON_CACHE = "/tmp/emd-neuron-compiled-artifacts"


@dataclass(frozen=True)
class AdapterSettings:
    engine: str
    model_id: str
    served_model_name: str
    model_dir: str
    engine_args: str
    tensor_parallel: int
    port: int
    engine_port: int
    drain_seconds: float
    engine_stop_seconds: float
    ready_timeout: float
    host: str = "0.0.0.0"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> AdapterSettings:
        env = dict(os.environ if env is None else env)
        engine = env.get("EMD_ENGINE", "")
        if engine not in ENGINES:
            raise SystemExit(f"EMD_ENGINE={engine!r} is not one of {', '.join(ENGINES)}")
        model_id = env.get("EMD_MODEL_ID") or ""
        if not model_id:
            raise SystemExit("EMD_MODEL_ID is not set")
        return cls(
            engine=engine,
            model_id=model_id,
            served_model_name=env.get("EMD_SERVED_MODEL_NAME") or model_id,
            model_dir=env.get("EMD_MODEL_DIR") or "/opt/ml/model",
            engine_args=env.get("EMD_ENGINE_ARGS", ""),
            tensor_parallel=int(env.get("EMD_TENSOR_PARALLEL") or 1),
            port=int(env.get("EMD_PORT") or env.get("SAGEMAKER_BIND_TO_PORT") or 8080),
            engine_port=int(env.get("EMD_ENGINE_PORT") or DEFAULT_ENGINE_PORTS.get(engine, 8000)),
            # containers listen on every interface; the local target (emd deploy -s local) on loopback only
            host=env.get("EMD_HOST") or "0.0.0.0",
            drain_seconds=float(env.get("EMD_DRAIN_SECONDS") or 60),
            engine_stop_seconds=float(env.get("EMD_ENGINE_STOP_SECONDS") or 30),
            ready_timeout=float(env.get("EMD_ENGINE_READY_TIMEOUT") or 3600),
        )

    def model_path(self) -> str:
        """GGUF engines take a file: EMD_MODEL_DIR itself, or the first *.gguf inside it."""
        if self.engine not in ("llama.cpp", "ollama"):
            return self.model_dir
        path = Path(self.model_dir)
        if path.is_dir():
            ggufs = sorted(path.rglob("*.gguf"))
            if not ggufs:
                raise SystemExit(f"no .gguf file under EMD_MODEL_DIR={self.model_dir}")
            return str(ggufs[0])
        return str(path)

    def neuron_artifacts_dir(self) -> str | None:
        """Precompiled artifacts shipped with the weights, else EMD_NEURON_ARTIFACTS_DIR, else a cache dir."""
        if self.engine != "vllm-neuron":
            return None
        shipped = Path(self.model_dir) / NEURON_ARTIFACTS_SUBDIR
        if shipped.is_dir():
            return str(shipped)
        return os.environ.get("EMD_NEURON_ARTIFACTS_DIR") or DEFAULT_NEURON_CACHE

    def launch(self) -> EngineLaunch:
        return build_engine_launch(
            self.engine,
            model_path=self.model_path(),
            served_model_name=self.served_model_name,
            port=self.engine_port,
            tensor_parallel=self.tensor_parallel,
            engine_args=self.engine_args,
            llama_cpp_python=shutil.which("llama-server") is None,
            python_executable=sys.executable,
            neuron_artifacts_dir=self.neuron_artifacts_dir(),
        )
