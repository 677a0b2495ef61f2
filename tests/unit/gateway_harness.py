"""An in-process gateway for unit tests: an in-memory deployment store, real aiohttp servers on 127.0.0.1 (the
gateway as production serves it, and small fake engines), and a log capture."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import threading
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from model_specs.registry import RegistryEntry
from serving.gateway.app import create_app
from serving.gateway.config import GatewayConfig
from serving.gateway.stores import KeyUnavailable
from tests.entries import http_entry
from tests.support.servers import free_port

KEY = "sk-unit-0123456789abcdef"
OTHER_KEY = "sk-other-fedcba9876543210"

BASE_CONFIG = GatewayConfig(store="aws", region="us-east-1", key_cache_ttl=30.0, registry_ttl=30.0)


def gateway_config(**overrides: Any) -> GatewayConfig:
    return replace(BASE_CONFIG, **overrides)


class MemoryStore:
    """A DeploymentStore in memory. `down` makes every read fail as an unreachable AWS would; `gate`, when
    set, makes reads block until it is set (a black-holed API)."""

    def __init__(self, entries: list[RegistryEntry], keys: dict[str, str] | None = None) -> None:
        self.entries = {e.route: e for e in entries}
        self.digests = {name: hashlib.sha256(key.encode()).digest() for name, key in (keys or {}).items()}
        self.down = False
        self.gate: threading.Event | None = None
        self.calls: Counter[str] = Counter()

    def _io(self, what: str) -> None:
        self.calls[what] += 1
        if self.gate is not None:
            self.gate.wait(30)
        if self.down:
            raise KeyUnavailable(f"{what}: EndpointConnectionError") if what != "entries" else OSError(what)

    def add(self, entry: RegistryEntry, key: str | None = None) -> None:
        self.entries[entry.route] = entry
        if key is not None and entry.api_key_secret_name:
            self.digests[entry.api_key_secret_name] = hashlib.sha256(key.encode()).digest()

    def load_entries(self) -> dict[str, RegistryEntry]:
        self._io("entries")
        return dict(self.entries)

    def key_digest(self, secret_name: str) -> bytes | None:
        self._io("key")
        return self.digests.get(secret_name)


@asynccontextmanager
async def serve(app: web.Application, *, production: bool = False) -> AsyncIterator[str]:
    """app on 127.0.0.1; production=True serves it as the gateway and adapter processes do."""
    if production:
        from serving.common.http_server import make_runner

        runner = make_runner(app, shutdown_timeout=1)
    else:
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def gateway(
    store: MemoryStore, config: GatewayConfig | None = None, **clients: Any
) -> AsyncIterator[str]:
    app = create_app(config or BASE_CONFIG, store=store, **clients)
    async with serve(app, production=True) as url:
        yield url


@asynccontextmanager
async def gateway_to_engine(
    routes: dict[str, Callable[[web.Request], Any]],
    config: GatewayConfig | None = None,
    *,
    engine_production: bool = False,
) -> AsyncIterator[str]:
    """A gateway whose one deployment, m/dev (key KEY), is a fake engine serving routes."""
    async with serve(engine_app(routes), production=engine_production) as engine:
        store = MemoryStore([http_entry("m", "dev", engine)], {"emd/m/dev/api-key": KEY})
        async with gateway(store, config) as url:
            yield url


def runtime_clients(url: str, credentials: Any = None, region: str = "us-east-1") -> dict[str, Any]:
    """create_app's sagemaker_runtime and credentials for a SageMaker-runtime stand-in at url: a boto3 client
    and the tests' fake credentials (or the given botocore credentials)."""
    import boto3

    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=region
    )
    client = session.client("sagemaker-runtime", endpoint_url=url)
    return {"sagemaker_runtime": client, "credentials": credentials or session.get_credentials()}


def engine_app(routes: dict[str, Callable[[web.Request], Any]]) -> web.Application:
    """A fake engine: POST handlers by path."""
    app = web.Application()
    for path, handler in routes.items():
        app.router.add_route("*", path, handler)
    return app


def chat_body(model: str, stream: bool = False, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": stream, **extra}


def auth(key: str = KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def post(
    session: aiohttp.ClientSession, url: str, body: Any, headers: dict[str, str] | None = None
) -> tuple[int, CIMultiDict[str], bytes]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    hdrs = {"Content-Type": "application/json", **(headers or {})}
    async with session.post(url, data=data, headers=hdrs) as resp:
        return resp.status, CIMultiDict(resp.headers), await resp.read()


class LogCapture(logging.Handler):
    """Every formatted record (with tracebacks) of the emd.* and aiohttp.* loggers while installed."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def __enter__(self) -> LogCapture:
        for name in ("emd", "aiohttp"):
            logger = logging.getLogger(name)
            logger.addHandler(self)
            logger.setLevel(logging.DEBUG)
        return self

    def __exit__(self, *exc: object) -> None:
        for name in ("emd", "aiohttp"):
            logging.getLogger(name).removeHandler(self)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def access_records(self) -> list[dict[str, Any]]:
        out = []
        for line in self.lines:
            if line.startswith("emd.gateway.access INFO {"):
                out.append(json.loads(line.split(" ", 2)[2]))
        return out


def run(coro: Any) -> Any:
    return asyncio.run(coro)
