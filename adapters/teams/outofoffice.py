"""Outlook's automatic replies (out of office) read through Microsoft Graph: optional, off by default.

With `BATON_TEAMS_OUT_OF_OFFICE=1` the Teams adapter reads, every hour, the
`automaticRepliesSetting` of each person it knows on Teams (their Azure AD
object id), with an app token for Graph from the same credential the bot
sends with. It needs the application permission `MailboxSettings.Read`,
granted by an admin of the tenant, on the bot's (single-tenant) app
registration. What it reads becomes away days with the source "outlook",
like a Slack status does:

- `scheduled`: away from the local day the replies start to the local day
  they end (replies ending before 09:00 free that morning);
- `alwaysEnabled`: away today, renewed every hour while they stay on;
- `disabled`: not away (days it set before are withdrawn from today on).

Only the days are kept, never the reply's text. A 403 (the permission is
missing) is logged once with what to grant, and reading stops until the next
start; a 429 waits for its Retry-After; a person without a mailbox is skipped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import aiohttp
from sqlalchemy import select
from sqlmodel import col

from adapters.teams.activities import PLATFORM
from adapters.teams.connector import BotToken
from dialogs.common.absence import OUTLOOK, set_away_from
from dialogs.engine.clock import Clock, tz
from storage.db import Database
from storage.models import Identity, Person

GRAPH = "https://graph.microsoft.com"
GRAPH_API = f"{GRAPH}/v1.0"
EVERY = 3600.0  # seconds between reads
CONCURRENCY = 4  # requests in flight (Graph allows far more; an hourly read is in no hurry)
MORNING = 9  # replies that end before this local hour leave that day free
TIMEOUT = aiohttp.ClientTimeout(total=15, connect=5)

log = logging.getLogger(__name__)


class Forbidden(Exception):
    """Graph refused: the app lacks MailboxSettings.Read (or admin consent)."""


class Throttled(Exception):
    def __init__(self, wait: float) -> None:
        super().__init__(f"throttled for {wait:.0f} s")
        self.wait = wait


@dataclass(frozen=True, slots=True)
class Replies:
    """One mailbox's automatic replies: "disabled", "alwaysEnabled" or "scheduled" (with its start and end)."""

    status: str
    start: datetime | None = None
    end: datetime | None = None


def parse(body: Any) -> Replies:
    """Graph's automaticRepliesSetting → Replies; anything unexpected reads as disabled."""
    if not isinstance(body, dict):
        return Replies("disabled")
    status = str(body.get("status") or "disabled")
    if status != "scheduled":
        return Replies(status if status == "alwaysEnabled" else "disabled")
    start, end = _moment(body.get("scheduledStartDateTime")), _moment(body.get("scheduledEndDateTime"))
    return Replies("scheduled", start, end) if start and end and end > start else Replies("disabled")


def _moment(value: Any) -> datetime | None:
    """{"dateTime": "2026-12-21T08:00:00.0000000", "timeZone": "UTC"} → aware UTC (Windows zone names aside,
    Graph answers in UTC unless asked otherwise; an unknown zone is read as UTC)."""
    if not isinstance(value, dict) or not isinstance(value.get("dateTime"), str):
        return None
    text = value["dateTime"][:19]
    try:
        naive = datetime.fromisoformat(text)
    except ValueError:
        return None
    try:
        zone = ZoneInfo(str(value.get("timeZone") or "UTC"))
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    return naive.replace(tzinfo=zone).astimezone(UTC)


def away_days(replies: Replies, zone_name: str, now: datetime) -> tuple[date, date] | None:
    """The local days the replies say the person is away, or None."""
    zone = tz(zone_name)
    today = now.astimezone(zone).date()
    if replies.status == "alwaysEnabled":
        return today, today
    if replies.status != "scheduled" or replies.start is None or replies.end is None:
        return None
    first = replies.start.astimezone(zone)
    last = replies.end.astimezone(zone)
    last_day = last.date() if last.hour >= MORNING else last.date() - timedelta(days=1)
    first_day = first.date()
    return (first_day, last_day) if last_day >= first_day and last_day >= today else None


class OutOfOffice:
    """Reads everyone's automatic replies, hourly, while the adapter runs."""

    def __init__(
        self, db: Database, clock: Clock, token: BotToken, session: Callable[[], aiohttp.ClientSession], base: str
    ) -> None:
        self.db = db
        self.clock = clock
        self.token = token
        self._session = session
        self.base = base.rstrip("/")
        self._task: asyncio.Task[None] | None = None
        self.stopped_for: str | None = None  # why reading stopped (a 403), until the next start

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="teams-out-of-office")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while self.stopped_for is None:
            try:
                counts = await self.read_all()
                log.info("teams: automatic replies read: %s", counts)
            except Forbidden:
                self.stopped_for = "forbidden"
                log.warning(
                    "teams: Microsoft Graph refused to read automatic replies. Grant the app registration the "
                    "application permission MailboxSettings.Read with admin consent, or unset "
                    "BATON_TEAMS_OUT_OF_OFFICE. Not trying again until the next start."
                )
                return
            except Throttled as exc:
                await asyncio.sleep(min(exc.wait, EVERY))
                continue
            except Exception as exc:  # noqa: BLE001 - a bad hour must not end the loop; the next hour tries again
                log.warning("teams: reading automatic replies failed (%s); trying again in an hour", type(exc).__name__)
            await asyncio.sleep(EVERY)

    async def read_all(self) -> dict[str, int]:
        """One round: every Teams identity with an Azure AD object id. Counts by outcome."""

        async def people(session: Any) -> list[tuple[int, str, str]]:
            rows = await session.execute(
                select(col(Identity.person_id), col(Identity.address), col(Person.timezone))
                .join(Person, col(Person.id) == col(Identity.person_id))
                .where(col(Identity.platform) == PLATFORM, col(Person.active).is_(True))
            )
            found = []
            for person_id, address, zone in rows:
                user = address.get("user") if isinstance(address, dict) else None
                aad = user.get("aadObjectId") if isinstance(user, dict) else None
                if isinstance(aad, str) and aad:
                    found.append((person_id, aad, zone))
            return found

        counts = {"read": 0, "changed": 0, "no_mailbox": 0}
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(person_id: int, aad: str, zone: str) -> None:
            async with gate:
                replies = await self.read(aad)
            if replies is None:
                counts["no_mailbox"] += 1
                return
            counts["read"] += 1
            now = self.clock.now()
            days = away_days(replies, zone, now)
            today = now.astimezone(tz(zone)).date()

            async def write(session: Any) -> bool:
                return await set_away_from(session, person_id, OUTLOOK, days, today, now)

            changed = await self.db.run(write)  # (not `+= await`: that reads the count before the await)
            counts["changed"] += changed

        await asyncio.gather(*(one(*p) for p in await self.db.run(people)))
        return counts

    async def read(self, aad_object_id: str) -> Replies | None:
        """One mailbox's automatic replies; None when the user has no mailbox. Raises Forbidden, Throttled."""
        token = await self.token.get()
        url = f"{self.base}/users/{aad_object_id}/mailboxSettings/automaticRepliesSetting"
        headers = {"Authorization": f"Bearer {token}", "Prefer": 'outlook.timezone="UTC"'}
        async with self._session().get(url, headers=headers, timeout=TIMEOUT) as response:
            if response.status == 200:
                return parse(await response.json(content_type=None))
            if response.status == 401:
                self.token.forget()
            if response.status in (401, 403):
                raise Forbidden
            if response.status == 404:
                return None
            if response.status == 429 or response.status >= 500:
                raise Throttled(float(response.headers.get("Retry-After") or 60))
            return None
