"""Who is away on which days, from every source, and why.

A person is away on a day when any source says so — leave they (or their
manager) typed, their calendar feed, a public holiday of their team — unless
they said "I'm working that day". Every effect of absence (no invitations,
reminders or nudges; messages from colleagues held until they are back;
"away" in the digest) reads it through `away`, so a new source works
everywhere at once.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from dialogs.engine.sealing import Sealer, SealError
from storage.models import AwayOverride, Leave, Person, Team

BULK = 500  # above this many people, read the whole (small, time-bounded) set rather than send a huge IN list
HOLIDAY = "holiday"
SOURCES = {"typed": "leave", "calendar": "your calendar", HOLIDAY: "public holiday"}


@dataclass(frozen=True)
class Away:
    """A stretch of away days (inclusive) and where it came from; `label` names a holiday."""

    start: date
    end: date
    source: str
    label: str = ""
    leave_id: int | None = None


@functools.lru_cache(maxsize=256)
def holiday_dates(code: str, year: int) -> tuple[tuple[date, str], ...]:
    """The public holidays of a country ("DE") or subdivision ("DE-BY") in one year, from `holidays`."""
    import holidays

    country, _, subdivision = code.partition("-")
    found = holidays.country_holidays(country, subdiv=subdivision or None, years=year)
    return tuple(sorted(found.items()))


def valid_holidays(code: str) -> str | None:
    """`code` normalised ("de-by" → "DE-BY") if the holidays package knows it, else None."""
    import holidays

    country, _, subdivision = code.strip().upper().partition("-")
    supported = holidays.list_supported_countries()
    if country not in supported or (subdivision and subdivision not in supported[country]):
        return None
    return f"{country}-{subdivision}" if subdivision else country


async def away(session: AsyncSession, person_ids: Iterable[int], first: date, last: date) -> dict[int, list[Away]]:
    """Each person's away stretches overlapping [first, last], days they are working cut out."""
    ids = set(person_ids)
    if not ids:
        return {}
    found: dict[int, list[Away]] = {}
    leaves = select(col(Leave.id), col(Leave.person_id), col(Leave.start), col(Leave.end), col(Leave.source)).where(
        col(Leave.start) <= last, col(Leave.end) >= first
    )
    holidays_of = select(col(Person.id), col(Team.holidays)).join(Team, col(Team.id) == col(Person.team_id))
    holidays_of = holidays_of.where(col(Team.holidays).is_not(None))
    overrides = select(col(AwayOverride.person_id), col(AwayOverride.day)).where(
        col(AwayOverride.day) >= first, col(AwayOverride.day) <= last
    )
    if len(ids) <= BULK:
        leaves = leaves.where(col(Leave.person_id).in_(ids))
        holidays_of = holidays_of.where(col(Person.id).in_(ids))
        overrides = overrides.where(col(AwayOverride.person_id).in_(ids))
    for leave_id, person_id, start, end, source in await session.execute(leaves):
        if person_id in ids:
            found.setdefault(person_id, []).append(Away(start, end, source, leave_id=leave_id))
    for member, code in await session.execute(holidays_of):
        if member is not None and member in ids and code:
            for year in range(first.year, last.year + 1):
                for day, name in holiday_dates(code, year):
                    if first <= day <= last:
                        found.setdefault(member, []).append(Away(day, day, HOLIDAY, name))
    working: dict[int, set[date]] = {}
    for person_id, day in await session.execute(overrides):
        working.setdefault(person_id, set()).add(day)
    for person_id, days in working.items():
        if person_id in found:
            found[person_id] = [piece for stretch in found[person_id] for piece in _without(stretch, days)]
    return {person_id: sorted(stretches, key=lambda a: (a.start, a.end)) for person_id, stretches in found.items()}


def _without(stretch: Away, working: set[date]) -> list[Away]:
    """`stretch` with the days in `working` cut out (it may split in two or vanish)."""
    if not any(stretch.start <= day <= stretch.end for day in working):
        return [stretch]
    pieces, start, day = [], None, stretch.start
    while day <= stretch.end:
        if day in working:
            if start is not None:
                pieces.append(Away(start, day - timedelta(days=1), stretch.source, stretch.label, stretch.leave_id))
                start = None
        elif start is None:
            start = day
        day += timedelta(days=1)
    if start is not None:
        pieces.append(Away(start, stretch.end, stretch.source, stretch.label, stretch.leave_id))
    return pieces


async def away_ranges(
    session: AsyncSession, person_ids: Iterable[int], first: date, last: date
) -> dict[int, list[tuple[date, date]]]:
    """Like `away`, as (first day, last day) pairs: what the chat manners need."""
    return {
        person_id: [(a.start, a.end) for a in stretches]
        for person_id, stretches in (await away(session, person_ids, first, last)).items()
        if stretches
    }


STATUS = "status"  # a platform status that says away (Slack's :palm_tree:, "Vacationing" …)
SOURCES[STATUS] = "your status"


OUTLOOK = "outlook"  # Outlook's automatic replies (out of office), read through Microsoft Graph
SOURCES[OUTLOOK] = "your Outlook automatic replies"


async def set_status_away(
    session: AsyncSession, person_id: int, until: date | None, today: date, now: datetime
) -> bool:
    """What the person's platform status says from `today` on: away through `until`, or (None) not away.

    Returns whether anything changed. Days before `today` stay as they were.
    """
    return await set_away_from(session, person_id, STATUS, (today, until) if until is not None else None, today, now)


async def set_away_from(
    session: AsyncSession,
    person_id: int,
    source: str,
    days: tuple[date, date] | None,
    today: date,
    now: datetime,
) -> bool:
    """What one automatic `source` (a status, automatic replies) says from `today` on: away on `days`
    (first, last; the part before `today` is ignored), or (None) not away. Whether anything changed.
    Days before `today` stay as they were; other sources are never touched."""
    current = list(
        await session.scalars(
            select(Leave).where(col(Leave.person_id) == person_id, col(Leave.source) == source, col(Leave.end) >= today)
        )
    )
    wanted = (max(days[0], today), days[1]) if days is not None and days[1] >= today else None
    if [(c.start, c.end) for c in current] == ([wanted] if wanted else []):
        return False
    for row in current:
        if row.start < today:
            row.end = today - timedelta(days=1)
        else:
            await session.delete(row)
    if wanted is not None:
        session.add(Leave(person_id=person_id, start=wanted[0], end=wanted[1], source=source, created_at=now))
    return True


# -- calendar feed addresses (read by bot/calendars.py) -------------------------------------------

MAX_URL = 2000


def feed_address(text: str) -> str | None:
    """A calendar address as Baton stores it (webcal:// becomes https://), or None when it is not one."""
    url = text.strip().strip("<>")
    if url.casefold().startswith("webcal://"):
        url = "https://" + url[len("webcal://") :]
    if not url.casefold().startswith(("https://", "http://")) or len(url) > MAX_URL or any(c.isspace() for c in url):
        return None
    return url


def masked(url: str) -> str:
    """A calendar address as it may be shown to anyone: `scheme://host/…`, or `…` when it has no host.

    Everything else may carry the secret that grants read access to the calendar — a user name and
    password, the path, a query (`?token=…`), a fragment — and a port says nothing a person needs.
    """
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
    except ValueError:  # an unbalanced [ in an IPv6 host
        return "\u2026"
    if not parts.scheme or not host:
        return "\u2026"
    return f"{parts.scheme.lower()}://{f'[{host}]' if ':' in host else host}/\u2026"


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def public(address: IPAddress) -> bool:
    """Whether `address` is on the public internet: not loopback, private, link-local, shared, reserved or
    multicast — also when an IPv6 address only wraps an IPv4 one (::ffff:10.0.0.1, 64:ff9b::a00:1,
    ::10.0.0.1, 2002:a00:1::). The local-use NAT64 prefix leads to a translator inside the network: never public."""
    if isinstance(address, ipaddress.IPv6Address):
        if address in LOCAL_NAT64:
            return False
        if address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        elif address in NAT64 or address in IPV4_COMPATIBLE:
            address = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        elif address.sixtofour is not None:
            address = address.sixtofour
    return address.is_global and not address.is_multicast


NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052's well-known prefix: the IPv4 address is the last 32 bits
LOCAL_NAT64 = ipaddress.IPv6Network("64:ff9b:1::/48")  # RFC 8215: for translators of one network's own
IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")  # deprecated ::a.b.c.d (:: and ::1 are refused all the same)


def literal_ip(url: str) -> IPAddress | None:
    """The IP address `url` gives as its host; None when it gives a name (or no host)."""
    try:
        return ipaddress.ip_address((urlsplit(url.strip()).hostname or "").split("%", 1)[0])
    except ValueError:
        return None


def private_host(url: str) -> bool:
    """Whether `url` itself names a host off the public internet: an IP address that is not public, or
    localhost. A name that only resolves to one is found when the address is read (bot/calendars.py)."""
    address = literal_ip(url)
    if address is not None:
        return not public(address)
    try:
        host = (urlsplit(url.strip()).hostname or "").rstrip(".")
    except ValueError:
        return False
    return host == "localhost" or host.endswith(".localhost")


PRIVATE_TODO = (
    "Send *leave calendar* followed by the secret iCal address your calendar service publishes (it starts "
    "with https://); if your organisation hosts its calendars inside its own network, ask your Baton admin."
)


def seal_address(sealer: Sealer, person_id: int, url: str) -> str:
    """The address sealed for the database: it grants read access to someone's calendar."""
    return sealer.seal("calendar", url, size=MAX_URL * 4 + 64, context=str(person_id))


def shown_address(sealer: Sealer, person_id: int, sealed: str) -> str:
    """The stored address as it may be shown to its owner: masked; "…" when this secret cannot open it."""
    try:
        return masked(str(sealer.open("calendar", sealed, context=str(person_id))))
    except SealError:
        return "\u2026"
