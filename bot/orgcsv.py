"""`baton org import` / `export`: the organisation as CSV (email,name,manager_email,team,timezone).

An optional `calendar` column gives people's secret calendar addresses
(issue 21), sealed on import and never exported: an admin can connect
everyone's calendar at once. An empty cell leaves a connected calendar as
it is.

Import validates every row before writing anything; one bad row means
nothing is imported and every problem is reported with its line number.
Importing the same file twice changes nothing the second time.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from zoneinfo import available_timezones

from sqlalchemy import select

from dialogs.common.absence import feed_address, masked, private_host, seal_address
from dialogs.engine.sealing import Sealer, SealError
from storage.db import Database
from storage.models import CalendarFeed, Person, Team

COLUMNS = ("email", "name", "manager_email", "team", "timezone")
OPTIONAL = ("calendar",)
EMAIL = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$")


@dataclass(frozen=True, slots=True)
class Row:
    line: int
    email: str
    name: str
    manager_email: str
    team: str
    timezone: str
    calendar: str = ""


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass(frozen=True, slots=True)
class ImportResult:
    created: int
    updated: int
    unchanged: int
    teams_created: int


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    # The IANA names only: ZoneInfo() alone also opens stray files such as "localtime".
    return frozenset(available_timezones() - {"localtime", "Factory"})


def _valid_zone(name: str) -> bool:
    return name in _zones()


def _has_control(text: str) -> bool:
    return any(unicodedata.category(ch) == "Cc" for ch in text)


def parse(
    text: str,
    known_emails: Iterable[str] = (),
    known_managers: Mapping[str, str] | None = None,
    *,
    private_calendars: bool = False,
) -> tuple[list[Row], list[RowError]]:
    """Read and check the CSV. Returns the rows and every problem found (empty when all is well).

    `known_emails` are people already in the database: a manager may be one of
    them. `known_managers` (email → manager email) are the database's current
    links, so that a row closing a loop through people not in the file is caught.
    `private_calendars` (BATON_CALENDAR_PRIVATE_HOSTS) accepts calendar addresses on private networks.
    """
    if text.startswith("\ufeff"):  # a byte-order mark from spreadsheet exports
        text = text[1:]
    reader = csv.reader(io.StringIO(text, newline=""))
    errors: list[RowError] = []
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        return [], [RowError(1, "the file is empty; expected a header: " + ",".join(COLUMNS))]
    except csv.Error as exc:
        return [], [RowError(1, f"not readable as CSV ({exc})")]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        return [], [RowError(1, f"header lacks {', '.join(missing)}; expected: {','.join(COLUMNS)}")]
    index = {c: header.index(c) for c in (*COLUMNS, *OPTIONAL) if c in header}
    rows: list[Row] = []
    seen: dict[str, int] = {}
    try:
        while True:
            line = reader.line_num + 1  # where this row starts, even if a quoted field spans lines
            try:
                values = next(reader)
            except StopIteration:
                break
            if not any(v.strip() for v in values):
                continue
            if len(values) < len(header):
                errors.append(RowError(line, f"has {len(values)} columns, the header has {len(header)}"))
                continue
            row = Row(line, *(values[index[c]].strip() for c in COLUMNS))
            raw_calendar = values[index["calendar"]].strip() if "calendar" in index else ""
            calendar = feed_address(raw_calendar) if raw_calendar else ""
            row = Row(
                row.line,
                row.email.lower(),
                row.name,
                row.manager_email.lower(),
                row.team,
                row.timezone or "UTC",
                calendar or "",
            )
            problems = []
            if raw_calendar and calendar is None:  # the address itself is a secret: never echoed
                problems.append("calendar is not a calendar address (https://… or webcal://…)")
            elif calendar and not private_calendars and private_host(calendar):
                problems.append(
                    f"calendar {masked(calendar)} is on a private or internal network; Baton reads public addresses "
                    "only (BATON_CALENDAR_PRIVATE_HOSTS=1 allows a calendar server inside your network)"
                )
            if not EMAIL.match(row.email) or len(row.email) > 254:
                problems.append(f"email '{row.email}' is not a valid address")
            elif row.email in seen:
                problems.append(f"email {row.email} already appears on line {seen[row.email]}")
            if not row.name or len(row.name) > 200:
                problems.append("name is empty" if not row.name else "name is longer than 200 characters")
            if _has_control(row.name) or _has_control(row.team):
                problems.append("name or team contains control characters (such as a line break or NUL)")
            if row.manager_email and not EMAIL.match(row.manager_email):
                problems.append(f"manager_email '{row.manager_email}' is not a valid address")
            if row.manager_email == row.email:
                problems.append("a person cannot be their own manager")
            if len(row.team) > 120:
                problems.append("team name is longer than 120 characters")
            if not _valid_zone(row.timezone):
                problems.append(f"timezone '{row.timezone}' is not an IANA time zone (e.g. Europe/Berlin)")
            seen.setdefault(row.email, line)
            if problems:
                errors.append(RowError(line, "; ".join(problems)))
            else:
                rows.append(row)
    except csv.Error as exc:
        errors.append(RowError(reader.line_num, f"not readable as CSV ({exc})"))
    known = set(known_emails) | set(seen)
    for row in rows:
        if row.manager_email and row.manager_email not in known:
            errors.append(RowError(row.line, f"manager_email {row.manager_email} is neither in the file nor in Baton"))
    errors.extend(_cycles(rows, known_managers or {}))
    return rows, sorted(errors, key=lambda e: e.line)


def _cycles(rows: list[Row], known_managers: Mapping[str, str]) -> list[RowError]:
    """Loops in the reporting lines as they would be after the import (the file overrides the database)."""
    in_file = {r.email for r in rows}
    manager = {e: m for e, m in known_managers.items() if e not in in_file}
    manager |= {r.email: r.manager_email for r in rows if r.manager_email}
    line = {r.email: r.line for r in rows}
    errors, reported = [], set()
    for start in manager:
        path, current = [], start
        while current in manager and current not in path:
            path.append(current)
            current = manager[current]
        if current in path and current not in reported:
            loop = path[path.index(current) :]
            reported.update(loop)
            where = min((line[e] for e in loop if e in line), default=None)
            if where is not None:  # a loop entirely outside the file is not this import's doing
                errors.append(RowError(where, "managers form a loop: " + " → ".join([*loop, current])))
    return errors


async def import_csv(
    db: Database,
    text: str,
    now: datetime,
    *,
    progress: Callable[[int], None] = lambda n: None,
    sealer: Sealer | None = None,
    private_calendars: bool = False,
) -> tuple[ImportResult | None, list[RowError]]:
    """Validate, then import in one transaction. Returns (result, []) or (None, errors) with nothing written."""

    async def known(session) -> dict[str, str]:  # noqa: ANN001
        people = list(await session.execute(select(Person.id, Person.email, Person.manager_id)))
        emails = {pid: email for pid, email, _ in people}
        return {email: emails.get(manager_id, "") for _, email, manager_id in people}

    managers = await db.run(known)
    existing = set(managers)
    rows, errors = parse(text, existing, {e: m for e, m in managers.items() if m}, private_calendars=private_calendars)
    if any(r.calendar for r in rows) and sealer is None:
        errors.append(RowError(1, "a calendar column needs Baton's secret key to seal the addresses"))
    if errors:
        return None, errors

    async def work(session) -> ImportResult:  # noqa: ANN001
        teams = {t.name: t for t in (await session.execute(select(Team))).scalars()}
        people = {p.email: p for p in (await session.execute(select(Person))).scalars()}
        teams_created = created = updated = unchanged = 0
        for name in sorted({r.team for r in rows if r.team} - set(teams)):
            teams[name] = Team(name=name, created_at=now)
            session.add(teams[name])
            teams_created += 1
        await session.flush()
        for row in rows:  # first pass: everyone exists, so managers can be linked in any order
            person = people.get(row.email)
            if person is None:
                people[row.email] = Person(email=row.email, name=row.name, timezone=row.timezone, created_at=now)
                session.add(people[row.email])
        await session.flush()
        for done, row in enumerate(rows, 1):
            person = people[row.email]
            wanted = {
                "name": row.name,
                "timezone": row.timezone,
                "team_id": teams[row.team].id if row.team else None,
                "manager_id": people[row.manager_email].id if row.manager_email else None,
            }
            changed = {k: v for k, v in wanted.items() if getattr(person, k) != v}
            for key, value in changed.items():
                setattr(person, key, value)
            if row.calendar and sealer is not None and person.id is not None:
                if await _connect(session, sealer, person.id, row.calendar, now):
                    changed["calendar"] = True
            if row.email not in existing:
                created += 1
            elif changed:
                updated += 1
            else:
                unchanged += 1
            if done % 100 == 0:
                progress(100)
        progress(len(rows) % 100)
        return ImportResult(created, updated, unchanged, teams_created)

    return await db.run(work), []


async def _connect(session, sealer: Sealer, person_id: int, url: str, now: datetime) -> bool:  # noqa: ANN001
    """Connect (or change) a person's calendar; False when it is that address already."""
    feed = await session.get(CalendarFeed, person_id)
    if feed is not None:
        try:
            if sealer.open("calendar", feed.sealed_url, context=str(person_id)) == url:
                return False
        except SealError:
            pass
        await session.delete(feed)
        await session.flush()
    session.add(CalendarFeed(person_id=person_id, sealed_url=seal_address(sealer, person_id, url), created_at=now))
    return True


async def export_csv(db: Database) -> str:
    """The organisation in the import format, sorted by email."""

    async def work(session) -> str:  # noqa: ANN001
        teams = {t.id: t.name for t in (await session.execute(select(Team))).scalars()}
        people = list((await session.execute(select(Person).order_by(Person.email))).scalars())
        emails = {p.id: p.email for p in people}
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        for p in people:
            writer.writerow([p.email, p.name, emails.get(p.manager_id, ""), teams.get(p.team_id, ""), p.timezone])
        return out.getvalue()

    return await db.run(work)
