"""SageMaker asynchronous inference behind the synchronous OpenAI API.

The request body goes to the deployment's S3 input prefix, InvokeEndpointAsync queues it, and the gateway
polls the output and failure locations SageMaker answers with until one appears (or its wait runs out). The
answer is returned as the engine wrote it; the request's S3 objects are then deleted, so prompts and
completions do not linger in the bucket. Streaming is refused: an async endpoint answers only whole.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from concurrent.futures import Executor
from typing import Any

from aiohttp import web

from model_specs.registry import RegistryEntry, split_s3_uri
from serving.common.openai_format import error_response
from serving.gateway.cold_start import ColdStart
from serving.gateway.model_name import rewrite_json_model
from serving.gateway.upstream_errors import MAX_ENGINE_MESSAGE, aws_error, aws_error_code, engine_message

log = logging.getLogger("emd.gateway.async")

FIRST_POLL_SECONDS = 0.2
MAX_POLL_SECONDS = 2.0
# RequestTTLSeconds bounds: a request the gateway stopped waiting for leaves the queue after this long
MIN_REQUEST_TTL_SECONDS, MAX_REQUEST_TTL_SECONDS = 60, 21600
MISSING, DENIED = "missing", "denied"


class SageMakerAsyncBackend:
    def __init__(self, sagemaker_runtime: Any, s3: Any, executor: Executor, wait_seconds: float) -> None:
        self._runtime = sagemaker_runtime
        self._s3 = s3
        self._executor = executor
        self._wait = wait_seconds

    async def _call(self, fn: Any, **kwargs: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, lambda: fn(**kwargs))

    async def forward(
        self, request: web.Request, entry: RegistryEntry, body: bytes, requested: str, hold: ColdStart
    ) -> web.StreamResponse:
        path = request.path
        if hold.out is not None:
            return error_response(
                f"{entry.route} is deployed with SageMaker asynchronous inference, which answers whole "
                "responses only: send the request without stream=true",
                400,
                "stream_unsupported",
                "stream",
            )
        if not entry.endpoint_name or not entry.s3_input_path:
            return error_response(
                f"{entry.route} has no endpoint_name or s3_input_path in the registry",
                502,
                "bad_registry_entry",
            )
        content_type = request.headers.get("Content-Type", "application/json")
        bucket, prefix = split_s3_uri(entry.s3_input_path)
        input_key = f"{prefix.rstrip('/')}/{uuid.uuid4().hex}" if prefix else uuid.uuid4().hex
        cleanup = [(bucket, input_key)]
        try:
            await self._call(
                self._s3.put_object, Bucket=bucket, Key=input_key, Body=body, ContentType=content_type
            )
            queued = await self._call(
                self._runtime.invoke_endpoint_async,
                EndpointName=entry.endpoint_name,
                InputLocation=f"s3://{bucket}/{input_key}",
                ContentType=content_type,
                Accept="application/json",
                CustomAttributes=f"route={path}",
                RequestTTLSeconds=min(MAX_REQUEST_TTL_SECONDS, max(MIN_REQUEST_TTL_SECONDS, int(self._wait))),
            )
        except Exception as exc:
            await self._delete(cleanup)
            return aws_error(exc, entry)
        inference_id = queued.get("InferenceId", "")
        output = split_s3_uri(queued["OutputLocation"])
        failure = split_s3_uri(queued["FailureLocation"]) if queued.get("FailureLocation") else None
        cleanup += [loc for loc in (output, failure) if loc]
        try:
            return await self._await_result(request, entry, inference_id, output, failure, requested)
        finally:
            await self._delete(cleanup)

    async def _await_result(
        self,
        request: web.Request,
        entry: RegistryEntry,
        inference_id: str,
        output: tuple[str, str],
        failure: tuple[str, str] | None,
        requested: str,
    ) -> web.Response:
        deadline = time.monotonic() + self._wait
        delay = FIRST_POLL_SECONDS
        while True:
            try:
                found = await self._read(output)
                failed = await self._read(failure) if failure and not isinstance(found, tuple) else None
            except Exception as exc:  # throttled, bucket gone: an answer, never a hang
                return aws_error(exc, entry)
            if isinstance(found, tuple):
                content_type, data = found
                data = rewrite_json_model(data, content_type, requested)
                return web.Response(body=data, headers={"Content-Type": content_type or "application/json"})
            if isinstance(failed, tuple):
                return _failure_answer(failed[1], entry, inference_id)
            denied = DENIED in (found, failed)
            if time.monotonic() + delay > deadline:
                where = f"s3://{output[0]}/{output[1]}"
                hint = (
                    f"the gateway may not read {where} (AccessDenied): check its task role"
                    if denied
                    else "an endpoint scaled to zero needs several minutes to start an instance"
                )
                return error_response(
                    f"{entry.route} gave no answer within {self._wait:.0f} s "
                    f"(asynchronous request {inference_id}; {hint})",
                    504,
                    "upstream_timeout",
                )
            if request.transport is None or request.transport.is_closing():
                log.info("client of %s left before request %s was answered", entry.route, inference_id)
                return web.Response(status=499)  # nobody to answer: stop polling, the objects are deleted
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, MAX_POLL_SECONDS)

    async def _read(self, location: tuple[str, str]) -> tuple[str | None, bytes] | str:
        """(content type, bytes), or MISSING, or DENIED: without s3:ListBucket S3 answers a missing key with
        AccessDenied, so a denial is polled again like a missing key and only named if the wait runs out."""
        bucket, key = location

        def get() -> tuple[str | None, bytes] | str:
            try:
                obj = self._s3.get_object(Bucket=bucket, Key=key)
            except Exception as exc:
                code = aws_error_code(exc)
                if code in ("NoSuchKey", "404", "NotFound"):
                    return MISSING
                if code in ("AccessDenied", "403"):
                    return DENIED
                raise
            return obj.get("ContentType"), obj["Body"].read()

        return await self._call(get)

    async def _delete(self, locations: list[tuple[str, str]]) -> None:
        for bucket, key in locations:
            try:
                await self._call(self._s3.delete_object, Bucket=bucket, Key=key)
            except Exception as exc:  # the bucket's lifecycle rule removes what is left
                log.warning("could not delete s3://%s/%s: %s", bucket, key, type(exc).__name__)


def _failure_answer(text: bytes, entry: RegistryEntry, inference_id: str) -> web.Response:
    """The failure object SageMaker wrote: an engine's OpenAI-format error keeps its message (it is about the
    request); anything else (a container's crash output) is named by the inference id only."""
    message = engine_message(text)[0][:MAX_ENGINE_MESSAGE] if text.lstrip().startswith(b"{") else ""
    log.warning("%s failed asynchronous request %s", entry.route, inference_id)
    return error_response(
        f"{entry.route} failed the asynchronous request {inference_id}" + (f": {message}" if message else ""),
        502,
        "model_error",
    )
