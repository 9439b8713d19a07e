"""APScheduler 3 in `serve`: one periodic tick that asks the conductor what is due.

The job store is in memory and belongs to this process alone (APScheduler's
FAQ forbids sharing one between processes). Replicas each tick; the
database's unique keys make their ticks produce one delivery between them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from apscheduler.events import EVENT_JOB_SUBMITTED, JobSubmissionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from dialogs.engine.clock import Clock
from dialogs.services.rhythm import Conductor
from storage.db import DatabaseUnavailable
from storage.retention import Keep, forget_old, prune

if TYPE_CHECKING:
    from bot.calendars import CalendarSync

log = logging.getLogger(__name__)


class Scheduler:
    """Ticks `conductor` every `interval` seconds and wakes the sender when something was queued."""

    def __init__(
        self,
        conductor: Conductor,
        clock: Clock,
        *,
        interval: float,
        wake: Callable[[], None],
        retention_days: int = 30,
        keep: Keep | None = None,
        calendars: CalendarSync | None = None,
    ) -> None:
        self.conductor = conductor
        self.clock = clock
        self.wake = wake
        self.retention_days = retention_days
        self.keep = keep or Keep()
        self.calendars = calendars
        self._scheduler = AsyncIOScheduler()
        # Forgetting what is no longer needed (storage/retention.py): a few times a day is plenty.
        self._scheduler.add_job(
            self.forget, "interval", hours=6, id="retention", coalesce=True, max_instances=1, next_run_time=None
        )
        self._scheduler.add_job(
            self.tick,
            "interval",
            seconds=interval,
            id="rhythm",
            coalesce=True,  # after a pause, one tick catches up; the grace window decides what is still sent
            max_instances=1,
            misfire_grace_time=max(1, int(interval)),
            next_run_time=None,
        )
        if calendars is not None:  # feeds are due hourly; a new one is read within minutes
            self._scheduler.add_job(
                self.read_calendars,
                "interval",
                minutes=5,
                id="calendars",
                coalesce=True,
                max_instances=1,
                next_run_time=None,
            )
        self.interval = interval
        self._running: set[asyncio.Task[Any]] = set()
        self.on_tick: Callable[[float, float], None] = lambda started, lag: None  # metrics: when, how late
        self._scheduler.add_listener(self._submitted, EVENT_JOB_SUBMITTED)

    def _track(self) -> None:
        """Remember the running job's task, so that `stop` can end it."""
        task = asyncio.current_task()
        if task is not None:
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    def _submitted(self, event: JobSubmissionEvent) -> None:
        if event.job_id == "rhythm" and event.scheduled_run_times:
            now = datetime.now(UTC)
            self.on_tick(now.timestamp(), (now - max(event.scheduled_run_times)).total_seconds())

    async def tick(self) -> None:
        self._track()
        try:
            report = await self.conductor.tick(self.clock.now())
        except DatabaseUnavailable:
            log.warning("rhythm tick skipped: database unavailable")
            return
        except Exception:  # keep ticking; the error hook below has no user content to leak here
            log.exception("rhythm tick failed")
            return
        if report.total:
            log.info(
                "rhythm: %d invitations, %d reminders, %d snoozes ended, %d digests; held %s",
                report.invited,
                report.reminded,
                report.resent,
                report.digests,
                dict(report.held),
            )
            self.wake()

    async def forget(self) -> None:
        self._track()
        try:
            messages, keys = await self.conductor.db.run(lambda s: prune(s, self.clock.now(), days=self.retention_days))
        except Exception as exc:  # noqa: BLE001 - try again next time
            log.warning("retention: pruning failed (%s)", type(exc).__name__)
            return
        if messages or keys:
            log.info("retention: deleted %d finished messages and %d delivery keys", messages, keys)
        try:
            old = await self.conductor.db.run(lambda s: forget_old(s, self.clock.now(), self.keep))
        except Exception as exc:  # noqa: BLE001 - try again next time
            log.warning("retention: forgetting old answers failed (%s)", type(exc).__name__)
            return
        if old:
            log.info("retention: deleted what was past its keeping period: %s", old)

    async def read_calendars(self) -> None:
        self._track()
        if self.calendars is None:
            return
        try:
            await self.calendars.run_once()
        except Exception as exc:  # noqa: BLE001 - a database blip: the next round tries again
            log.warning("calendars: a round failed (%s); trying again in five minutes", type(exc).__name__)

    def start(self) -> None:
        self._scheduler.start()
        now = datetime.now(UTC)
        for job_id, first in (
            ("rhythm", timedelta(seconds=min(self.interval, 2))),
            ("retention", timedelta(minutes=1)),
            ("calendars", timedelta(seconds=5)),
        ):
            job = self._scheduler.get_job(job_id)
            if job is not None:
                job.modify(next_run_time=now + first)

    async def stop(self) -> None:
        """Stop ticking, and end the jobs still running: APScheduler's shutdown leaves a running coroutine
        job alone, and one left mid-transaction would outlive the database it writes to."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        running = [task for task in self._running if not task.done()]
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
