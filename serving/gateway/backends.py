"""HTTP engines (ECS/EC2): the request is posted to the engine and its answer passed through without
buffering (SSE chunk by chunk), with the model the client asked for in every response, the engine's
Retry-After and request id kept, and its errors in OpenAI's shape without internals.

A failure after the first byte becomes an SSE error event, then the stream closes, so a client never hangs.
An engine that cannot be reached (none running: scaled to zero) or answers 503 has not run the request: the
request is held while the deployment starts (ColdStart), then retried.
"""

from __future__ import annotations

import logging

import aiohttp
from aiohttp import web

from model_specs.registry import RegistryEntry
from serving.common.openai_format import SSE_CONTENT_TYPE, error_response
from serving.common.request_state import REQUEST_ID
from serving.common.sse_relay import StreamOut, close_upstream, relay_sse
from serving.gateway.access import valid_request_id
from serving.gateway.cold_start import ColdStart
from serving.gateway.model_name import SseModelRewriter, rewrite_json_model
from serving.gateway.upstream_errors import engine_error, not_ready

log = logging.getLogger("emd.gateway.backends")

_PASS_HEADERS = ("Content-Type", "Accept")


def http_url(base_url: str, path: str) -> str:
    """base_url may be the engine root (http://h:8080) or include /v1 (http://h:8080/v1)."""
    base = base_url.rstrip("/")
    if base.endswith("/v1") and path.startswith("/v1/"):
        base = base[: -len("/v1")]
    return base + path


def passed_headers(upstream: aiohttp.ClientResponse) -> dict[str, str]:
    """The engine's headers an OpenAI client reads: Retry-After, and its request id (when well-formed)."""
    headers = {}
    retry_after = upstream.headers.get("Retry-After", "")
    if retry_after.isdigit() and len(retry_after) <= 6:
        headers["Retry-After"] = retry_after
    request_id = upstream.headers.get("X-Request-Id", "")
    if valid_request_id(request_id):
        headers["X-Request-Id"] = request_id
    return headers


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
        self, request: web.Request, entry: RegistryEntry, body: bytes, requested: str, hold: ColdStart
    ) -> web.StreamResponse:
        assert self._session is not None and entry.base_url
        headers = {h: request.headers[h] for h in _PASS_HEADERS if h in request.headers}
        headers["X-Request-Id"] = request[REQUEST_ID]
        url = http_url(entry.base_url, request.path)
        while True:
            try:
                upstream = await self._session.post(url, data=body, headers=headers)
            except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
                # no engine accepted the connection: none running, or its name does not resolve yet
                log.info("no engine of %s answered: %s", entry.route, type(exc).__name__)
                if await hold.retry():
                    continue
                return await hold.give_up(not_ready(entry))
            except TimeoutError:
                return await hold.give_up(
                    error_response(
                        f"backend for {entry.route} did not answer in time", 504, "upstream_timeout"
                    )
                )
            except aiohttp.ClientError as exc:
                log.warning("backend %s failed: %s", entry.route, type(exc).__name__)
                return await hold.give_up(
                    error_response(f"backend for {entry.route} is unavailable", 502, "upstream_unavailable")
                )
            if upstream.status == 503:  # the engine is loading, or overloaded: it did not run the request
                retry_after = passed_headers(upstream).get("Retry-After")
                close_upstream(upstream)
                if await hold.retry():
                    continue
                return await hold.give_up(engine_error(503, b"", entry, retry_after))
            try:
                return await self._relay(request, entry, upstream, requested, hold)
            finally:
                close_upstream(upstream)

    async def _relay(
        self,
        request: web.Request,
        entry: RegistryEntry,
        upstream: aiohttp.ClientResponse,
        requested: str,
        hold: ColdStart,
    ) -> web.StreamResponse:
        headers = passed_headers(upstream)
        label = f"the backend for {entry.route}"
        if upstream.status == 200 and upstream.content_type == SSE_CONTENT_TYPE:
            out = hold.out or StreamOut(request)
            if out.resp is None:
                out.headers.update(headers)
            rewriter = SseModelRewriter(requested)
            return await relay_sse(upstream, out, label, rewriter.feed, rewriter.flush)
        try:
            data = await upstream.read()
        except (aiohttp.ClientError, TimeoutError):
            return await hold.give_up(error_response(f"{label} failed mid-response", 502, "upstream_failed"))
        if upstream.status >= 400:
            answer = engine_error(upstream.status, data, entry, headers.pop("Retry-After", None))
            answer.headers.update(headers)
            return await hold.give_up(answer)
        content_type = upstream.headers.get("Content-Type", "application/json")
        data = rewrite_json_model(data, content_type, requested)
        if hold.committed:  # a stream was asked for and started; the engine answered whole
            assert hold.out is not None
            await hold.out.write(data)
            return await hold.out.finish()
        answer = web.Response(body=data, status=upstream.status, headers={"Content-Type": content_type})
        answer.headers.update(headers)
        return answer
