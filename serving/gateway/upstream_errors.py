"""Errors from engines and from AWS, as OpenAI-format answers that reveal nothing of the backend.

- An engine's 4xx keeps its status and the engine's message (it is about the request), in OpenAI's shape.
- An engine's 5xx becomes a 502 naming only the route and the status; 503 stays 503 (not ready, retry).
- AWS errors are mapped by their error code; their text (account id, ARNs, endpoint names) is logged for the
  operator and never sent.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web

from model_specs.registry import RegistryEntry
from serving.common.openai_format import error_response

log = logging.getLogger("emd.gateway.upstream")

MAX_ENGINE_MESSAGE = 2000
RETRY_THROTTLED = "1"
RETRY_NOT_READY = "30"
_NOT_READY_CODES = ("ModelNotReadyException", "ServiceUnavailable", "ServiceUnavailableException")


def aws_error_code(exc: BaseException) -> str:
    """The error code of a botocore ClientError ('' for other exceptions)."""
    return (getattr(exc, "response", {}) or {}).get("Error", {}).get("Code", "")


def _aws_message(exc: BaseException) -> str:
    return (getattr(exc, "response", {}) or {}).get("Error", {}).get("Message", "") or ""


def is_not_ready(exc: BaseException) -> bool:
    """A SageMaker answer that says the request was not run because no capacity serves it yet (scaled to zero,
    starting): safe to send again."""
    code = aws_error_code(exc)
    return code in _NOT_READY_CODES or (code == "ValidationError" and "capacity" in _aws_message(exc).lower())


def engine_message(body: bytes) -> tuple[str, str | None, str | None]:
    """(message, param, code) from the error shapes engines answer with: OpenAI's, vLLM's, FastAPI's."""
    try:
        parsed: Any = json.loads(body)
    except ValueError:
        return body.decode(errors="replace").strip(), None, None
    if not isinstance(parsed, dict):
        return "", None, None
    error = parsed.get("error", parsed)
    if isinstance(error, str):
        return error, None, None
    if not isinstance(error, dict):
        return "", None, None
    message = error.get("message") or error.get("detail") or ""
    if isinstance(message, list):  # FastAPI validation errors: [{"loc": [...], "msg": ...}, ...]
        message = "; ".join(
            f"{'.'.join(str(p) for p in item.get('loc', []))}: {item.get('msg', '')}"
            for item in message
            if isinstance(item, dict)
        )
    param, code = error.get("param"), error.get("code")
    return (
        str(message),
        param if isinstance(param, str) else None,
        code if isinstance(code, str) else None,
    )


def engine_error(
    status: int, body: bytes, entry: RegistryEntry, retry_after: str | None = None
) -> web.Response:
    """An engine's error answer (status >= 400) in OpenAI's shape."""
    if status >= 500:
        log.warning("engine of %s answered HTTP %d", entry.route, status)
        if status == 503:
            return error_response(
                f"the engine of {entry.route} is not ready; retry shortly",
                503,
                "backend_not_ready",
                headers={"Retry-After": retry_after or RETRY_NOT_READY},
            )
        return error_response(
            f"the engine of {entry.route} failed to answer (HTTP {status})", 502, "upstream_error"
        )
    message, param, code = engine_message(body[: 64 * 1024])
    message = (
        message[:MAX_ENGINE_MESSAGE] or f"the engine of {entry.route} refused the request (HTTP {status})"
    )
    headers = {"Retry-After": retry_after} if retry_after else None
    return error_response(message, status, code or "invalid_request", param, headers=headers)


def aws_error(exc: BaseException, entry: RegistryEntry) -> web.Response:
    """A SageMaker runtime error (botocore) as the client's answer."""
    err = getattr(exc, "response", {}) or {}
    code = aws_error_code(exc)
    if code == "ModelError":
        status = int(err.get("OriginalStatusCode") or 502)
        original = err.get("OriginalMessage") or ""
        return engine_error(status, original.encode() if isinstance(original, str) else b"", entry)
    log.warning("SageMaker error for %s: %s %s", entry.route, code or type(exc).__name__, _aws_message(exc))
    if code in ("ThrottlingException", "Throttling", "TooManyRequestsException"):
        return error_response(
            f"{entry.route} is receiving more requests than it can serve; retry shortly",
            429,
            "throttled",
            headers={"Retry-After": RETRY_THROTTLED},
        )
    if is_not_ready(exc):
        return not_ready(entry)
    if code == "ValidationError" and "not found" in _aws_message(exc).lower():
        return error_response(
            f"{entry.route} is not in service (its endpoint does not exist or is not InService)",
            503,
            "backend_not_ready",
            headers={"Retry-After": RETRY_NOT_READY},
        )
    if "Timeout" in type(exc).__name__:
        return error_response(f"backend for {entry.route} did not answer in time", 504, "upstream_timeout")
    return error_response(f"the backend for {entry.route} failed to answer", 502, "upstream_error")


def not_ready(entry: RegistryEntry) -> web.Response:
    return error_response(
        f"no engine of {entry.route} is running yet; it may be starting (a deployment scaled to zero starts "
        "one on request, which takes several minutes for a GPU host and the engine): retry later",
        503,
        "backend_not_ready",
        headers={"Retry-After": RETRY_NOT_READY},
    )
