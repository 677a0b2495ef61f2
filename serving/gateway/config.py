"""Gateway settings, read once from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass

from model_specs.registry import REGISTRY_PREFIX

MAX_KEY_CACHE_TTL = 60.0  # a rotated key must take effect within a minute


def _float(env: dict[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise SystemExit(f"{name}={raw!r} is not a number") from None


def _choice(env: dict[str, str], name: str, allowed: tuple[str, ...], default: str) -> str:
    raw = (env.get(name) or default).strip().lower()
    if raw not in allowed:
        raise SystemExit(f"{name}={raw!r} is not one of: {', '.join(allowed)}")
    return raw


@dataclass(frozen=True)
class GatewayConfig:
    port: int = 8080
    host: str = "0.0.0.0"
    registry_prefix: str = REGISTRY_PREFIX
    region: str | None = None
    registry_ttl: float = 10.0
    key_cache_ttl: float = 30.0
    max_body_bytes: int = 25 * 1024 * 1024
    connect_timeout: float = 10.0
    # longest silence tolerated between two bytes from a backend (not a cap on the whole response)
    read_timeout: float = 300.0
    max_streams: int = 512
    # SageMaker async deployments: how long a request waits for its answer in S3 (below the ALB's 600 s idle
    # timeout, since nothing is sent while waiting)
    async_wait_seconds: float = 540.0
    # uvloop (default, where installed) or asyncio
    event_loop: str = "uvloop"
    # processes sharing the port (SO_REUSEPORT); one per vCPU of the task is a good start
    workers: int = 1
    # where the registry and key digests live: "aws" (SSM + Secrets Manager) or "file" (a local state dir)
    store: str = "aws"
    state_dir: str | None = None

    @property
    def aws(self) -> bool:
        return self.store == "aws"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> GatewayConfig:
        env = dict(os.environ if env is None else env)
        config = cls(
            port=int(env.get("EMD_GATEWAY_PORT") or 8080),
            host=env.get("EMD_GATEWAY_HOST") or "0.0.0.0",
            registry_prefix=(env.get("EMD_REGISTRY_PREFIX") or REGISTRY_PREFIX).rstrip("/"),
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"),
            registry_ttl=_float(env, "EMD_REGISTRY_TTL", 10.0),
            key_cache_ttl=min(_float(env, "EMD_KEY_CACHE_TTL", 30.0), MAX_KEY_CACHE_TTL),
            max_body_bytes=int(_float(env, "EMD_MAX_BODY_BYTES", 25 * 1024 * 1024)),
            connect_timeout=_float(env, "EMD_UPSTREAM_CONNECT_TIMEOUT", 10.0),
            read_timeout=_float(env, "EMD_UPSTREAM_READ_TIMEOUT", 300.0),
            max_streams=int(_float(env, "EMD_MAX_STREAMS", 512)),
            async_wait_seconds=_float(env, "EMD_ASYNC_WAIT_SECONDS", 540.0),
            event_loop=_choice(env, "EMD_GATEWAY_LOOP", ("uvloop", "asyncio"), "uvloop"),
            workers=max(1, int(_float(env, "EMD_GATEWAY_WORKERS", 1))),
            store=_choice(env, "EMD_STORE", ("aws", "file"), "aws"),
            state_dir=env.get("EMD_STATE_DIR") or None,
        )
        if config.store == "file" and not config.state_dir:
            raise SystemExit("EMD_STORE=file needs EMD_STATE_DIR: the directory holding registry.json")
        if config.store == "aws" and not config.region:
            raise SystemExit(
                "no AWS region: set AWS_REGION (e.g. AWS_REGION=us-east-1), or EMD_STORE=file with "
                "EMD_STATE_DIR for a gateway without AWS"
            )
        return config
