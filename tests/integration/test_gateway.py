"""The gateway with the real `openai` client on 127.0.0.1, in front of a real llama.cpp engine (through the
engine adapter, as ECS/EC2 run it), a SageMaker-runtime stand-in speaking the real event-stream wire format
(moto 5 has no InvokeEndpointWithResponseStream), and moto for SSM, Secrets Manager and InvokeEndpoint."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest

from model_specs.registry import ASYNC_IO_PREFIX
from tests.integration.conftest import Gateway, ServerThread, free_port, start_llama, stop
from tests.integration.deployments import (
    ASYNC_BUCKET,
    KEY_DEV,
    KEY_SM,
    KEY_VICTIM,
    MESSAGES,
    MODEL,
    PROMPT_MARKER,
    client,
    http_entry,
    register,
    sm_entry,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def collect_stream(stream: Any) -> tuple[str, list[Any]]:
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    return text, chunks


def test_chat_non_streaming_http_backend(gw: Gateway) -> None:
    resp = client(gw, KEY_DEV).chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=8)
    assert resp.choices[0].message.content
    assert resp.usage is not None and resp.usage.completion_tokens > 0
    assert resp.model == MODEL  # the engine serves the model under its id


def test_chat_streaming_http_backend_passes_sse_through(gw: Gateway) -> None:
    stream = client(gw, KEY_DEV).chat.completions.create(
        model=f"{MODEL}/dev", messages=MESSAGES, max_tokens=8, stream=True
    )
    text, chunks = collect_stream(stream)
    assert text and len(chunks) >= 3
    assert chunks[-1].choices[0].finish_reason in ("length", "stop")
    # the raw stream ends with the engine's [DONE]
    with httpx.stream(
        "POST",
        gw.url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {KEY_DEV}"},
        json={"model": MODEL, "messages": MESSAGES, "max_tokens": 4, "stream": True},
        timeout=60,
    ) as raw:
        assert raw.headers["content-type"].startswith("text/event-stream")
        body = b"".join(raw.iter_bytes())
    assert body.rstrip().endswith(b"data: [DONE]")


def test_sagemaker_backend_non_streaming_and_streaming(gw: Gateway) -> None:
    c = client(gw, KEY_SM)
    resp = c.chat.completions.create(model=f"{MODEL}/sm", messages=MESSAGES, max_tokens=8)
    assert resp.choices[0].message.content
    text, chunks = collect_stream(
        c.chat.completions.create(model=f"{MODEL}/sm", messages=MESSAGES, max_tokens=8, stream=True)
    )
    assert text and chunks[-1].choices[0].finish_reason in ("length", "stop")


def test_sagemaker_stream_error_mid_stream_becomes_error_event(gw: Gateway) -> None:
    stream = client(gw, KEY_SM).chat.completions.create(
        model=f"{MODEL}/broken", messages=MESSAGES, max_tokens=64, stream=True
    )
    with pytest.raises(openai.APIError, match="failed during the stream"):
        list(stream)


def test_embeddings(gw: Gateway) -> None:
    resp = client(gw, KEY_DEV).embeddings.create(model=MODEL, input="hello world", encoding_format="float")
    assert len(resp.data) == 1
    vector = resp.data[0].embedding
    # llama-cpp-python returns one vector per token for this model (no pooling): flatten to check values
    flat = [x for row in vector for x in (row if isinstance(row, list) else [row])]
    assert len(flat) >= 64 and all(isinstance(x, float) for x in flat)


def test_missing_and_wrong_key_are_401_in_openai_format(gw: Gateway) -> None:
    r = httpx.post(gw.url + "/v1/chat/completions", json={"model": MODEL, "messages": MESSAGES}, timeout=10)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        client(gw, "sk-wrong").chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=2)
    with pytest.raises(openai.AuthenticationError):  # a key of another deployment
        client(gw, KEY_SM).chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=2)


def test_unknown_model_404_lists_existing(gw: Gateway) -> None:
    with pytest.raises(openai.NotFoundError) as err:
        client(gw, KEY_DEV).chat.completions.create(model="no-such-model", messages=MESSAGES, max_tokens=2)
    message = err.value.body["message"]  # type: ignore[index]
    assert "no-such-model" in message
    assert f"{MODEL}/dev" in message and "open-model/dev" in message
    assert f"{MODEL}/sm" not in message  # not usable with this key


def test_models_lists_only_what_the_key_may_use(gw: Gateway) -> None:
    dev = {m.id for m in client(gw, KEY_DEV).models.list()}
    assert {f"{MODEL}/dev", "async-model/dev", "open-model/dev"} <= dev
    assert not dev & {f"{MODEL}/sm", f"{MODEL}/broken", "nokey-model/dev"}
    sm = {m.id for m in client(gw, KEY_SM).models.list()}
    assert {f"{MODEL}/sm", f"{MODEL}/broken", "open-model/dev"} <= sm
    assert not sm & {f"{MODEL}/dev", "async-model/dev", "nokey-model/dev"}
    anonymous = httpx.get(gw.url + "/v1/models", timeout=10).json()
    assert [m["id"] for m in anonymous["data"]] == ["open-model/dev"]
    # a wrong key is refused, as OpenAI refuses it, even though public deployments need none
    with pytest.raises(openai.AuthenticationError):
        client(gw, "sk-wrong").models.list()


def test_public_deployment_needs_no_key_and_keyless_private_is_refused(gw: Gateway) -> None:
    r = httpx.post(
        gw.url + "/v1/chat/completions",
        json={"model": "open-model", "messages": MESSAGES, "max_tokens": 4},
        timeout=60,
    )
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"]
    with pytest.raises(openai.AuthenticationError):
        client(gw, KEY_DEV).chat.completions.create(model="nokey-model", messages=MESSAGES, max_tokens=2)


def async_objects(aws: dict[str, Any]) -> list[str]:
    listing = aws["s3"].list_objects_v2(Bucket=ASYNC_BUCKET, Prefix=ASYNC_IO_PREFIX + "/")
    return [o["Key"] for o in listing.get("Contents", [])]


def test_async_deployment_answers_through_s3_and_leaves_nothing_behind(
    gw: Gateway, registered: dict[str, Any]
) -> None:
    """SageMaker async behind the synchronous API: input to S3, InvokeEndpointAsync, the answer polled from
    the output location, then the request's objects deleted (prompts do not linger in the bucket)."""
    c = client(gw, KEY_DEV)
    resp = c.chat.completions.create(model="async-model", messages=MESSAGES, max_tokens=8)
    assert resp.choices[0].message.content  # written by the real engine behind the async queue
    assert async_objects(registered) == []
    with pytest.raises(openai.BadRequestError, match="without stream=true"):
        c.chat.completions.create(model="async-model", messages=MESSAGES, max_tokens=2, stream=True)


def test_async_failure_location_becomes_an_error(gw: Gateway, registered: dict[str, Any]) -> None:
    with pytest.raises(openai.APIStatusError, match="failed the asynchronous request") as err:
        client(gw, KEY_DEV).chat.completions.create(model="async-model/broken", messages=MESSAGES)
    assert err.value.status_code == 502
    assert "container" not in err.value.message  # the container's own output stays in the gateway's logs
    assert async_objects(registered) == []


def test_async_without_an_answer_times_out_with_504(
    registered: dict[str, Any], sagemaker_runtime: str, gateway_factory: Callable[..., Gateway]
) -> None:
    quick = gateway_factory(sagemaker_runtime, name="gateway-async-wait", EMD_ASYNC_WAIT_SECONDS="1.5")
    started = time.monotonic()
    with pytest.raises(openai.APIStatusError, match="no answer within 2 s") as err:
        client(quick, KEY_DEV).chat.completions.create(model="async-model/silent", messages=MESSAGES)
    assert err.value.status_code == 504 and time.monotonic() - started < 5
    assert async_objects(registered) == []  # the unanswered request's input is removed too


def test_body_too_large_is_413(gw: Gateway) -> None:
    big = [{"role": "user", "content": "x" * 70_000}]
    with pytest.raises(openai.APIStatusError) as err:
        client(gw, KEY_DEV).chat.completions.create(model=MODEL, messages=big, max_tokens=2)
    assert err.value.status_code == 413
    assert "limit" in err.value.body["message"]  # type: ignore[index]


def test_missing_model_is_400(gw: Gateway) -> None:
    r = httpx.post(gw.url + "/v1/embeddings", json={"input": "x"}, headers={"Authorization": "Bearer k"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "model"


def eventually(fn: Callable[[], Any], within: float, what: str) -> Any:
    deadline = time.monotonic() + within
    while True:
        try:
            return fn()
        except (openai.AuthenticationError, openai.NotFoundError):
            if time.monotonic() > deadline:
                pytest.fail(f"{what} not within {within} s")
            time.sleep(0.2)


def tiny_chat(gw: Gateway, key: str, model: str) -> Any:
    return client(gw, key).chat.completions.create(model=model, messages=MESSAGES, max_tokens=1)


def test_new_deployment_is_found_without_waiting_for_the_cache(
    gw: Gateway, registered: dict[str, Any], adapter: str
) -> None:
    client(gw, KEY_DEV).models.list()  # the registry is cached for 30 s in these tests
    register(registered, http_entry("fresh-model", "v2", adapter), "sk-fresh")
    # an unknown model refreshes the registry at most once a second
    resp = eventually(lambda: tiny_chat(gw, "sk-fresh", "fresh-model/v2"), 3, "the new deployment")
    assert resp.choices


def test_key_rotation_takes_effect_within_the_ttl(
    gw: Gateway, registered: dict[str, Any], adapter: str
) -> None:
    entry = http_entry("rotating-model", "dev", adapter)
    register(registered, entry, "sk-old")
    eventually(lambda: tiny_chat(gw, "sk-old", "rotating-model"), 3, "the first key")
    registered["secrets"].put_secret_value(SecretId=entry.api_key_secret_name, SecretString="sk-new")
    rotated_at = time.monotonic()
    eventually(lambda: tiny_chat(gw, "sk-new", "rotating-model"), 10, "the new key")  # EMD_KEY_CACHE_TTL=1
    assert time.monotonic() - rotated_at < 5
    with pytest.raises(openai.AuthenticationError):
        tiny_chat(gw, "sk-old", "rotating-model")


def test_backend_killed_mid_stream_ends_with_an_error_not_a_hang(
    gw: Gateway, registered: dict[str, Any]
) -> None:
    port = free_port()
    engine = start_llama(port)
    try:
        register(registered, http_entry("victim-model", "dev", f"http://127.0.0.1:{port}"), KEY_VICTIM)
        c = openai.OpenAI(base_url=gw.url + "/v1", api_key=KEY_VICTIM, max_retries=0, timeout=30)
        stream = c.chat.completions.create(
            model="victim-model", messages=MESSAGES, max_tokens=400, stream=True
        )
        started = time.monotonic()
        got = 0
        with pytest.raises(openai.APIError, match="victim-model"):
            for _ in stream:
                got += 1
                if got == 2:
                    engine.send_signal(signal.SIGKILL)
        assert got >= 2 and time.monotonic() - started < 20
    finally:
        stop(engine)
    # the gateway keeps serving the other models
    assert client(gw, KEY_DEV).chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=2).choices


def test_moto_invoke_endpoint_through_the_gateway(
    registered: dict[str, Any], gateway_factory: Callable[..., Gateway]
) -> None:
    """InvokeEndpoint against moto's sagemaker-runtime (canned result): the gateway returns its body."""
    canned = {
        "id": "x",
        "object": "chat.completion",
        "model": "canned",
        "created": 0,
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": "canned answer"},
            }
        ],
    }
    httpx.post(
        registered["moto_url"] + "/moto-api/static/sagemaker/endpoint-results",
        json={
            "results": [
                {
                    "Body": json.dumps(canned),
                    "ContentType": "application/json",
                    "InvokedProductionVariant": "AllTraffic",
                    "CustomAttributes": "",
                }
            ]
        },
        timeout=10,
    ).raise_for_status()
    register(registered, sm_entry("canned-model", "dev", "emd-canned"), "sk-canned")
    moto_gw = gateway_factory(registered["moto_url"], name="gateway-moto")
    resp = client(moto_gw, "sk-canned").chat.completions.create(model="canned-model", messages=MESSAGES)
    assert resp.choices[0].message.content == "canned answer"


def test_access_logs_are_json_without_keys_or_prompts(gw: Gateway) -> None:
    client(gw, KEY_DEV).chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=2)
    lines = [json.loads(line) for line in gw.log_lines() if line.startswith("{")]
    assert any(
        r["path"] == "/v1/chat/completions" and r["model"] == f"{MODEL}/dev" and r["status"] == 200
        for r in lines
    )
    text = gw.log.read_text()
    for secret in (KEY_DEV, KEY_SM, "sk-old", "sk-new", PROMPT_MARKER):
        assert secret not in text


ENGINE_EVENTS: list[str] = []


def _fake_engine() -> Any:
    """A real local HTTP engine for routes llama.cpp lacks: a transcription endpoint echoing what it got,
    and a chat endpoint slower than the gateway's read timeout."""
    from aiohttp import web

    async def transcribe(request: web.Request) -> web.Response:
        form = await request.post()
        audio = form["file"]
        return web.json_response(
            {"text": f"{form['model']}:{len(audio.file.read())} bytes"}  # type: ignore[union-attr]
        )

    async def slow_chat(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.json_response({})

    async def endless_completion(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        try:
            for i in range(400):
                await resp.write(f'data: {{"choices":[{{"index":0,"text":"{i} "}}]}}\n\n'.encode())
                await asyncio.sleep(0.025)
        except ConnectionError:
            ENGINE_EVENTS.append("client gone")
            raise
        ENGINE_EVENTS.append("generated everything")
        return resp

    app = web.Application()
    app.router.add_post("/v1/completions", endless_completion)
    app.router.add_post("/v1/audio/transcriptions", transcribe)
    app.router.add_post("/v1/chat/completions", slow_chat)
    return app


@pytest.fixture(scope="module")
def fake_engine() -> Any:
    with ServerThread(_fake_engine()) as server:
        yield server.url


def test_audio_transcription_multipart_is_routed_by_its_model_field(
    gw: Gateway, registered: dict[str, Any], fake_engine: str
) -> None:
    register(registered, http_entry("whisper-tiny", "dev", fake_engine), "sk-asr")
    c = openai.OpenAI(base_url=gw.url + "/v1", api_key="sk-asr", max_retries=0, timeout=30)
    resp = eventually(
        lambda: c.audio.transcriptions.create(model="whisper-tiny", file=("a.wav", b"RIFF" + b"\0" * 996)),
        3,
        "the whisper deployment",
    )
    assert resp.text == "whisper-tiny:1000 bytes"
    with pytest.raises(openai.AuthenticationError):
        client(gw, KEY_DEV).audio.transcriptions.create(model="whisper-tiny", file=("a.wav", b"RIFF"))


def test_upstream_read_timeout_is_504(
    registered: dict[str, Any],
    fake_engine: str,
    sagemaker_runtime: str,
    gateway_factory: Callable[..., Gateway],
) -> None:
    register(registered, http_entry("slow-model", "dev", fake_engine), "sk-slow")
    quick = gateway_factory(sagemaker_runtime, name="gateway-timeout", EMD_UPSTREAM_READ_TIMEOUT="0.5")
    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as err:
        client(quick, "sk-slow").chat.completions.create(model="slow-model", messages=MESSAGES)
    assert err.value.status_code == 504 and time.monotonic() - started < 4


def test_no_running_engine_is_503_and_a_no_capacity_metric(gw: Gateway, registered: dict[str, Any]) -> None:
    """An ECS deployment scaled to zero has no task to connect to: the client gets a 503 with Retry-After and
    the gateway writes the EMF NoCapacity metric its ECS scaling policy starts a task on."""
    dead = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    register(registered, http_entry("zero-model", "dev", dead), "sk-zero")
    deadline = time.monotonic() + 5
    while True:  # the registry refresh on a miss is rate-limited to once a second
        resp = httpx.post(
            gw.url + "/v1/chat/completions",
            headers={"Authorization": "Bearer sk-zero"},
            json={"model": "zero-model", "messages": MESSAGES},
            timeout=30,
        )
        if resp.status_code != 404 or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert resp.status_code == 503 and int(resp.headers["Retry-After"]) > 0
    assert resp.json()["error"]["code"] == "backend_not_ready"
    deadline = time.monotonic() + 5
    while True:
        emf = [json.loads(line) for line in gw.log_lines() if '"_aws"' in line]
        emf = [m for m in emf if m.get("Route") == "zero-model/dev"]
        if len(emf) >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    (metric,) = [m for m in emf if "NoCapacity" in m]
    assert metric["NoCapacity"] == 1
    (spec,) = metric["_aws"]["CloudWatchMetrics"]
    assert spec["Namespace"] == "EMD/Gateway" and spec["Dimensions"] == [["Route"]]
    assert spec["Metrics"] == [{"Name": "NoCapacity", "Unit": "Count"}]
    # the access line counts the request too (the deployment's idle-to-zero alarm watches Requests)
    (access,) = [m for m in emf if "Requests" in m]
    assert access["Requests"] == 1 and access["status"] == 503
    assert access["_aws"]["CloudWatchMetrics"][0]["Metrics"] == [{"Name": "Requests", "Unit": "Count"}]


def test_only_routed_requests_are_counted(gw: Gateway) -> None:
    """Unknown models and bad keys create no metric: random names would each be a new CloudWatch metric, and
    unauthenticated calls must not keep a deployment from scaling to zero."""
    for model, key in (("made-up-model-xyz", KEY_DEV), (MODEL, "sk-wrong")):
        httpx.post(
            gw.url + "/v1/chat/completions",
            headers={"Authorization": f"Bearer {key}"},
            json={"model": model, "messages": MESSAGES, "max_tokens": 1},
            timeout=30,
        )
    client(gw, KEY_DEV).chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=1)
    time.sleep(0.5)
    lines = [json.loads(line) for line in gw.log_lines() if line.startswith("{")]
    unknown = [r for r in lines if r.get("model") == "made-up-model-xyz"]
    refused = [r for r in lines if r.get("status") == 401]
    assert unknown and refused  # logged, but not counted
    assert not [r for r in unknown + refused if "_aws" in r]
    assert [r for r in lines if r.get("Route") == f"{MODEL}/dev" and r.get("Requests") == 1]


def test_registry_unreachable_is_503_not_a_crash(
    sagemaker_runtime: str, gateway_factory: Callable[..., Gateway]
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    lost = gateway_factory(sagemaker_runtime, name="gateway-noregistry", AWS_ENDPOINT_URL=dead)
    with pytest.raises(openai.APIStatusError) as err:
        client(lost, KEY_DEV).chat.completions.create(model=MODEL, messages=MESSAGES)
    assert err.value.status_code == 503
    assert httpx.get(lost.url + "/health", timeout=5).status_code == 200


def test_client_disconnect_mid_stream_stops_the_upstream_request(
    gw: Gateway, registered: dict[str, Any], fake_engine: str
) -> None:
    register(registered, http_entry("endless-model", "dev", fake_engine), "sk-endless")
    body = {"model": "endless-model", "prompt": "x", "stream": True}
    deadline = time.monotonic() + 5
    while True:  # the registry refresh on a miss is rate-limited to once a second
        with httpx.stream("POST", gw.url + "/v1/completions", json=body, timeout=10,
                          headers={"Authorization": "Bearer sk-endless"}) as resp:  # fmt: skip
            if resp.status_code == 404 and time.monotonic() < deadline:
                time.sleep(0.3)
                continue
            assert resp.status_code == 200
            next(resp.iter_bytes())  # read a little, then hang up
            break
    waited = time.monotonic()
    while not ENGINE_EVENTS and time.monotonic() - waited < 5:
        time.sleep(0.05)
    assert ENGINE_EVENTS == ["client gone"]  # the engine stopped within seconds, not after 400 chunks


def test_sagemaker_model_error_keeps_the_engines_4xx(gw: Gateway, adapter: str) -> None:
    """An error from the container comes back from SageMaker as ModelError; the client gets the engine's 4xx
    status and OpenAI error, as if it had called the engine itself. (A 5xx becomes a 502 without the engine's
    text: tests/unit/test_gateway_under_attack.py.)"""
    bad = {"model": f"{MODEL}/sm", "messages": MESSAGES, "temperature": "hot"}
    route = {"X-Amzn-SageMaker-Custom-Attributes": "route=/v1/chat/completions"}
    direct = httpx.post(adapter + "/invocations", json=bad, headers=route, timeout=30)
    assert direct.status_code == 400  # what the engine says
    r = httpx.post(gw.url + "/v1/chat/completions", headers={"Authorization": f"Bearer {KEY_SM}"}, json=bad,
                   timeout=30)  # fmt: skip
    assert r.status_code == 400 and r.json()["error"] == direct.json()["error"]
