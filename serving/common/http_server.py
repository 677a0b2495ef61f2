"""The aiohttp server the gateway and the engine adapter run.

- A request aiohttp cannot parse (a control character in a header, a header over 8 KiB, a non-HTTP request)
  gets a 400 in OpenAI's error shape naming only the kind of error. aiohttp's own answer and log line repeat
  the offending bytes, which for a malformed Authorization header are the API key.
- A handler is cancelled when its client disconnects, so whatever it waits for upstream stops at once.
- SIGTERM/SIGINT stop accepting connections, let in-flight requests finish within the drain time, then run the
  application's cleanup.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong

from serving.common.openai_format import error_body

log = logging.getLogger("emd.http")

# beyond the ALB's 600 s idle timeout: the load balancer, not the target, closes idle connections (a target
# closing first makes the ALB answer 502 on a reused connection)
KEEPALIVE_SECONDS = 650.0


def _refusal(exc: BaseException | None) -> str:
    if isinstance(exc, LineTooLong):
        return "malformed HTTP request: a request line or header is too long"
    return "malformed HTTP request"


class QuietRequestHandler(web.RequestHandler):
    """aiohttp's connection handler, except that errors name their kind, never the bytes received."""

    def log_exception(self, *args: Any, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info")
        kind = type(exc).__name__ if isinstance(exc, BaseException) else "error"
        message = args[0] % args[1:] if args else "error"
        log.warning("%s (%s)", message, kind)  # the exception's text holds the request's bytes: never logged

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if isinstance(exc, HttpProcessingError) or status < 500:
            log.warning("refused a malformed request from %s (%s)", request.remote, type(exc).__name__)
            text, code = _refusal(exc), "malformed_request"
        else:
            self.log_exception("error handling a request from %s", request.remote, exc_info=exc)
            text, code = "internal server error", "internal_error"
        if request.writer.output_size > 0:  # part of a response is out: the connection can only be closed
            raise ConnectionError("response already started")
        resp = web.json_response(error_body(text, status, code), status=status)
        resp.force_close()
        return resp


class _QuietServer(web.Server):
    def __call__(self) -> web.RequestHandler:
        return QuietRequestHandler(self, loop=self._loop, **self._kwargs)


class QuietAppRunner(web.AppRunner):
    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = _QuietServer  # the same server; each connection gets a QuietRequestHandler
        return server


def make_runner(
    app: web.Application, *, shutdown_timeout: float, handle_signals: bool = False
) -> web.AppRunner:
    return QuietAppRunner(
        app,
        handle_signals=handle_signals,
        access_log=None,  # each service writes its own access lines
        shutdown_timeout=shutdown_timeout,
        keepalive_timeout=KEEPALIVE_SECONDS,
        handler_cancellation=True,
    )


def run_app(
    app: web.Application,
    *,
    host: str,
    port: int,
    shutdown_timeout: float,
    reuse_port: bool = False,
    loop: asyncio.AbstractEventLoop | None = None,
) -> None:
    """Serve app until SIGTERM/SIGINT, then drain for up to shutdown_timeout seconds."""
    loop = loop or asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    runner = make_runner(app, shutdown_timeout=shutdown_timeout, handle_signals=True)

    async def start() -> None:
        await runner.setup()
        await web.TCPSite(runner, host, port, reuse_port=reuse_port or None).start()

    try:
        loop.run_until_complete(start())
        loop.run_forever()
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    finally:
        try:
            loop.run_until_complete(runner.cleanup())
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()
