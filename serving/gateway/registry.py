"""The deployment registry (read from the deployment store: SSM on AWS, a file locally), cached.

A request never waits for a refresh when there is a copy to serve: past its TTL the copy is served and one
refresh runs in the background. While the store cannot be read the last copy is served, with a warning, for
up to max_staleness; only a gateway that has no copy, or one older than that, answers 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from model_specs.registry import DEFAULT_TAG, RegistryEntry

log = logging.getLogger("emd.gateway.registry")

# an unknown model triggers a refresh, at most this often, so a fresh deployment is found at once; the
# request waits for it at most MISS_WAIT seconds
MISS_REFRESH_INTERVAL = 1.0
MISS_WAIT = 3.0
# after a failed read, the store is not asked again for this long
RETRY_AFTER_FAILURE = 2.0


class RegistryUnavailable(Exception):
    """The registry could not be read and there is no copy recent enough to serve."""


class Registry:
    def __init__(
        self,
        loader: Callable[[], dict[str, RegistryEntry]],
        ttl: float,
        run_blocking: Callable[..., Any],
        max_staleness: float = 3600.0,
    ) -> None:
        self._loader = loader
        self._ttl = ttl
        self._max_staleness = max_staleness
        self._run_blocking = run_blocking
        self._entries: dict[str, RegistryEntry] = {}
        self._loaded_at = float("-inf")
        self._attempted_at = float("-inf")
        self._failed_at = float("-inf")
        self._refresh: asyncio.Task[None] | None = None

    def _age(self) -> float:
        return time.monotonic() - self._loaded_at

    def _start_refresh(self) -> asyncio.Task[None]:
        if self._refresh is None or self._refresh.done():
            self._attempted_at = time.monotonic()
            self._refresh = asyncio.create_task(self._load())
            self._refresh.add_done_callback(lambda t: t.cancelled() or t.exception())
        return self._refresh

    async def _load(self) -> None:
        try:
            entries = await self._run_blocking(self._loader)
        except Exception as exc:
            self._failed_at = time.monotonic()
            if self._loaded_at > float("-inf"):
                log.warning(
                    "registry refresh failed (%s); serving the last known registry, read %.0f s ago",
                    type(exc).__name__,
                    self._age(),
                )
            raise RegistryUnavailable(type(exc).__name__) from exc
        self._entries, self._loaded_at = entries, time.monotonic()

    def _may_retry(self) -> bool:
        return time.monotonic() - self._failed_at >= RETRY_AFTER_FAILURE

    async def entries(self) -> dict[str, RegistryEntry]:
        age = self._age()
        if age < self._ttl:
            return self._entries
        if age < self._max_staleness:
            if self._may_retry():
                self._start_refresh()
            return self._entries
        if not self._may_retry() and (self._refresh is None or self._refresh.done()):
            raise RegistryUnavailable("the registry store is not answering")
        await asyncio.shield(self._start_refresh())
        return self._entries

    async def lookup(self, model: str) -> RegistryEntry | None:
        """'<model-id>/<tag>' or '<model-id>' (tag dev)."""
        entry = _match(await self.entries(), model)
        if (
            entry is None
            and time.monotonic() - self._attempted_at >= MISS_REFRESH_INTERVAL
            and self._may_retry()
        ):
            with contextlib.suppress(RegistryUnavailable, TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._start_refresh()), MISS_WAIT)
            entry = _match(self._entries, model)
        return entry


def _match(entries: dict[str, RegistryEntry], model: str) -> RegistryEntry | None:
    return entries.get(model) or entries.get(f"{model}/{DEFAULT_TAG}")
