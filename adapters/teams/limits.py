"""Pacing of outgoing messages within Teams' limits, in this process.

Per bot and conversation Teams allows 7 sends per second, 8 per 2 s, 60 per
30 s and 1,800 per hour; per app and tenant about 30–50 per second. A send
reserves the earliest moment every window allows (reservations are made
synchronously, so concurrent sends never pick the same slot) and then waits
for it. The tenant's rate is a calendar of slots 1/rate seconds apart, at
most one send each: a conversation held back by its own limits books a
later slot without holding up the tenant's other conversations. A wait longer than `max_wait` is not slept through: the caller gets
it back and reschedules the message instead of holding an outbox lease.
A 429 pauses its conversation for the Retry-After the service asked for.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable

CONVERSATION_WINDOWS: tuple[tuple[int, float], ...] = ((7, 1.0), (8, 2.0), (60, 30.0), (1800, 3600.0))


class TooBusy(Exception):
    """The next free slot is further away than the caller wants to wait; `wait` says how far (seconds)."""

    def __init__(self, wait: float) -> None:
        super().__init__(f"rate limited for {wait:.1f}s")
        self.wait = wait


class _Conversation:
    __slots__ = ("paused_until", "sends")

    def __init__(self) -> None:
        self.sends: deque[float] = deque()
        self.paused_until = float("-inf")


class Pacer:
    """Reserves send slots per conversation (sliding windows) and per tenant (slots 1/rate apart)."""

    def __init__(
        self,
        *,
        tenant_rate: float = 30.0,
        windows: tuple[tuple[int, float], ...] = CONVERSATION_WINDOWS,
        max_wait: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] = asyncio.sleep,
        max_conversations: int = 20_000,
    ) -> None:
        self.windows = windows
        self.horizon = max(period for _, period in windows)
        self.interval = 1.0 / tenant_rate
        self.max_wait = max_wait
        self.clock = clock
        self.sleep = sleep
        self.max_conversations = max_conversations
        self._conversations: OrderedDict[str, _Conversation] = OrderedDict()
        self._tenants: dict[str, set[int]] = {}  # booked slot numbers (time / interval) per tenant

    def reserve(self, conversation: str, tenant: str) -> float:
        """Book the earliest allowed moment for one send; return how many seconds from now it is.

        Raises TooBusy (booking nothing) when that is more than `max_wait` away.
        """
        now = self.clock()
        state = self._conversation(conversation)
        sends = state.sends
        while sends and sends[0] <= now - self.horizon:
            sends.popleft()
        at = max(now, state.paused_until, sends[-1] if sends else now)
        for count, period in self.windows:
            if len(sends) >= count:
                at = max(at, sends[-count] + period)
        booked = self._tenants.setdefault(tenant, set())
        slot = math.floor(at / self.interval)  # the slot `at` falls in, if free; else the next free one
        while slot in booked:
            slot += 1
        at = max(at, slot * self.interval)
        wait = at - now
        if wait > self.max_wait:
            raise TooBusy(wait)
        sends.append(at)
        booked.add(slot)
        if len(booked) > 4096:  # forget slots in the past
            current = math.floor(now / self.interval)
            self._tenants[tenant] = {s for s in booked if s >= current}
        return wait

    async def slot(self, conversation: str, tenant: str) -> None:
        """Wait for a send slot (see `reserve`)."""
        wait = self.reserve(conversation, tenant)
        if wait > 0:
            await self.sleep(wait)

    def pause(self, conversation: str, seconds: float) -> None:
        """Hold every send to `conversation` for `seconds` (after a 429)."""
        state = self._conversation(conversation)
        state.paused_until = max(state.paused_until, self.clock() + seconds)

    def _conversation(self, key: str) -> _Conversation:
        state = self._conversations.get(key)
        if state is None:
            state = self._conversations[key] = _Conversation()
            if len(self._conversations) > self.max_conversations:
                self._conversations.popitem(last=False)
        else:
            self._conversations.move_to_end(key)
        return state
