"""Where a request goes once routed: an HTTP engine (ECS/EC2) or the SageMaker runtime.

Both stream without buffering: HTTP passes the engine's SSE bytes through chunk by chunk; SageMaker's
InvokeEndpointWithResponseStream yields PayloadParts holding the bytes of the adapter's SSE stream, which are
written as they arrive. A backend failure after the first byte becomes an SSE error event, then the stream
closes, so a client never hangs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from concurrent.futures import Executor
from typing import Any

import aiohttp
from aiohttp import web

from model_specs.registry import RegistryEntry
from serving.common.openai_format import SSE_CONTENT_TYPE, error_response
from serving.common.sse_relay import StreamTail, relay_response, stream_headers
from serving.gateway.metrics import record_no_capacity

log = logging.getLogger("emd.gateway.backends")

STREAM_QUEUE_DEPTH = 64
_PASS_HEADERS = ("Content-Type", "Accept")


def http_url(base_url: str, path: str) -> str:
    """base_url may be the engine root (http://h:8080) or include /v1 (http://h:8080/v1)."""
    base = base_url.rstrip("/")
    if base.endswith("/v1") and path.startswith("/v1/"):
        base = base[: -len("/v1")]
    return base + path


class HttpBackend:
    def __init__(self, connect_timeout: float, read_timeout: float) -> None:
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=connect_timeout, sock_read=read_timeout
        )
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=10, keepalive_timeout=30)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=self._timeout, auto_decompress=False
        )

    async def close(self) -> None:
        if self._session:
            await self._session.close()

    async def forward(
        self, request: web.Request, entry: RegistryEntry, path: str, body: bytes, stream: bool
    ) -> web.StreamResponse:
        assert self._session is not None and entry.base_url
        headers = {h: request.headers[h] for h in _PASS_HEADERS if h in request.headers}
        url = http_url(entry.base_url, path)
        try:
            upstream = await self._session.post(url, data=body, headers=headers)
        except TimeoutError:
            return error_response(
                f"backend for {entry.route} did not answer in time", 504, "upstream_timeout"
            )
        except aiohttp.ClientConnectorError as exc:  # no engine answers: none running, or not resolvable
            log.warning("backend %s unreachable: %s", entry.route, type(exc).__name__)
            record_no_capacity(entry.route)
            return error_response(
                f"no engine of {entry.route} answered; it may be starting (a deployment scaled to zero "
                "starts one on this request, which takes several minutes for a GPU host and the engine): "
                "retry later",
                503,
                "backend_not_ready",
                headers={"Retry-After": "60"},
            )
        except aiohttp.ClientError as exc:
            log.warning("backend %s failed: %s", entry.route, type(exc).__name__)
            return error_response(f"backend for {entry.route} is unavailable", 502, "upstream_unavailable")
        return await relay_response(
            request,
            upstream,
            f"the backend for {entry.route}",
            f"backend for {entry.route} failed mid-response",
            "upstream_failed",
        )


def aws_error_code(exc: Exception) -> str:
    """The error code of a botocore ClientError ('' for other exceptions)."""
    return (getattr(exc, "response", {}) or {}).get("Error", {}).get("Code", "")


def client_error_response(exc: Exception, entry: RegistryEntry) -> web.Response:
    """botocore errors from the SageMaker runtime, as OpenAI-format responses."""
    err = getattr(exc, "response", {}) or {}
    code = aws_error_code(exc) or type(exc).__name__
    message = err.get("Error", {}).get("Message", "") or str(exc)
    if code == "ModelError":
        status = int(err.get("OriginalStatusCode") or 502)
        original = err.get("OriginalMessage") or message
        try:
            parsed = json.loads(original)
        except (TypeError, ValueError):
            parsed = None
        if isinstance(parsed, dict) and "error" in parsed:
            return web.json_response(parsed, status=status)
        return error_response(f"the model returned an error: {original}", status, "model_error")
    if code in ("ThrottlingException", "Throttling"):
        return error_response(f"SageMaker throttled the request to {entry.route}", 429, "throttled")
    if code in ("ServiceUnavailable", "ModelNotReadyException"):
        return error_response(f"{entry.route} is not ready: {message}", 503, "backend_not_ready")
    if code == "ValidationError" and "not found" in message.lower():
        return error_response(
            f"SageMaker endpoint {entry.endpoint_name} of {entry.route} does not exist or is not in service",
            503,
            "backend_not_ready",
        )
    if "Timeout" in type(exc).__name__:
        return error_response(f"backend for {entry.route} did not answer in time", 504, "upstream_timeout")
    log.warning("sagemaker error for %s: %s %s", entry.route, code, message)
    return error_response(f"SageMaker error for {entry.route}: {code}", 502, "upstream_error")


class SageMakerBackend:
    """boto3 is synchronous: calls run in a thread pool; a stream is read in a thread feeding an asyncio queue
    (bounded, so a slow client slows the reader instead of growing memory)."""

    def __init__(self, client: Any, executor: Executor) -> None:
        self._client = client
        self._executor = executor

    async def forward(
        self, request: web.Request, entry: RegistryEntry, path: str, body: bytes, stream: bool
    ) -> web.StreamResponse:
        assert entry.endpoint_name
        kwargs = {
            "EndpointName": entry.endpoint_name,
            "Body": body,
            "ContentType": request.headers.get("Content-Type", "application/json"),
            "CustomAttributes": f"route={path}",
        }
        if entry.inference_component_name:
            kwargs["InferenceComponentName"] = entry.inference_component_name
        if stream:
            return await self._stream(request, entry, kwargs)
        loop = asyncio.get_running_loop()
        try:
            content_type, data = await loop.run_in_executor(self._executor, self._invoke, kwargs)
        except Exception as exc:
            return client_error_response(exc, entry)
        return web.Response(body=data, headers={"Content-Type": content_type or "application/json"})

    def _invoke(self, kwargs: dict[str, Any]) -> tuple[str | None, bytes]:
        resp = self._client.invoke_endpoint(Accept="application/json", **kwargs)
        return resp.get("ContentType"), resp["Body"].read()

    async def _stream(
        self, request: web.Request, entry: RegistryEntry, kwargs: dict[str, Any]
    ) -> web.StreamResponse:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        credits = threading.Semaphore(STREAM_QUEUE_DEPTH)
        stop = threading.Event()
        loop.run_in_executor(self._executor, self._pump, kwargs, loop, queue, credits, stop)
        resp: web.StreamResponse | None = None
        seen = StreamTail()
        try:
            while True:
                kind, value = await queue.get()
                credits.release()
                if kind == "data":
                    if resp is None:
                        resp = web.StreamResponse(status=200, headers=stream_headers())
                        await resp.prepare(request)
                    await resp.write(value)
                    seen.feed(value)
                elif kind == "error":
                    if resp is None:
                        return client_error_response(value, entry)
                    log.warning("sagemaker stream for %s failed: %s", entry.route, type(value).__name__)
                    await seen.fail(resp, f"the backend for {entry.route} failed during the stream")
                    return resp
                else:  # end
                    if resp is None:
                        return error_response(
                            f"{entry.route} returned an empty stream", 502, "upstream_empty"
                        )
                    if not seen.done:
                        await seen.fail(resp, f"the backend for {entry.route} ended the stream early")
                        return resp
                    await resp.write_eof()
                    request["emd_bytes_out"] = seen.sent
                    return resp
        except ConnectionError:
            return resp or web.Response(status=499)
        finally:
            stop.set()  # the reader thread stops at its next event or credit wait and closes the stream

    def _pump(
        self,
        kwargs: dict[str, Any],
        loop: asyncio.AbstractEventLoop,
        queue: asyncio.Queue[tuple[str, Any]],
        credits: threading.Semaphore,
        stop: threading.Event,
    ) -> None:
        def put(item: tuple[str, Any]) -> None:
            while not stop.is_set():
                if credits.acquire(timeout=0.5):
                    try:
                        loop.call_soon_threadsafe(queue.put_nowait, item)
                    except RuntimeError:  # the loop is closed: the gateway is shutting down
                        stop.set()
                    return

        events = None
        try:
            resp = self._client.invoke_endpoint_with_response_stream(Accept=SSE_CONTENT_TYPE, **kwargs)
            events = resp["Body"]
            for event in events:
                if stop.is_set():
                    return
                part = event.get("PayloadPart")
                if part and part.get("Bytes"):
                    put(("data", part["Bytes"]))
            put(("end", None))
        except Exception as exc:
            put(("error", exc))
        finally:
            if events is not None:
                events.close()
