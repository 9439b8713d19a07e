"""SQLite transactions take turns in the process: in arrival order, urgent ones (acknowledgements) first."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import Database
from storage.writer import WriterQueue


async def test_sqlite_transactions_run_in_arrival_order_with_urgent_ones_first(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'w.db'}")
    try:
        await db.run(lambda s: s.execute(text("CREATE TABLE seen (who TEXT)")))
        release = asyncio.Event()

        async def hold(session) -> None:
            await session.execute(text("INSERT INTO seen VALUES ('holder')"))
            await release.wait()

        def write(who: str):
            return lambda session: session.execute(text("INSERT INTO seen VALUES (:who)"), {"who": who})

        holder = asyncio.create_task(db.run(hold))
        await asyncio.sleep(0.05)
        queued = []
        for n in range(5):
            queued.append(asyncio.create_task(db.run(write(f"turn {n}"))))
            await asyncio.sleep(0.01)
        queued.append(asyncio.create_task(db.run(write("ack"), urgent=True)))
        await asyncio.sleep(0.05)
        release.set()
        await asyncio.gather(holder, *queued)
        order = [row[0] for row in await db.run(lambda s: s.execute(text("SELECT who FROM seen ORDER BY rowid")))]
        assert order == ["holder", "ack", *(f"turn {n}" for n in range(5))]
    finally:
        await db.close()


async def test_a_waiter_that_gives_up_leaves_the_lock_to_the_next() -> None:
    queue = WriterQueue()
    ran: list[str] = []

    async def take(who: str, *, urgent: bool = False) -> None:
        async with queue.turn(urgent=urgent):
            ran.append(who)
            await asyncio.sleep(0)

    async with queue.turn():
        quitter = asyncio.create_task(take("quitter", urgent=True))
        patient = asyncio.create_task(take("patient"))
        await asyncio.sleep(0)
        quitter.cancel()
        await asyncio.sleep(0)
    await patient
    assert ran == ["patient"] and queue.waiting == 0 and quitter.cancelled()


async def test_a_waiter_cancelled_just_as_it_is_handed_the_lock_passes_it_on() -> None:
    queue = WriterQueue()
    ran: list[str] = []

    async def take(who: str) -> None:
        async with queue.turn():
            ran.append(who)

    first = asyncio.create_task(take("first"))
    second = asyncio.create_task(take("second"))
    async with queue.turn():
        await asyncio.sleep(0)  # both are waiting now
    first.cancel()  # the lock was handed to `first`, which has not run yet
    await asyncio.gather(first, second, return_exceptions=True)
    assert ran == ["second"] and first.cancelled()
    async with queue.turn():  # and it is free again
        pass


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.booleans(), st.booleans(), st.integers(min_value=0, max_value=3)),
        min_size=1,
        max_size=25,
    )
)
def test_one_holder_at_a_time_and_every_patient_waiter_gets_its_turn(plan: list[tuple[bool, bool, int]]) -> None:
    """Waiters (urgent or not, some giving up after a few steps) never overlap, every one that does not give
    up runs, and the lock ends free."""

    async def scenario() -> None:
        queue = WriterQueue()
        inside: list[int] = []
        ran: list[int] = []
        overlap = False

        async def waiter(n: int, urgent: bool) -> None:
            nonlocal overlap
            async with queue.turn(urgent=urgent):
                overlap |= bool(inside)
                inside.append(n)
                ran.append(n)
                try:
                    await asyncio.sleep(0)
                finally:
                    inside.remove(n)

        tasks: list[tuple[asyncio.Task[None], bool, int]] = []
        for n, (urgent, gives_up, _) in enumerate(plan):
            tasks.append((asyncio.create_task(waiter(n, urgent)), gives_up, plan[n][2]))
        for step in range(4):
            await asyncio.sleep(0)
            for task, gives_up, when in tasks:
                if gives_up and when == step:
                    task.cancel()
        await asyncio.gather(*(task for task, _, _ in tasks), return_exceptions=True)
        assert not overlap
        assert all(n in ran for n, (task, _, _) in enumerate(tasks) if not task.cancelled())
        assert queue.waiting == 0
        async with queue.turn():  # nothing left holding it
            pass

    asyncio.run(scenario())


SLOW_QUERY = "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 3000000) SELECT count(*) FROM c"


async def test_a_caller_cancelled_inside_a_driver_call_leaves_the_file_free(tmp_path: Path) -> None:
    """Found by CI (a Teams test's teardown waited 30 s on 'database is locked'): a task cancelled while
    aiosqlite ran a statement left the connection holding SQLite's write lock even after the engine was
    closed. The transaction now runs to its end; the caller still gets CancelledError, and nothing is kept."""
    path = tmp_path / "cancel.db"
    db = Database(f"sqlite+aiosqlite:///{path}")
    await db.run(lambda s: s.execute(text("CREATE TABLE t (x INTEGER)")))

    async def work(session: AsyncSession) -> None:
        await session.execute(text("INSERT INTO t VALUES (1)"))
        await session.execute(text(SLOW_QUERY))  # about a second inside the driver
        raise RuntimeError("rolled back")  # what a cancelled turn amounts to: its writes are not kept

    task = asyncio.create_task(db.run(work))
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await db.close()
    raw = sqlite3.connect(path, timeout=0.5, isolation_level=None)
    try:
        raw.execute("BEGIN IMMEDIATE")  # 'database is locked' after half a second before the fix
        assert raw.execute("SELECT count(*) FROM t").fetchone() == (0,)
        raw.execute("ROLLBACK")
    finally:
        raw.close()
