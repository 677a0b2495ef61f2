"""Gateway settings, read once from the environment."""

from __future__ import annotations

import ipaddress
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


def _port(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    if not raw.strip().isdigit() or not 1 <= int(raw) <= 65535:
        raise SystemExit(f"{name}={raw!r} is not a TCP port: give a number from 1 to 65535")
    return int(raw)


def _networks(env: dict[str, str], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    if raw.strip().lower() == "none":
        return ()
    values = tuple(v.strip() for v in raw.split(",") if v.strip())
    for value in values:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise SystemExit(
                f"{name}: {value!r} is not an IP network; give CIDRs separated by commas (e.g. 10.0.0.0/16), "
                "or 'none'"
            ) from None
    return values


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
    # upstream requests in flight (every backend, streamed or not); past it a request is refused at once
    # with 503 and Retry-After instead of waiting in a queue
    max_streams: int = 512
    # SageMaker async deployments: how long a request waits for its answer in S3. Nothing is sent meanwhile,
    # so it must end before the front gives up on a silent response: the gateway stack sets it per exposure
    # (540 s behind the ALB's 600 s idle timeout, 108 s behind CloudFront's 120 s origin read timeout)
    async_wait_seconds: float = 540.0
    # uvloop (default, where installed) or asyncio
    event_loop: str = "uvloop"
    # processes sharing the port (SO_REUSEPORT); one per vCPU of the task is a good start
    workers: int = 1
    # where the registry and key digests live: "aws" (SSM + Secrets Manager) or "file" (a local state dir)
    store: str = "aws"
    state_dir: str | None = None
    # SSM and Secrets Manager: connect and read timeout of each attempt (2 attempts), so a black-holed AWS API
    # costs seconds, not minutes
    control_plane_timeout: float = 2.0
    # while the store cannot be read, the last registry and key digests read are served for this long
    registry_max_staleness: float = 3600.0
    key_max_staleness: float = 900.0
    # longest silence while receiving a request body (408 past it)
    body_timeout: float = 30.0
    # a client that accepts no byte of its response for this long is disconnected
    client_write_timeout: float = 60.0
    # peers whose X-Forwarded-For is believed (the ALB's subnets); anyone else's is the client's own claim
    trusted_proxies: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    # a deployment with no running engine (scaled to zero): how long a non-streamed request waits for one
    # before a 503. Nothing is sent meanwhile: the stack sets it below its front's timeout, like async_wait
    cold_start_wait: float = 540.0
    # the same for a streamed request: SSE comments every keepalive_seconds keep any front's connection alive
    stream_cold_start_wait: float = 540.0
    keepalive_seconds: float = 15.0

    @property
    def aws(self) -> bool:
        return self.store == "aws"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> GatewayConfig:
        env = dict(os.environ if env is None else env)
        config = cls(
            port=_port(env, "EMD_GATEWAY_PORT", 8080),
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
            control_plane_timeout=_float(env, "EMD_CONTROL_PLANE_TIMEOUT", 2.0),
            registry_max_staleness=_float(env, "EMD_REGISTRY_MAX_STALENESS", 3600.0),
            key_max_staleness=_float(env, "EMD_KEY_MAX_STALENESS", 900.0),
            body_timeout=_float(env, "EMD_BODY_TIMEOUT", 30.0),
            client_write_timeout=_float(env, "EMD_CLIENT_WRITE_TIMEOUT", 60.0),
            trusted_proxies=_networks(env, "EMD_TRUSTED_PROXIES", ("127.0.0.0/8", "::1/128")),
            cold_start_wait=_float(env, "EMD_COLD_START_WAIT", 540.0),
            stream_cold_start_wait=_float(env, "EMD_STREAM_COLD_START_WAIT", 540.0),
            keepalive_seconds=_float(env, "EMD_SSE_KEEPALIVE_SECONDS", 15.0),
        )
        if config.store == "file" and not config.state_dir:
            raise SystemExit("EMD_STORE=file needs EMD_STATE_DIR: the directory holding registry.json")
        if config.store == "aws" and not config.region:
            raise SystemExit(
                "no AWS region: set AWS_REGION (e.g. AWS_REGION=us-east-1), or EMD_STORE=file with "
                "EMD_STATE_DIR for a gateway without AWS"
            )
        return config
