"""The gateway under hostile input and faults, in process (real aiohttp servers on 127.0.0.1): bounded
parsing, separate pools and a limit on upstream requests, stale registry and key digests while the store is
down, body and client timeouts, AWS and engine errors without internals, and what the access log records."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from serving.gateway.multipart import MAX_MODEL_BYTES, MAX_PARTS, BadMultipart, model_field
from tests.entries import http_entry, sm_entry
from tests.support.sagemaker_wire import aws_error_response, refuse_unsigned
from tests.unit.gateway_harness import (
    KEY,
    OTHER_KEY,
    LogCapture,
    MemoryStore,
    auth,
    chat_body,
    engine_app,
    gateway,
    gateway_config,
    gateway_to_engine,
    post,
    run,
    runtime_clients,
    serve,
)

CHAT = "/v1/chat/completions"
COMPLETION = {
    "id": "c",
    "object": "chat.completion",
    "model": "served",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
}


async def ok_chat(request: web.Request) -> web.Response:
    await request.read()
    return web.json_response(COMPLETION)


# ---------------------------------------------------------------- multipart


def form(*fields: tuple[str, bytes], boundary: str = "b0undary") -> tuple[bytes, str]:
    parts = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + value + b"\r\n"
        for name, value in fields
    )
    return parts + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def test_multipart_model_field_first_last_or_absent() -> None:
    body, ctype = form(("model", b"whisper/dev"), ("file", b"RIFF" + b"\0" * 1000))
    assert run(model_field(body, ctype)) == "whisper/dev"
    body, ctype = form(("file", b"x" * 3_000_000), ("language", b"en"), ("model", b" whisper \r\n"))
    assert (
        run(model_field(body, ctype)) == "whisper"
    )  # after a large file part, as curl -F file=… -F model=… sends
    body, ctype = form(("file", b"RIFF"))
    assert run(model_field(body, ctype)) is None


@pytest.mark.parametrize(
    "body, reason",
    [
        (b'name="model"\r\n' * 70_000, "boundary"),  # the 1 MiB body that froze the regex
        (form(*[(f"f{i}", b"v") for i in range(MAX_PARTS + 1)])[0], "parts"),
        (form(("model", b"m" * (MAX_MODEL_BYTES + 1)))[0], "model"),
        (form(("model", b"\xff\xfe"))[0], "UTF-8"),
    ],
)
def test_multipart_refuses_what_it_will_not_parse(body: bytes, reason: str) -> None:
    with pytest.raises(BadMultipart, match=reason):
        run(model_field(body, "multipart/form-data; boundary=b0undary"))


def test_multipart_without_boundary_is_400_not_a_hang() -> None:
    store = MemoryStore([])

    async def scenario() -> tuple[int, bytes]:
        async with gateway(store) as url, aiohttp.ClientSession() as s:
            status, _, data = await post(
                s, url + "/v1/audio/transcriptions", b'name="model"\r\n' * 1000,
                {"Content-Type": "multipart/form-data"},
            )  # fmt: skip
            return status, data

    status, data = run(scenario())
    assert status == 400 and json.loads(data)["error"]["param"] == "model"


# ---------------------------------------------------------------- 400, not 500


def nested(depth: int) -> bytes:
    return b'{"model":"m","messages":' + b"[" * depth + b"]" * depth + b"}"


def test_deeply_nested_json_is_400_without_a_key() -> None:
    store = MemoryStore([http_entry("m", "dev", "http://127.0.0.1:9")], {})

    async def scenario() -> list[tuple[int, dict[str, Any]]]:
        async with gateway(store) as url, aiohttp.ClientSession() as s:
            out = []
            for depth in (1000, 100_000, 200):
                status, _, data = await post(s, url + CHAT, nested(depth))
                out.append((status, json.loads(data)))
            return out

    for status, body in run(scenario()):
        assert status == 400, body
        assert "nested" in body["error"]["message"]


async def raw_request(url: str, head: bytes, body: bytes = b"", read_timeout: float = 10) -> bytes:
    """Send bytes as they are (aiohttp's client refuses to send malformed headers); the response's head and
    body (per its Content-Length), without waiting for the connection to close."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(head + b"\r\n" + body)
    await writer.drain()
    try:
        async with asyncio.timeout(read_timeout):
            answer = await reader.readuntil(b"\r\n\r\n")
            length = next(
                (int(line.split(b":", 1)[1]) for line in answer.split(b"\r\n")
                 if line.lower().startswith(b"content-length:")), 0,
            )  # fmt: skip
            return answer + await reader.readexactly(length)
    finally:
        writer.close()


def test_non_utf8_bearer_token_is_400() -> None:
    store = MemoryStore([http_entry("m", "dev", "http://127.0.0.1:9")], {"emd/m/dev/api-key": KEY})
    body = json.dumps(chat_body("m")).encode()

    async def scenario() -> bytes:
        async with gateway(store) as url:
            head = (
                b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                b"Content-Type: application/json\r\nContent-Length: %d\r\n"
                b"Authorization: Bearer sk-\xff\xfe-unit\r\n" % len(body)
            )
            return await raw_request(url, head, body)

    answer = run(scenario())
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    assert b"sk-" not in answer


def test_malformed_authorization_is_neither_logged_nor_echoed() -> None:
    store = MemoryStore([])
    heads = [
        b"GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\x01\r\n" % KEY.encode(),
        b"GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s%s\r\n" % (KEY.encode(), b"a" * 9000),
    ]

    async def scenario() -> list[bytes]:
        async with gateway(store) as url:
            return [await raw_request(url, head) for head in heads]

    with LogCapture() as logs:
        answers = run(scenario())
    for answer in answers:
        assert answer.startswith(b"HTTP/1.1 400") or answer.startswith(b"HTTP/1.0 400"), answer[:200]
        assert KEY.encode() not in answer
        assert b'"error"' in answer  # OpenAI's error shape, not aiohttp's text page
    assert KEY not in logs.text
    assert "malformed" in logs.text  # the refusal itself is logged, without what was sent


# ---------------------------------------------------------------- pools and the limit on upstream requests


def test_max_streams_is_enforced_with_retry_after_for_http_backends() -> None:
    release = asyncio.Event()

    async def held(request: web.Request) -> web.Response:
        await release.wait()
        return web.json_response(COMPLETION)

    async def scenario() -> tuple[int, dict[str, str], float]:
        async with (
            gateway_to_engine({CHAT: held}, gateway_config(max_streams=2)) as url,
            aiohttp.ClientSession() as s,
        ):
            first = [asyncio.create_task(post(s, url + CHAT, chat_body("m"), auth())) for _ in range(2)]
            await asyncio.sleep(0.3)
            started = time.monotonic()
            status, headers, _ = await asyncio.wait_for(post(s, url + CHAT, chat_body("m"), auth()), 5)
            elapsed = time.monotonic() - started
            release.set()
            assert [r[0] for r in await asyncio.gather(*first)] == [200, 200]
            return status, headers, elapsed

    status, headers, _ = run(scenario())
    assert status in (429, 503) and int(headers["Retry-After"]) >= 1


def silent_runtime(started: list[str], release: asyncio.Event) -> web.Application:
    """A SageMaker-runtime stand-in whose streams send nothing until released."""

    async def hang(request: web.Request) -> web.StreamResponse:
        started.append(request.match_info["name"])
        await release.wait()
        return aws_error_response(400, "ValidationError", "released")

    app = web.Application(middlewares=[refuse_unsigned()])
    app.router.add_post("/endpoints/{name}/invocations-response-stream", hang)
    app.router.add_post("/endpoints/{name}/invocations", hang)
    return app


def test_sagemaker_streams_do_not_hold_the_pool_of_key_lookups() -> None:
    """Streams to a silent endpoint whose clients gave up: another tenant's first key look-up must not wait
    behind them (streams take no thread of the control-plane pool, nor any other)."""
    started: list[str] = []

    async def scenario() -> int:
        release = asyncio.Event()
        runtime = silent_runtime(started, release)
        async with serve(engine_app({CHAT: ok_chat})) as engine, serve(runtime) as sm:
            store = MemoryStore(
                [sm_entry("sm", "dev", "emd-sm"), http_entry("other", "dev", engine)],
                {"emd/sm/dev/api-key": KEY, "emd/other/dev/api-key": OTHER_KEY},
            )
            config = gateway_config(max_streams=3)
            async with gateway(store, config, **runtime_clients(sm)) as url:
                impatient = aiohttp.ClientTimeout(total=0.5)
                async with aiohttp.ClientSession(timeout=impatient) as s:
                    async with s.get(url + "/v1/models") as resp:  # loads the registry
                        assert resp.status == 200
                    for _ in range(3):
                        with contextlib.suppress(asyncio.TimeoutError):
                            await post(s, url + CHAT, chat_body("sm", stream=True), auth())
                try:  # another tenant, whose key was never looked up
                    async with aiohttp.ClientSession() as s:
                        status, _, _ = await asyncio.wait_for(
                            post(s, url + CHAT, chat_body("other"), auth(OTHER_KEY)), 5
                        )
                finally:
                    release.set()
                return status

    assert run(scenario()) == 200
    assert started == ["emd-sm"] * 3  # the streams did reach the endpoint


def test_a_client_that_never_reads_is_dropped_and_its_upstream_stopped() -> None:
    events: list[str] = []

    async def firehose(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        chunk = b"data: " + json.dumps({"model": "served", "x": "y" * 65_000}).encode() + b"\n\n"
        try:
            for _ in range(2000):
                await resp.write(chunk)
        except ConnectionError:
            events.append("gone")
            raise
        events.append("all sent")
        return resp

    async def scenario() -> None:
        config = gateway_config(client_write_timeout=0.5)
        async with gateway_to_engine({CHAT: firehose}, config) as url:
            body = json.dumps(chat_body("m", stream=True)).encode()
            head = (
                b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Authorization: Bearer %s\r\nContent-Length: %d\r\n" % (KEY.encode(), len(body))
            )
            host, port = url.removeprefix("http://").split(":")
            _, writer = await asyncio.open_connection(host, int(port), limit=1024)
            writer.write(head + b"\r\n" + body)  # and never read
            deadline = time.monotonic() + 15
            while not events and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            writer.close()
            assert events == ["gone"]  # before the servers stop, which would end the stream anyway

    run(scenario())


# ---------------------------------------------------------------- store outages


def test_registry_refresh_serves_the_stale_copy_while_the_store_hangs() -> None:
    async def scenario() -> tuple[int, float]:
        async with serve(engine_app({CHAT: ok_chat})) as engine:
            store = MemoryStore([http_entry("m", "dev", engine)], {"emd/m/dev/api-key": KEY})
            config = gateway_config(registry_ttl=0.2, key_cache_ttl=60)
            async with gateway(store, config) as url, aiohttp.ClientSession() as s:
                assert (await post(s, url + CHAT, chat_body("m"), auth()))[0] == 200
                store.gate = threading.Event()  # SSM black-holed: every read hangs
                await asyncio.sleep(0.3)
                try:
                    started = time.monotonic()
                    status, _, _ = await asyncio.wait_for(post(s, url + CHAT, chat_body("m"), auth()), 5)
                    return status, time.monotonic() - started
                finally:
                    store.gate.set()

    status, _ = run(scenario())
    assert status == 200


def test_key_store_down_keeps_known_keys_and_answers_unknown_ones_with_503() -> None:
    async def scenario() -> dict[str, tuple[int, dict[str, str]]]:
        async with serve(engine_app({CHAT: ok_chat})) as engine:
            store = MemoryStore(
                [http_entry("m", "dev", engine), http_entry("n", "dev", engine)],
                {"emd/m/dev/api-key": KEY, "emd/n/dev/api-key": OTHER_KEY},
            )
            config = gateway_config(key_cache_ttl=0.2, registry_ttl=60, key_max_staleness=1.5)
            out: dict[str, tuple[int, dict[str, str]]] = {}
            async with gateway(store, config) as url, aiohttp.ClientSession() as s:
                assert (await post(s, url + CHAT, chat_body("m"), auth()))[0] == 200
                store.down = True  # Secrets Manager unreachable
                await asyncio.sleep(0.3)  # past the key TTL
                for name, model, key in (("known", "m", KEY), ("never seen", "n", OTHER_KEY),
                                         ("wrong", "m", "sk-wrong")):  # fmt: skip
                    status, headers, _ = await post(s, url + CHAT, chat_body(model), auth(key))
                    out[name] = (status, headers)
                await asyncio.sleep(1.5)  # past the bounded staleness
                status, headers, _ = await post(s, url + CHAT, chat_body("m"), auth())
                out["too stale"] = (status, headers)
            return out

    with LogCapture() as logs:
        out = run(scenario())
    assert out["known"][0] == 200
    for case in ("never seen", "wrong", "too stale"):
        assert out[case][0] == 503, case
        assert "Retry-After" in out[case][1]
    assert "last known" in logs.text


# ---------------------------------------------------------------- timeouts


def test_half_sent_body_times_out_with_408() -> None:
    store = MemoryStore([])

    async def scenario() -> tuple[bytes, float]:
        async with gateway(store, gateway_config(body_timeout=0.5)) as url:
            head = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n"
            started = time.monotonic()
            answer = await raw_request(url, head, b'{"model": "m"', read_timeout=10)
            return answer, time.monotonic() - started

    answer, _ = run(scenario())
    assert answer.startswith(b"HTTP/1.1 408"), answer[:100]


def test_client_leaving_while_the_backend_is_silent_stops_the_upstream() -> None:
    events: list[str] = []

    async def silent(request: web.Request) -> web.Response:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            events.append("upstream closed")
            raise
        events.append("answered")
        return web.json_response(COMPLETION)

    async def scenario() -> None:
        async with gateway_to_engine({CHAT: silent}, engine_production=True) as url:
            timeout = aiohttp.ClientTimeout(total=0.5)
            async with aiohttp.ClientSession(timeout=timeout) as s:
                with pytest.raises(asyncio.TimeoutError):
                    await post(s, url + CHAT, chat_body("m"), auth())
            deadline = time.monotonic() + 10
            while not events and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert events == ["upstream closed"]  # before the servers stop, which would close it anyway

    run(scenario())


# ---------------------------------------------------------------- errors without internals


ARN = "arn:aws:sagemaker:us-east-1:123456789012:endpoint/emd-secret-endpoint"


def failing_runtime(answer: Callable[[], web.Response]) -> web.Application:
    """A SageMaker-runtime stand-in answering every InvokeEndpoint with answer()."""

    async def invoke(request: web.Request) -> web.Response:
        await request.read()
        return answer()

    app = web.Application(middlewares=[refuse_unsigned()])
    app.router.add_post("/endpoints/{name}/invocations", invoke)
    return app


@pytest.mark.parametrize(
    "status, code, message, fields, expected",
    [
        (400, "AccessDeniedException", f"User: arn:aws:sts::123456789012:assumed-role/x is not authorized to "
         f"perform: sagemaker:InvokeEndpoint on resource: {ARN}", {}, 502),
        (400, "ValidationError", "Endpoint emd-secret-endpoint of account 123456789012 not found.", {}, 503),
        (424, "ModelError", f"Received server error (500) from primary container of {ARN}",
         {"OriginalStatusCode": 500, "LogStreamArn": ARN,
          "OriginalMessage": '{"error": "Traceback: /opt/conda/lib/python3.10/vllm/x.py"}'}, 502),
        (400, "ThrottlingException", f"Rate exceeded for {ARN}", {}, 429),
    ],
)  # fmt: skip
def test_aws_error_text_never_reaches_the_client(
    status: int, code: str, message: str, fields: dict[str, Any], expected: int
) -> None:
    """SageMaker's HTTP error answers (AWS JSON body, x-amzn-ErrorType) map by their code; their text, which
    names the account, ARNs and endpoints, stays in the gateway's log."""
    store = MemoryStore([sm_entry("sm", "dev", "emd-secret-endpoint")], {"emd/sm/dev/api-key": KEY})

    async def scenario() -> tuple[int, bytes, str]:
        config = gateway_config(cold_start_wait=0)
        runtime = failing_runtime(lambda: aws_error_response(status, code, message, **fields))
        with LogCapture() as logs:
            async with (
                serve(runtime) as sm,
                gateway(store, config, **runtime_clients(sm)) as url,
                aiohttp.ClientSession() as s,
            ):
                got, _, data = await post(s, url + CHAT, chat_body("sm"), auth())
        return got, data, logs.text

    got, data, log = run(scenario())
    assert got == expected
    body = json.loads(data)
    assert set(body["error"]) >= {"message", "type", "code"}
    for secret in (b"123456789012", b"emd-secret-endpoint", b"arn:", b"/opt/conda"):
        assert secret not in data
    assert code in log or code == "ModelError"  # the operator reads what AWS said


def test_engine_4xx_keep_their_status_and_5xx_become_502_without_internals() -> None:
    async def bad_request(request: web.Request) -> web.Response:
        return web.json_response(
            {"object": "error", "message": "max_tokens must be at least 1", "type": "BadRequestError",
             "param": "max_tokens", "code": 400}, status=400)  # fmt: skip

    async def unprocessable(request: web.Request) -> web.Response:
        return web.json_response(
            {"detail": [{"loc": ["body", "messages"], "msg": "Field required", "type": "missing"}]},
            status=422,
        )

    async def crash(request: web.Request) -> web.Response:
        return web.Response(
            status=500, text='Traceback:\n  File "/usr/lib/python3/dist-packages/llama_cpp/server.py", line 9'
        )

    routes = {"/v1/chat/completions": bad_request, "/v1/completions": unprocessable, "/v1/embeddings": crash}

    async def scenario() -> dict[str, tuple[int, dict[str, Any]]]:
        async with gateway_to_engine(routes) as url, aiohttp.ClientSession() as s:
            out = {}
            for path in routes:
                status, _, data = await post(s, url + path, {"model": "m", "prompt": "x"}, auth())
                out[path] = (status, json.loads(data))
            return out

    out = run(scenario())
    status, body = out["/v1/chat/completions"]
    assert status == 400 and body["error"]["message"] == "max_tokens must be at least 1"
    assert body["error"]["type"] == "invalid_request_error" and body["error"]["param"] == "max_tokens"
    status, body = out["/v1/completions"]
    assert (
        status == 422
        and "messages" in body["error"]["message"]
        and "Field required" in body["error"]["message"]
    )
    status, body = out["/v1/embeddings"]
    assert status == 502 and body["error"]["type"] == "server_error"
    assert "llama_cpp" not in json.dumps(body) and "Traceback" not in json.dumps(body)


# ---------------------------------------------------------------- the access log


def sse(*events: bytes) -> bytes:
    return b"".join(b"data: " + e + b"\n\n" for e in events)


def test_access_log_remote_request_id_bytes_and_stream_outcomes() -> None:
    async def broken_stream(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(sse(b'{"model":"served","choices":[]}'))
        return resp  # ends without [DONE]: the engine died

    async def finished_late(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(sse(b'{"model":"served","choices":[]}', b"[DONE]"))
        await asyncio.sleep(0.5)  # the client has everything and hangs up before the stream ends
        with contextlib.suppress(ConnectionError):  # the gateway closed this stream when its client left
            await resp.write_eof()
        return resp

    routes = {CHAT: ok_chat, "/v1/completions": broken_stream, "/v1/embeddings": finished_late}

    sizes: list[int] = []

    async def scenario(trusted: tuple[str, ...]) -> None:
        config = gateway_config(trusted_proxies=trusted)
        async with gateway_to_engine(routes, config) as url, aiohttp.ClientSession() as s:
            xff = {"X-Forwarded-For": "198.51.100.9, 203.0.113.7"}
            status, headers, data = await post(
                s, url + CHAT, chat_body("m"), {**auth(), **xff, "X-Request-Id": "req-42.ok:1"}
            )
            assert status == 200 and headers["X-Request-Id"] == "req-42.ok:1"
            sizes.append(len(data))
            bad_id = "x" * 200
            status, headers, _ = await post(s, url + CHAT, chat_body("m"), {**auth(), "X-Request-Id": bad_id})
            assert headers["X-Request-Id"] != bad_id and len(headers["X-Request-Id"]) <= 128
            await post(s, url + "/v1/completions", {"model": "m", "prompt": "x", "stream": True}, auth())
            async with s.post(url + "/v1/embeddings", json={"model": "m", "input": "x", "stream": True},
                              headers=auth()) as resp:  # fmt: skip
                seen = b""
                while b"[DONE]" not in seen:
                    seen += await resp.content.readany()
                resp.close()  # hang up before the end of the stream
            await asyncio.sleep(1.0)

    with LogCapture() as logs:
        run(scenario(trusted=("127.0.0.0/8",)))
    records = logs.access_records()
    chat = [r for r in records if r["path"] == CHAT]
    assert chat[0]["remote"] == "203.0.113.7"  # the nearest address the trusted proxy saw
    assert chat[0]["request_id"] == "req-42.ok:1" and chat[1]["request_id"] != "x" * 200
    assert chat[0]["bytes_out"] == sizes[0]
    (broken,) = [r for r in records if r["path"] == "/v1/completions"]
    assert broken["status"] == 502 and broken["outcome"] == "upstream_failed"
    (closed,) = [r for r in records if r["path"] == "/v1/embeddings"]
    assert closed["status"] == 200 and closed.get("Requests") == 1 and closed["bytes_out"] > 0
    assert "Traceback" not in logs.text and "unhandled" not in logs.text

    with LogCapture() as logs:  # no trusted proxy: X-Forwarded-For is the client's own claim
        run(scenario(trusted=()))
    chat = [r for r in logs.access_records() if r["path"] == CHAT]
    assert chat[0]["remote"] == "127.0.0.1"
