"""`seal-360`: what sealing anonymous answers costs a rater's turns, and the close.

Raters answer a whole 360 through the engine (nine questions with comments,
then Submit), all at once, and the campaign closes; once with Baton's sealer
(every answer encrypted and padded while drafted, one sealed row per
submission, opened at close), and once with a baseline that stores the same
drafts and submissions as plain JSON — what Baton did before answers were
sealed. The ratio is sealed ÷ plain CPU per submitted 360, and for the close.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.common import on_both_databases

RATERS = 60
COMMENT = "The release notes she wrote for the importer saved the support team a week of questions. " * 2


def plain_sealer() -> Any:
    """The baseline: the same calls, no encryption and no padding."""
    from dialogs.engine.sealing import Sealer

    class Plain(Sealer):
        def seal(self, scope: str, value: Any, *, size: int, context: str = "") -> str:
            return json.dumps(value, ensure_ascii=False)

        def open(self, scope: str, sealed: str, *, context: str = "") -> Any:
            return json.loads(sealed)

    return Plain.ephemeral()


async def one_run(url: str, sealed: bool) -> dict[str, Any]:
    from sqlalchemy import insert, select

    from bot.core import Core
    from dialogs import all_dialogs
    from dialogs.engine.clock import FakeClock
    from dialogs.engine.messages import Inbound, Sender
    from dialogs.engine.sealing import Sealer
    from dialogs.services.rhythm import Conductor
    from storage.db import Database
    from storage.models import Campaign360, Person, Rater360

    now = datetime(2026, 12, 1, 10, tzinfo=UTC)
    clock = FakeClock(now)
    db = Database(url)
    await db.migrate()
    sealer = Sealer.ephemeral() if sealed else plain_sealer()

    async def seed(session: Any) -> tuple[int, list[int]]:
        people = [
            {"email": f"r{n}@bench", "name": f"Rater {n}", "timezone": "UTC", "created_at": now} for n in range(RATERS)
        ]
        await session.execute(
            insert(Person), [*people, {"email": "s@bench", "name": "Sam Subject", "timezone": "UTC", "created_at": now}]
        )
        found = {p.email: p.id for p in (await session.execute(select(Person))).scalars()}
        campaign = Campaign360(
            subject_id=found["s@bench"],
            created_by_id=found["s@bench"],
            status="open",
            opens_at=now,
            closes_at=now + timedelta(days=7),
            created_at=now,
        )
        session.add(campaign)
        await session.flush()
        ids = [found[f"r{n}@bench"] for n in range(RATERS)]
        await session.execute(
            insert(Rater360), [{"campaign_id": campaign.id, "rater_id": i, "group": "peer"} for i in ids]
        )
        return campaign.id, ids

    class Drop:
        channel = "local"

        def limits(self, address: Any) -> None:
            return None

        async def deliver(self, message: Any, pace: Any = None) -> None:
            return None

    try:
        campaign_id, ids = await db.run(seed)
        core = Core.assemble(db, all_dialogs(), sealer=sealer, clock=clock, deliveries=[Drop()])
        script = [f"360 answer {campaign_id}"]
        for n in range(6):
            script += [str(n % 5 + 1), COMMENT]
        script += [COMMENT, COMMENT, "Submit"]

        async def rater(person_id: int) -> None:
            for text in script:
                inbound = Inbound(
                    Sender("local", str(person_id)), {"person": person_id}, text=text, event_id=uuid.uuid4().hex
                )
                await core.engine.handle(inbound, person_id=person_id)

        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.gather(*(rater(i) for i in ids))
        await core.sender.settle()
        turn_cpu, turn_wall = time.process_time() - cpu, time.perf_counter() - wall
        clock.set(now + timedelta(days=7, minutes=1))
        cpu = time.process_time()
        report = await Conductor(db, sealer=sealer).tick(clock.now())
        close_cpu = time.process_time() - cpu
        await core.sender.settle()
        assert report.reviews >= 1
        return {
            "cpu_ms_per_submitted_360": round(turn_cpu / RATERS * 1000, 2),
            "cpu_ms_per_turn": round(turn_cpu / RATERS / len(script) * 1000, 3),
            "wall_s": round(turn_wall, 2),
            "close_cpu_ms": round(close_cpu * 1000, 1),
        }
    finally:
        await db.close()


async def measure(url: str) -> dict[str, Any]:
    from storage.db import Database

    plain = await one_run(url, sealed=False)
    # a fresh schema for the second run: drop everything the first one wrote
    db = Database(url)
    from storage.models import metadata

    async with db.engine.begin() as conn:
        await conn.run_sync(metadata.drop_all)
        await conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    await db.close()
    sealed = await one_run(url, sealed=True)
    return {
        "raters": RATERS,
        "baseline_plain_json": plain,
        "baton_sealed": sealed,
        "ratio_turns": round(sealed["cpu_ms_per_submitted_360"] / plain["cpu_ms_per_submitted_360"], 3),
        "ratio_close": round(sealed["close_cpu_ms"] / max(plain["close_cpu_ms"], 0.1), 2),
        "sealed_extra_cpu_ms_per_turn": round(sealed["cpu_ms_per_turn"] - plain["cpu_ms_per_turn"], 3),
    }


async def main(args: Any) -> dict[str, Any]:
    return await on_both_databases(args, measure, tag="seal360")
