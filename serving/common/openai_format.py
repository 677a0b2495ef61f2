"""OpenAI-compatible error bodies and server-sent-event framing."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

SSE_CONTENT_TYPE = "text/event-stream"
# before Python 3.11 asyncio.TimeoutError is not the builtin; engine images may ship 3.10
TIMEOUT_ERRORS: tuple[type[BaseException], ...] = (TimeoutError, asyncio.TimeoutError)

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}


def error_body(
    message: str, status: int, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    return {
        "error": {
            "message": message,
            "type": _TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error"),
            "param": param,
            "code": code,
        }
    }


def error_response(
    message: str,
    status: int,
    code: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    return web.json_response(error_body(message, status, code, param), status=status, headers=headers)


def sse_error_event(message: str, code: str = "backend_stream_error") -> bytes:
    """The event a client gets when the backend fails mid-stream; the openai client raises APIError on it."""
    return b"data: " + json.dumps(error_body(message, 502, code)).encode() + b"\n\n"


def is_event_boundary(tail: bytes) -> bool:
    """True when the bytes sent so far end on a complete SSE event (so a new event can follow)."""
    return not tail or tail.endswith(b"\n\n") or tail.endswith(b"\r\n\r\n")
