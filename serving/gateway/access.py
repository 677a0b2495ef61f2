"""One JSON access line per request (never keys, prompts or bodies), and the request id every response
carries.

- request_id: the client's X-Request-Id when it is 1-128 characters of [A-Za-z0-9._:-], else a new one.
- remote: the TCP peer; X-Forwarded-For only when the peer is a trusted proxy (EMD_TRUSTED_PROXIES: the
  ALB's subnets), read from the right, skipping trusted proxies.
- status: what the client got; a stream that failed after its 200 is logged with its outcome
  (upstream_failed: 502, client_gone/client_stalled: 499); bytes_out: the body bytes sent.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import string
import time
import traceback
import uuid
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from serving.common.openai_format import error_response
from serving.common.request_state import BACKEND, MODEL, REQUEST_ID, STREAM
from serving.common.sse_relay import CLIENT_GONE, CLIENT_STALLED, OK, STREAM_OUT, UPSTREAM_FAILED, StreamOut
from serving.gateway.metrics import access_record
from serving.gateway.registry import RegistryUnavailable

access_log = logging.getLogger("emd.gateway.access")

MAX_REQUEST_ID = 128
_REQUEST_ID_CHARS = frozenset(string.ascii_letters + string.digits + "._:-")
_OUTCOME_STATUS = {UPSTREAM_FAILED: 502, CLIENT_GONE: 499, CLIENT_STALLED: 499}

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def valid_request_id(value: str) -> bool:
    return 0 < len(value) <= MAX_REQUEST_ID and _REQUEST_ID_CHARS.issuperset(value)


def networks(cidrs: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def _address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        return None


def client_address(peer: str | None, forwarded_for: str | None, trusted: tuple[Network, ...]) -> str | None:
    """The client's address: the peer, or, when the peer is a trusted proxy, the right-most address in
    X-Forwarded-For that is not a trusted proxy."""
    if not forwarded_for or not trusted:
        return peer
    peer_ip = _address(peer or "")
    if peer_ip is None or not any(peer_ip in n for n in trusted):
        return peer
    hops = forwarded_for.split(",")[-32:]
    for hop in reversed(hops):
        ip = _address(hop)
        if ip is None:  # not an address: nothing left of it can be believed
            return peer
        if not any(ip in n for n in trusted):
            return str(ip)
    return str(_address(hops[0]))


async def set_request_id_header(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: every response, streamed ones included, carries the request id (an engine's own
    id, when it gave one, is kept)."""
    request_id = request.get(REQUEST_ID)
    if request_id and "X-Request-Id" not in response.headers:
        response.headers["X-Request-Id"] = request_id


def access_log_middleware(trusted: tuple[Network, ...]) -> Any:
    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        start = time.perf_counter()
        offered = request.headers.get("X-Request-Id", "")
        request[REQUEST_ID] = offered if valid_request_id(offered) else uuid.uuid4().hex
        status, resp = 500, None
        try:
            resp = await handler(request)
            status = resp.status
            return resp
        except web.HTTPException as exc:
            status = exc.status
            raise
        except RegistryUnavailable:
            access_log.warning("deployment registry unavailable")
            resp = error_response(
                "the deployment registry is unavailable; retry shortly",
                503,
                "registry_unavailable",
                headers={"Retry-After": "5"},
            )
            status = 503
            return resp
        except asyncio.CancelledError:  # the client disconnected (the handler is cancelled with it)
            out = request.get(STREAM_OUT)
            status = 200 if isinstance(out, StreamOut) and out.outcome == OK else 499
            raise
        except Exception as exc:
            # the stack, not the message: an exception's text may hold request bytes
            stack = "".join(traceback.format_tb(exc.__traceback__))
            access_log.error("unhandled %s\n%s", type(exc).__name__, stack)
            resp = error_response("internal gateway error", 500, "internal_error")
            return resp
        finally:
            if request.path != "/health":  # load balancer probes every few seconds: not worth a line each
                _log(request, status, resp, start, trusted)

    return middleware


def _log(
    request: web.Request,
    status: int,
    resp: web.StreamResponse | None,
    start: float,
    trusted: tuple[Network, ...],
) -> None:
    out = request.get(STREAM_OUT)
    outcome = out.outcome if isinstance(out, StreamOut) else None
    if outcome in _OUTCOME_STATUS and status == 200:
        status = _OUTCOME_STATUS[outcome]
    if isinstance(out, StreamOut):
        bytes_out: int | None = out.sent
    else:
        bytes_out = resp.content_length if isinstance(resp, web.Response) else None
    record: dict[str, Any] = {
        "request_id": request[REQUEST_ID],
        "method": request.method,
        "path": request.path[:200],
        "status": status,
        "model": request.get(MODEL),
        "backend": request.get(BACKEND),
        "stream": request.get(STREAM),
        "bytes_in": request.content_length,
        "bytes_out": bytes_out,
        "duration_ms": round((time.perf_counter() - start) * 1000, 2),
        "remote": client_address(request.remote, request.headers.get("X-Forwarded-For"), trusted),
    }
    if outcome:
        record["outcome"] = outcome
    upstream_id = resp.headers.get("X-Request-Id") if resp is not None else None
    if upstream_id and upstream_id != record["request_id"]:
        record["upstream_request_id"] = upstream_id
    routed_to = request.get(MODEL) if request.get(BACKEND) else None
    access_log.info(access_record(record, routed_to))
