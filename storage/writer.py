"""One SQLite writer at a time, queued in the process rather than in SQLite's busy handler.

SQLite lets one transaction write at a time (Baton begins every transaction
with BEGIN IMMEDIATE). When several wait, SQLite's busy handler makes each
sleep and try again, up to 100 ms between tries, so under load a waiter is
served late and not in order. Baton's SQLite database belongs to one
process, so its transactions queue here instead: the lock passes straight to
the next waiter, oldest first, except that urgent ones (keeping a delivery
before its acknowledgement, which a platform waits for) go ahead of the rest.
Other processes (a CLI command beside `baton serve`) still meet SQLite's own
busy timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class WriterQueue:
    """A lock handed to waiters in order, urgent waiters first."""

    def __init__(self) -> None:
        self._held = False
        self._urgent: deque[asyncio.Future[None]] = deque()
        self._normal: deque[asyncio.Future[None]] = deque()

    @asynccontextmanager
    async def turn(self, *, urgent: bool = False) -> AsyncIterator[None]:
        await self._acquire(urgent)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, urgent: bool) -> None:
        if not self._held and not self._urgent and not self._normal:
            self._held = True
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._urgent if urgent else self._normal
        queue.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release()  # it was handed over just as the waiter gave up: pass it on
            else:
                with contextlib.suppress(ValueError):  # a release may already have passed over it
                    queue.remove(waiter)
            raise

    def _release(self) -> None:
        for queue in (self._urgent, self._normal):
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    waiter.set_result(None)  # still held: ownership passes to this waiter
                    return
        self._held = False

    @property
    def waiting(self) -> int:
        return len(self._urgent) + len(self._normal)
