"""The engine command line per engine (pure function) and the adapter's /invocations routing rules."""

from __future__ import annotations

import pytest

from serving.engine.command import ENGINES, LLAMA_CPP_PYTHON, build_engine_launch
from serving.engine.routing import (
    route_from_attributes,
    route_from_body,
    tei_rerank_request,
    tei_rerank_response,
)
from serving.engine.settings import DEFAULT_NEURON_CACHE, AdapterSettings


def launch(engine: str, **kw: object):  # type: ignore[no-untyped-def]
    args = {"model_path": "/opt/ml/model", "served_model_name": "Qwen2.5-7B-Instruct", "port": 8000}
    args.update(kw)
    return build_engine_launch(engine, **args)  # type: ignore[arg-type]


def test_vllm() -> None:
    got = launch("vllm", tensor_parallel=4, engine_args="--max-model-len 8192 --enforce-eager")
    assert got.command == [
        "vllm", "serve", "/opt/ml/model", "--served-model-name", "Qwen2.5-7B-Instruct",
        "--tensor-parallel-size", "4", "--host", "127.0.0.1", "--port", "8000",
        "--max-model-len", "8192", "--enforce-eager",
    ]  # fmt: skip
    assert got.health_path == "/health"


def test_vllm_neuron_counts_neuroncores_and_points_nxd_at_compiled_artifacts(tmp_path) -> None:  # type: ignore[no-untyped-def]
    got = launch("vllm-neuron", tensor_parallel=2, engine_args="--max-model-len 4096 --max-num-seqs 4")
    assert got.command == [
        "vllm", "serve", "/opt/ml/model", "--served-model-name", "Qwen2.5-7B-Instruct",
        "--tensor-parallel-size", "2", "--host", "127.0.0.1", "--port", "8000",
        "--max-model-len", "4096", "--max-num-seqs", "4",
    ]  # fmt: skip
    assert got.env == {
        "VLLM_NEURON_FRAMEWORK": "neuronx-distributed-inference",
        "NEURON_COMPILED_ARTIFACTS": "/opt/ml/model/neuron-compiled-artifacts",
    }
    assert launch("vllm", tensor_parallel=2).env == {}  # the GPU build gets no Neuron settings
    # the adapter loads artifacts shipped with the weights, else compiles into a writable cache
    env = {"EMD_ENGINE": "vllm-neuron", "EMD_MODEL_ID": "m", "EMD_MODEL_DIR": str(tmp_path)}
    assert AdapterSettings.from_env(env).launch().env["NEURON_COMPILED_ARTIFACTS"] == DEFAULT_NEURON_CACHE
    (tmp_path / "neuron-compiled-artifacts").mkdir()
    shipped = AdapterSettings.from_env(env).launch().env["NEURON_COMPILED_ARTIFACTS"]
    assert shipped == str(tmp_path / "neuron-compiled-artifacts")


def test_tgi() -> None:
    got = launch("tgi", tensor_parallel=2, engine_args="--max-input-tokens 4096")
    assert got.command == [
        "text-generation-launcher", "--model-id", "/opt/ml/model", "--num-shard", "2",
        "--hostname", "127.0.0.1", "--port", "8000", "--max-input-tokens", "4096",
    ]  # fmt: skip


def test_lmdeploy() -> None:
    got = launch("lmdeploy", tensor_parallel=2, engine_args="--model-format awq")
    assert got.command == [
        "lmdeploy", "serve", "api_server", "/opt/ml/model", "--model-name", "Qwen2.5-7B-Instruct",
        "--tp", "2", "--server-name", "127.0.0.1", "--server-port", "8000", "--model-format", "awq",
    ]  # fmt: skip


def test_llama_cpp_binary_and_python_server() -> None:
    native = launch("llama.cpp", model_path="/m/q4.gguf", engine_args="-ngl 99 --ctx-size 4096")
    assert native.command == [
        "llama-server", "--model", "/m/q4.gguf", "--alias", "Qwen2.5-7B-Instruct",
        "--host", "127.0.0.1", "--port", "8000", "-ngl", "99", "--ctx-size", "4096",
    ]  # fmt: skip
    assert native.health_path == "/health"
    py = launch("llama.cpp", model_path="/m/q4.gguf", llama_cpp_python=True, python_executable="/usr/bin/py")
    assert py.command[:3] == ["/usr/bin/py", "-m", "llama_cpp.server"]
    assert py.command[py.command.index("--model_alias") + 1] == "Qwen2.5-7B-Instruct"
    assert py.health_path == "/v1/models"
    assert py.command[py.command.index("--interrupt_requests") + 1] == "false"
    assert (py.api_dialect, native.api_dialect) == (LLAMA_CPP_PYTHON, None)  # only its answers are bridged
    assert "--split-mode" in launch("llama.cpp", tensor_parallel=2).command


def test_ollama_serves_then_creates_the_model_under_its_name() -> None:
    got = launch("ollama", model_path="/m/model file.gguf", port=11434)
    assert got.command == ["ollama", "serve"]
    assert got.env == {"OLLAMA_HOST": "127.0.0.1:11434"}
    assert got.after_ready[-1] == [
        "ollama",
        "create",
        "Qwen2.5-7B-Instruct",
        "-f",
        "/m/model file.gguf.Modelfile",
    ]
    assert "'/m/model file.gguf'" in got.after_ready[0][2]  # quoted for the shell


def test_huggingface_text_embeddings_inference() -> None:
    got = launch("huggingface")
    assert got.command[0] == "text-embeddings-router"
    assert got.command[got.command.index("--served-model-name") + 1] == "Qwen2.5-7B-Instruct"
    assert got.native_rerank_path == "/rerank"


def test_every_engine_is_covered_and_unknown_is_refused() -> None:
    for engine in ENGINES:
        assert launch(engine).command
    with pytest.raises(ValueError, match=r"unknown engine 'trt'.*vllm"):
        launch("trt")


def test_engine_args_are_shell_split() -> None:
    got = launch("vllm", engine_args="--chat-template '{{ a b }}'")
    assert got.command[-2:] == ["--chat-template", "{{ a b }}"]


@pytest.mark.parametrize(
    ("body", "route"),
    [
        ({"messages": []}, "/v1/chat/completions"),
        ({"prompt": "x"}, "/v1/completions"),
        ({"input": "x"}, "/v1/embeddings"),
        ({"query": "q", "documents": ["a"]}, "/v1/rerank"),
        ({"foo": 1}, None),
        ([1, 2], None),
    ],
)
def test_route_from_body(body: object, route: str | None) -> None:
    assert route_from_body("application/json", body) == route


def test_route_from_attributes_and_multipart() -> None:
    assert route_from_attributes("a=b, route=/v1/embeddings") == "/v1/embeddings"
    assert route_from_attributes("route=/admin") is None
    assert route_from_attributes(None) is None
    assert route_from_body("multipart/form-data; boundary=x", None) == "/v1/audio/transcriptions"


def test_tei_rerank_translation() -> None:
    body = {"query": "q", "documents": ["a", {"text": "b"}, "c"], "top_n": 2}
    assert tei_rerank_request(body)["texts"] == ["a", "b", "c"]
    scores = [{"index": 0, "score": 0.1}, {"index": 2, "score": 0.9}, {"index": 1, "score": 0.5}]
    out = tei_rerank_response(scores, body, "m")
    assert [r["index"] for r in out["results"]] == [2, 1]
