"""APScheduler 3 in `serve`: one periodic tick that asks the conductor what is due.

The job store is in memory and belongs to this process alone (APScheduler's
FAQ forbids sharing one between processes). Replicas each tick; the
database's unique keys make their ticks produce one delivery between them.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from dialogs.clock import Clock
from dialogs.rhythm import Conductor
from storage.db import DatabaseUnavailable

log = logging.getLogger(__name__)


class Scheduler:
    """Ticks `conductor` every `interval` seconds and wakes the sender when something was queued."""

    def __init__(self, conductor: Conductor, clock: Clock, *, interval: float, wake: Callable[[], None]) -> None:
        self.conductor = conductor
        self.clock = clock
        self.wake = wake
        self._scheduler = AsyncIOScheduler()
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
        self.interval = interval

    async def tick(self) -> None:
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
                report.invited, report.reminded, report.resent, report.digests, dict(report.held),
            )
            self.wake()

    def start(self) -> None:
        self._scheduler.start()
        job = self._scheduler.get_job("rhythm")
        if job is not None:
            from datetime import datetime, timezone

            job.modify(next_run_time=datetime.now(timezone.utc) + timedelta(seconds=min(self.interval, 2)))

    def stop(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
