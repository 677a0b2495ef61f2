"""The gateway's boto3 clients, each with the botocore settings its calls need.

- Control plane (SSM, Secrets Manager): short connect and read timeouts, two attempts: a black-holed API costs
  seconds, and the registry and keys are then served from their last copy.
- Inference (SageMaker runtime): one attempt, the upstream timeouts. An InvokeEndpoint that timed out may have
  reached the engine; sending it again would run it twice. Real-time calls go through runtime_client.py on the
  event loop (this client gives it the endpoint URL and service model, the session its credentials);
  InvokeEndpointAsync through this client.
- Data (S3, for async inference inputs and answers): idempotent calls, retried as botocore does by default.
"""

from __future__ import annotations

from typing import Any

from botocore.config import Config

from serving.gateway.config import GatewayConfig

CONTROL_PLANE_ATTEMPTS = 2
CONTROL_PLANE_CONNECTIONS = 16


def control_plane_config(config: GatewayConfig) -> Config:
    return Config(
        connect_timeout=config.control_plane_timeout,
        read_timeout=config.control_plane_timeout,
        max_pool_connections=CONTROL_PLANE_CONNECTIONS,
        retries={"mode": "standard", "total_max_attempts": CONTROL_PLANE_ATTEMPTS},
    )


def inference_config(config: GatewayConfig) -> Config:
    return _upstream(config, {"mode": "standard", "total_max_attempts": 1})


def data_config(config: GatewayConfig) -> Config:
    return _upstream(config, {"mode": "standard", "max_attempts": 3})


def _upstream(config: GatewayConfig, retries: dict[str, Any]) -> Config:
    return Config(
        connect_timeout=config.connect_timeout,
        read_timeout=config.read_timeout,
        max_pool_connections=config.max_streams,
        retries=retries,
    )


def aws_clients(config: GatewayConfig) -> dict[str, Any]:
    """ssm, secrets, sagemaker_runtime and s3 clients in the gateway's region, and the credentials of their
    session (botocore refreshes them in place)."""
    import boto3

    session = boto3.session.Session(region_name=config.region)
    return {
        "ssm": session.client("ssm", config=control_plane_config(config)),
        "secrets": session.client("secretsmanager", config=control_plane_config(config)),
        "sagemaker_runtime": session.client("sagemaker-runtime", config=inference_config(config)),
        "s3": session.client("s3", config=data_config(config)),
        "credentials": session.get_credentials(),
    }
