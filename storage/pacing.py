"""Send slots of one shared platform budget, taken from the database a block at a time.

A budget (a Slack workspace's rate, a Teams tenant's) is a GCRA: one row
holds the "theoretical arrival time" of the next send. Taking `want` slots
locks that row (`FOR UPDATE` on PostgreSQL; SQLite's write lock serializes
anyway), lays the slots out `1/rate` apart from there — never before now,
never inside a pause, never beyond `now + horizon` — and moves the row on.
Every replica takes its slots from the same row, so together they never go
over the rate, whatever each of them does in between.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.models import SendPace
from storage.queries import insert_ignore


@dataclass(frozen=True, slots=True)
class Slots:
    """Send times granted (seconds since the epoch, ascending), and the earliest one after them."""

    times: list[float]
    next_free: float
    paused_until: float


async def _row(session: AsyncSession, scope: str) -> tuple[float, float]:
    """(next_at, paused_until) of `scope`, locked until the transaction ends; created on first use."""
    await insert_ignore(session, SendPace, scope=scope, next_at=0.0, paused_until=0.0)
    row = (
        await session.execute(
            select(col(SendPace.next_at), col(SendPace.paused_until))
            .where(col(SendPace.scope) == scope)
            .with_for_update()
        )
    ).one()
    return float(row[0]), float(row[1])


async def take_slots(
    session: AsyncSession, scope: str, *, rate: float, burst: int, want: int, now: float, horizon: float
) -> Slots:
    """Take up to `want` send slots of `scope` no later than `now + horizon` (fewer, or none, when the
    budget is spoken for that far ahead); `next_free` says when the next slot after them would be."""
    tat, paused = await _row(session, scope)
    interval = 1.0 / rate
    tolerance = (max(1, burst) - 1) * interval
    times: list[float] = []
    while len(times) < want:
        at = max(now, tat - tolerance, paused)
        if at > now + horizon:
            break
        times.append(at)
        tat = max(tat, at) + interval
    if times:
        await session.execute(update(SendPace).where(col(SendPace.scope) == scope).values(next_at=tat))
    return Slots(times, max(now, tat - tolerance, paused), paused)


async def pause(session: AsyncSession, scope: str, until: float) -> None:
    """No slot of `scope` before `until`, for every replica (the platform answered 429)."""
    _, paused = await _row(session, scope)
    if until > paused:
        await session.execute(update(SendPace).where(col(SendPace.scope) == scope).values(paused_until=until))
