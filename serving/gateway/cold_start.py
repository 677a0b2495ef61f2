"""Holding a request while its deployment starts (scaled to zero, or an engine still loading).

A backend that finds no capacity asks `retry()`: it waits (0.5 s, doubling to 5 s) and says whether to try
again, until the wait is over. A non-streaming client gets nothing meanwhile, then its answer or the 503, so
its wait (EMD_COLD_START_WAIT) ends before the front in front of the gateway gives up on a silent response
(the gateway stack sets it per exposure). A streaming client waits EMD_STREAM_COLD_START_WAIT and gets an SSE
comment every keepalive seconds meanwhile (the first one commits the 200, so a failure after it is an SSE
error event).
Only failures that mean "the request was not run" are held: nothing is ever sent to an engine twice.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

from aiohttp import web

from model_specs.registry import RegistryEntry
from serving.common.sse_relay import StreamOut

FIRST_DELAY, MAX_DELAY = 0.5, 5.0


class ColdStart:
    def __init__(
        self,
        entry: RegistryEntry,
        wait: float,
        keepalive: float,
        out: StreamOut | None,
        on_first_miss: Callable[[], None] | None = None,
    ) -> None:
        self._entry = entry
        self._started = time.monotonic()
        self._deadline = self._started + wait
        self._keepalive = keepalive
        self._next_comment = self._started + keepalive
        self._delay = FIRST_DELAY
        self._misses = 0
        self._on_first_miss = on_first_miss
        self.out = out

    async def retry(self) -> bool:
        """After an attempt that found no capacity: True once it is time to try again, False when the wait is
        over (or the streaming client has gone)."""
        if self._misses == 0 and self._on_first_miss is not None:
            self._on_first_miss()
        self._misses += 1
        now = time.monotonic()
        if now >= self._deadline:
            return False
        until = min(now + self._delay, self._deadline)
        self._delay = min(self._delay * 2, MAX_DELAY)
        while (now := time.monotonic()) < until:
            if self.out is not None and now >= self._next_comment:
                waited = now - self._started
                comment = f": waiting for {self._entry.route} to start ({waited:.0f} s)\n\n"
                if not await self.out.write(comment.encode()):
                    return False
                self._next_comment = now + self._keepalive
            limit = self._next_comment if self.out is not None else until
            await asyncio.sleep(max(0.0, min(until, limit) - now))
        return True

    @property
    def committed(self) -> bool:
        """A keep-alive comment went out: the answer is an SSE stream now, whatever happens."""
        return self.out is not None and self.out.resp is not None

    async def give_up(self, answer: web.Response) -> web.StreamResponse:
        """The answer to send when no attempt succeeded: as it is, or as an SSE error event on a stream that
        keep-alive comments already started."""
        if not self.committed:
            return answer
        assert self.out is not None
        error = json.loads(answer.body)["error"] if isinstance(answer.body, bytes) else {}
        return await self.out.fail(error.get("message", "the backend failed"), error.get("code") or "error")
