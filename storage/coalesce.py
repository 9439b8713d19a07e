"""Lookups that arrive together share one query.

When many requests need the same kind of row at the same moment (the person
behind each of fifty Slack users who just answered), asking once per request
costs fifty transactions. `Coalescer.get(key)` queues the key; a single task
fetches every queued key in one call, and keys asked for while that call is
in flight wait for the next one. One caller's key never waits for more than
one fetch ahead of it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Coalescer(Generic[K, V]):
    """`await coalescer.get(key)`: the value `fetch` found for `key`, or None; concurrent gets share fetches."""

    def __init__(self, fetch: Callable[[list[K]], Awaitable[dict[K, V]]], *, max_keys: int = 500) -> None:
        self._fetch = fetch
        self._max_keys = max_keys
        self._queued: dict[K, asyncio.Future[V | None]] = {}
        self._runner: asyncio.Task[None] | None = None

    async def get(self, key: K) -> V | None:
        future = self._queued.get(key)
        if future is None:
            future = self._queued[key] = asyncio.get_running_loop().create_future()
            if self._runner is None or self._runner.done():
                self._runner = asyncio.get_running_loop().create_task(self._run())
        return await asyncio.shield(future)  # one caller giving up does not cancel the others' answer

    async def close(self) -> None:
        """Stop fetching; whoever still waits is cancelled. A later `get` starts afresh."""
        runner, self._runner = self._runner, None
        if runner is not None and not runner.done():
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
        queued, self._queued = self._queued, {}
        for future in queued.values():
            future.cancel()

    async def _run(self) -> None:
        while self._queued:
            keys = list(self._queued)[: self._max_keys]
            futures = {key: self._queued.pop(key) for key in keys}
            try:
                found = await self._fetch(keys)
            except asyncio.CancelledError:  # closed mid-fetch: its waiters are told, not left waiting
                for future in futures.values():
                    future.cancel()
                raise
            except Exception as exc:  # noqa: BLE001 - every waiter gets the failure, as if it had asked alone
                for future in futures.values():
                    if not future.done():
                        future.set_exception(exc)
                continue
            for key, future in futures.items():
                if not future.done():
                    future.set_result(found.get(key))
