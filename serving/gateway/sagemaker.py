"""SageMaker real-time endpoints through the SageMaker runtime API, on the event loop (runtime_client.py).

InvokeEndpointWithResponseStream's PayloadParts hold the bytes of the adapter's SSE stream: each batch is
written to the client before more is read, so a slow client slows the reader (bounded buffering, not
memory), and a client that leaves closes the upstream connection at once. The inference call is made once (a
request that reached the engine is never sent again); "no capacity yet" answers, which mean the request was
not run, are held and retried while the deployment starts (ColdStart).
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from model_specs.registry import RegistryEntry
from serving.common.openai_format import SSE_CONTENT_TYPE, error_response
from serving.common.sse_relay import StreamOut
from serving.gateway.cold_start import ColdStart
from serving.gateway.model_name import SseModelRewriter, rewrite_json_model
from serving.gateway.runtime_client import ResponseStream, RuntimeClient
from serving.gateway.upstream_errors import aws_error, is_not_ready

log = logging.getLogger("emd.gateway.sagemaker")


class SageMakerBackend:
    def __init__(self, runtime: RuntimeClient) -> None:
        self._runtime = runtime

    async def forward(
        self, request: web.Request, entry: RegistryEntry, body: bytes, requested: str, hold: ColdStart
    ) -> web.StreamResponse:
        assert entry.endpoint_name
        params: dict[str, Any] = {
            "EndpointName": entry.endpoint_name,
            "Body": body,
            "ContentType": request.headers.get("Content-Type", "application/json"),
            "CustomAttributes": f"route={request.path}",
        }
        if entry.inference_component_name:
            params["InferenceComponentName"] = entry.inference_component_name
        if hold.out is not None:
            return await self._stream(
                entry, {**params, "Accept": SSE_CONTENT_TYPE}, requested, hold, hold.out
            )
        while True:
            try:
                content_type, data = await self._runtime.invoke({**params, "Accept": "application/json"})
            except Exception as exc:
                if is_not_ready(exc) and await hold.retry():
                    continue
                return aws_error(exc, entry)
            data = rewrite_json_model(data, content_type, requested)
            return web.Response(body=data, headers={"Content-Type": content_type or "application/json"})

    async def _stream(
        self, entry: RegistryEntry, params: dict[str, Any], requested: str, hold: ColdStart, out: StreamOut
    ) -> web.StreamResponse:
        while True:
            events: ResponseStream | None = None
            try:
                events = await self._runtime.stream(params)
                first = await events.read()
            except Exception as exc:
                if events is not None:
                    events.close()
                if is_not_ready(exc) and await hold.retry():
                    continue
                return await hold.give_up(aws_error(exc, entry))
            try:
                return await self._relay(entry, events, first, SseModelRewriter(requested), hold, out)
            finally:
                events.close()

    async def _relay(
        self,
        entry: RegistryEntry,
        events: ResponseStream,
        data: bytes,
        rewriter: SseModelRewriter,
        hold: ColdStart,
        out: StreamOut,
    ) -> web.StreamResponse:
        if not data:
            return await hold.give_up(
                error_response(f"{entry.route} returned an empty stream", 502, "upstream_empty")
            )
        while data:
            if not await out.write(rewriter.feed(data)):
                return out.resp or web.Response(status=499)  # the client went away
            try:
                data = await events.read()
            except Exception as exc:
                log.warning("sagemaker stream for %s failed: %s", entry.route, type(exc).__name__)
                return await out.fail(f"the backend for {entry.route} failed during the stream")
        if not await out.write(rewriter.flush()):
            return out.resp or web.Response(status=499)
        if not out.done:
            return await out.fail(f"the backend for {entry.route} ended the stream early")
        return await out.finish()
