"""The adapter's aiohttp application and the engine process it supervises."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import time
from typing import Any

import aiohttp
from aiohttp import web

from serving.common.json_body import InvalidJson, parse_json
from serving.common.openai_format import TIMEOUT_ERRORS, error_response
from serving.common.sse_relay import relay_response
from serving.engine import compat_relay
from serving.engine.command import EngineLaunch
from serving.engine.routing import (
    CUSTOM_ATTRIBUTES,
    passthrough_path,
    route_from_attributes,
    route_from_body,
    tei_rerank_request,
    tei_rerank_response,
)
from serving.engine.settings import AdapterSettings

log = logging.getLogger("emd.engine")

MAX_BODY_BYTES = 64 * 1024 * 1024
_PASS_HEADERS = ("Content-Type", "Accept")


class Engine:
    """The engine process: started in its own process group, polled until healthy, stopped on shutdown."""

    def __init__(self, settings: AdapterSettings, launch: EngineLaunch) -> None:
        self.settings = settings
        self.launch = launch
        self.base = f"http://127.0.0.1:{settings.engine_port}"
        self.proc: asyncio.subprocess.Process | None = None
        self.ready = False
        self.failed = False
        self.stopping = False
        self._tasks: list[asyncio.Task[Any]] = []

    def engine_env(self) -> dict[str, str]:
        """The container's environment, with the image's own PYTHONPATH (the entrypoint swapped in the
        adapter's) and the engine-specific additions."""
        env = {**os.environ, **self.launch.env}
        if "EMD_ENGINE_PYTHONPATH" in env:
            original = env.pop("EMD_ENGINE_PYTHONPATH")
            if original:
                env["PYTHONPATH"] = original
            else:
                env.pop("PYTHONPATH", None)
        return env

    async def start(self, session: aiohttp.ClientSession) -> None:
        log.info("starting engine: %s", " ".join(self.launch.command))
        self.proc = await asyncio.create_subprocess_exec(
            *self.launch.command, env=self.engine_env(), start_new_session=True
        )
        self._tasks = [
            asyncio.create_task(self._become_ready(session)),
            asyncio.create_task(self._watch_exit()),
        ]

    async def _become_ready(self, session: aiohttp.ClientSession) -> None:
        deadline = time.monotonic() + self.settings.ready_timeout
        url = self.base + self.launch.health_path
        timeout = aiohttp.ClientTimeout(total=5)
        while time.monotonic() < deadline:
            try:
                async with session.get(url, timeout=timeout) as resp:
                    if resp.status == 200:
                        break
            except (aiohttp.ClientError, *TIMEOUT_ERRORS):
                pass
            await asyncio.sleep(0.2)
        else:
            log.error("engine not ready after %.0f s", self.settings.ready_timeout)
            self._fail()
            return
        for cmd in self.launch.after_ready:
            step = await asyncio.create_subprocess_exec(*cmd, env=self.engine_env())
            if await step.wait() != 0:
                log.error("engine setup step failed: %s", cmd[0])
                self._fail()
                return
        self.ready = True
        log.info("engine ready")

    async def _watch_exit(self) -> None:
        assert self.proc is not None
        code = await self.proc.wait()
        if not self.stopping:
            log.error("engine exited with code %s", code)
            self._fail()

    def _fail(self) -> None:
        """The container cannot serve: exit non-zero so SageMaker/ECS replace it."""
        self.ready = False
        self.failed = True
        os.kill(os.getpid(), signal.SIGTERM)

    async def stop(self) -> None:
        self.stopping = True
        self.ready = False
        for task in self._tasks:
            task.cancel()
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), self.settings.engine_stop_seconds)
        except ProcessLookupError:
            return
        except TIMEOUT_ERRORS:
            log.warning("engine ignored SIGTERM for %.0f s; killing it", self.settings.engine_stop_seconds)
            os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()


ENGINE: web.AppKey[Engine] = web.AppKey("engine", Engine)
SESSION: web.AppKey[aiohttp.ClientSession] = web.AppKey("session", aiohttp.ClientSession)
STATE: web.AppKey[dict[str, Any]] = web.AppKey("state", dict)


async def ping(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    if engine.ready and not request.app[STATE]["draining"]:
        return web.json_response({"status": "ready"})
    return web.json_response({"status": "failed" if engine.failed else "starting"}, status=503)


def _not_ready(request: web.Request) -> web.Response | None:
    if request.app[ENGINE].ready:
        return None
    return error_response(
        "the engine is still starting", 503, "engine_not_ready", headers={"Retry-After": "5"}
    )


async def _proxy(request: web.Request, path: str, body: bytes) -> web.StreamResponse:
    session = request.app[SESSION]
    headers = {h: request.headers[h] for h in _PASS_HEADERS if h in request.headers}
    url = request.app[ENGINE].base + path
    try:
        upstream = await session.request(request.method, url, data=body or None, headers=headers)
    except TIMEOUT_ERRORS:
        return error_response("the engine did not answer in time", 504, "engine_timeout")
    except aiohttp.ClientError:
        return error_response("the engine is unavailable", 502, "engine_unavailable")
    return await relay_response(
        request, upstream, "the engine", "the engine failed mid-response", "engine_failed"
    )


async def _native_rerank(request: web.Request, body: dict[str, Any]) -> web.Response:
    engine = request.app[ENGINE]
    assert engine.launch.native_rerank_path
    url = engine.base + engine.launch.native_rerank_path
    try:
        async with request.app[SESSION].post(url, json=tei_rerank_request(body)) as up:
            data = await up.json(content_type=None)
            if up.status != 200:
                return web.json_response(data, status=up.status)
    except (aiohttp.ClientError, ValueError, *TIMEOUT_ERRORS):
        return error_response("the engine failed to rerank", 502, "engine_failed")
    return web.json_response(tei_rerank_response(data, body, engine.settings.served_model_name))


async def _forward(request: web.Request, path: str | None) -> web.StreamResponse:
    refused = _not_ready(request)
    if refused:
        return refused
    body = await request.read()
    content_type = request.headers.get("Content-Type", "application/json")
    parsed: Any = None
    if not content_type.startswith("multipart/") and body:
        try:
            parsed = parse_json(body)
        except InvalidJson as exc:
            return error_response(str(exc), 400, "invalid_json")
    path = path or route_from_body(content_type, parsed)
    if path is None:
        return error_response(
            "cannot tell which API this body is for: send 'messages' (chat), 'prompt' (completions), "
            "'input' (embeddings), 'query'+'documents' (rerank), or CustomAttributes route=/v1/...",
            400,
            "unknown_route",
        )
    engine = request.app[ENGINE]
    if isinstance(parsed, dict) and parsed.get("model") != engine.settings.served_model_name:
        parsed["model"] = engine.settings.served_model_name
        body = json.dumps(parsed, separators=(",", ":")).encode()
    if path == "/v1/rerank" and engine.launch.native_rerank_path and isinstance(parsed, dict):
        return await _native_rerank(request, parsed)
    if compat_relay.bridges(engine.launch.api_dialect, path):
        return await compat_relay.serve(request, request.app[SESSION], engine.base, path, parsed)
    return await _proxy(request, path, body)


async def invocations(request: web.Request) -> web.StreamResponse:
    return await _forward(request, route_from_attributes(request.headers.get(CUSTOM_ATTRIBUTES)))


async def openai_passthrough(request: web.Request) -> web.StreamResponse:
    path = passthrough_path(request.method, request.raw_path)
    if path is None:  # only the OpenAI routes: never the engine's other pages (/docs, /metrics, ...)
        return error_response(f"Unknown route {request.method} {request.path[:200]}", 404, "unknown_route")
    if request.method == "POST":
        return await _forward(request, path)
    refused = _not_ready(request)
    return refused or await _proxy(request, path, b"")


def create_app(settings: AdapterSettings, launch: EngineLaunch | None = None) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    engine = Engine(settings, launch or settings.launch())
    app[ENGINE] = engine
    app[STATE] = {"draining": False}

    async def lifecycle(app: web.Application) -> Any:
        # no total timeout: a long generation is not cut; a silent engine is, after 10 minutes
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=600)
        session = aiohttp.ClientSession(
            timeout=timeout, connector=aiohttp.TCPConnector(limit=0), auto_decompress=False
        )
        app[SESSION] = session
        await engine.start(session)
        yield
        # runs after in-flight requests finished (or the drain deadline passed)
        await engine.stop()
        await session.close()

    async def on_shutdown(app: web.Application) -> None:
        app[STATE]["draining"] = True
        log.info("draining: no new connections, finishing in-flight requests")

    app.cleanup_ctx.append(lifecycle)
    app.on_shutdown.append(on_shutdown)
    app.router.add_get("/ping", ping)
    app.router.add_post("/invocations", invocations)
    app.router.add_route("*", "/v1/{tail:.*}", openai_passthrough)
    return app
