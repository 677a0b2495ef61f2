"""SageMaker real-time endpoints through the SageMaker runtime API.

boto3 is synchronous: calls run in the gateway's inference thread pool (never the one the registry and key
look-ups use). InvokeEndpointWithResponseStream is read in a worker thread feeding a bounded asyncio queue (a
slow client slows the reader instead of growing memory); its PayloadParts hold the bytes of the adapter's SSE
stream, written to the client as they arrive. The inference client makes one attempt (a request that reached
the engine is never sent again); "no capacity yet" answers, which mean the request was not run, are held and
retried while the deployment starts (ColdStart).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from concurrent.futures import Executor
from typing import Any

from aiohttp import web

from model_specs.registry import RegistryEntry
from serving.common.openai_format import SSE_CONTENT_TYPE, error_response
from serving.common.sse_relay import StreamOut
from serving.gateway.cold_start import ColdStart
from serving.gateway.model_name import SseModelRewriter, rewrite_json_model
from serving.gateway.upstream_errors import aws_error, is_not_ready

log = logging.getLogger("emd.gateway.sagemaker")

STREAM_QUEUE_DEPTH = 64


class _EventPump:
    """One InvokeEndpointWithResponseStream, read in a worker thread into an asyncio queue."""

    def __init__(self, client: Any, kwargs: dict[str, Any], loop: asyncio.AbstractEventLoop) -> None:
        self._client = client
        self._kwargs = kwargs
        self._loop = loop
        self._queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._credits = threading.Semaphore(STREAM_QUEUE_DEPTH)
        self._stop = threading.Event()
        self._events: Any = None

    async def get(self) -> tuple[str, Any]:
        """('data', bytes), ('error', exception) or ('end', None)."""
        item = await self._queue.get()
        self._credits.release()
        return item

    def close(self) -> None:
        """Stop reading: the worker ends at its next event or credit wait; closing the event stream also ends
        a read that waits for a silent endpoint."""
        self._stop.set()
        events = self._events
        if events is not None:
            with contextlib.suppress(Exception):
                events.close()

    def _put(self, item: tuple[str, Any]) -> None:
        while not self._stop.is_set():
            if self._credits.acquire(timeout=0.5):
                try:
                    self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
                except RuntimeError:  # the loop is closed: the gateway is shutting down
                    self._stop.set()
                return

    def run(self) -> None:
        try:
            resp = self._client.invoke_endpoint_with_response_stream(Accept=SSE_CONTENT_TYPE, **self._kwargs)
            self._events = resp["Body"]
            if self._stop.is_set():
                return
            for event in self._events:
                if self._stop.is_set():
                    return
                part = event.get("PayloadPart")
                if part and part.get("Bytes"):
                    self._put(("data", part["Bytes"]))
            self._put(("end", None))
        except Exception as exc:
            self._put(("error", exc))
        finally:
            if self._events is not None:
                with contextlib.suppress(Exception):
                    self._events.close()


class SageMakerBackend:
    def __init__(self, client: Any, executor: Executor) -> None:
        self._client = client
        self._executor = executor

    async def forward(
        self, request: web.Request, entry: RegistryEntry, body: bytes, requested: str, hold: ColdStart
    ) -> web.StreamResponse:
        assert entry.endpoint_name
        kwargs = {
            "EndpointName": entry.endpoint_name,
            "Body": body,
            "ContentType": request.headers.get("Content-Type", "application/json"),
            "CustomAttributes": f"route={request.path}",
        }
        if entry.inference_component_name:
            kwargs["InferenceComponentName"] = entry.inference_component_name
        if hold.out is not None:
            return await self._stream(entry, kwargs, requested, hold, hold.out)
        loop = asyncio.get_running_loop()
        while True:
            try:
                content_type, data = await loop.run_in_executor(self._executor, self._invoke, kwargs)
            except Exception as exc:
                if is_not_ready(exc) and await hold.retry():
                    continue
                return aws_error(exc, entry)
            data = rewrite_json_model(data, content_type, requested)
            return web.Response(body=data, headers={"Content-Type": content_type or "application/json"})

    def _invoke(self, kwargs: dict[str, Any]) -> tuple[str | None, bytes]:
        resp = self._client.invoke_endpoint(Accept="application/json", **kwargs)
        return resp.get("ContentType"), resp["Body"].read()

    async def _stream(
        self, entry: RegistryEntry, kwargs: dict[str, Any], requested: str, hold: ColdStart, out: StreamOut
    ) -> web.StreamResponse:
        loop = asyncio.get_running_loop()
        rewriter = SseModelRewriter(requested)
        while True:
            pump = _EventPump(self._client, kwargs, loop)
            loop.run_in_executor(self._executor, pump.run)
            try:
                kind, value = await pump.get()
                if kind == "error" and is_not_ready(value) and await hold.retry():
                    continue
                got_data = False
                while True:
                    if kind == "data":
                        got_data = True
                        if not await out.write(rewriter.feed(value)):
                            return out.resp or web.Response(status=499)
                    elif kind == "error":
                        if not got_data:
                            return await hold.give_up(aws_error(value, entry))
                        log.warning("sagemaker stream for %s failed: %s", entry.route, type(value).__name__)
                        return await out.fail(f"the backend for {entry.route} failed during the stream")
                    else:  # end
                        if not got_data:
                            return await hold.give_up(
                                error_response(
                                    f"{entry.route} returned an empty stream", 502, "upstream_empty"
                                )
                            )
                        if not await out.write(rewriter.flush()):
                            return out.resp or web.Response(status=499)
                        if not out.done:
                            return await out.fail(f"the backend for {entry.route} ended the stream early")
                        return await out.finish()
                    kind, value = await pump.get()
            finally:
                pump.close()
