"""Reading a request body and the model it asks for, within limits: a size cap (413), a longest silence and a
longest total time while receiving it (408: a half-sent body does not hold a connection open), JSON nested
no deeper than MAX_JSON_DEPTH, and multipart forms parsed linearly (serving.gateway.multipart)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web

from serving.common.json_body import InvalidJson, parse_json
from serving.common.openai_format import error_response
from serving.gateway.multipart import BadMultipart, model_field

# however steadily a client sends, a body takes at most this long (25 MiB at ~1 Mbit/s)
MAX_BODY_SECONDS = 300.0


class BodyRefused(Exception):
    def __init__(self, answer: web.Response) -> None:
        super().__init__(answer.status)
        self.answer = answer


async def read_body(request: web.Request, limit: int, silence: float) -> bytes:
    """The whole body; BodyRefused(413) past limit bytes, BodyRefused(408) after silence seconds without a
    byte or MAX_BODY_SECONDS in all."""
    too_large = BodyRefused(
        error_response(f"request body exceeds the gateway limit of {limit} bytes", 413, "request_too_large")
    )
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    body = bytearray()
    deadline = time.monotonic() + MAX_BODY_SECONDS
    while True:
        try:
            async with asyncio.timeout(min(silence, max(0.0, deadline - time.monotonic()))):
                chunk = await request.content.readany()
        except TimeoutError:
            answer = error_response("the request body was not received in time", 408, "request_timeout")
            answer.force_close()
            raise BodyRefused(answer) from None
        if not chunk:
            return bytes(body)
        body += chunk
        if len(body) > limit:
            raise too_large


async def requested_model(body: bytes, content_type: str) -> tuple[str | None, dict[str, Any] | None]:
    """The model the body asks for and, for JSON bodies, the parsed body. BodyRefused(400) for a body that
    cannot be parsed within the limits."""
    if content_type.startswith("multipart/"):
        try:
            return await model_field(body, content_type), None
        except BadMultipart as exc:
            raise BodyRefused(error_response(str(exc), 400, "invalid_multipart", "model")) from None
    try:
        parsed = parse_json(body)
    except InvalidJson as exc:
        raise BodyRefused(error_response(str(exc), 400, "invalid_json")) from None
    if not isinstance(parsed, dict):
        return None, None
    model = parsed.get("model")
    return (model if isinstance(model, str) else None), parsed
