"""Absence nobody has to type (issue 21): calendar feeds and public holidays, with every effect of leave.

Real parts: an iCalendar server on a loopback port (recurrence across a
daylight-saving change, out-of-office events, floating times, and broken
variants: malformed, 11 MB, 404, too slow), the chat harness on both
databases, the outbox.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import select

from bot.calendars import CalendarSync, anywhere
from dialogs import all_dialogs
from dialogs.common.absence import masked
from dialogs.common.manners import leave_days
from dialogs.services.calendars import away_days
from storage.db import Database
from storage.models import CalendarFeed, Leave, OutboxMessage, Person, Team
from tests.harness import SECRET, Rig
from tests.test_rhythm import outbox, pid, utc
from tests.test_week_one import give_feedback

BERLIN = ZoneInfo("Europe/Berlin")


def calendar(*events: str) -> bytes:
    body = "\r\n".join(
        [
            "BEGIN:VCALENDAR",
            "VERSION:2.0",
            "PRODID:-//Baton tests//EN",
            "BEGIN:VTIMEZONE",
            "TZID:Europe/Berlin",
            "BEGIN:STANDARD",
            "DTSTART:19701025T030000",
            "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU",
            "TZOFFSETFROM:+0200",
            "TZOFFSETTO:+0100",
            "END:STANDARD",
            "BEGIN:DAYLIGHT",
            "DTSTART:19700329T020000",
            "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU",
            "TZOFFSETFROM:+0100",
            "TZOFFSETTO:+0200",
            "END:DAYLIGHT",
            "END:VTIMEZONE",
            *events,
            "END:VCALENDAR",
            "",
        ]
    )
    return body.encode()


def event(uid: str, *lines: str) -> str:
    return "\r\n".join(["BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20261101T000000Z", *lines, "END:VEVENT"])


TRIP = event("trip", "DTSTART;VALUE=DATE:20261120", "DTEND;VALUE=DATE:20261125", "SUMMARY:Lisbon with family")
GOOD = calendar(
    TRIP,
    # Every Monday 09:00-18:00 Berlin time, across the end of daylight saving on 25 Oct.
    event(
        "mondays",
        "DTSTART;TZID=Europe/Berlin:20261019T090000",
        "DTEND;TZID=Europe/Berlin:20261019T180000",
        "RRULE:FREQ=WEEKLY;COUNT=3",
        "SUMMARY:OOO parental day",
    ),
    event(
        "oof",
        "DTSTART:20261203T080000Z",
        "DTEND:20261203T170000Z",
        "X-MICROSOFT-CDO-BUSYSTATUS:OOF",
        "SUMMARY:Doctor",
    ),
    event("standup", "DTSTART;TZID=Europe/Berlin:20261104T093000", "DTEND;TZID=Europe/Berlin:20261104T094500"),
    event("floating", "DTSTART:20261210T080000", "DTEND:20261210T170000", "SUMMARY:Vacation (floating time)"),
)


class IcsServer:
    """Serves calendars by name; `routes` can change between rounds; `hits` counts requests."""

    def __init__(self) -> None:
        self.files: dict[str, bytes | int] = {"good.ics": GOOD}
        self.slow = 0.0
        self.hits = 0
        self.peers: list[object] = []  # the client's (address, port) of each request: a new port is a new connection

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.hits += 1
        self.peers.append(request.transport.get_extra_info("peername") if request.transport else None)
        name = request.match_info["name"]
        if name == "slow.ics":
            await asyncio.sleep(5)
        found = self.files.get(name)
        if found is None:
            return web.Response(status=404)
        if isinstance(found, int):  # a size: stream that many bytes of an endless calendar
            response = web.StreamResponse(headers={"Content-Type": "text/calendar"})
            await response.prepare(request)
            chunk = b"X-FILLER:" + b"a" * 65_000 + b"\r\n"
            for _ in range(found // len(chunk) + 1):
                await response.write(chunk)
            return response
        return web.Response(body=found, content_type="text/calendar")


@pytest.fixture
async def ics() -> AsyncIterator[tuple[IcsServer, str]]:
    server = IcsServer()
    app = web.Application()
    app.router.add_get("/cal/{name}", server.handle)
    async with TestServer(app, host="127.0.0.1") as srv:
        yield server, str(srv.make_url("/cal/"))


@pytest.fixture
async def rig(rig: Rig) -> Rig:
    """The demo rig as a server with BATON_CALENDAR_PRIVATE_HOSTS runs it: the fake calendars are on loopback."""
    return rig.restart(all_dialogs(private_calendars=True))


@pytest.fixture
async def reader(rig: Rig) -> AsyncIterator[CalendarSync]:
    """The calendar reader, as the server has one for its lifetime; closed at the end like the server's."""
    sync = CalendarSync(rig.db, rig.sealer, rig.clock, timeout=1.0, allow=anywhere)  # the fakes are on loopback
    yield sync
    await sync.close()


async def connect(rig: Rig, email: str, url: str) -> str:
    chat = rig.chat(email)
    await chat.send(f"leave calendar {url}")
    return chat.expect("Connected").text


def test_the_feed_gives_all_day_out_of_office_and_titled_days_across_daylight_saving() -> None:
    days = away_days(GOOD, date(2026, 10, 1), date(2026, 12, 31), BERLIN)
    assert days == {
        date(2026, 10, 19),
        date(2026, 10, 26),  # after the clocks went back: still Monday 09:00-18:00 local
        date(2026, 11, 2),
        *(date(2026, 11, 20) + timedelta(days=n) for n in range(5)),  # DTEND is exclusive
        date(2026, 12, 3),
        date(2026, 12, 10),  # a floating time is read in the person's own zone
    }  # the 15-minute stand-up is no away day


async def test_a_connected_calendar_holds_a_colleagues_message_like_typed_leave(
    rig: Rig, ics: tuple[IcsServer, str], reader: CalendarSync, caplog: pytest.LogCaptureFixture
) -> None:
    _, base = ics
    caplog.set_level(logging.DEBUG)
    rig.clock.set(utc(2026, 11, 16, 10, 0))
    said = await connect(rig, "tom@demo.baton", base + "good.ics")
    assert "good.ics" not in said and "127.0.0.1" in said  # shown masked
    sealed = await rig.db.run(lambda s: s.scalar(select(CalendarFeed.sealed_url)))
    assert "good.ics" not in sealed and "127.0.0.1" not in sealed  # a secret address: sealed at rest
    assert await reader.run_once() == {"ok": 1}
    tom = await pid(rig, "tom@demo.baton")
    stored = await rig.db.run(lambda s: s.execute(select(Leave.start, Leave.end, Leave.source)))
    assert (date(2026, 11, 20), date(2026, 11, 24), "calendar") in list(stored)
    # The same effect as typed leave: Maya's feedback on Friday waits for Tom's first morning back.
    rig.clock.set(utc(2026, 11, 20, 10, 0))
    maya = rig.chat("maya@demo.baton")
    await give_feedback(maya, "tom", "The billing migration plan was easy to follow")
    sent = maya.expect("Sent to Tom")
    assert "Tom gets it on Wed 25 Nov at 08:00 their time" in sent.text
    [row] = [r for r in await outbox(rig, person_id=tom) if r.unsolicited and r.kind != "checkin"]
    assert row.due_at == utc(2026, 11, 25, 7, 0)
    # Tom sees why Baton thinks he is away.
    chat = rig.chat("tom@demo.baton")
    await chat.send("leave")
    listed = chat.expect("away on these days").text
    assert "Fri 20 Nov – Tue 24 Nov (your calendar)" in listed and "Lisbon" not in listed
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name != "aiohttp.access")  # the fake's own log
    assert "good.ics" not in logged and "Lisbon" not in logged


async def test_a_broken_feed_keeps_the_last_good_days_and_is_told_once(
    rig: Rig, ics: tuple[IcsServer, str], reader: CalendarSync
) -> None:
    server, base = ics
    rig.clock.set(utc(2026, 11, 16, 10, 0))
    await connect(rig, "tom@demo.baton", base + "feed.ics")
    server.files["feed.ics"] = GOOD
    tom = await pid(rig, "tom@demo.baton")
    assert await reader.run_once() == {"ok": 1}
    before = await rig.db.run(lambda s: leave_days(s, [tom], date(2026, 11, 16), date(2026, 12, 31)))

    async def notices() -> list[OutboxMessage]:
        return [r for r in await outbox(rig, person_id=tom) if r.key.startswith("calendar-problem")]

    for kind, broken in (("malformed", b"<html>Sign in</html>"), ("malformed", b"BEGIN:VCALENDAR\r\nBROKEN")):
        server.files["feed.ics"] = broken
        rig.clock.advance(hours=2)
        assert await reader.run_once() == {kind: 1}
        after = await rig.db.run(lambda s: leave_days(s, [tom], date(2026, 11, 16), date(2026, 12, 31)))
        assert after == before  # the last good days stay
    [told] = await notices()  # two failed rounds, one message
    assert "isn't an iCalendar file" in told.payload["text"] and "leave calendar" in told.payload["text"]
    server.files["feed.ics"] = GOOD
    rig.clock.advance(hours=2)
    assert await reader.run_once() == {"ok": 1}
    del server.files["feed.ics"]  # then the address is reset: a new problem, told again
    rig.clock.advance(hours=2)
    assert await reader.run_once() == {"not_found": 1}
    assert len(await notices()) == 2 and "not found" in (await notices())[-1].payload["text"]


async def test_huge_slow_and_unreachable_feeds_are_problems_not_crashes(
    rig: Rig, ics: tuple[IcsServer, str], reader: CalendarSync
) -> None:
    server, base = ics
    rig.clock.set(utc(2026, 11, 16, 10, 0))
    server.files["huge.ics"] = 11 * 1024 * 1024
    for email, name in (("tom@demo.baton", "huge.ics"), ("aiko@demo.baton", "slow.ics")):
        await connect(rig, email, base + name)
    await connect(rig, "lucia@demo.baton", "https://127.0.0.1:1/closed.ics")
    outcomes = await reader.run_once()
    assert outcomes == {"too_big": 1, "timeout": 1, "unreachable": 1}
    assert await reader.run_once() == {}  # not due again for an hour


async def test_public_holidays_and_working_that_day(rig: Rig) -> None:
    tom = await pid(rig, "tom@demo.baton")

    async def set_holidays(session) -> None:
        for team in await session.scalars(select(Team)):
            team.holidays = "DE-BY"

    await rig.db.run(set_holidays)
    rig.clock.set(utc(2026, 12, 20, 10, 0))
    days = await rig.db.run(lambda s: leave_days(s, [tom], date(2026, 12, 20), date(2027, 1, 10)))
    assert (date(2026, 12, 25), date(2026, 12, 25)) in days[tom] and (date(2027, 1, 6), date(2027, 1, 6)) in days[tom]
    chat = rig.chat("tom@demo.baton")
    await chat.send("leave")
    assert "Fri 25 Dec (public holiday: Christmas Day)" in chat.expect("away on these days").text
    await chat.send("leave working 2026-12-25")
    chat.expect("you're working on Fri 25 Dec")
    days = await rig.db.run(lambda s: leave_days(s, [tom], date(2026, 12, 20), date(2027, 1, 10)))
    assert (date(2026, 12, 25), date(2026, 12, 25)) not in days[tom]
    assert (date(2026, 12, 26), date(2026, 12, 26)) in days[tom]


async def test_calendar_commands_refuse_what_is_not_an_address_and_disconnect(
    rig: Rig, ics: tuple[IcsServer, str], reader: CalendarSync
) -> None:
    _, base = ics
    chat = rig.chat("tom@demo.baton")
    await chat.send("leave calendar not-a-url")
    chat.expect("doesn't look like a calendar address")
    await chat.send("leave calendar")
    chat.expect("No calendar is connected")
    await connect(rig, "tom@demo.baton", base + "good.ics")
    rig.clock.set(utc(2026, 11, 16, 10, 0))
    await reader.run_once()
    await chat.send("leave calendar")  # its status: the address masked, the time on Tom's own clock (Berlin)
    status = chat.expect("Your calendar http://127.0.0.1/… is connected", "last read Mon 16 Nov 11:00").text
    assert "good.ics" not in status and "UTC" not in status
    await chat.send("leave calendar off")
    chat.expect("Disconnected")
    rows = await rig.db.run(lambda s: s.scalar(select(CalendarFeed.person_id)))
    calendar_days = await rig.db.run(lambda s: s.scalars(select(Leave).where(Leave.source == "calendar")))
    assert rows is None and not list(calendar_days)


@pytest.mark.parametrize(
    ("address", "shown"),
    [
        (
            "https://calendar.google.com/calendar/ical/x%40gmail.com/private-abc/basic.ics",
            "https://calendar.google.com/…",
        ),
        ("https://host?token=abc", "https://host/…"),
        ("https://host#token=abc", "https://host/…"),
        ("https://tom:hunter2@Cal.Example.com:8443/feed.ics?token=abc#x", "https://cal.example.com/…"),
        ("https://tom@host/feed.ics", "https://host/…"),
        ("http://[::1]:8080/cal.ics", "http://[::1]/…"),
        ("https://[::1/broken", "…"),
        ("not an address", "…"),
    ],
)
def test_addresses_are_shown_masked(address: str, shown: str) -> None:
    """Only scheme and host: a user name, password, port, path, query or fragment may carry the secret."""
    assert masked(address) == shown


async def test_connecting_shows_the_address_masked(rig: Rig, ics: tuple[IcsServer, str]) -> None:
    _, base = ics
    secret = base.replace("http://", "http://tom:hunter2@") + "good.ics?token=s3cr3t#frag"
    said = await connect(rig, "tom@demo.baton", secret)
    assert "Connected http://127.0.0.1/…" in said
    for part in ("hunter2", "tom:", "s3cr3t", "token", "frag", "good.ics", base.split(":")[-1].split("/")[0]):
        assert part not in said


async def test_the_digest_says_away_for_someone_away_on_the_checkin_day(rig: Rig) -> None:
    """Not "not answered yet": nobody asked them, they were away (here: a public holiday)."""
    from dialogs.services.rhythm import Conductor

    async def prepare(session) -> tuple[Person, list[Person], Team]:
        team = await session.scalar(select(Team))
        team.holidays = "DE"
        team.checkin_weekday = 4  # Friday: 25 Dec 2026 in week 52
        manager = await session.scalar(select(Person).where(Person.email == "maya@demo.baton"))
        reports = list(await session.scalars(select(Person).where(Person.manager_id == manager.id)))
        return manager, reports, team

    manager, reports, team = await rig.db.run(prepare)
    reply = await rig.db.run(
        lambda s: Conductor(rig.db, sealer=rig.sealer).digest(s, manager, reports, team, "2026-W52")
    )
    lines = "\n".join(reply.card.lines if reply.card else ())
    assert "Tom: away" in lines and "Tom: not answered yet" not in lines
    ordinary = await rig.db.run(
        lambda s: Conductor(rig.db, sealer=rig.sealer).digest(s, manager, reports, team, "2026-W50")
    )
    assert "Tom: not answered yet" in "\n".join(ordinary.card.lines if ordinary.card else ())


async def test_the_running_server_reads_feeds_by_itself(
    db: Database, database_url: str, ics: tuple[IcsServer, str]
) -> None:
    """Through `baton serve`'s scheduler: a feed someone connected is read within seconds of the start."""
    from aiohttp.test_utils import TestServer as Server

    from bot.app import Baton, create_app
    from bot.config import load_settings
    from dialogs.engine.sealing import Sealer

    server, base = ics
    settings = load_settings(
        env_file=None, DATABASE_URL=database_url, BATON_TICK_SECONDS=3600, BATON_CALENDAR_PRIVATE_HOSTS=True
    )
    baton = Baton.build(settings)
    async with Server(create_app(baton), host="127.0.0.1"):
        tom = await db.run(lambda s: s.scalar(select(Person.id).where(Person.email == "tom@demo.baton")))
        sealed = Sealer(SECRET.encode()).seal("calendar", base + "good.ics", size=8064, context=str(tom))
        await db.run(lambda s: _add(s, CalendarFeed(person_id=tom, sealed_url=sealed, created_at=baton.clock.now())))
        for _ in range(200):
            found = await db.run(lambda s: s.scalar(select(Leave.id).where(Leave.source == "calendar")))
            if found:
                break
            await asyncio.sleep(0.1)
        assert found and server.hits >= 1
    # The shutdown closed the reader's session (no "Unclosed client session" when the process ends).
    assert baton.calendars is not None and baton.calendars.closed


async def _add(session, row) -> None:
    session.add(row)


async def test_an_unchanged_feed_is_not_parsed_again_the_same_day(
    rig: Rig, ics: tuple[IcsServer, str], reader: CalendarSync, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bot.calendars

    server, base = ics
    rig.clock.set(utc(2026, 11, 16, 10, 0))
    await connect(rig, "tom@demo.baton", base + "good.ics")
    parsed: list[int] = []
    real = bot.calendars.away_days

    def counting(*args: object, **kwargs: object) -> set[date]:
        parsed.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(bot.calendars, "away_days", counting)
    for _ in range(3):  # three hourly reads of the same file on one day: fetched each time, parsed once
        assert await reader.run_once() == {"ok": 1}
        rig.clock.advance(hours=1, minutes=1)
    assert server.hits == 3 and len(parsed) == 1
    rig.clock.set(utc(2026, 11, 17, 10, 0))  # a new day moves the window: parsed again
    await reader.run_once()
    assert len(parsed) == 2


async def _notices(rig: Rig, person_id: int) -> list[OutboxMessage]:
    return [r for r in await outbox(rig, person_id=person_id) if r.key.startswith("calendar-problem")]


@pytest.mark.parametrize("start", ["DTSTART:garbage", "DTSTART;VALUE=DATE:00000101"])
async def test_an_event_with_an_unreadable_start_makes_the_feed_malformed(
    rig: Rig, ics: tuple[IcsServer, str], reader: CalendarSync, start: str
) -> None:
    """icalendar raises only when the start is read: that must be a problem told once, not a crashed round."""
    server, base = ics
    rig.clock.set(utc(2026, 11, 16, 10, 0))
    await connect(rig, "tom@demo.baton", base + "feed.ics")
    await connect(rig, "aiko@demo.baton", base + "good.ics")  # read in the same round: not cut short
    server.files["feed.ics"] = GOOD
    tom = await pid(rig, "tom@demo.baton")
    assert await reader.run_once() == {"ok": 2}
    before = await rig.db.run(lambda s: leave_days(s, [tom], date(2026, 11, 16), date(2026, 12, 31)))
    server.files["feed.ics"] = calendar(TRIP, event("broken", start, "SUMMARY:OOO"))
    for _ in range(2):
        rig.clock.advance(hours=2)
        assert await reader.run_once() == {"malformed": 1, "ok": 1}
        feed = await rig.db.run(lambda s: s.get(CalendarFeed, tom))
        assert feed.checked_at is not None and feed.problem == "malformed"  # not retried every five minutes
        assert await reader.run_once() == {}
        after = await rig.db.run(lambda s: leave_days(s, [tom], date(2026, 11, 16), date(2026, 12, 31)))
        assert after == before  # the last good days stay
    [told] = await _notices(rig, tom)
    assert "isn't an iCalendar file" in told.payload["text"]


async def test_any_failure_of_the_parser_is_a_malformed_feed_logged_without_content(
    rig: Rig,
    ics: tuple[IcsServer, str],
    reader: CalendarSync,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import bot.calendars

    _, base = ics
    caplog.set_level(logging.DEBUG)
    rig.clock.set(utc(2026, 11, 16, 10, 0))
    await connect(rig, "tom@demo.baton", base + "good.ics")

    def broken(*args: object, **kwargs: object) -> set[date]:
        raise KeyError("Lisbon with family")  # what a parser bug may carry: the feed's content

    monkeypatch.setattr(bot.calendars, "away_days", broken)
    assert await reader.run_once() == {"malformed": 1}
    assert len(await _notices(rig, await pid(rig, "tom@demo.baton"))) == 1
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("bot."))
    assert "KeyError" in logged and "Lisbon" not in logged and "good.ics" not in logged


async def test_every_round_reads_through_one_long_lived_session_closed_at_the_end(
    rig: Rig, ics: tuple[IcsServer, str], reader: CalendarSync
) -> None:
    """Rounds share the reader's HTTP session: the second round's request comes over the first one's connection."""
    server, base = ics
    rig.clock.set(utc(2026, 11, 16, 10, 0))
    await connect(rig, "tom@demo.baton", base + "good.ics")
    for _ in range(2):
        assert await reader.run_once() == {"ok": 1}
        rig.clock.advance(hours=1, minutes=1)
    assert len(server.peers) == 2 and server.peers[0] == server.peers[1]  # kept alive, not reconnected
    await reader.close()
    assert reader.closed


async def test_addresses_on_private_networks_are_refused_and_the_owner_told_what_to_do(
    rig: Rig, ics: tuple[IcsServer, str]
) -> None:
    """Without BATON_CALENDAR_PRIVATE_HOSTS, Baton reads no loopback, private or link-local address: a person
    could otherwise make it fetch an internal service and learn about it from the problem it reports."""
    server, base = ics
    rig.clock.set(utc(2026, 11, 16, 10, 0))
    await connect(rig, "tom@demo.baton", base + "good.ics")  # 127.0.0.1
    await connect(rig, "aiko@demo.baton", base.replace("127.0.0.1", "localhost") + "good.ics")  # a name for it
    await connect(rig, "lucia@demo.baton", "http://169.254.169.254/latest/meta-data.ics")  # a cloud's metadata
    guarded = CalendarSync(rig.db, rig.sealer, rig.clock, timeout=1.0)
    try:
        assert await guarded.run_once() == {"private": 3}
    finally:
        await guarded.close()
    assert server.hits == 0  # refused before any connection
    [told] = await _notices(rig, await pid(rig, "tom@demo.baton"))
    assert "private or internal network" in told.payload["text"] and "https://" in told.payload["text"]


async def test_an_address_that_is_itself_private_is_refused_at_once_unless_the_admin_allows_it(rig: Rig) -> None:
    """An IP address off the public internet, or localhost, is refused when typed, not minutes later at the
    first read; a name is accepted, and what it resolves to is checked when it is read."""
    tom = rig.restart(all_dialogs()).chat("tom@demo.baton")  # the default: BATON_CALENDAR_PRIVATE_HOSTS off
    for address in (
        "http://127.0.0.1:8080/cal/token-1.ics",
        "https://localhost/cal/token-2.ics",
        "https://printer.localhost./token-3.ics",
        "webcal://169.254.169.254/latest/token-4.ics",
        "http://[::ffff:10.0.0.1]/token-5.ics",
        "http://[64:ff9b:1::a00:1]/token-6.ics",
    ):
        await tom.send(f"leave calendar {address}")
        told = tom.expect("is on a private or internal network").text
        assert "only read calendars on the public internet" in told and "ask your Baton admin" in told
        assert "token" not in told  # the address is shown masked, as everywhere
    assert await rig.db.run(lambda s: s.get(CalendarFeed, tom.person.id)) is None
    await tom.send("leave calendar https://calendar.example.org/private/token-7/basic.ics")
    tom.expect("Connected https://calendar.example.org/…")
    # With the setting on (this module's rig), such an address is accepted.
    aiko = rig.chat("aiko@demo.baton")
    await aiko.send("leave calendar http://10.1.2.3/cal/aiko.ics")
    aiko.expect("Connected http://10.1.2.3/…")


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("93.184.215.14", True),
        ("2606:4700::1111", True),
        ("10.0.0.1", False),
        ("169.254.169.254", False),
        ("::ffff:10.0.0.1", False),  # IPv4-mapped
        ("::ffff:93.184.215.14", True),
        ("64:ff9b::a00:1", False),  # well-known NAT64 prefix
        ("64:ff9b::5db8:d70e", True),
        ("64:ff9b:1::a00:1", False),  # local-use NAT64 prefix: a translator inside the network
        ("64:ff9b:1:5db8:d7:e00::", False),
        ("::127.0.0.1", False),  # IPv4-compatible (deprecated), wrapping loopback
        ("::a00:1", False),
        ("2002:a00:1::", False),  # 6to4 of 10.0.0.1
        ("2001::1", False),  # Teredo
        ("fd00::1", False),
        ("ff02::1", False),
    ],
)
def test_only_public_addresses_pass_also_when_wrapped_in_ipv6(address: str, allowed: bool) -> None:
    from ipaddress import ip_address

    from dialogs.common.absence import public

    assert public(ip_address(address)) is allowed


async def test_a_redirect_to_a_private_address_is_refused(rig: Rig, ics: tuple[IcsServer, str]) -> None:
    """Here 127.0.0.1 plays the public internet; the redirect leads to another loopback address, where
    a second server would answer."""
    from ipaddress import ip_address

    server, _ = ics
    inside = web.Application()
    inside.router.add_get("/cal/{name}", server.handle)
    async with TestServer(inside, host="127.0.0.2") as internal:
        target = str(internal.make_url("/cal/good.ics"))

        async def redirect(request: web.Request) -> web.Response:
            raise web.HTTPFound(target)

        outside = web.Application()
        outside.router.add_get("/moved.ics", redirect)
        async with TestServer(outside, host="127.0.0.1") as public:
            rig.clock.set(utc(2026, 11, 16, 10, 0))
            await connect(rig, "tom@demo.baton", str(public.make_url("/moved.ics")))
            guarded = CalendarSync(
                rig.db, rig.sealer, rig.clock, timeout=1.0, allow=lambda ip: ip == ip_address("127.0.0.1")
            )
            try:
                assert await guarded.run_once() == {"private": 1}
            finally:
                await guarded.close()
            assert server.hits == 0
            open_reader = CalendarSync(rig.db, rig.sealer, rig.clock, timeout=1.0, allow=anywhere)
            rig.clock.advance(hours=2)
            try:
                assert await open_reader.run_once() == {"ok": 1}  # the same redirect, allowed: it is followed
            finally:
                await open_reader.close()


async def test_away_by_calendar_counts_as_away_in_participation_streaks_and_the_overview(
    rig: Rig, ics: tuple[IcsServer, str], reader: CalendarSync
) -> None:
    """Week 47's check-in Friday (20 Nov) is in Tom's and Aiko's calendar trip. Tom's invitation was queued
    before his calendar said so, then cancelled for leave; Aiko's was never queued. Both are away, not
    missed: Tom keeps his streak and full participation."""
    from bot.reports import as_csv, participation
    from dialogs.services.home import overview
    from dialogs.services.rhythm import Conductor
    from tests.test_rhythm import W47, W48, answer_checkin

    server, base = ics
    tom, aiko = await pid(rig, "tom@demo.baton"), await pid(rig, "aiko@demo.baton")
    tom_chat = rig.chat("tom@demo.baton")
    server.files["tom.ics"] = calendar()  # nothing yet
    rig.clock.set(utc(2026, 11, 16, 10, 0))
    await connect(rig, "tom@demo.baton", base + "tom.ics")
    await connect(rig, "aiko@demo.baton", base + "good.ics")
    assert await reader.run_once() == {"ok": 2}
    conductor = Conductor(rig.db, sealer=rig.sealer)
    for when in (utc(2026, 11, 20, 10, 30), utc(2026, 11, 20, 15, 0)):  # Tokyo's and Berlin's 16:00
        rig.clock.set(when)
        await conductor.tick(when)
    [queued] = await outbox(rig, person_id=tom, topic=f"checkin:{W47}")
    assert queued.status == "pending" and await outbox(rig, person_id=aiko, topic=f"checkin:{W47}") == []
    server.files["tom.ics"] = GOOD  # Tom adds the trip; the calendar is read before the invitation goes out
    rig.clock.set(utc(2026, 11, 20, 15, 0, 30))
    await reader.run_once()
    await rig.sender.drain_once()
    [cancelled] = await outbox(rig, person_id=tom, topic=f"checkin:{W47}")
    assert (cancelled.status, cancelled.last_error) == ("cancelled", "leave")

    manager = await overview(rig.db, await pid(rig, "maya@demo.baton"), utc(2026, 11, 21, 9))
    lines = "\n".join(manager.card.lines if manager and manager.card else ())
    assert "Tom Becker: away" in lines and "Aiko Tanaka: away" in lines
    assert manager is not None and manager.card is not None
    answered = dict(manager.card.fields)["Your team this period"]
    assert answered.endswith("answered, 2 away or not asked"), answered  # the two away are not counted as unanswered

    rig.clock.set(utc(2026, 11, 27, 15, 0))  # week 48: Tom is back and answers
    await conductor.tick(rig.clock.now())
    await rig.sender.drain_once()
    await answer_checkin(tom_chat, tom_chat.expect("check-in time for week 48"), ["a", "nothing", "4", "c", "no"])

    report = await participation(rig.db, "Platform", 2, utc(2026, 11, 30, 10, 0))
    people = {p["email"]: p for p in report["people"]}
    assert report["periods"] == [W47, W48]
    assert people["tom@demo.baton"]["periods"][W47] == {"status": "away", "pulse": None}
    assert people["tom@demo.baton"]["participation"] == 1.0 and people["tom@demo.baton"]["streak"] == 1
    assert people["aiko@demo.baton"]["periods"][W47]["status"] == "away"
    assert "Platform,2026-W47,tom@demo.baton,Tom Becker,away,,1.0,1" in as_csv(report)


# -- every effect of leave, for absence nobody typed ------------------------------------------------


async def make_away(
    rig: Rig, ics: tuple[IcsServer, str], reader: CalendarSync, source: str, email: str, first: date, last: date
) -> None:
    """`email` away from `first` to `last` (inclusive) by their calendar feed or their platform status."""
    from dialogs.common.absence import set_status_away

    person = await pid(rig, email)
    if source == "calendar":
        server, base = ics
        name = f"{email.split('@')[0]}.ics"
        server.files[name] = calendar(
            event("away", f"DTSTART;VALUE=DATE:{first:%Y%m%d}", f"DTEND;VALUE=DATE:{last + timedelta(days=1):%Y%m%d}")
        )
        await connect(rig, email, base + name)
        assert await reader.run_once() == {"ok": 1}
    else:
        now = rig.clock.now()
        await rig.db.run(lambda s: set_status_away(s, person, last, now.date(), now))


@pytest.mark.parametrize(("source", "friday"), [("calendar", 20), ("status", 20), ("holiday", 25)])
async def test_no_invitation_for_someone_away_by_calendar_status_or_holiday_and_away_in_participation(
    rig: Rig, ics: tuple[IcsServer, str], reader: CalendarSync, source: str, friday: int
) -> None:
    from bot.reports import participation
    from tests.test_rhythm import invitations, tick

    tom = await pid(rig, "tom@demo.baton")
    month = 11 if friday == 20 else 12
    day = date(2026, month, friday)
    rig.clock.set(utc(2026, month, friday - 4, 10, 0))
    if source == "holiday":

        async def german(session) -> None:
            for team in await session.scalars(select(Team)):
                team.holidays = "DE"

        await rig.db.run(german)
    else:
        await make_away(rig, ics, reader, source, "tom@demo.baton", day, day + timedelta(days=2))
    period = f"2026-W{day.isocalendar().week}"
    for hour in (10, 15, 18):  # Tokyo's, Berlin's and after the reminders would be due
        await tick(rig, utc(2026, month, friday, hour, 30))
    assert await outbox(rig, person_id=tom, topic=f"checkin:{period}") == []
    assert invitations(rig, tom, period) == [] and not [r for r in rig.delivery.to(tom) if "reminder" in r.text]
    report = await participation(rig.db, "Platform", 1, utc(2026, month, friday + 3, 10, 0))
    [row] = [p for p in report["people"] if p["email"] == "tom@demo.baton"]
    assert row["periods"][period]["status"] == "away" and row["participation"] is None and row["streak"] == 0


@pytest.mark.parametrize("source", ["calendar", "status"])
async def test_no_reminder_once_a_calendar_or_status_says_away_after_the_invitation(
    rig: Rig, ics: tuple[IcsServer, str], reader: CalendarSync, source: str
) -> None:
    from tests.test_rhythm import invitations, reminders, tick

    tom = await pid(rig, "tom@demo.baton")
    await tick(rig, utc(2026, 11, 20, 15, 0))  # 16:00 in Berlin: invited
    assert len(invitations(rig, tom)) == 1
    rig.clock.set(utc(2026, 11, 20, 15, 30))  # then the afternoon goes on the calendar (or the status)
    await make_away(rig, ics, reader, source, "tom@demo.baton", date(2026, 11, 20), date(2026, 11, 22))
    for when in (utc(2026, 11, 20, 17, 0), utc(2026, 11, 20, 19, 0), utc(2026, 11, 21, 9, 0)):
        await tick(rig, when)
    assert reminders(rig, tom) == []


@pytest.mark.parametrize("source", ["calendar", "status"])
async def test_messages_held_for_someone_away_by_calendar_or_status_arrive_folded_on_return(
    rig: Rig, ics: tuple[IcsServer, str], reader: CalendarSync, source: str
) -> None:
    rig.clock.set(utc(2026, 11, 19, 10, 0))
    await make_away(rig, ics, reader, source, "tom@demo.baton", date(2026, 11, 20), date(2026, 11, 24))
    rig.clock.set(utc(2026, 11, 20, 10, 0))
    for sender, well in (("maya", "The billing migration plan was easy to follow"), ("aiko", "Great cache review")):
        chat = rig.chat(f"{sender}@demo.baton")
        await give_feedback(chat, "tom", well)
        assert "Tom gets it on Wed 25 Nov at 08:00 their time" in chat.expect("Sent to Tom").text
    tom_chat = rig.chat("tom@demo.baton")
    for when in (utc(2026, 11, 22, 12, 0), utc(2026, 11, 25, 6, 59)):
        rig.clock.set(when)
        await rig.sender.drain_once()
        tom_chat.expect_nothing()
    rig.clock.set(utc(2026, 11, 25, 7, 0))  # 08:00 in Berlin, his first morning back
    await rig.sender.drain_once()
    [folded] = tom_chat.replies()
    assert folded.text.startswith("While you were away, 2 messages came in")
    assert "Feedback from Maya" in folded.text and "Feedback from Aiko" in folded.text
