"""Caches the deployment registry (read from the deployment store: SSM on AWS, a file locally) for a few
seconds."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from model_specs.registry import DEFAULT_TAG, RegistryEntry

log = logging.getLogger("emd.gateway.registry")

# an unknown model triggers a refresh, at most this often, so a fresh deployment is found at once
MISS_REFRESH_INTERVAL = 1.0


class RegistryUnavailable(Exception):
    """The registry could not be read and there is no earlier copy to serve."""


class Registry:
    def __init__(
        self,
        loader: Callable[[], dict[str, RegistryEntry]],
        ttl: float,
        run_blocking: Callable[..., Any],
    ) -> None:
        self._loader = loader
        self._ttl = ttl
        self._run_blocking = run_blocking
        self._entries: dict[str, RegistryEntry] = {}
        self._loaded_at = float("-inf")
        self._lock = asyncio.Lock()

    async def _refresh(self, max_age: float) -> None:
        async with self._lock:
            if time.monotonic() - self._loaded_at < max_age:
                return  # another request refreshed it while we waited
            try:
                self._entries = await self._run_blocking(self._loader)
            except Exception as exc:
                if self._loaded_at == float("-inf"):
                    raise RegistryUnavailable(str(exc)) from exc
                log.exception("registry refresh failed; serving the previous entries")
            self._loaded_at = time.monotonic()

    async def entries(self) -> dict[str, RegistryEntry]:
        if time.monotonic() - self._loaded_at >= self._ttl:
            await self._refresh(self._ttl)
        return self._entries

    async def lookup(self, model: str) -> RegistryEntry | None:
        """'<model-id>/<tag>' or '<model-id>' (tag dev)."""
        entry = _match(await self.entries(), model)
        if entry is None and time.monotonic() - self._loaded_at >= MISS_REFRESH_INTERVAL:
            await self._refresh(MISS_REFRESH_INTERVAL)
            entry = _match(self._entries, model)
        return entry


def _match(entries: dict[str, RegistryEntry], model: str) -> RegistryEntry | None:
    return entries.get(model) or entries.get(f"{model}/{DEFAULT_TAG}")
