"""Reading people's calendar feeds on a schedule, so nobody has to type `leave`.

Every few minutes the scheduler asks for the feeds not read in the last hour
(a new one is read within minutes), 500 at a time until none is left. Each is
fetched over the reader's one HTTP session (opened on first use, kept for the
process's lifetime so connections and DNS answers are reused, closed at
shutdown), a few at a time, with a time limit and a size limit, and parsed off
the event loop (dialogs/services/calendars.py). What it says replaces the
person's calendar away days from yesterday on; titles, attendees and
descriptions are never stored.

A feed that fails — unreachable, 404, too big, not iCalendar, too slow —
keeps its last good days. Its owner is told once what went wrong and what to
do (within their quiet hours), not every hour; once it works again, the next
problem is told again. Feed addresses are secrets: sealed in the database,
never logged, shown masked.

Anyone can give any address, so Baton reads only the public internet: an
address — or a redirect — that leads to a loopback, private, link-local or
otherwise non-global IP address is refused before any connection ("private"),
since fetching it would let a person probe internal services through Baton
and read the answer from the problem reported back. Names are checked on the
addresses they resolve to, in the resolver the connections use, so DNS cannot
answer one thing to the check and another to the connection.
BATON_CALENDAR_PRIVATE_HOSTS allows every address (an intranet calendar
server; the tests' loopback fakes).
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from re import Pattern
from urllib.parse import urljoin, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from dialogs.common.absence import PRIVATE_TODO, IPAddress, literal_ip, public
from dialogs.common.manners import Recipient, plan_unsolicited
from dialogs.engine.clock import Clock, tz
from dialogs.engine.messages import Reply
from dialogs.engine.sealing import Sealer, SealError
from dialogs.services.calendars import DEFAULT_PATTERN, WINDOW_AFTER, WINDOW_BEFORE, FeedError, away_days, store
from storage import queries
from storage.db import Database
from storage.models import CalendarFeed, Person

log = logging.getLogger(__name__)

MAX_BYTES = 10 * 1024 * 1024
TIMEOUT = 20.0  # seconds for one feed, connection to last byte
MAX_REDIRECTS = 5
EVERY = timedelta(hours=1)
CONCURRENCY = 16
ROUND = 500  # feeds taken from the database at a time; a run goes on until none is due

WHAT_WENT_WRONG = {
    "unreachable": "I couldn't reach your calendar address",
    "timeout": "your calendar address took more than 20 seconds to answer",
    "not_found": "your calendar address answers \u201cnot found\u201d \u2014 it may have been reset or removed",
    "refused": "your calendar address refused me",
    "too_big": "your calendar feed is larger than 10 MB, more than I read",
    "malformed": "what your calendar address sends isn't an iCalendar file I can read",
    "unreadable": "I can no longer open the calendar address you gave me (Baton's secret key was changed)",
    "private": (
        "your calendar address leads to a private or internal network address, and I only read calendars "
        "on the public internet"
    ),
}
WHAT_TO_DO = {"private": PRIVATE_TODO}


def problem_text(kind: str) -> str:
    what = WHAT_WENT_WRONG.get(kind, "something went wrong reading your calendar")
    todo = WHAT_TO_DO.get(
        kind,
        "If the address changed, send *leave calendar* followed by the new one; *leave calendar off* stops me reading it.",
    )
    return (
        f"About your calendar: {what}. Until it works again I keep the away days I last read from it. "
        f"{todo} Typed leave (*leave*) always works."
    )


def anywhere(address: IPAddress) -> bool:
    """Every address allowed (BATON_CALENDAR_PRIVATE_HOSTS)."""
    return True


class PrivateAddress(Exception):
    """A calendar address, or where it redirects, leads to an IP address Baton may not read from."""


class GuardedResolver(AbstractResolver):
    """Resolves names as usual and refuses a name any of whose addresses is not allowed.

    The check sits in the resolver the connector connects with, so the addresses checked are the ones used.
    """

    def __init__(self, inner: AbstractResolver, allow: Callable[[IPAddress], bool]) -> None:
        self.inner, self.allow = inner, allow

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self.inner.resolve(host, port, family)
        if not found or not all(self.allow(ipaddress.ip_address(r["host"].split("%", 1)[0])) for r in found):
            raise PrivateAddress
        return found

    async def close(self) -> None:
        await self.inner.close()


class Problem(Exception):
    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


@dataclass(frozen=True)
class Due:
    person_id: int
    sealed_url: str
    timezone: str
    problem: str | None
    told_at: datetime | None
    digest: str | None
    read_for: date | None


class CalendarSync:
    """Reads due calendar feeds; `run_once` is one round (the scheduler calls it every few minutes)."""

    def __init__(
        self,
        db: Database,
        sealer: Sealer,
        clock: Clock,
        *,
        words: Pattern[str] | None = DEFAULT_PATTERN,
        every: timedelta = EVERY,
        timeout: float = TIMEOUT,
        max_bytes: int = MAX_BYTES,
        concurrency: int = CONCURRENCY,
        wake: Callable[[], None] = lambda: None,
        allow: Callable[[IPAddress], bool] = public,
    ) -> None:
        """`allow` decides which IP addresses may be read from: public ones, or `anywhere`."""
        self.db, self.sealer, self.clock = db, sealer, clock
        self.words, self.every, self.timeout, self.max_bytes = words, every, timeout, max_bytes
        self.concurrency = concurrency
        self.wake = wake
        self.allow = allow
        self._http: aiohttp.ClientSession | None = None
        self._resolver: AbstractResolver | None = None

    def _session(self) -> aiohttp.ClientSession:
        """The one HTTP session every round reads through, opened on first use inside the running loop."""
        if self._http is None or self._http.closed:
            self._resolver = GuardedResolver(aiohttp.DefaultResolver(), self.allow)
            self._http = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.concurrency * 2, ttl_dns_cache=300, resolver=self._resolver),
                headers={"User-Agent": "Baton calendar reader"},
            )
        return self._http

    @property
    def closed(self) -> bool:
        return self._http is None or self._http.closed

    async def close(self) -> None:
        """Close the HTTP session (at shutdown); a later round would open a new one."""
        if self._http is not None and not self._http.closed:
            await self._http.close()
        if self._resolver is not None:  # a resolver passed in is not the connector's to close
            await self._resolver.close()
            self._resolver = None

    async def run_once(self) -> dict[str, int]:
        """Read every due feed, ROUND at a time; counts of outcomes ("ok" or a problem kind)."""
        outcomes: dict[str, int] = {}
        while True:
            found = await self._round()
            for kind, count in found.items():
                outcomes[kind] = outcomes.get(kind, 0) + count
            if sum(found.values()) < ROUND:
                return outcomes

    async def _round(self) -> dict[str, int]:
        now = self.clock.now()

        async def due(session: AsyncSession) -> list[Due]:
            rows = await session.execute(
                select(
                    col(CalendarFeed.person_id),
                    col(CalendarFeed.sealed_url),
                    col(Person.timezone),
                    col(CalendarFeed.problem),
                    col(CalendarFeed.told_at),
                    col(CalendarFeed.digest),
                    col(CalendarFeed.read_for),
                )
                .join(Person, col(Person.id) == col(CalendarFeed.person_id))
                .where(
                    col(Person.active).is_(True),
                    or_(col(CalendarFeed.checked_at).is_(None), col(CalendarFeed.checked_at) < now - self.every),
                )
                .order_by(col(CalendarFeed.checked_at).is_not(None), col(CalendarFeed.checked_at))
                .limit(ROUND)
            )
            return [Due(*row) for row in rows]

        feeds = await self.db.run(due)
        if not feeds:
            return {}
        outcomes: dict[str, int] = {}
        gate = asyncio.Semaphore(self.concurrency)
        http = self._session()

        async def one(feed: Due) -> None:
            async with gate:
                kind = await self._read(http, feed, now)
            outcomes[kind] = outcomes.get(kind, 0) + 1

        await asyncio.gather(*(one(feed) for feed in feeds))
        problems = {k: v for k, v in outcomes.items() if k != "ok"}
        log.info("calendars: read %d feeds; problems: %s", len(feeds), problems or "none")
        return outcomes

    async def _read(self, http: aiohttp.ClientSession, feed: Due, now: datetime) -> str:
        zone = tz(feed.timezone)
        today = now.astimezone(zone).date()
        first, last = today - WINDOW_BEFORE, today + WINDOW_AFTER
        try:
            try:
                url = self.sealer.open("calendar", feed.sealed_url, context=str(feed.person_id))
            except SealError:
                raise Problem("unreadable") from None
            data = await self._fetch(http, url)
            digest = hashlib.sha256(data).hexdigest()
            if digest == feed.digest and today == feed.read_for and feed.problem is None:
                await self._unchanged(feed, now)
                return "ok"
            try:
                days = await asyncio.to_thread(away_days, data, first, last, zone, self.words)
            except FeedError as exc:
                raise Problem(exc.kind) from None
            except Exception as exc:  # noqa: BLE001 - a parser bug is this feed's problem, not the round's
                # Only the type: the message may quote the feed, which is the person's private calendar.
                log.warning("calendars: parsing a feed failed unexpectedly (%s)", type(exc).__name__)
                raise Problem("malformed") from None
        except Problem as problem:
            await self._failed(feed, problem.kind, now)
            return problem.kind
        await self._succeeded(feed, days, first, now, digest, today)
        return "ok"

    async def _fetch(self, http: aiohttp.ClientSession, url: str) -> bytes:
        """The body at `url`, following at most MAX_REDIRECTS redirects, each checked like the address itself."""
        try:
            async with asyncio.timeout(self.timeout):  # one limit for the feed, however many redirects
                for _ in range(MAX_REDIRECTS + 1):
                    self._check_literal(url)
                    async with http.get(url, allow_redirects=False) as response:
                        location = response.headers.get("Location")
                        if response.status in (301, 302, 303, 307, 308) and location:
                            url = urljoin(str(response.url), location)
                            if urlsplit(url).scheme not in ("http", "https"):
                                raise Problem("unreachable")
                            continue
                        return await self._body(response)
                raise Problem("unreachable")  # a redirect loop
        except PrivateAddress:
            raise Problem("private") from None
        except TimeoutError:
            raise Problem("timeout") from None
        except (aiohttp.ClientError, ValueError, OSError):  # ValueError: a URL aiohttp cannot use
            raise Problem("unreachable") from None

    def _check_literal(self, url: str) -> None:
        """An address written as an IP never reaches the resolver: check it here (a name, the resolver checks)."""
        address = literal_ip(url)
        if address is not None and not self.allow(address):
            raise PrivateAddress

    async def _body(self, response: aiohttp.ClientResponse) -> bytes:
        if response.status in (404, 410):
            raise Problem("not_found")
        if response.status >= 400:
            raise Problem("refused")
        if (response.content_length or 0) > self.max_bytes:
            raise Problem("too_big")
        chunks, size = [], 0
        async for chunk in response.content.iter_chunked(65536):
            size += len(chunk)
            if size > self.max_bytes:
                raise Problem("too_big")
            chunks.append(chunk)
        return b"".join(chunks)

    async def _succeeded(
        self, feed: Due, days: set[date], first: date, now: datetime, digest: str, today: date
    ) -> None:
        async def work(session: AsyncSession) -> None:
            await store(session, feed.person_id, days, first, now)
            row = await session.get(CalendarFeed, feed.person_id)
            if row is not None:
                row.checked_at, row.ok_at, row.problem, row.told_at = now, now, None, None
                row.digest, row.read_for = digest, today

        await self.db.run(work)

    async def _unchanged(self, feed: Due, now: datetime) -> None:
        """The same body as last time, on the same day: the days stored are still right."""

        async def work(session: AsyncSession) -> None:
            row = await session.get(CalendarFeed, feed.person_id)
            if row is not None:
                row.checked_at, row.ok_at = now, now

        await self.db.run(work)

    async def _failed(self, feed: Due, kind: str, now: datetime) -> None:
        tell = feed.told_at is None  # once per stretch of trouble: cleared when the feed works again

        async def work(session: AsyncSession) -> None:
            row = await session.get(CalendarFeed, feed.person_id)
            if row is None:
                return
            row.checked_at, row.problem = now, kind
            if not tell:
                return
            row.told_at = now
            person = await session.get(Person, feed.person_id)
            if person is None:
                return
            channel, address = await queries.preferred_address(session, feed.person_id)
            plan = plan_unsolicited(
                Recipient(person.id or 0, person.timezone, person.quiet_start, person.quiet_end), now, kind="notice"
            )
            await queries.enqueue(
                session,
                key=f"calendar-problem:{feed.person_id}:{now.isoformat()}",
                person_id=feed.person_id,
                channel=channel,
                address=address,
                payload=Reply(problem_text(kind)).to_dict(),
                due_at=plan.due_at or now,
                now=now,
                kind="notice",
            )

        await self.db.run(work)
        if tell:
            self.wake()
