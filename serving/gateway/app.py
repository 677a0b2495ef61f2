"""The gateway's aiohttp application: OpenAI routes, auth, routing, the limit on upstream requests.

Engines and SageMaker real-time endpoints are called on the event loop (aiohttp, one connection pool each).
Two thread pools for boto3's blocking calls: the control plane (registry and key look-ups, credential
refreshes, a few threads) and SageMaker async inference (its S3 and InvokeEndpointAsync calls), so requests
never delay another tenant's key check. At most EMD_MAX_STREAMS requests are upstream at once (every backend);
past that a request gets 503 with Retry-After at once.
"""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import web

from model_specs.registry import RegistryEntry
from serving.common.openai_format import error_response
from serving.common.request_state import BACKEND, MODEL, STREAM
from serving.common.sse_relay import StreamOut
from serving.gateway.access import access_log_middleware, networks, set_request_id_header
from serving.gateway.async_backend import SageMakerAsyncBackend
from serving.gateway.auth import InvalidAuthorization, KeyStore, Verdict, bearer_token
from serving.gateway.backends import HttpBackend
from serving.gateway.cold_start import ColdStart
from serving.gateway.config import GatewayConfig
from serving.gateway.metrics import record_no_capacity
from serving.gateway.registry import Registry
from serving.gateway.request_body import BodyRefused, read_body, requested_model
from serving.gateway.runtime_client import RuntimeClient
from serving.gateway.sagemaker import SageMakerBackend
from serving.gateway.stores import DeploymentStore

POST_ROUTES = (
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/embeddings",
    "/v1/rerank",
    "/v1/audio/transcriptions",
)
CONTROL_PLANE_THREADS = 8
RETRY_BUSY = "1"
RETRY_KEYS_UNAVAILABLE = "5"


class UpstreamLimit:
    """Requests upstream right now, against EMD_MAX_STREAMS."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0

    def acquire(self) -> bool:
        if self.active >= self.limit:
            return False
        self.active += 1
        return True

    def release(self) -> None:
        self.active -= 1


CONFIG: web.AppKey[GatewayConfig] = web.AppKey("config", GatewayConfig)
REGISTRY: web.AppKey[Registry] = web.AppKey("registry", Registry)
KEYS: web.AppKey[KeyStore] = web.AppKey("keys", KeyStore)
LIMIT: web.AppKey[UpstreamLimit] = web.AppKey("limit", UpstreamLimit)
HTTP: web.AppKey[HttpBackend] = web.AppKey("http", HttpBackend)
SAGEMAKER: web.AppKey[SageMakerBackend] = web.AppKey("sagemaker", SageMakerBackend)
SAGEMAKER_ASYNC: web.AppKey[SageMakerAsyncBackend] = web.AppKey("sagemaker_async", SageMakerAsyncBackend)


def _invalid_authorization(exc: InvalidAuthorization) -> web.Response:
    return error_response(str(exc), 400, "invalid_authorization")


def _wrong_key() -> web.Response:
    return error_response(
        "Incorrect API key provided.", 401, "invalid_api_key", headers={"WWW-Authenticate": "Bearer"}
    )


def _keys_unavailable() -> web.Response:
    return error_response(
        "API keys cannot be checked right now; retry shortly",
        503,
        "key_store_unavailable",
        headers={"Retry-After": RETRY_KEYS_UNAVAILABLE},
    )


def _model_object(entry: RegistryEntry) -> dict[str, Any]:
    return {
        "id": entry.route,
        "object": "model",
        "created": 0,
        "owned_by": "emd",
        "model_type": entry.model_type,
    }


async def _verdicts(request: web.Request, token: str | None) -> list[tuple[RegistryEntry, Verdict]]:
    entries = sorted((await request.app[REGISTRY].entries()).items())
    keys = request.app[KEYS]
    verdicts = await asyncio.gather(*(keys.check(e, token) for _, e in entries))
    return [(e, v) for (_, e), v in zip(entries, verdicts, strict=True)]


def _refuse_key(verdicts: list[tuple[RegistryEntry, Verdict]]) -> web.Response | None:
    """For a presented key: the 401 when it opens no private deployment (503 when that cannot be told)."""
    private = [v for e, v in verdicts if not e.public]
    if Verdict.ALLOWED in private:
        return None
    return _keys_unavailable() if Verdict.UNAVAILABLE in private else _wrong_key()


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def list_models(request: web.Request) -> web.Response:
    try:
        token = bearer_token(request.headers.get("Authorization"))
    except InvalidAuthorization as exc:
        return _invalid_authorization(exc)
    verdicts = await _verdicts(request, token)
    if token is not None and (refused := _refuse_key(verdicts)) is not None:
        return refused  # a wrong key is refused as OpenAI refuses it, public deployments or not
    data = [_model_object(e) for e, v in verdicts if v is Verdict.ALLOWED]
    return web.json_response({"object": "list", "data": data})


async def retrieve_model(request: web.Request) -> web.Response:
    try:
        token = bearer_token(request.headers.get("Authorization"))
    except InvalidAuthorization as exc:
        return _invalid_authorization(exc)
    model = request.match_info["model"]
    entry = await request.app[REGISTRY].lookup(model)
    verdict = await request.app[KEYS].check(entry, token) if entry is not None else Verdict.DENIED
    opens_this = entry is not None and not entry.public and verdict is Verdict.ALLOWED
    # as on /v1/models: a key that opens nothing is refused
    refused = _refuse_key(await _verdicts(request, token)) if token is not None and not opens_this else None
    if refused is not None:
        return refused
    if verdict is Verdict.UNAVAILABLE:
        return _keys_unavailable()
    if verdict is Verdict.DENIED:
        return error_response(f"The model '{model[:200]}' does not exist", 404, "model_not_found", "model")
    assert entry is not None
    return web.json_response(_model_object(entry))


async def _authorized_entry(
    request: web.Request, model: str, token: str | None
) -> RegistryEntry | web.Response:
    """The deployment model names, if token may use it; else the answer: 404 (listing what the key may use),
    401, or 503 when the key cannot be checked now."""
    entry = await request.app[REGISTRY].lookup(model)
    if entry is None:
        verdicts = await _verdicts(request, token)
        listing = ", ".join(e.route for e, v in verdicts if v is Verdict.ALLOWED)
        return error_response(
            f"The model '{model[:200]}' does not exist. Available models: "
            f"{listing or 'none that this API key may use'}",
            404,
            "model_not_found",
            "model",
        )
    verdict = await request.app[KEYS].check(entry, token)
    if verdict is Verdict.UNAVAILABLE:
        return _keys_unavailable()
    if verdict is Verdict.DENIED:
        if token is None:
            msg = "You didn't provide an API key. Send it as 'Authorization: Bearer <key>'."
        else:
            msg = f"Incorrect API key provided for {entry.route}."
        return error_response(msg, 401, "invalid_api_key", headers={"WWW-Authenticate": "Bearer"})
    return entry


async def invoke(request: web.Request) -> web.StreamResponse:
    config = request.app[CONFIG]
    try:
        body = await read_body(request, config.max_body_bytes, config.body_timeout)
        model, parsed = await requested_model(body, request.headers.get("Content-Type", "application/json"))
        token = bearer_token(request.headers.get("Authorization"))
    except BodyRefused as exc:
        return exc.answer
    except InvalidAuthorization as exc:
        return _invalid_authorization(exc)
    if not model:
        return error_response(
            "you must provide a model parameter ('<model-id>/<tag>', or '<model-id>' for tag dev)",
            400,
            "missing_model",
            "model",
        )
    request[MODEL] = model[:200]
    entry = await _authorized_entry(request, model, token)
    if isinstance(entry, web.Response):
        return entry
    request[MODEL] = entry.route
    stream = parsed is not None and parsed.get("stream") is True
    if parsed is not None and parsed.get("model") != entry.model_id:
        parsed["model"] = entry.model_id  # engines serve the model under its id (served model name)
        body = json.dumps(parsed, separators=(",", ":")).encode()
    request[BACKEND] = entry.backend
    request[STREAM] = stream
    limit = request.app[LIMIT]
    if not limit.acquire():
        return error_response(
            f"the gateway has {limit.limit} requests in flight, its limit; retry shortly",
            503,
            "gateway_busy",
            headers={"Retry-After": RETRY_BUSY},
        )
    try:
        return await _dispatch(request, entry, body, model, stream)
    finally:
        limit.release()


async def _dispatch(
    request: web.Request, entry: RegistryEntry, body: bytes, requested: str, stream: bool
) -> web.StreamResponse:
    config = request.app[CONFIG]
    out = StreamOut(request, config.client_write_timeout) if stream else None
    wait = config.stream_cold_start_wait if stream else config.cold_start_wait
    if entry.backend == "http":
        if not entry.base_url:
            return error_response(f"{entry.route} has no base_url in the registry", 502, "bad_registry_entry")
        hold = ColdStart(entry, wait, config.keepalive_seconds, out, lambda: record_no_capacity(entry.route))
        return await request.app[HTTP].forward(request, entry, body, requested, hold)
    if not config.aws or SAGEMAKER not in request.app:
        return error_response(
            f"{entry.route} is a SageMaker deployment, and this gateway runs without AWS access",
            502,
            "bad_registry_entry",
        )
    hold = ColdStart(entry, wait, config.keepalive_seconds, out)
    if entry.backend == "sagemaker":
        if not entry.endpoint_name:
            return error_response(
                f"{entry.route} has no endpoint_name in the registry", 502, "bad_registry_entry"
            )
        return await request.app[SAGEMAKER].forward(request, entry, body, requested, hold)
    return await request.app[SAGEMAKER_ASYNC].forward(request, entry, body, requested, hold)


async def not_found(request: web.Request) -> web.Response:
    return error_response(f"Unknown route {request.method} {request.path[:200]}", 404, "unknown_route")


def create_app(
    config: GatewayConfig,
    *,
    store: DeploymentStore,
    sagemaker_runtime: Any = None,
    s3: Any = None,
    credentials: Any = None,
) -> web.Application:
    """sagemaker_runtime/s3: boto3 clients, or None for a gateway without AWS (the local target), which then
    refuses SageMaker routes; credentials: their session's (botocore Credentials), which sign real-time
    calls."""
    app = web.Application(
        middlewares=[access_log_middleware(networks(config.trusted_proxies))],
        client_max_size=config.max_body_bytes,
    )
    control = ThreadPoolExecutor(max_workers=CONTROL_PLANE_THREADS, thread_name_prefix="emd-control")
    # threads start on demand: one per async request while it waits on a boto3 call
    async_calls = ThreadPoolExecutor(max_workers=config.max_streams, thread_name_prefix="emd-async")

    async def control_call(fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(control, fn, *args)

    app[CONFIG] = config
    app[REGISTRY] = Registry(
        store.load_entries, config.registry_ttl, control_call, config.registry_max_staleness
    )
    app[KEYS] = KeyStore(store.key_digest, config.key_cache_ttl, control_call, config.key_max_staleness)
    app[LIMIT] = UpstreamLimit(config.max_streams)
    app[HTTP] = HttpBackend(config.connect_timeout, config.read_timeout)
    runtime = (
        RuntimeClient(
            sagemaker_runtime,
            credentials,
            control_call,
            connect_timeout=config.connect_timeout,
            read_timeout=config.read_timeout,
            max_connections=config.max_streams,
        )
        if sagemaker_runtime is not None
        else None
    )
    if runtime is not None:
        app[SAGEMAKER] = SageMakerBackend(runtime)
    app[SAGEMAKER_ASYNC] = SageMakerAsyncBackend(
        sagemaker_runtime, s3, async_calls, config.async_wait_seconds
    )

    async def lifecycle(app: web.Application) -> Any:
        await app[HTTP].start()
        if runtime is not None:
            await runtime.start()
        yield
        await app[HTTP].close()
        if runtime is not None:
            await runtime.close()
        control.shutdown(wait=False, cancel_futures=True)
        async_calls.shutdown(wait=False, cancel_futures=True)

    app.cleanup_ctx.append(lifecycle)
    app.on_response_prepare.append(set_request_id_header)
    app.router.add_get("/health", health)
    app.router.add_get("/v1/models", list_models)
    app.router.add_get("/v1/models/{model:.+}", retrieve_model)
    for path in POST_ROUTES:
        app.router.add_post(path, invoke)
    app.router.add_route("*", "/{tail:.*}", not_found)
    return app
