"""Acknowledgements first: background work steps aside while a platform waits for an answer.

Slack waits for the HTTP 200 of every event and sends it again after three
seconds, so Baton acknowledges first and works after (dialogs/engine/inbox.py).
On one event loop, though, an acknowledgement takes its steps in turn with
every task that is ready — turns, deliveries, lookups — so under a burst it
waits behind the very work it hands over. The acknowledging side says "a
platform is waiting" (`acknowledging()`); the background says "after them"
(`after_acks()`) before each unit of work: a turn batch, a delivery, a turn
starting. It waits while acknowledgements are in flight, but never longer
than `most` seconds, so a steady stream of events slows the work down a
little and never starves it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

MOST = 0.02  # seconds a unit of background work waits for acknowledgements at most


class AckFirst:
    """Counts acknowledgements in flight; `after_acks()` waits until there are none, or `most` seconds."""

    def __init__(self, most: float = MOST) -> None:
        self.most = most
        self._in_flight = 0
        self._none = asyncio.Event()
        self._none.set()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @contextlib.contextmanager
    def acknowledging(self) -> Iterator[None]:
        """Around the work between a request's arrival and its acknowledgement (may nest)."""
        self._in_flight += 1
        self._none.clear()
        try:
            yield
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._none.set()

    async def after_acks(self) -> None:
        """Return at once when no acknowledgement is in flight; else when none is, or after `most` seconds."""
        if not self._in_flight:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.most):
                await self._none.wait()
