"""10,000 Slack DMs through the outbox against what a careful hand-written sender does, both to the same fake.

The fake (tests/fakes/slack_api.py) runs as its own process on loopback and
counts what it received. Rate limits are set very high here (each DM goes to
a different user): this measures Baton's own cost of sending, not Slack's
limits — `python -m bench outbound-limit` measures those.

- **Baseline — a careful durable sender**, the way a team would write one by
  hand: read the pending rows, render each message with `slack_sdk.models`
  blocks, post it with one shared `AsyncWebClient` (100 at a time), mark its
  row sent with one statement per message. Aim: Baton's time ≥ 1.5× faster.
- **Measured**: the same messages queued as outbox rows (untimed), drained
  by the real OutboxSender's run loop, as `baton serve` runs it, through the
  real SlackDelivery (batched claims, shared pacing, render, error mapping,
  sent rows marked in one statement per interval).
- **Limit row** (no aim): a bare loop posting pre-rendered messages, with no
  database at all — the cost of the HTTP calls alone.

A second round injects 429s (every 50th chat.postMessage, Retry-After: 1):
the baselines use slack_sdk's RateLimitErrorRetryHandler, Baton its own
Retry-After handling, which pauses the whole workspace as Slack asks. Every
run is checked for zero duplicates and zero losses.
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
from slack_sdk.models.blocks import ActionsBlock, ButtonElement, MarkdownTextObject, SectionBlock
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import delete, insert, select, text, update

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


async def careful_sender(db: Database, url: str, *, retry_429: bool) -> float:
    """The baseline: a durable sender written by hand, with care (see the module docstring)."""
    handlers = [AsyncRateLimitErrorRetryHandler(max_retry_count=5)] if retry_429 else []
    async with aiohttp.ClientSession() as session:
        client = AsyncWebClient(token=TOKEN, base_url=url, session=session, retry_handlers=handlers)
        limit = asyncio.Semaphore(CONCURRENCY)
        start = time.perf_counter()

        async def send(row_id: int, address: dict[str, Any], payload: dict[str, Any]) -> None:
            async with limit:
                blocks = [SectionBlock(text=MarkdownTextObject(text=payload["text"]))]
                if payload["choices"]:
                    buttons = [
                        ButtonElement(text=c["label"], value=c["value"], action_id=f"{payload['action']}|{n}")
                        for n, c in enumerate(payload["choices"])
                    ]
                    blocks.append(ActionsBlock(elements=buttons))
                await client.chat_postMessage(
                    channel=address["channel"],
                    text=payload["text"],
                    blocks=[b.to_dict() for b in blocks],
                    unfurl_links=False,
                    unfurl_media=False,
                )
                await db.run(
                    lambda s: s.execute(
                        update(OutboxMessage)
                        .where(OutboxMessage.id == row_id)
                        .values(status="sent", sent_at=datetime.now(UTC))
                    )
                )

        while True:
            rows = await db.run(
                lambda s: s.execute(
                    select(OutboxMessage.id, OutboxMessage.address, OutboxMessage.payload)
                    .where(OutboxMessage.status == "pending")
                    .order_by(OutboxMessage.id)
                    .limit(1000)
                )
            )
            batch = list(rows)
            if not batch:
                break
            await asyncio.gather(*(send(*row) for row in batch))
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
            bare, careful, full, checks = [], [], [], []
            with FakeProcess(*extra) as fake:
                async with aiohttp.ClientSession() as control:
                    for _ in range(repeat):
                        await fake.stats(control, reset=True)
                        bare.append(await baseline(fake.url, dms, retry_429=bool(extra)))
                        bare_stats = await fake.stats(control)
                        await queue_rows(db, dms)
                        await fake.stats(control, reset=True)
                        careful.append(await careful_sender(db, fake.url, retry_429=bool(extra)))
                        careful_stats = await fake.stats(control)
                        await queue_rows(db, dms)
                        await fake.stats(control, reset=True)
                        full.append(await through_outbox(db, fake.url, people))
                        stats = await fake.stats(control)
                        sent = await db.run(
                            lambda s: s.scalar(text("SELECT count(*) FROM outbox WHERE status = 'sent'"))
                        )
                        checks.append((bare_stats, careful_stats, stats, sent))
            ok = all(
                b["posted"] == b["distinct"] == people
                and c["posted"] == c["distinct"] == people
                and s["posted"] == s["distinct"] == people
                and s["duplicates"] == 0
                and sent == people
                for b, c, s, sent in checks
            )
            median_bare, median_careful, median_full = (statistics.median(x) for x in (bare, careful, full))
            results[label] = {
                "careful_sender_median_s": round(median_careful, 3),
                "outbox_median_s": round(median_full, 3),
                "careful_sender_msgs_per_s": round(people / median_careful),
                "outbox_msgs_per_s": round(people / median_full),
                "ratio": round(median_careful / median_full, 2),
                "aim": ">= 1.5",
                "limit_bare_loop_median_s": round(median_bare, 3),
                "limit_ratio_vs_bare_loop": round(median_bare / median_full, 2),
                "duplicates": sum(s["duplicates"] for _, _, s, _ in checks),
                "lost": sum(people - s["distinct"] for _, _, s, _ in checks),
                "rate_limited_calls": sum(s["rate_limited"] for _, _, s, _ in checks),
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
