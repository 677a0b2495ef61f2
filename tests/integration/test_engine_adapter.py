"""The engine adapter as the model image runs it: llama.cpp (SmolLM2 GGUF) behind /ping, /invocations
and /v1/*, and its SIGTERM drain."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.integration.conftest import SERVED_NAME, free_port, start_adapter, stop, wait_http

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CHAT = {"messages": [{"role": "user", "content": "Write a long story about a cat."}], "max_tokens": 8}


def sse_events(body: bytes) -> list[str]:
    return [line[len(b"data: ") :].decode() for line in body.splitlines() if line.startswith(b"data: ")]


def test_ping_is_503_until_the_engine_is_ready(logs_dir: Path) -> None:
    proc, url = start_adapter(logs_dir / "adapter-ping.log")
    try:
        statuses: list[int] = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and (not statuses or statuses[-1] != 200):
            try:
                statuses.append(httpx.get(url + "/ping", timeout=5).status_code)
                if statuses[-1] == 503:
                    early = httpx.post(url + "/invocations", json=CHAT, timeout=5)
                    assert early.status_code in (503, 200)
                    if early.status_code == 503:
                        assert early.json()["error"]["code"] == "engine_not_ready"
            except httpx.ConnectError:
                pass
            time.sleep(0.05)
        assert statuses[0] == 503, statuses
        assert statuses[-1] == 200, statuses
        assert set(statuses) <= {503, 200}
    finally:
        stop(proc)


def test_invocations_routes_by_shape_or_custom_attributes(adapter: str) -> None:
    chat = httpx.post(adapter + "/invocations", json=CHAT, timeout=60)
    assert chat.status_code == 200
    assert chat.json()["object"] == "chat.completion" and chat.json()["model"] == SERVED_NAME

    completion = httpx.post(adapter + "/invocations", json={"prompt": "Once", "max_tokens": 4}, timeout=60)
    assert completion.json()["object"] == "text_completion"

    emb = httpx.post(
        adapter + "/invocations",
        json={"input": "hello"},
        headers={"X-Amzn-SageMaker-Custom-Attributes": "route=/v1/embeddings"},
        timeout=60,
    )
    assert emb.status_code == 200 and emb.json()["data"][0]["embedding"]

    unknown = httpx.post(adapter + "/invocations", json={"foo": 1}, timeout=10)
    assert unknown.status_code == 400 and "messages" in unknown.json()["error"]["message"]


def test_invocations_stream_is_the_sse_byte_stream(adapter: str) -> None:
    with httpx.stream("POST", adapter + "/invocations", json={**CHAT, "stream": True}, timeout=60) as resp:
        assert resp.headers["content-type"].startswith("text/event-stream")
        body = b"".join(resp.iter_bytes())
    events = sse_events(body)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] in ("length", "stop")


def test_concurrent_streams_all_complete(adapter: str) -> None:
    """A second request queues behind the first instead of cutting it (llama-cpp-python's server interrupts
    the running request by default)."""
    from concurrent.futures import ThreadPoolExecutor

    def stream(_: int) -> list[str]:
        body = {**CHAT, "stream": True, "max_tokens": 24}
        with httpx.stream("POST", adapter + "/v1/chat/completions", json=body, timeout=120) as resp:
            return sse_events(b"".join(resp.iter_bytes()))

    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(stream, range(3)))
    for events in results:
        assert events[-1] == "[DONE]", events[-3:]
        last = json.loads(events[-2])
        assert "error" not in last and last["choices"][0]["finish_reason"] in ("length", "stop")


def test_v1_routes_are_served_directly_for_ecs(adapter: str) -> None:
    client = openai.OpenAI(base_url=adapter + "/v1", api_key="unused", max_retries=0, timeout=60)
    assert [m.id for m in client.models.list()] == [SERVED_NAME]
    text = "".join(
        c.choices[0].delta.content or ""
        for c in client.chat.completions.create(model="anything", stream=True, **CHAT)  # type: ignore[call-overload]
        if c.choices
    )
    assert text


def test_sigterm_finishes_in_flight_stream_then_stops_the_engine(logs_dir: Path) -> None:
    log = logs_dir / "adapter-drain.log"
    engine_port = free_port()
    proc, url = start_adapter(log, engine_port, EMD_DRAIN_SECONDS="60")
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(url + "/ping", timeout=5).status_code == 200:
                    break
            except httpx.ConnectError:
                pass
            time.sleep(0.1)
        first_chunk = threading.Event()
        result: dict[str, Any] = {}

        def consume() -> None:
            body = b""
            with httpx.stream(
                "POST", url + "/invocations", json={**CHAT, "max_tokens": 200, "stream": True}, timeout=60
            ) as resp:
                for chunk in resp.iter_bytes():
                    body += chunk
                    first_chunk.set()
            result["body"] = body

        reader = threading.Thread(target=consume)
        reader.start()
        assert first_chunk.wait(60)
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        with pytest.raises(httpx.ConnectError):  # no new connections while draining
            httpx.get(url + "/ping", timeout=2)
        reader.join(60)
        events = sse_events(result["body"])
        assert events[-1] == "[DONE]", events[-3:]
        assert len(events) > 10  # the stream ran to the end after SIGTERM
        assert proc.wait(60) == 0
        assert "draining" in log.read_text()
        with pytest.raises(httpx.ConnectError):  # the engine was stopped with the adapter
            httpx.get(f"http://127.0.0.1:{engine_port}/v1/models", timeout=2)
    finally:
        stop(proc)


def test_engine_that_dies_makes_the_adapter_exit_non_zero(logs_dir: Path, tmp_path: Path) -> None:
    """SageMaker/ECS must replace a container whose engine is gone, not keep answering /ping 503."""
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"not a gguf file")
    proc, _ = start_adapter(logs_dir / "adapter-broken.log", EMD_MODEL_DIR=str(broken))
    try:
        assert proc.wait(60) == 1
        assert "engine exited" in (logs_dir / "adapter-broken.log").read_text()
    finally:
        stop(proc)


FAKE_TEI = """#!{python}
# A stand-in for text-embeddings-inference's router: the flags the adapter passes, /health and /rerank.
import argparse, json
from aiohttp import web
p = argparse.ArgumentParser()
for flag in ("--model-id", "--served-model-name", "--hostname", "--port"):
    p.add_argument(flag)
a = p.parse_args()
with open({record!r}, "w") as fh:
    json.dump(vars(a), fh)
async def health(request):
    return web.json_response({{}})
async def rerank(request):
    body = await request.json()
    words = set(body["query"].split())
    return web.json_response([{{"index": i, "score": len(words & set(t.split())) / 10}}
                              for i, t in enumerate(body["texts"])])
app = web.Application()
app.router.add_get("/health", health)
app.router.add_post("/rerank", rerank)
web.run_app(app, host=a.hostname, port=int(a.port), print=None)
"""


def test_huggingface_engine_rerank_is_translated(logs_dir: Path, tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    record = tmp_path / "args.json"
    router = bindir / "text-embeddings-router"
    router.write_text(FAKE_TEI.format(python=sys.executable, record=str(record)))
    router.chmod(0o755)
    proc, url = start_adapter(
        logs_dir / "adapter-tei.log",
        EMD_ENGINE="huggingface",
        EMD_MODEL_ID="bge-reranker-v2-m3",
        EMD_ENGINE_ARGS="",
        EMD_MODEL_DIR=str(tmp_path),
        PATH=f"{bindir}:{os.environ['PATH']}",
    )
    try:
        wait_http(url + "/ping", timeout=30, proc=proc)
        r = httpx.post(
            url + "/invocations",
            json={"query": "red cat", "documents": ["a dog", "red cat sat", "the cat"], "top_n": 2},
            timeout=10,
        )
        assert r.status_code == 200, r.text
        assert r.json()["model"] == "bge-reranker-v2-m3"
        assert [x["index"] for x in r.json()["results"]] == [1, 2]
        args = json.loads(record.read_text())
        assert args["served_model_name"] == "bge-reranker-v2-m3" and args["model_id"] == str(tmp_path)
    finally:
        stop(proc)
