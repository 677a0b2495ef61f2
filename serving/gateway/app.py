"""The gateway's aiohttp application: OpenAI routes, auth, routing, access logs."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import web

from model_specs.registry import RegistryEntry
from serving.common.openai_format import error_response
from serving.gateway.async_backend import SageMakerAsyncBackend
from serving.gateway.auth import KeyStore, bearer_token
from serving.gateway.backends import HttpBackend, SageMakerBackend
from serving.gateway.config import GatewayConfig
from serving.gateway.metrics import access_record
from serving.gateway.registry import Registry, RegistryUnavailable
from serving.gateway.stores import DeploymentStore

access_log = logging.getLogger("emd.gateway.access")

POST_ROUTES = (
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/embeddings",
    "/v1/rerank",
    "/v1/audio/transcriptions",
)
_MULTIPART_MODEL = re.compile(rb'name="model"\r\n(?:[^\r\n]+\r\n)*\r\n([^\r\n]*)\r\n')

CONFIG: web.AppKey[GatewayConfig] = web.AppKey("config", GatewayConfig)
REGISTRY: web.AppKey[Registry] = web.AppKey("registry", Registry)
KEYS: web.AppKey[KeyStore] = web.AppKey("keys", KeyStore)
HTTP: web.AppKey[HttpBackend] = web.AppKey("http", HttpBackend)
SAGEMAKER: web.AppKey[SageMakerBackend] = web.AppKey("sagemaker", SageMakerBackend)
SAGEMAKER_ASYNC: web.AppKey[SageMakerAsyncBackend] = web.AppKey("sagemaker_async", SageMakerAsyncBackend)


def _model_of(body: bytes, content_type: str) -> tuple[str | None, dict[str, Any] | None]:
    """The requested model and, for JSON bodies, the parsed body."""
    if content_type.startswith("multipart/"):
        m = _MULTIPART_MODEL.search(body)
        return (m.group(1).decode(errors="replace").strip() if m else None), None
    try:
        parsed = json.loads(body)
    except ValueError:
        return None, None
    if not isinstance(parsed, dict):
        return None, None
    model = parsed.get("model")
    return (model if isinstance(model, str) else None), parsed


async def _allowed_routes(request: web.Request, token: str | None) -> list[str]:
    entries = await request.app[REGISTRY].entries()
    keys = request.app[KEYS]
    items = sorted(entries.items())
    verdicts = await asyncio.gather(*(keys.allowed(e, token) for _, e in items))
    return [route for (route, _), ok in zip(items, verdicts, strict=True) if ok]


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def list_models(request: web.Request) -> web.Response:
    token = bearer_token(request.headers.get("Authorization"))
    entries = await request.app[REGISTRY].entries()
    routes = await _allowed_routes(request, token)
    if token is not None and not routes:
        # a key that opens nothing, and no public deployment to show: as OpenAI answers a wrong key
        return error_response("Incorrect API key provided.", 401, "invalid_api_key")
    data = [
        {
            "id": route,
            "object": "model",
            "created": 0,
            "owned_by": "emd",
            "model_type": entries[route].model_type,
        }
        for route in routes
    ]
    return web.json_response({"object": "list", "data": data})


async def _read_body(request: web.Request) -> bytes | web.Response:
    limit = request.app[CONFIG].max_body_bytes
    too_large = error_response(
        f"request body exceeds the gateway limit of {limit} bytes", 413, "request_too_large"
    )
    if request.content_length is not None and request.content_length > limit:
        return too_large
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        return too_large


async def invoke(request: web.Request) -> web.StreamResponse:
    body = await _read_body(request)
    if isinstance(body, web.Response):
        return body
    content_type = request.headers.get("Content-Type", "application/json")
    model, parsed = _model_of(body, content_type)
    if not model:
        return error_response(
            "you must provide a model parameter ('<model-id>/<tag>', or '<model-id>' for tag dev)",
            400,
            "missing_model",
            "model",
        )
    request["emd_model"] = model[:200]
    token = bearer_token(request.headers.get("Authorization"))
    entry = await request.app[REGISTRY].lookup(model)
    if entry is None:
        routes = await _allowed_routes(request, token)
        listing = ", ".join(routes) if routes else "none that this API key may use"
        return error_response(
            f"The model '{model}' does not exist. Available models: {listing}",
            404,
            "model_not_found",
            "model",
        )
    request["emd_model"] = entry.route
    if not await request.app[KEYS].allowed(entry, token):
        if token is None:
            msg = "You didn't provide an API key. Send it as 'Authorization: Bearer <key>'."
        else:
            msg = f"Incorrect API key provided for {entry.route}."
        return error_response(msg, 401, "invalid_api_key", headers={"WWW-Authenticate": "Bearer"})
    stream = False
    if parsed is not None:
        stream = parsed.get("stream") is True
        if parsed.get("model") != entry.model_id:
            parsed["model"] = entry.model_id  # engines serve the model under its id (served model name)
            body = json.dumps(parsed, separators=(",", ":")).encode()
    request["emd_backend"] = entry.backend
    request["emd_stream"] = stream
    return await _dispatch(request, entry, body, stream)


async def _dispatch(
    request: web.Request, entry: RegistryEntry, body: bytes, stream: bool
) -> web.StreamResponse:
    if entry.backend == "http":
        if not entry.base_url:
            return error_response(f"{entry.route} has no base_url in the registry", 502, "bad_registry_entry")
        return await request.app[HTTP].forward(request, entry, request.path, body, stream)
    if not request.app[CONFIG].aws:
        return error_response(
            f"{entry.route} is a SageMaker deployment, and this gateway runs without AWS access",
            502,
            "bad_registry_entry",
        )
    if entry.backend == "sagemaker":
        if not entry.endpoint_name:
            return error_response(
                f"{entry.route} has no endpoint_name in the registry", 502, "bad_registry_entry"
            )
        return await request.app[SAGEMAKER].forward(request, entry, request.path, body, stream)
    return await request.app[SAGEMAKER_ASYNC].forward(request, entry, request.path, body, stream)


async def not_found(request: web.Request) -> web.Response:
    return error_response(f"Unknown route {request.method} {request.path}", 404, "unknown_route")


@web.middleware
async def access_log_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """One JSON line per request. Never logs keys, prompts or bodies."""
    start = time.perf_counter()
    request_id = request.headers.get("X-Request-Id") or uuid.uuid4().hex
    status = 500
    try:
        resp = await handler(request)
        status = resp.status
        if not resp.prepared:
            resp.headers["X-Request-Id"] = request_id
        return resp
    except web.HTTPException as exc:
        status = exc.status
        raise
    except RegistryUnavailable:
        access_log.exception("deployment registry unavailable")
        status = 503
        return error_response(
            "the deployment registry is unavailable; retry shortly", 503, "registry_unavailable"
        )
    except Exception:
        access_log.exception("unhandled error")
        return error_response("internal gateway error", 500, "internal_error")
    finally:
        if request.path != "/health":  # load balancer probes every few seconds: not worth a line each
            record = {
                "request_id": request_id,
                "method": request.method,
                "path": request.path,
                "status": status,
                "model": request.get("emd_model"),
                "backend": request.get("emd_backend"),
                "stream": request.get("emd_stream"),
                "bytes_in": request.content_length,
                "bytes_out": request.get("emd_bytes_out"),
                "duration_ms": round((time.perf_counter() - start) * 1000, 2),
                "remote": request.headers.get("X-Forwarded-For", request.remote),
            }
            routed_to = request.get("emd_model") if request.get("emd_backend") else None
            access_log.info(access_record(record, routed_to))


def create_app(
    config: GatewayConfig,
    *,
    store: DeploymentStore,
    sagemaker_runtime: Any = None,
    s3: Any = None,
) -> web.Application:
    """sagemaker_runtime/s3: boto3 clients, or None for a gateway without AWS (the local target), which then
    refuses SageMaker routes."""
    app = web.Application(middlewares=[access_log_middleware], client_max_size=config.max_body_bytes)
    executor = ThreadPoolExecutor(max_workers=config.max_streams, thread_name_prefix="emd-aws")

    async def run_blocking(fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(executor, fn, *args)

    app[CONFIG] = config
    app[REGISTRY] = Registry(store.load_entries, config.registry_ttl, run_blocking)
    app[KEYS] = KeyStore(store.key_digest, config.key_cache_ttl, run_blocking)
    app[HTTP] = HttpBackend(config.connect_timeout, config.read_timeout)
    app[SAGEMAKER] = SageMakerBackend(sagemaker_runtime, executor)
    app[SAGEMAKER_ASYNC] = SageMakerAsyncBackend(sagemaker_runtime, s3, executor, config.async_wait_seconds)

    async def lifecycle(app: web.Application) -> Any:
        await app[HTTP].start()
        yield
        await app[HTTP].close()
        executor.shutdown(wait=False, cancel_futures=True)

    app.cleanup_ctx.append(lifecycle)
    app.router.add_get("/health", health)
    app.router.add_get("/v1/models", list_models)
    for path in POST_ROUTES:
        app.router.add_post(path, invoke)
    app.router.add_route("*", "/{tail:.*}", not_found)
    return app
