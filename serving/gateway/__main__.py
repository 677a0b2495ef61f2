"""`python -m serving.gateway`: the gateway container's entry point."""

from __future__ import annotations

import logging
import sys

import boto3
from aiohttp import web
from botocore.config import Config

from serving.gateway.app import create_app
from serving.gateway.config import GatewayConfig


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    config = GatewayConfig.from_env()
    session = boto3.session.Session(region_name=config.region)
    aws = Config(
        connect_timeout=config.connect_timeout,
        read_timeout=config.read_timeout,
        max_pool_connections=config.max_streams,
        retries={"mode": "standard", "max_attempts": 3},
    )
    app = create_app(
        config,
        ssm=session.client("ssm", config=aws),
        secrets=session.client("secretsmanager", config=aws),
        sagemaker_runtime=session.client("sagemaker-runtime", config=aws),
    )
    web.run_app(app, host=config.host, port=config.port, access_log=None, print=None, shutdown_timeout=30)


if __name__ == "__main__":
    main()
