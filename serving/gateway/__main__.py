"""`python -m serving.gateway`: the gateway container's entry point.

Runs on uvloop where it is installed (the gateway image installs it; EMD_GATEWAY_LOOP=asyncio opts out): the
gateway's cost per request is mostly event-loop and socket work, which uvloop does in C.
EMD_GATEWAY_WORKERS > 1 forks that many processes sharing the port (SO_REUSEPORT); the first process
receives the container's SIGTERM, drains, then stops and waits for the others (which drain too).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys

from aiohttp import web

from serving.common.http_server import run_app
from serving.gateway.app import create_app
from serving.gateway.aws_clients import aws_clients
from serving.gateway.config import GatewayConfig
from serving.gateway.stores import AwsStore, FileStore

DRAIN_SECONDS = 30


def new_event_loop(kind: str) -> asyncio.AbstractEventLoop:
    if kind == "uvloop":
        try:
            import uvloop
        except ImportError:
            logging.getLogger("emd.gateway").warning("uvloop is not installed: using asyncio's event loop")
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def build_app(config: GatewayConfig) -> web.Application:
    """The gateway over the store its config names: AWS clients only for the AWS store."""
    if not config.aws:
        assert config.state_dir is not None
        return create_app(config, store=FileStore(config.state_dir))
    clients = aws_clients(config)
    store = AwsStore(clients["ssm"], clients["secrets"], config.registry_prefix)
    return create_app(
        config,
        store=store,
        sagemaker_runtime=clients["sagemaker_runtime"],
        s3=clients["s3"],
        credentials=clients["credentials"],
    )


def serve(config: GatewayConfig, reuse_port: bool) -> None:
    loop = new_event_loop(config.event_loop)
    asyncio.set_event_loop(loop)
    run_app(
        build_app(config),
        host=config.host,
        port=config.port,
        reuse_port=reuse_port,
        shutdown_timeout=DRAIN_SECONDS,
        loop=loop,
    )


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    config = GatewayConfig.from_env()
    if config.workers == 1:
        serve(config, reuse_port=False)
        return
    children: list[int] = []
    for _ in range(config.workers - 1):
        pid = os.fork()
        if pid == 0:
            try:
                serve(config, reuse_port=True)
            finally:
                os._exit(0)
        children.append(pid)
    try:
        serve(config, reuse_port=True)
    finally:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        for pid in children:
            os.waitpid(pid, 0)


if __name__ == "__main__":
    main()
