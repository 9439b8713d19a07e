"""The aiohttp application: one server for every adapter, plus health and readiness.

`Baton` holds the running parts of one process — the shared core (database,
engine, outbox sender, inbox), the scheduler and the platform adapters —
passed around explicitly, never a global.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta

from aiohttp import web

from adapters.contract import Adapter
from bot.calendars import CalendarSync, anywhere, public
from bot.config import Settings
from bot.core import Core
from bot.dashboard import setup_dashboard
from bot.dashboard.policies import setup_policies
from bot.dashboard.views import Site
from bot.demo import seed_demo
from bot.goalsio import setup_goal_api
from bot.metrics import Metrics
from bot.metrics import handler as metrics_handler
from bot.outbox import OutboxSender
from bot.scheduler import Scheduler
from dialogs.engine import Engine
from dialogs.engine.clock import Clock, FileClock, SystemClock
from dialogs.engine.errors import UnknownPerson
from dialogs.engine.messages import Inbound
from dialogs.services.calendars import words_pattern
from dialogs.services.rhythm import Conductor
from storage.db import Database
from storage.retention import Keep

log = logging.getLogger(__name__)


@dataclass
class Baton:
    """The parts of one running Baton process: the shared core, the rhythm, and the platforms."""

    settings: Settings
    core: Core
    conductor: Conductor
    adapters: dict[str, Adapter] = field(default_factory=dict)  # by platform
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    scheduler: Scheduler | None = None
    calendars: CalendarSync | None = None  # reads calendar feeds; owns their HTTP session until `close`
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    metrics: Metrics = field(default_factory=Metrics)

    @classmethod
    def build(cls, settings: Settings, *, clock: Clock | None = None) -> Baton:
        """Every part for `settings`, platforms included; nothing runs until `start`."""
        if clock is None:
            clock = FileClock(settings.BATON_CLOCK_FILE) if settings.BATON_CLOCK_FILE else SystemClock()
        dialogs = settings.dialogs()
        core = Core.assemble(
            Database(settings.DATABASE_URL),
            dialogs,
            sealer=settings.sealer(),
            clock=clock,
            lease=timedelta(seconds=settings.BATON_OUTBOX_LEASE_SECONDS),
        )
        conductor = Conductor(
            core.db,
            sealer=core.sealer,
            grace=timedelta(hours=settings.BATON_GRACE_HOURS),
            budget=settings.BATON_WEEKLY_BUDGET,
            tools_available="tools" in core.engine.commands,
            catalogue_file=settings.BATON_CATALOGUE,
        )
        baton = cls(settings, core, conductor)
        metrics = baton.metrics
        core.sender.observe = metrics.delivered
        core.engine.on_committed = metrics.turns
        core.inbox.on_replayed = metrics.replayed.inc
        core.db.on_error = lambda kind: metrics.db_errors.labels(kind).inc()
        for adapter in platforms(settings, core):
            baton.adapters[adapter.platform] = adapter
            for delivery in adapter.deliveries():
                core.sender.register(delivery)
        return baton

    @property
    def db(self) -> Database:
        return self.core.db

    @property
    def clock(self) -> Clock:
        return self.core.clock

    @property
    def engine(self) -> Engine:
        return self.core.engine

    @property
    def sender(self) -> OutboxSender:
        return self.core.sender

    async def start(self) -> None:
        """Migrate, seed the demo organisation in local mode, start the background work and the platforms."""
        await self.db.migrate()
        if self.settings.local_mode and self.settings.BATON_DEMO:
            history = self.settings.BATON_DEMO_HISTORY
            if await seed_demo(self.db, self.clock, sealer=self.core.sealer, history=history):
                log.info(
                    "local mode: seeded the demo organisation%s", " with eight weeks of history" if history else ""
                )
        self.tasks.append(asyncio.create_task(self.sender.run(self.stop), name="outbox-sender"))
        self.tasks.append(asyncio.create_task(self.core.inbox.replay_forever(self._replay), name="inbox-replay"))
        self.calendars = CalendarSync(
            self.db,
            self.core.sealer,
            self.clock,
            words=words_pattern(self.settings.BATON_AWAY_WORDS.split(",")),
            wake=self.sender.wake,
            allow=anywhere if self.settings.BATON_CALENDAR_PRIVATE_HOSTS else public,
        )
        self.scheduler = Scheduler(
            self.conductor,
            self.clock,
            interval=self.settings.BATON_TICK_SECONDS,
            wake=self.sender.wake,
            retention_days=self.settings.BATON_RETENTION_DAYS,
            calendars=self.calendars,
            keep=Keep(
                checkins=self.settings.BATON_KEEP_CHECKINS_DAYS,
                feedback=self.settings.BATON_KEEP_FEEDBACK_DAYS,
                goals=self.settings.BATON_KEEP_GOALS_DAYS,
            ),
        )
        self.scheduler.on_tick = self.metrics.tick
        self.scheduler.start()
        for adapter in self.adapters.values():
            await adapter.start()

    async def problem(self) -> str | None:
        """Why this process cannot take work besides its database (readiness), or None."""
        sender = next((task for task in self.tasks if task.get_name() == "outbox-sender"), None)
        if sender is None or sender.done():
            return "the outbox sender is not running (restart Baton; the log says why it stopped)"
        for adapter in self.adapters.values():
            check = getattr(adapter, "problem", None)
            reason = await check() if check is not None else None
            if reason:
                return reason
        return None

    async def _replay(self, inbound: Inbound) -> None:
        """Run a kept delivery again: through its platform when the adapter has its own way, else the engine."""
        replay = getattr(self.adapters.get(inbound.sender.platform), "replay", None)
        if replay is not None:
            await replay(inbound)
            return
        try:
            await self.engine.handle(inbound)
        except UnknownPerson:
            await self.core.inbox.drop(inbound)

    async def close(self) -> None:
        """Stop the platforms first (they finish what is in flight), then the background work and the database."""
        for adapter in reversed(list(self.adapters.values())):
            await adapter.stop()
        if self.scheduler is not None:
            await self.scheduler.stop()
        if self.calendars is not None:  # after the scheduler: no round is reading through it any more
            await self.calendars.close()
        self.stop.set()
        self.sender.wake()
        for task in self.tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.sender.close()  # replies still in flight: a transaction left open would hold SQLite's lock
        await self.db.close()


def platforms(settings: Settings, host: Core) -> list[Adapter]:
    """The adapters `settings` turn on; each gets its own options and the host, nothing more."""
    adapters: list[Adapter] = []
    if settings.web_chat_enabled:
        from adapters.web import WebChat

        adapters.append(WebChat(host, public_url=settings.public_url))
    if settings.slack_enabled:
        from adapters.slack import SlackAdapter, SlackOptions

        adapters.append(SlackAdapter(host, SlackOptions.from_settings(settings)))
    if settings.teams_enabled:
        from adapters.teams import TeamsAdapter  # the only place the Teams SDK gets imported from
        from adapters.teams.options import TeamsOptions

        adapters.append(TeamsAdapter.create(host, TeamsOptions.from_settings(settings)))
    return adapters


BATON_KEY = web.AppKey("baton", Baton)


def baton_of(request: web.Request) -> Baton:
    return request.app[BATON_KEY]


async def healthz(request: web.Request) -> web.Response:
    """The process is alive and serving HTTP."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready to take work: the database answers with a current schema, the outbox sender runs, and every
    adapter with a connection of its own (Slack's Socket Mode) is connected. 503 otherwise, with the reason."""
    baton = baton_of(request)
    problem = await baton.problem()
    if problem is not None:
        return web.json_response({"status": "unavailable", "reason": problem}, status=503)
    try:
        await asyncio.wait_for(baton.db.ping(), 5)
        current = await asyncio.wait_for(baton.db.schema_current(), 5)
    except Exception as exc:  # noqa: BLE001 - whatever the failure, readiness says no and names its type
        return web.json_response(
            {"status": "unavailable", "reason": f"database unreachable ({type(exc).__name__})"}, status=503
        )
    if not current:
        return web.json_response(
            {"status": "unavailable", "reason": "schema is not at the newest migration"}, status=503
        )
    return web.json_response({"status": "ready"})


def create_app(baton: Baton) -> web.Application:
    """The aiohttp application for `baton`: health, the dashboard, the goal API and every platform's routes."""
    app = web.Application(client_max_size=1024**2)
    app[BATON_KEY] = baton
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    token = baton.settings.BATON_METRICS_TOKEN
    app.router.add_get(
        "/metrics",
        metrics_handler(
            baton.metrics,
            baton.db,
            baton.clock.now,
            lambda: sorted(baton.sender.deliveries),
            token.get_secret_value() if token else None,
        ),
    )
    setup_goal_api(app, baton.db, baton.clock)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await baton.start()
        yield
        await baton.close()

    app.cleanup_ctx.append(lifecycle)
    setup_dashboard(app, Site(baton.db, baton.clock, baton.settings.BATON_CATALOGUE, baton.core.sealer))
    setup_policies(app, baton.settings)
    for adapter in baton.adapters.values():
        adapter.routes(app)
    return app


def serving_app(baton: Baton) -> web.Application:
    """`create_app` as `baton serve` runs it: once started, the startup heap is kept out of the collector's way."""
    app = create_app(baton)
    app.on_startup.append(freeze_startup_heap)  # runs after Baton's own start: cleanup contexts go first
    return app


async def freeze_startup_heap(app: web.Application) -> None:
    """Move everything built at start out of the garbage collector's sight (the server's last startup step).

    The modules, the dialogs, the SDK clients and the connection pools live as
    long as the process, yet every full collection walks all of them again:
    under the slack-inbound benchmark each took about 100 ms and stalled every
    request in flight, which made up the acknowledgement's p99. Only the
    serving process does this; tests that build many apps in one process do
    not, since a frozen object is never collected.
    """
    gc.collect()
    gc.freeze()
