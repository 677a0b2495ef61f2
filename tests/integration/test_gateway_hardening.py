"""The gateway and the engine adapter as real processes under attack and faults: a multipart body built to be
slow, malformed Authorization headers (the key must reach neither a log nor a response), inputs outside what
the adapter serves, AWS black-holed, and a SageMaker request that must reach the engine once."""

from __future__ import annotations

import asyncio
import socket
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from tests.integration.conftest import Gateway
from tests.integration.deployments import KEY_DEV, KEY_SM, MESSAGES, MODEL, client, register, sm_entry
from tests.support.servers import ServerThread, free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LEAKED_KEY = "sk-leak-5f1e0c2a9b7d4e3f"


def raw(url: str, request: bytes, timeout: float = 10) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
            if len(data) > 1_000_000:
                break
    return data


def health_seconds(url: str) -> float:
    started = time.perf_counter()
    assert httpx.get(url + "/health", timeout=120).status_code == 200
    return time.perf_counter() - started


def test_multipart_attack_does_not_delay_health(
    registered: dict[str, Any], sagemaker_runtime: str, gateway_factory: Callable[..., Gateway]
) -> None:
    """A 1 MiB body of repeated `name="model"` lines froze every route for minutes (a quadratic regex on the
    event loop). /health is timed while such bodies are sent, against its idle time in the same run."""
    gw = gateway_factory(
        sagemaker_runtime, name="gateway-multipart", EMD_MAX_BODY_BYTES=str(25 * 1024 * 1024)
    )
    idle = [health_seconds(gw.url) for _ in range(30)]
    attack = b'name="model"\r\n' * (1024 * 1024 // 14)
    statuses: list[int] = []

    def attacker() -> None:
        for _ in range(6):
            statuses.append(
                httpx.post(gw.url + "/v1/audio/transcriptions", content=attack, timeout=300,
                           headers={"Content-Type": "multipart/form-data; boundary=zz"}).status_code
            )  # fmt: skip

    threads = [threading.Thread(target=attacker) for _ in range(2)]
    for t in threads:
        t.start()
    during = []
    while any(t.is_alive() for t in threads) or len(during) < 10:
        during.append(health_seconds(gw.url))
    for t in threads:
        t.join()
    assert set(statuses) == {400}
    assert p90(during) < 20 * p90(idle), (sorted(during)[-3:], sorted(idle)[-3:])


def p90(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=10)[-1]


@pytest.fixture(scope="module")
def adapter_log(logs_dir: Path) -> Path:
    return logs_dir / "adapter.log"


MALFORMED = [
    b"GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\x01\r\n\r\n" % LEAKED_KEY.encode(),
    b"GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s%s\r\n\r\n"
    % (LEAKED_KEY.encode(), b"k" * 9000),
    b"POST /invocations HTTP/1.1\r\nHost: x\r\nX-Amzn-SageMaker-Custom-Attributes: route=%s\x01\r\n\r\n"
    % LEAKED_KEY.encode(),
]


def test_malformed_headers_never_put_the_key_in_a_log_or_a_response(
    gw: Gateway, adapter: str, adapter_log: Path
) -> None:
    for url in (gw.url, adapter):
        for request in MALFORMED:
            answer = raw(url, request)
            assert b" 400 " in answer.split(b"\r\n", 1)[0], answer[:200]
            assert LEAKED_KEY.encode() not in answer
    time.sleep(0.3)
    assert LEAKED_KEY not in gw.log.read_text()
    assert LEAKED_KEY not in adapter_log.read_text()


def nested(depth: int) -> bytes:
    return b'{"messages":' + b"[" * depth + b"]" * depth + b"}"


def test_adapter_refuses_deep_json_and_paths_outside_v1(adapter: str) -> None:
    r = httpx.post(adapter + "/invocations", content=nested(1000), timeout=30,
                   headers={"Content-Type": "application/json"})  # fmt: skip
    assert r.status_code == 400 and "nested" in r.json()["error"]["message"]
    for path in (
        b"/v1/%2e%2e/docs",
        b"/v1/../openapi.json",
        b"/v1/%2E%2E/openapi.json",
        b"/v1/models/../../docs",
    ):
        answer = raw(adapter, b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path)
        assert answer.startswith(b"HTTP/1.1 404"), (path, answer[:200])
        assert b'"code": "unknown_route"' in answer  # the adapter's refusal, not the engine's page
    assert httpx.get(adapter + "/v1/models", timeout=10).status_code == 200  # what /v1 is for still works


class SwitchableProxy:
    """A TCP proxy to moto that can black-hole traffic: connections stay open and nothing comes back, as when
    a VPC endpoint or a route to AWS silently drops packets."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.black_hole = False
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()
        self._ready.wait(10)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                if not self.black_hole:
                    writer.write(data)
                    await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._client, "127.0.0.1", self.port)
        )
        self._ready.set()
        self._loop.run_forever()


@pytest.fixture(scope="module")
def aws_proxy(aws: dict[str, Any]) -> Iterator[SwitchableProxy]:
    proxy = SwitchableProxy(int(aws["moto_url"].rsplit(":", 1)[1]))
    yield proxy
    proxy.black_hole = False


def test_aws_black_holed_keeps_serving_known_keys_and_routes(
    registered: dict[str, Any],
    sagemaker_runtime: str,
    gateway_factory: Callable[..., Gateway],
    aws_proxy: SwitchableProxy,
) -> None:
    gw = gateway_factory(
        sagemaker_runtime,
        name="gateway-blackhole",
        AWS_ENDPOINT_URL=aws_proxy.url,
        EMD_REGISTRY_TTL="0.5",
        EMD_KEY_CACHE_TTL="0.5",
        EMD_CONTROL_PLANE_TIMEOUT="0.5",
    )
    c = client(gw, KEY_DEV)
    assert c.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=1).choices
    aws_proxy.black_hole = True
    try:
        time.sleep(1.0)  # both caches are past their TTL
        for _ in range(3):  # each within the client's timeout, not the old 300 s read timeout x 4 attempts
            quick = client(gw, KEY_DEV).with_options(timeout=20)
            assert quick.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=1).choices
        never_seen = httpx.post(
            gw.url + "/v1/chat/completions", headers={"Authorization": f"Bearer {KEY_SM}"},
            json={"model": f"{MODEL}/sm", "messages": MESSAGES, "max_tokens": 1}, timeout=20,
        )  # fmt: skip
        assert never_seen.status_code == 503 and "Retry-After" in never_seen.headers
        assert httpx.get(gw.url + "/health", timeout=5).status_code == 200
    finally:
        aws_proxy.black_hole = False
    assert "last known" in gw.log.read_text()


def test_sagemaker_inference_reaches_the_engine_once_on_a_read_timeout(
    registered: dict[str, Any], gateway_factory: Callable[..., Gateway]
) -> None:
    hits: list[str] = []

    async def slow_invoke(request: web.Request) -> web.Response:
        hits.append(request.match_info["name"])
        await asyncio.sleep(3)
        return web.json_response({"choices": []})

    app = web.Application()
    app.router.add_post("/endpoints/{name}/invocations", slow_invoke)
    register(registered, sm_entry("once-model", "dev", "emd-once"), "sk-once")
    with ServerThread(app) as runtime:
        gw = gateway_factory(runtime.url, name="gateway-once", EMD_UPSTREAM_READ_TIMEOUT="0.5")
        r = httpx.post(gw.url + "/v1/chat/completions", headers={"Authorization": "Bearer sk-once"},
                       json={"model": "once-model", "messages": MESSAGES}, timeout=60)  # fmt: skip
        time.sleep(1)
    assert r.status_code == 504 and r.json()["error"]["code"] == "upstream_timeout"
    assert hits == ["emd-once"]
