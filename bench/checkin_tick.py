"""Check-in tick for N people (due computation + outbox write) against a plain bulk INSERT of N rows.

Both write the same number of outbox rows into the same database in the same
run; the ratio (tick / baseline, medians of several repeats) is the result.
Aim: <= 2.0. Peak memory of the tick is measured with tracemalloc.
"""

from __future__ import annotations

import statistics
import time
import tracemalloc
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, insert, text

from bench.common import on_both_databases
from dialogs.checkin import invitation
from dialogs.engine.sealing import Sealer
from dialogs.services.rhythm import Conductor
from storage.db import Database
from storage.models import OutboxMessage, Person, Team

ZONES = [
    "Asia/Tokyo",
    "America/Los_Angeles",
    "Europe/Berlin",
    "Asia/Kolkata",
    "America/Sao_Paulo",
    "Australia/Sydney",
    "UTC",
    "Africa/Lagos",
]
NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


async def seed(db: Database, people: int) -> None:
    async def work(session) -> None:
        await session.execute(insert(Team), [{"name": f"Team {t}", "created_at": NOW} for t in range(20)])
        teams = [r[0] for r in await session.execute(text("SELECT id FROM team ORDER BY id"))]
        await session.execute(
            insert(Person),
            [
                {
                    "email": f"p{n}@bench.baton",
                    "name": f"Person {n}",
                    "timezone": ZONES[n % len(ZONES)],
                    "team_id": teams[n % len(teams)],
                    "created_at": NOW,
                }
                for n in range(people)
            ],
        )

    await db.run(work)


async def baseline(db: Database, ids: list[int]) -> float:
    """A plain bulk INSERT of one outbox row per person: the cheapest way to write the same rows."""
    payload = invitation("Person", "2026-W47", 5).to_dict()
    rows: list[dict[str, Any]] = [
        {
            "key": f"checkin:{pid}:2026-W47",
            "person_id": pid,
            "channel": "local",
            "address": {},
            "payload": payload,
            "kind": "checkin",
            "topic": "checkin:2026-W47",
            "unsolicited": True,
            "due_at": NOW,
            "status": "pending",
            "attempts": 0,
            "created_at": NOW,
        }
        for pid in ids
    ]
    start = time.perf_counter()
    await db.run(lambda s: s.execute(insert(OutboxMessage), rows))
    return time.perf_counter() - start


async def clear(db: Database) -> None:
    await db.run(lambda s: s.execute(delete(OutboxMessage)))


async def measure(url: str, people: int, repeat: int) -> dict[str, Any]:
    db = Database(url)
    try:
        await db.migrate()
        await seed(db, people)
        ids = [r[0] for r in await db.run(lambda s: s.execute(text("SELECT id FROM person ORDER BY id")))]
        conductor = Conductor(db, sealer=Sealer.ephemeral())
        base, tick, peaks = [], [], []
        for _ in range(repeat):
            await clear(db)
            base.append(await baseline(db, ids))
            await clear(db)
            start = time.perf_counter()
            report = await conductor.tick(NOW, force=True)
            tick.append(time.perf_counter() - start)
            written = await db.run(lambda s: s.scalar(text("SELECT count(*) FROM outbox")))
            assert report.invited == people and written == people, (report, written)
        # Memory in a separate, untimed pass: tracemalloc slows Python down several times over.
        await clear(db)
        tracemalloc.start()
        await conductor.tick(NOW, force=True)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        ratio = statistics.median(tick) / statistics.median(base)
        return {
            "people": people,
            "baseline_median_s": round(statistics.median(base), 4),
            "tick_median_s": round(statistics.median(tick), 4),
            "ratio": round(ratio, 2),
            "aim": "<= 2.0",
            "peak_memory_mib": round(max(peaks) / 2**20, 1),
        }
    finally:
        await db.close()


async def main(args) -> dict[str, Any]:
    return await on_both_databases(args, lambda url: measure(url, args.people, args.repeat), tag="bench_tick")
