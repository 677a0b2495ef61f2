"""API keys: each deployment's key digest comes from the deployment store (Secrets Manager on AWS, a file
locally), is cached for a short TTL (so a rotated key takes effect within a minute) and is compared in
constant time.

An outage of the store never turns a valid key into a 401: a key matching the last digest read keeps working
for up to max_staleness (a refresh runs in the background, failures are logged); a key that cannot be checked
(never read, or not matching a digest that may be out of date) gets UNAVAILABLE, which the gateway answers
with 503.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from model_specs.registry import RegistryEntry

log = logging.getLogger("emd.gateway.auth")

NEGATIVE_TTL = 5.0  # a missing secret is looked up again after this many seconds
RETRY_AFTER_FAILURE = 5.0  # after a failed read of a secret, the store is not asked again for this long
MAX_KEY_CHARS = 1024


class Verdict(enum.Enum):
    ALLOWED = "allowed"
    DENIED = "denied"
    UNAVAILABLE = "unavailable"  # the key store cannot be read now


class InvalidAuthorization(ValueError):
    """The Authorization header is not 'Bearer <printable ASCII key>'."""


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
    """The key of 'Authorization: Bearer <key>'; None without one. InvalidAuthorization for a key that is not
    printable ASCII (aiohttp hands undecodable header bytes over as surrogates) or absurdly long."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    if not (token.isascii() and token.isprintable()) or len(token) > MAX_KEY_CHARS:
        raise InvalidAuthorization(
            f"the API key must be printable ASCII of at most {MAX_KEY_CHARS} characters, sent as "
            "'Authorization: Bearer <key>'"
        )
    return token


@dataclass
class _Known:
    digest: bytes | None  # None: the store has no such secret
    read_at: float


class KeyStore:
    def __init__(
        self,
        fetch_digest: Callable[[str], bytes | None],
        ttl: float,
        run_blocking: Callable[..., Any],
        max_staleness: float = 900.0,
    ) -> None:
        """fetch_digest: the store's key_digest (None for no such secret, KeyUnavailable or any other error
        when the store cannot be read); it blocks, so it runs through run_blocking."""
        self._fetch_digest = fetch_digest
        self._ttl = ttl
        self._max_staleness = max_staleness
        self._run_blocking = run_blocking
        self._known: dict[str, _Known] = {}
        self._failed_at: dict[str, float] = {}
        self._reads: dict[str, asyncio.Task[bytes | None]] = {}

    def _read(self, name: str) -> asyncio.Task[bytes | None]:
        """One read of the secret at a time; every caller shares it."""
        task = self._reads.get(name)
        if task is None or task.done():
            task = asyncio.create_task(self._load(name))
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
            self._reads[name] = task
        return task

    async def _load(self, name: str) -> bytes | None:
        try:
            value = await self._run_blocking(self._fetch_digest, name)
        except Exception as exc:
            self._failed_at[name] = time.monotonic()
            known = self._known.get(name)
            if known is not None and known.digest is not None:
                log.warning(
                    "cannot read API key %s (%s); serving the last known digest, read %.0f s ago",
                    name,
                    type(exc).__name__,
                    time.monotonic() - known.read_at,
                )
            else:
                log.warning("cannot read API key %s (%s)", name, type(exc).__name__)
            raise
        self._known[name] = _Known(value, time.monotonic())
        self._failed_at.pop(name, None)
        return value

    def _recently_failed(self, name: str) -> bool:
        return time.monotonic() - self._failed_at.get(name, float("-inf")) < RETRY_AFTER_FAILURE

    async def check(self, entry: RegistryEntry, presented: str | None) -> Verdict:
        if entry.public:
            return Verdict.ALLOWED
        if presented is None or not entry.api_key_secret_name:
            return Verdict.DENIED
        name, offered = entry.api_key_secret_name, digest(presented)
        known = self._known.get(name)
        now = time.monotonic()
        if known is not None:
            age = now - known.read_at
            if age < (self._ttl if known.digest is not None else min(self._ttl, NEGATIVE_TTL)):
                return _compare(offered, known.digest)
            if known.digest is not None and age < self._max_staleness and _matches(offered, known.digest):
                if not self._recently_failed(name):
                    self._read(name)  # refreshed in the background; this request goes on at once
                return Verdict.ALLOWED
        # nothing usable, or a key that the last digest does not open: only the store can tell
        if self._recently_failed(name):
            return Verdict.UNAVAILABLE
        try:
            value = await asyncio.shield(self._read(name))
        except Exception:
            return Verdict.UNAVAILABLE
        return _compare(offered, value)

    async def allowed(self, entry: RegistryEntry, presented: str | None) -> bool:
        return await self.check(entry, presented) is Verdict.ALLOWED


def _matches(offered: bytes, expected: bytes) -> bool:
    return hmac.compare_digest(offered, expected)


def _compare(offered: bytes, expected: bytes | None) -> Verdict:
    return Verdict.ALLOWED if expected is not None and _matches(offered, expected) else Verdict.DENIED
