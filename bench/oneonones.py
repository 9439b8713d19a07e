"""1:1 agendas for N people (one manager to every eight): the scheduler gathering and sending every pair's
agenda the day before, against the same reads and writes done plainly.

All pairs meet at the same moment (the default rhythm: Tuesday 10:00 on the manager's clock, everyone in
one zone), which is the worst case: every agenda falls due in the same tick. Baton builds at most
`AGENDAS_PER_TICK` per tick, so this measures the ticks until every agenda is queued.

Baseline, measured in the same run on the same data: what a script doing the job without Baton would do —
for each pair, the same rows read with one plain query per source (check-ins with their answers, goals,
feedback requests, tool plans, kudos), then one bulk INSERT of the talking points and of two outbox rows
per pair. The ratio (Baton / baseline) is the result; aim <= 3.0. Also reported: an idle tick (nothing due)
with all pairs present — what every minute costs — and the peak memory of a tick building agendas
(tracemalloc, measured apart from the timing).
"""

from __future__ import annotations

import statistics
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, text, update

from bench.common import on_both_databases, seed_people
from dialogs.checkin import DEFAULT_QUESTIONS
from dialogs.common.cadence import FIRST_AFTER
from dialogs.engine.sealing import Sealer
from dialogs.services.oneonones import AGENDAS_PER_TICK
from dialogs.services.rhythm import Conductor
from storage.db import Database
from storage.models import CheckinAnswer, CheckinRun, OutboxMessage, Person, TalkingPoint

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)  # Friday; new pairs first meet on Tuesday 24 November
FIRST = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)  # 10:00 in Berlin
TEAM_SIZE = 8


async def seed(db: Database, people: int) -> int:
    """People in Berlin, every eighth the manager of the next seven, each report with two check-ins."""

    async def work(session: Any) -> int:
        team, ids = await seed_people(session, people, NOW)
        # Digests on Thursdays, so the agenda ticks on Monday measure the 1:1s, not a digest window.
        await session.execute(text("UPDATE team SET digest_weekday = 3 WHERE id = :team"), {"team": team})
        reports = [(pid, ids[i - i % TEAM_SIZE]) for i, pid in enumerate(ids) if i % TEAM_SIZE]
        for start in range(0, len(reports), 2000):
            chunk = reports[start : start + 2000]
            for pid, manager in chunk:
                await session.execute(update(Person).where(Person.id == pid).values(manager_id=manager))
        runs = []
        for pid, _ in reports:
            for week, period in ((8, "2026-W46"), (1, "2026-W47")):
                runs.append(
                    {
                        "person_id": pid,
                        "period": period,
                        "questions": [dict(q) for q in DEFAULT_QUESTIONS],
                        "status": "answered",
                        "started_at": NOW - timedelta(days=week),
                        "answered_at": NOW - timedelta(days=week),
                    }
                )
        for start in range(0, len(runs), 2000):
            await session.execute(insert(CheckinRun), runs[start : start + 2000])
        run_ids = [r[0] for r in await session.execute(text("SELECT id FROM checkin_run ORDER BY id"))]
        answers = [
            {"run_id": run_id, "question_id": q, "text": t, "number": n, "updated_at": NOW}
            for run_id in run_ids
            for q, t, n in (
                ("blockers", "Waiting on the staging database", None),
                ("pulse", None, 3.0),
                ("priorities", "Ship the billing export", None),
                ("needs", "A decision on the vendor", None),
            )
        ]
        for start in range(0, len(answers), 4000):
            await session.execute(insert(CheckinAnswer), answers[start : start + 4000])
        return len(reports)

    return await db.run(work)


SOURCES = (
    "SELECT r.id, a.question_id, a.text, a.number FROM checkin_run r JOIN checkin_answer a ON a.run_id = r.id "
    "WHERE r.person_id = :report AND r.status = 'answered' AND r.answered_at >= :since",
    "SELECT id, title, rag FROM goal WHERE owner_id = :report AND status = 'active'",
    "SELECT id, topic FROM feedback_request WHERE status = 'open' AND ((requester_id = :report AND responder_id = "
    ":manager) OR (requester_id = :manager AND responder_id = :report))",
    "SELECT id, tool_id FROM tool_plan WHERE person_id = :report AND status IN ('planned', 'asked')",
    "SELECT id, public FROM feedback_entry WHERE to_id = :report AND kind = 'kudos' AND created_at >= :since",
)


async def baseline(db: Database) -> float:
    """The same reads, plainly, and the same writes in bulk (talking points, two messages a pair)."""

    async def work(session: Any) -> None:
        pairs = list(await session.execute(text("SELECT id, manager_id, report_id FROM one_on_one")))
        since = FIRST - timedelta(weeks=5)
        points, messages = [], []
        for pair_id, manager, report in pairs:
            found = []
            for query in SOURCES:
                found += list(
                    await session.execute(text(query), {"report": report, "manager": manager, "since": since})
                )
            points += [
                {
                    "pair_id": pair_id,
                    "source": "bench",
                    "ref": f"bench:{pair_id}:{i}",
                    "text": str(row[2]),
                    "created_at": NOW,
                }
                for i, row in enumerate(found[:4])
            ]
            for person in (manager, report):
                messages.append(
                    {
                        "key": f"bench-agenda:{pair_id}:{person}",
                        "person_id": person,
                        "channel": "local",
                        "address": {},
                        "payload": {"text": "Agenda", "card": {"lines": [p["text"] for p in points[-4:]]}},
                        "kind": "agenda",
                        "due_at": FIRST - timedelta(days=1),
                        "created_at": NOW,
                    }
                )
        for start in range(0, len(points), 2000):
            await session.execute(insert(TalkingPoint), points[start : start + 2000])
        for start in range(0, len(messages), 2000):
            await session.execute(insert(OutboxMessage), messages[start : start + 2000])

    started = time.perf_counter()
    await db.run(work)
    elapsed = time.perf_counter() - started

    async def undo(session: Any) -> None:
        await session.execute(text("DELETE FROM talking_point WHERE source = 'bench'"))
        await session.execute(text("DELETE FROM outbox WHERE key LIKE 'bench-agenda:%'"))

    await db.run(undo)
    return elapsed


async def run(url: str, people: int, repeat: int) -> dict[str, Any]:
    db = Database(url)
    try:
        await db.migrate()
        return await _run(db, people, repeat)
    finally:
        await db.close()


async def _run(db: Database, people: int, repeat: int) -> dict[str, Any]:
    reports = await seed(db, people)
    conductor = Conductor(db, sealer=Sealer.ephemeral())
    await conductor.tick(NOW)  # the pairs get their rhythm (and the check-in invitations go out)
    idle = []
    for n in range(max(3, repeat)):
        started = time.perf_counter()
        await conductor.tick(NOW + timedelta(hours=1, minutes=n))
        idle.append(time.perf_counter() - started)
    base = statistics.median([await baseline(db) for _ in range(repeat)])
    due = FIRST - timedelta(days=1)
    ticks, busiest = 0, 0.0
    started = time.perf_counter()
    while True:
        tick_started = time.perf_counter()
        report = await conductor.tick(due + timedelta(minutes=ticks))
        busiest = max(busiest, time.perf_counter() - tick_started)
        ticks += 1
        queued = await db.run(lambda s: s.scalar(text("SELECT count(*) FROM outbox WHERE topic = '1on1-agenda'")))
        if queued >= 2 * reports or report.one_on_ones == 0 or ticks > 2 * reports // AGENDAS_PER_TICK + 5:
            break
    total = time.perf_counter() - started
    # Memory apart from the timing (tracemalloc slows Python down): one more busy tick, a fortnight on.
    tracemalloc.start()
    await conductor.tick(due + timedelta(weeks=2))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {
        "pairs": reports,
        "agendas_queued": queued,
        "ticks": ticks,
        "baton_s": round(total, 3),
        "baseline_s": round(base, 3),
        "ratio": round(total / base, 2),
        "aim": "<= 3.0",
        "busiest_tick_s": round(busiest, 3),
        "idle_tick_s": round(statistics.median(idle), 4),
        "peak_mib": round(peak / 2**20, 1),
        "first_after_days": FIRST_AFTER.days,
    }


async def main(args: Any) -> dict[str, Any]:
    people = min(args.people, 4000)  # each report carries two check-ins: 4,000 people seed ~28,000 rows
    return await on_both_databases(args, lambda url: run(url, people, args.repeat), tag="bench_1on1")
