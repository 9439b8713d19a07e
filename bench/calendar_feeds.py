"""Calendar feeds: one full read of N people's feeds (fetch, parse, store) against fetching the same files.

Baton's path: `CalendarSync.run_once` over N connected feeds — the HTTP
fetches (16 at a time, one session), iCalendar parsing with recurrence
expansion off the event loop, and the away days written per person.
Baseline: what a user would otherwise script — the same N GETs with the same
session and concurrency, bodies read and thrown away (no parsing, no database).
Both talk to the same feed server, in its own process, in the same run.
Also timed: the next hour's read of the same, unchanged files (fetched,
recognised by their digest, not parsed again) — what a deployment pays
most hours.

Each feed is a realistic personal calendar (~80 events, ~25 KB): weekly
meetings as recurrences, a few all-day days off, an out-of-office day, a
floating-time event. Reported: seconds and feeds/s for both, the ratio
Baton / baseline (time, lower is better; no aim yet — this is to see it
scales), the peak Python memory of a read of 1,000 feeds against the baseline's for the same
1,000 (tracemalloc), and the process's peak resident memory before and after the full read.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import socket
import time
import tracemalloc
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, text

from bench.common import on_both_databases, seed_people
from storage.db import Database
from storage.models import CalendarFeed

NOW = datetime(2026, 11, 16, 9, 0, tzinfo=UTC)
MEMORY_FEEDS = 1000
SECRET = b"bench-calendar-secret-bench-calendar-secret"


def feed(n: int) -> bytes:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Baton bench//EN"]
    for w in range(60):  # meetings: 60 one-offs across the quarter
        day = 2 + (w * 3) % 28
        month = 11 + (w // 28)
        year = 2026 + (month - 1) // 12
        month = (month - 1) % 12 + 1
        lines += [
            "BEGIN:VEVENT",
            f"UID:m{n}-{w}@bench",
            "DTSTAMP:20261101T000000Z",
            f"DTSTART:{year}{month:02d}{day:02d}T{8 + w % 8:02d}0000Z",
            f"DTEND:{year}{month:02d}{day:02d}T{9 + w % 8:02d}0000Z",
            f"SUMMARY:Project sync {w} with a longer title and some detail",
            "DESCRIPTION:" + "Agenda item. " * 12,
            "END:VEVENT",
        ]
    for r in range(12):  # weekly recurring meetings
        lines += [
            "BEGIN:VEVENT",
            f"UID:r{n}-{r}@bench",
            "DTSTAMP:20261101T000000Z",
            f"DTSTART:202611{2 + r % 5:02d}T{9 + r % 6:02d}0000Z",
            f"DTEND:202611{2 + r % 5:02d}T{9 + r % 6:02d}3000Z",
            "RRULE:FREQ=WEEKLY;COUNT=20",
            f"SUMMARY:Weekly {r}",
            "END:VEVENT",
        ]
    for d in range(4):  # days off and an out-of-office day
        lines += [
            "BEGIN:VEVENT",
            f"UID:off{n}-{d}@bench",
            "DTSTAMP:20261101T000000Z",
            f"DTSTART;VALUE=DATE:202612{10 + d * 3:02d}",
            f"DTEND;VALUE=DATE:202612{11 + d * 3:02d}",
            "SUMMARY:Day off",
            "END:VEVENT",
        ]
    lines += [
        "BEGIN:VEVENT",
        f"UID:oof{n}@bench",
        "DTSTAMP:20261101T000000Z",
        "DTSTART:20261120T080000Z",
        "DTEND:20261120T170000Z",
        "X-MICROSOFT-CDO-BUSYSTATUS:OOF",
        "SUMMARY:Away",
        "END:VEVENT",
        "END:VCALENDAR",
        "",
    ]
    return "\r\n".join(lines).encode()


def _serve(port: int, ready: Any) -> None:
    from aiohttp import web

    bodies = [feed(n) for n in range(16)]  # sixteen distinct files, served by person number

    async def handle(request: web.Request) -> web.Response:
        return web.Response(body=bodies[int(request.match_info["n"]) % 16], content_type="text/calendar")

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/cal/{n}.ics", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        ready.set()
        await asyncio.Event().wait()

    asyncio.run(main())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def seed(db: Database, people: int, base: str) -> None:
    from dialogs.engine.sealing import Sealer

    sealer = Sealer(SECRET)

    async def work(session) -> None:
        _, ids = await seed_people(session, people, NOW)
        for start in range(0, people, 2000):
            await session.execute(
                insert(CalendarFeed),
                [
                    {
                        "person_id": pid,
                        "sealed_url": sealer.seal("calendar", f"{base}{pid}.ics", size=8064, context=str(pid)),
                        "created_at": NOW,
                    }
                    for pid in ids[start : start + 2000]
                ],
            )

    await db.run(work)


async def fetch_only(base: str, people: int, concurrency: int) -> float:
    import aiohttp

    gate = asyncio.Semaphore(concurrency)
    begin = time.perf_counter()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as http:

        async def one(n: int) -> None:
            async with gate, http.get(f"{base}{n}.ics") as response:
                await response.read()

        await asyncio.gather(*(one(n) for n in range(1, people + 1)))
    return time.perf_counter() - begin


def _peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB (Linux reports kilobytes)."""
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


async def measure(url: str, people: int) -> dict[str, Any]:
    from bot.calendars import CONCURRENCY, CalendarSync, anywhere
    from dialogs.engine.clock import FakeClock
    from dialogs.engine.sealing import Sealer

    port = _free_port()
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    server = context.Process(target=_serve, args=(port, ready), daemon=True)
    server.start()
    try:
        await asyncio.get_running_loop().run_in_executor(None, ready.wait, 30)
        base = f"http://127.0.0.1:{port}/cal/"
        db = Database(url)
        try:
            await db.migrate()
            await seed(db, people, base)
            baseline = await fetch_only(base, people, CONCURRENCY)
            tracemalloc.start()  # the baseline's memory, over the same 1,000 feeds as Baton's below
            await fetch_only(base, MEMORY_FEEDS, CONCURRENCY)
            _, baseline_peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            rss_before = _peak_rss_mb()
            clock = FakeClock(NOW)
            sync = CalendarSync(db, Sealer(SECRET), clock, allow=anywhere)  # the feeds are served on loopback
            begin = time.perf_counter()
            outcomes = await sync.run_once()  # the first read: every feed parsed
            elapsed = time.perf_counter() - begin
            rss_after = _peak_rss_mb()  # the process's high-water mark: the baseline's, or the full read's if higher
            clock.advance(hours=1, minutes=1)
            begin = time.perf_counter()
            await sync.run_once()  # an hour later, the same files: fetched, recognised, not parsed again
            hourly = time.perf_counter() - begin
            # Memory in a pass of its own over the first 1,000 feeds (tracing slows Python several times over;
            # a round holds at most ROUND feeds' days at once, so the peak does not grow with N).
            await db.run(
                lambda s: s.execute(
                    text("UPDATE calendar_feed SET checked_at = NULL, digest = NULL WHERE person_id <= :n"),
                    {"n": MEMORY_FEEDS},
                )
            )
            tracemalloc.start()
            await sync.run_once()
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            days = await db.run(lambda s: s.scalar(text("SELECT count(*) FROM leave WHERE source = 'calendar'")))
            await sync.close()
        finally:
            await db.close()
    finally:
        server.terminate()
        server.join(10)
    return {
        "people": people,
        "feed_bytes": len(feed(0)),
        "baton_seconds": round(elapsed, 2),
        "baton_feeds_per_s": round(people / elapsed),
        "fetch_only_seconds": round(baseline, 2),
        "fetch_only_feeds_per_s": round(people / baseline),
        "ratio_time_baton_vs_fetch_only": round(elapsed / baseline, 2),
        "hourly_unchanged_seconds": round(hourly, 2),
        "ratio_hourly_vs_fetch_only": round(hourly / baseline, 2),
        "baton_peak_python_mb": round(peak / 1e6, 1),
        "fetch_only_peak_python_mb": round(baseline_peak / 1e6, 1),
        "peak_rss_mb_before_baton": rss_before,
        "peak_rss_mb_after_baton_full_read": rss_after,
        "outcomes": outcomes,
        "away_stretches_stored": days,
    }


async def main(args: Any) -> dict[str, Any]:
    people = max(100, min(args.people, 50_000))
    return await on_both_databases(args, lambda url: measure(url, people), tag="bench_cal")
