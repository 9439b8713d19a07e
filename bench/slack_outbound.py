"""10,000 Slack DMs through the outbox against a bare AsyncWebClient loop, both to the same fake Web API.

The fake (tests/fakes/slack_api.py) runs as its own process on loopback and
counts what it received. Baseline: one AsyncWebClient with one shared aiohttp
session posting the same, pre-rendered messages with bounded concurrency.
Measured: the same messages queued as outbox rows (untimed), then drained by
the real OutboxSender's run loop, as `baton serve` runs it, through the real
SlackDelivery (claims in batches, render, rate limits, error mapping, one
update per batch for the rows sent). Ratio = measured throughput /
baseline throughput (medians of the repeats); aim >= 0.8. Both runs are
checked for zero duplicates and zero losses.

A second round injects 429s (every 50th chat.postMessage, Retry-After: 1):
the baseline uses slack_sdk's RateLimitErrorRetryHandler, Baton its own
Retry-After handling, which pauses the whole workspace as Slack asks.

The workspace rate limit is set very high here (each DM goes to a different
user, so the 1/s per-channel limit never binds either): this measures
Baton's overhead, not Slack's limits.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import delete, insert, text

from adapters.slack.delivery import SlackDelivery
from adapters.slack.render import render
from bench.common import on_both_databases
from bot.outbox import OutboxSender
from dialogs.checkin import invitation
from storage.db import Database
from storage.models import OutboxMessage

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "xoxb-bench-token"
TEAM = "T0BENCH"
NOW = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)
CONCURRENCY = 100  # aiohttp's default connection limit per session, which both sides share
RATE_LIMIT_EVERY = 50


class FakeProcess:
    """The fake Slack Web API in its own process; `url` once started."""

    def __init__(self, *extra: str) -> None:
        self.extra = extra
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""

    def __enter__(self) -> FakeProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.fakes.slack_api", "--token", TOKEN, *self.extra],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        port = int(self.proc.stdout.readline().strip())
        self.url = f"http://127.0.0.1:{port}/api/"
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)

    async def stats(self, session: aiohttp.ClientSession, reset: bool = False) -> dict[str, Any]:
        async with session.post(
            self.url + ("_reset" if reset else "_stats"), headers={"Authorization": f"Bearer {TOKEN}"}
        ) as response:
            return await response.json()


def messages(people: int) -> list[tuple[str, Any]]:
    """(user id, Reply) per DM: the check-in invitation, as the rhythm sends it."""
    return [(f"U{n:07d}", invitation(f"Person{n}", "2026-W47", 5)) for n in range(people)]


async def baseline(url: str, dms: list[tuple[str, Any]], *, retry_429: bool) -> float:
    """A bare loop: one AsyncWebClient, one session, bounded concurrency, pre-rendered blocks."""
    rendered = [(user, render(reply)[0]) for user, reply in dms]
    handlers = [AsyncRateLimitErrorRetryHandler(max_retry_count=5)] if retry_429 else []
    async with aiohttp.ClientSession() as session:
        client = AsyncWebClient(token=TOKEN, base_url=url, session=session, retry_handlers=handlers)
        queue = iter(rendered)
        start = time.perf_counter()

        async def worker() -> None:
            for user, message in queue:
                await client.chat_postMessage(
                    channel=user, text=message.text, blocks=message.blocks, unfurl_links=False, unfurl_media=False
                )

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        return time.perf_counter() - start


async def queue_rows(db: Database, dms: list[tuple[str, Any]]) -> None:
    rows = [
        {
            "key": f"bench:{user}",
            "person_id": None,
            "channel": "slack",
            "address": {"team": TEAM, "channel": user, "user": user},
            "payload": reply.to_dict(),
            "kind": "checkin",
            "unsolicited": False,
            "due_at": NOW,
            "status": "pending",
            "attempts": 0,
            "created_at": NOW,
        }
        for user, reply in dms
    ]
    await db.run(lambda s: s.execute(delete(OutboxMessage)))
    for start in range(0, len(rows), 2000):
        chunk = rows[start : start + 2000]
        await db.run(lambda s, chunk=chunk: s.execute(insert(OutboxMessage), chunk))


async def through_outbox(db: Database, url: str, count: int) -> float:
    """Drain `count` queued rows through the real sender and Slack delivery; seconds until all are sent."""
    async with aiohttp.ClientSession() as session:
        client = AsyncWebClient(base_url=url, session=session, timeout=30)

        async def token_for(team: str | None, enterprise: str | None) -> str:
            return TOKEN

        delivery = SlackDelivery(client, token_for, workspace_rate=1_000_000, workspace_burst=1_000_000)
        sender = OutboxSender(db, [delivery], poll_interval=0.05)
        stop = asyncio.Event()
        start = time.perf_counter()
        running = asyncio.create_task(sender.run(stop))  # the sender as `baton serve` runs it
        deadline = start + 600
        while time.perf_counter() < deadline and not running.done():
            await asyncio.sleep(0.05)
            left = await db.run(lambda s: s.scalar(text("SELECT count(*) FROM outbox WHERE status <> 'sent'")))
            if not left:
                break
        elapsed = time.perf_counter() - start
        stop.set()
        await running
        return elapsed


async def measure(url: str, people: int, repeat: int) -> dict[str, Any]:
    dms = messages(people)
    db = Database(url)
    results: dict[str, Any] = {"people": people, "concurrency": CONCURRENCY}
    try:
        await db.migrate()
        for label, extra in (("plain", ()), ("with_429s", ("--rate-limit-every", str(RATE_LIMIT_EVERY)))):
            base, full, checks = [], [], []
            with FakeProcess(*extra) as fake:
                async with aiohttp.ClientSession() as control:
                    for _ in range(repeat):
                        await fake.stats(control, reset=True)
                        base.append(await baseline(fake.url, dms, retry_429=bool(extra)))
                        base_stats = await fake.stats(control)
                        await queue_rows(db, dms)
                        await fake.stats(control, reset=True)
                        full.append(await through_outbox(db, fake.url, people))
                        stats = await fake.stats(control)
                        sent = await db.run(
                            lambda s: s.scalar(text("SELECT count(*) FROM outbox WHERE status = 'sent'"))
                        )
                        checks.append((base_stats, stats, sent))
            ok = all(
                b["posted"] == b["distinct"] == people
                and s["posted"] == s["distinct"] == people
                and s["duplicates"] == 0
                and sent == people
                for b, s, sent in checks
            )
            median_base, median_full = statistics.median(base), statistics.median(full)
            results[label] = {
                "baseline_median_s": round(median_base, 3),
                "outbox_median_s": round(median_full, 3),
                "baseline_msgs_per_s": round(people / median_base),
                "outbox_msgs_per_s": round(people / median_full),
                "ratio": round(median_base / median_full, 2),
                "aim": ">= 0.8",
                "duplicates": sum(s["duplicates"] for _, s, _ in checks),
                "lost": sum(people - s["distinct"] for _, s, _ in checks),
                "rate_limited_calls": sum(s["rate_limited"] for _, s, _ in checks),
                "exactly_once": ok,
            }
        return results
    finally:
        await db.close()


async def main(args) -> dict[str, Any]:
    people = min(args.people, 20_000)
    repeat = max(1, min(args.repeat, 5))
    results = await on_both_databases(args, lambda url: measure(url, people, repeat), tag="bench_slack_out")
    return {"note": "workspace rate limit set to 1e6/s for the bench (each DM goes to a different user)", **results}
