"""API keys: each deployment's key digest comes from the deployment store (Secrets Manager on AWS, a file
locally), is cached for a short TTL (so a rotated key takes effect within a minute) and is compared in
constant time."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from model_specs.registry import RegistryEntry

log = logging.getLogger("emd.gateway.auth")

NEGATIVE_TTL = 5.0  # a missing/unreadable secret is retried after this many seconds


def digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def key_from_secret_string(secret: str) -> str | None:
    """SecretString is either the key itself or JSON {"api_key": "..."}."""
    stripped = secret.strip()
    if stripped.startswith("{"):
        try:
            value = json.loads(stripped).get("api_key")
        except (ValueError, AttributeError):
            return None
        return value if isinstance(value, str) and value else None
    return stripped or None


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


class KeyStore:
    def __init__(
        self, fetch_digest: Callable[[str], bytes | None], ttl: float, run_blocking: Callable[..., Any]
    ) -> None:
        self._fetch_digest = fetch_digest
        self._ttl = ttl
        self._run_blocking = run_blocking
        self._cache: dict[str, tuple[float, bytes | None]] = {}
        self._inflight: dict[str, asyncio.Future[bytes | None]] = {}

    def _fetch(self, secret_name: str) -> bytes | None:
        try:
            return self._fetch_digest(secret_name)
        except Exception as exc:  # unreadable store: deny, never crash
            log.warning("cannot read API key %s: %s", secret_name, exc)
            return None

    async def _digest_for(self, secret_name: str) -> bytes | None:
        now = time.monotonic()
        cached = self._cache.get(secret_name)
        if cached and cached[0] > now:
            return cached[1]
        pending = self._inflight.get(secret_name)
        if pending is None:
            pending = asyncio.ensure_future(self._run_blocking(self._fetch, secret_name))
            self._inflight[secret_name] = pending
            try:
                value = await pending
            finally:
                self._inflight.pop(secret_name, None)
            self._cache[secret_name] = (
                time.monotonic() + (self._ttl if value is not None else min(self._ttl, NEGATIVE_TTL)),
                value,
            )
            return value
        return await asyncio.shield(pending)

    async def allowed(self, entry: RegistryEntry, presented: str | None) -> bool:
        if entry.public:
            return True
        if presented is None or not entry.api_key_secret_name:
            return False
        expected = await self._digest_for(entry.api_key_secret_name)
        return expected is not None and hmac.compare_digest(digest(presented), expected)
