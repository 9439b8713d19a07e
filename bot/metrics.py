"""Prometheus metrics at /metrics: what an operator watches, never what a person wrote.

Counted as it happens: deliveries by outcome and permanent failures by
reason, turn latency and turns per transaction, deliveries replayed from the
inbox, how late the scheduler's last tick ran, database errors. Read at each
scrape: the outbox by channel and state, and the age of the oldest message
due but not sent. Labels are channels, outcomes and short reason codes — no
ids, names or text.

Not public: without BATON_METRICS_TOKEN only loopback requests that came
through no proxy get an answer; with it, a matching `Authorization: Bearer`.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import datetime

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.db import Database
from storage.models import OutboxMessage

log = logging.getLogger(__name__)

STATES = ("pending", "claimed", "sent", "failed")
TURN_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)


class Metrics:
    """One process's metrics, in a registry of its own (several servers may share a test process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.deliveries = Counter(
            "baton_deliveries",
            "Outbox messages handed to a platform, by outcome: sent, retried (a failure tried again later), "
            "rate_limited (a 429 or Baton's own pacing said wait), failed (for good).",
            ["channel", "outcome"],
            registry=r,
        )
        self.failures = Counter(
            "baton_delivery_failures",
            "Messages that failed for good, by a short reason code (e.g. channel_not_found).",
            ["channel", "reason"],
            registry=r,
        )
        self.turn_seconds = Histogram(
            "baton_turn_seconds",
            "From a turn being handed to the engine to its transaction committing.",
            buckets=TURN_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "baton_turn_batch_size", "Turns committed together in one transaction.", buckets=BATCH_BUCKETS, registry=r
        )
        self.replayed = Counter(
            "baton_inbox_replayed", "Deliveries acknowledged before a crash and run again from the inbox.", registry=r
        )
        self.scheduler_lag = Gauge(
            "baton_scheduler_lag_seconds", "How late the scheduler's last rhythm tick started.", registry=r
        )
        self.last_tick = Gauge(
            "baton_scheduler_last_tick_timestamp_seconds", "When the last rhythm tick started (Unix time).", registry=r
        )
        self.db_errors = Counter(
            "baton_database_errors",
            "Database errors: retried (a transient error, the transaction ran again) or unavailable (gave up).",
            ["kind"],
            registry=r,
        )
        self.outbox = Gauge(
            "baton_outbox_messages", "Outbox messages by channel and state.", ["channel", "state"], registry=r
        )
        self.oldest_pending = Gauge(
            "baton_outbox_oldest_due_seconds",
            "Age of the oldest message that is due and not sent yet, per channel (0 when none).",
            ["channel"],
            registry=r,
        )

    # -- counted as it happens ---------------------------------------------------------------------

    def delivered(self, channel: str, outcome: str, reason: str | None = None) -> None:
        self.deliveries.labels(channel, outcome).inc()
        if outcome == "failed":
            self.failures.labels(channel, reason_code(reason or "")).inc()

    def turns(self, seconds: list[float]) -> None:
        """One committed transaction of turns, each with its latency."""
        self.batch_size.observe(len(seconds))
        for value in seconds:
            self.turn_seconds.observe(value)

    def tick(self, started: float, lag: float) -> None:
        self.last_tick.set(started)
        self.scheduler_lag.set(max(0.0, lag))

    # -- read at each scrape -----------------------------------------------------------------------

    async def read_outbox(self, db: Database, now: datetime, channels: list[str]) -> None:
        """Set the outbox gauges from the database (one short read-only transaction)."""

        async def read(session: AsyncSession) -> tuple[list[tuple[str, str, int]], dict[str, datetime]]:
            channel, status, due = col(OutboxMessage.channel), col(OutboxMessage.status), col(OutboxMessage.due_at)
            counts = await session.execute(select(channel, status, func.count()).group_by(channel, status))
            oldest = await session.execute(
                select(channel, func.min(due)).where(status.in_(("pending", "claimed")), due <= now).group_by(channel)
            )
            return [(c, s, n) for c, s, n in counts], {c: due for c, due in oldest if due is not None}

        counts, oldest = await db.run(read)
        self.outbox.clear()
        for channel in channels:
            for state in STATES:
                self.outbox.labels(channel, state).set(0)
        for channel, state, count in counts:
            self.outbox.labels(channel, state).set(count)
        self.oldest_pending.clear()
        for channel in sorted({*channels, *oldest}):
            due = oldest.get(channel)
            self.oldest_pending.labels(channel).set(max(0.0, (now - _aware(due, now)).total_seconds()) if due else 0)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def reason_code(reason: str) -> str:
    """A short label for a failure reason: its first words before any detail, e.g. 'channel_not_found'."""
    head = re.split(r"[(:]", reason, maxsplit=1)[0]
    words = re.sub(r"[^a-z0-9_]+", " ", head.lower()).split()
    return "_".join(words[:4])[:40] or "unknown"


def _aware(value: datetime, like: datetime) -> datetime:
    """SQLite hands back naive UTC datetimes; compare like with like."""
    if value.tzinfo is None and like.tzinfo is not None:
        return value.replace(tzinfo=like.tzinfo)
    return value


def allowed(request: web.Request, token: str | None) -> bool:
    """Whether this request may read /metrics (see the module docstring)."""
    if token:
        given = request.headers.get("Authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())
    if any(h in request.headers for h in ("Forwarded", "X-Forwarded-For", "X-Real-IP")):
        return False
    try:
        return ipaddress.ip_address((request.remote or "").split("%")[0]).is_loopback
    except ValueError:
        return False


def handler(
    metrics: Metrics,
    db: Database,
    now: Callable[[], datetime],
    channels: Callable[[], list[str]],
    token: str | None,
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The /metrics route."""

    async def serve(request: web.Request) -> web.Response:
        if not allowed(request, token):
            return web.Response(
                status=403,
                text="Metrics are served to loopback only, or with the bearer token set in BATON_METRICS_TOKEN.\n",
            )
        try:
            await metrics.read_outbox(db, now(), channels())
        except Exception as exc:  # noqa: BLE001 - the counters are still worth serving; the gauges keep old values
            log.warning("metrics: could not read the outbox (%s)", type(exc).__name__)
        return web.Response(body=metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    return serve
