"""The aiohttp application: one server for every adapter, plus health and readiness.

`Baton` holds the running parts (database, engine, outbox sender) for one
process — passed around explicitly, never a global.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta

from aiohttp import web

from bot.config import Settings
from bot.outbox import Delivery, LocalDelivery, OutboxSender
from bot.scheduler import Scheduler
from dialogs import all_dialogs
from dialogs.clock import Clock, FileClock, SystemClock
from dialogs.engine import Engine
from dialogs.rhythm import Conductor
from storage.db import Database

log = logging.getLogger(__name__)

BATON_KEY = web.AppKey("baton", object)


@dataclass
class Baton:
    """The parts of one running Baton process."""

    settings: Settings
    db: Database
    engine: Engine
    sender: OutboxSender
    clock: Clock
    conductor: Conductor
    tasks: list[asyncio.Task] = field(default_factory=list)
    scheduler: Scheduler | None = None
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    def build(
        cls, settings: Settings, *, clock: Clock | None = None, deliveries: list[Delivery] | None = None
    ) -> Baton:
        if clock is None:
            clock = FileClock(settings.BATON_CLOCK_FILE) if settings.BATON_CLOCK_FILE else SystemClock()
        db = Database(settings.DATABASE_URL)
        engine = Engine(
            db, all_dialogs(catalogue_file=settings.BATON_CATALOGUE, public_url=settings.public_url), clock=clock
        )
        sender = OutboxSender(db, deliveries if deliveries is not None else [LocalDelivery()], clock=clock)
        engine.on_queued = sender.wake
        engine.on_claimed = sender.deliver_soon
        conductor = Conductor(
            db,
            grace=timedelta(hours=settings.BATON_GRACE_HOURS),
            budget=settings.BATON_WEEKLY_BUDGET,
            tools_available="tools" in engine.commands,
            catalogue_file=settings.BATON_CATALOGUE,
        )
        return cls(settings, db, engine, sender, clock, conductor)

    async def start(self) -> None:
        """Migrate, seed the demo organisation in local mode, start the background work."""
        await self.db.migrate()
        if self.settings.local_mode and self.settings.BATON_DEMO:
            from bot.demo import seed_demo

            if await seed_demo(self.db, self.clock):
                log.info("local mode: seeded the demo organisation")
        self.tasks.append(asyncio.create_task(self.sender.run(self.stop), name="outbox-sender"))
        self.scheduler = Scheduler(
            self.conductor,
            self.clock,
            interval=self.settings.BATON_TICK_SECONDS,
            wake=self.sender.wake,
            retention_days=self.settings.BATON_RETENTION_DAYS,
        )
        self.scheduler.start()

    async def close(self) -> None:
        if self.scheduler is not None:
            self.scheduler.stop()
        self.stop.set()
        self.sender.wake()
        for task in self.tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.db.close()


def baton_of(request: web.Request) -> Baton:
    return request.app[BATON_KEY]  # type: ignore[return-value]


async def healthz(request: web.Request) -> web.Response:
    """The process is alive and serving HTTP."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """The database answers and its schema is current; 503 otherwise, with the reason."""
    baton = baton_of(request)
    try:
        await asyncio.wait_for(baton.db.ping(), 5)
        current = await asyncio.wait_for(baton.db.schema_current(), 5)
    except Exception as exc:
        return web.json_response(
            {"status": "unavailable", "reason": f"database unreachable ({type(exc).__name__})"}, status=503
        )
    if not current:
        return web.json_response(
            {"status": "unavailable", "reason": "schema is not at the newest migration"}, status=503
        )
    return web.json_response({"status": "ready"})


def create_app(baton: Baton) -> web.Application:
    """The aiohttp application for `baton`, with every enabled adapter's routes."""
    app = web.Application(client_max_size=1024**2)
    app[BATON_KEY] = baton
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    from bot.goalsio import setup_goal_api

    setup_goal_api(app, baton.db, baton.clock)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await baton.start()
        yield
        await baton.close()

    app.cleanup_ctx.append(lifecycle)
    from bot.dashboard import setup_dashboard

    setup_dashboard(app, baton)
    # Each adapter adds its routes and registers its delivery with the outbox sender.
    if baton.settings.web_chat_enabled:
        from adapters.web import setup_web_chat

        setup_web_chat(app, baton)
    if baton.settings.slack_enabled:
        from adapters.slack import setup_slack

        setup_slack(app, baton)
    if baton.settings.teams_enabled:
        from adapters.teams import setup_teams  # the only place botbuilder gets imported from

        setup_teams(app, baton)
    return app
