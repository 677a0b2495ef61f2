"""The engine command line, per engine: one pure function, unit-tested for every engine."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

ENGINES = ("vllm", "vllm-neuron", "tgi", "lmdeploy", "llama.cpp", "ollama", "huggingface")
# vllm-neuron: where NxD Inference finds precompiled artifacts for the configured shape, or stores the ones it
# compiles on first start (see model_specs/data/engines.yaml)
NEURON_ARTIFACTS_SUBDIR = "neuron-compiled-artifacts"
# EngineLaunch.api_dialect of llama-cpp-python's OpenAI server
LLAMA_CPP_PYTHON = "llama-cpp-python"


@dataclass(frozen=True)
class EngineLaunch:
    """How to start an engine and how to know it is ready."""

    command: list[str]
    health_path: str
    env: dict[str, str] = field(default_factory=dict)
    # commands run once the engine answers health_path (ollama: register the model under its served name)
    after_ready: list[list[str]] = field(default_factory=list)
    # rerank requests need translating to this engine's native route (text-embeddings-inference)
    native_rerank_path: str | None = None
    # whose departures from the OpenAI API serving.engine.openai_compat bridges (None: none bridged)
    api_dialect: str | None = None


def build_engine_launch(
    engine: str,
    *,
    model_path: str,
    served_model_name: str,
    port: int,
    host: str = "127.0.0.1",
    tensor_parallel: int = 1,
    engine_args: str = "",
    llama_cpp_python: bool = False,
    python_executable: str = "python3",
    neuron_artifacts_dir: str | None = None,
) -> EngineLaunch:
    """model_path: the model directory (a GGUF file for llama.cpp/ollama). engine_args: the catalogue's
    cli_args plus the user's engine_params, appended last so they can override defaults.
    llama_cpp_python: use llama-cpp-python's server where the `llama-server` binary is not installed.
    neuron_artifacts_dir (vllm-neuron): compiled NxD Inference artifacts to load, or a writable folder to
    compile into; default <model_path>/neuron-compiled-artifacts.
    For vllm-neuron, tensor_parallel counts NeuronCores (2 per Inferentia2 chip)."""
    extra = shlex.split(engine_args)
    tp = str(max(1, tensor_parallel))
    p = str(port)
    if engine in ("vllm", "vllm-neuron"):
        cmd = [
            "vllm",
            "serve",
            model_path,
            "--served-model-name",
            served_model_name,
            "--tensor-parallel-size",
            tp,
            "--host",
            host,
            "--port",
            p,
        ]
        env: dict[str, str] = {}
        if engine == "vllm-neuron":
            env = {
                "VLLM_NEURON_FRAMEWORK": "neuronx-distributed-inference",
                "NEURON_COMPILED_ARTIFACTS": neuron_artifacts_dir
                or f"{model_path}/{NEURON_ARTIFACTS_SUBDIR}",
            }
        return EngineLaunch(cmd + extra, "/health", env=env)
    if engine == "tgi":
        cmd = [
            "text-generation-launcher",
            "--model-id",
            model_path,
            "--num-shard",
            tp,
            "--hostname",
            host,
            "--port",
            p,
        ]
        return EngineLaunch(cmd + extra, "/health")
    if engine == "lmdeploy":
        cmd = [
            "lmdeploy",
            "serve",
            "api_server",
            model_path,
            "--model-name",
            served_model_name,
            "--tp",
            tp,
            "--server-name",
            host,
            "--server-port",
            p,
        ]
        return EngineLaunch(cmd + extra, "/v1/models")
    if engine == "llama.cpp":
        if llama_cpp_python:
            cmd = [
                python_executable,
                "-m",
                "llama_cpp.server",
                "--model",
                model_path,
                "--model_alias",
                served_model_name,
                "--host",
                host,
                "--port",
                p,
                # its default cancels the running request when another arrives: queue it instead
                "--interrupt_requests",
                "false",
            ]
            return EngineLaunch(cmd + extra, "/v1/models", api_dialect=LLAMA_CPP_PYTHON)
        cmd = [
            "llama-server",
            "--model",
            model_path,
            "--alias",
            served_model_name,
            "--host",
            host,
            "--port",
            p,
        ]
        if tensor_parallel > 1:
            cmd += ["--split-mode", "layer"]
        return EngineLaunch(cmd + extra, "/health")
    if engine == "ollama":
        modelfile = f"{model_path}.Modelfile"
        return EngineLaunch(
            ["ollama", "serve"],
            "/api/tags",
            env={"OLLAMA_HOST": f"{host}:{p}"},
            after_ready=[
                ["sh", "-c", f"printf 'FROM %s\\n' {shlex.quote(model_path)} > {shlex.quote(modelfile)}"],
                ["ollama", "create", served_model_name, "-f", modelfile, *extra],
            ],
        )
    if engine == "huggingface":
        cmd = [
            "text-embeddings-router",
            "--model-id",
            model_path,
            "--served-model-name",
            served_model_name,
            "--hostname",
            host,
            "--port",
            p,
        ]
        return EngineLaunch(cmd + extra, "/health", native_rerank_path="/rerank")
    raise ValueError(f"unknown engine {engine!r}; expected one of {', '.join(ENGINES)}")
