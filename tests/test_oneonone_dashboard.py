"""1:1s on the dashboard over real HTTP, on SQLite and PostgreSQL: who may open a pair's page, CSV and
invitation, what stays private to one side, and the `.ics` read back by the iCalendar library.

The organisation is test_dashboard's (the demo team, Payments, a closed 360 about Tom with peer comments)
plus Vera, Maya's manager — Tom's skip-level — and three 1:1 pairs seeded through the models:
Maya–Tom (two weeks, Tuesdays 10:00 Berlin, one held, one skipped, the next planned), Maya–Arjun (weekly,
no meeting yet) and Vera–Maya.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import icalendar
import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import func, select, update

from bot.app import Baton, create_app
from bot.config import load_settings
from bot.dashboard import RedactTokens
from dialogs.common.invite import INVITE_PATH, invite_token
from dialogs.engine.clock import FakeClock
from storage.db import Database
from storage.models import (
    ActionItem,
    CheckinAnswer,
    CheckinRun,
    Meeting,
    MeetingNote,
    OneOnOne,
    Person,
    TalkingPoint,
)
from tests import test_dashboard as dash
from tests.conftest import ARTIFACTS, free_port

NOW = dash.NOW  # Friday 2026-11-20 09:00 UTC
BERLIN = ZoneInfo("Europe/Berlin")
SCRIPT = dash.SCRIPT

# What one side wrote for themselves, what the report told the manager alone, and 360 comments: each test
# below names where these may appear and checks everywhere else that they do not.
MAYA_PRIVATE = "MAYA-PRIVATE: Tom seemed tired, ask about workload"
TOM_PRIVATE = "TOM-PRIVATE: bring up the raise next time"
PRIVATE_ASK = "PRIVATE-ASK: I need help with my promotion case"
PEER_COMMENTS = ("Shares context early", "Could delegate more", "Great reviewer")
PAIR_SECRETS = (
    "Agreed to split the export",  # shared notes
    "conference budget",  # a discussed talking point
    "Write the export RFC",  # an action item
    "on-call rota",  # an open point Tom added
    PRIVATE_ASK,
    "staging database",  # Tom's blocker, gathered onto the agenda
)
FORMULA = '=HYPERLINK("http://evil.example","click")'


@dataclass
class Pairs:
    tom: int  # Maya–Tom
    arjun: int  # Maya–Arjun
    maya: int  # Vera–Maya


@pytest.fixture
async def site(db: Database, database_url: str) -> AsyncIterator[tuple[dash.Site, Pairs]]:
    clock = FakeClock(NOW)
    port = free_port()
    settings = load_settings(
        env_file=None,
        DATABASE_URL=database_url,
        BATON_TICK_SECONDS=3600,
        BATON_PUBLIC_URL=f"http://127.0.0.1:{port}",
        BATON_DEMO_HISTORY=False,
    )
    baton = Baton.build(settings, clock=clock)
    async with TestServer(create_app(baton), host="127.0.0.1", port=port) as server:
        ids, campaign_id, other_id = await dash.seed(baton.db, NOW)
        pairs = await seed_one_on_ones(baton.db, ids)
        url = str(server.make_url("")).rstrip("/")
        yield dash.Site(url, baton, clock, dash.chat_engine(baton), ids, campaign_id, other_id), pairs


def berlin(day: date, hour: int = 10) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=BERLIN).astimezone(UTC)


async def seed_one_on_ones(db: Database, ids: dict[str, int]) -> Pairs:
    async def work(session) -> Pairs:
        maya = await session.get(Person, ids["maya"])
        vera = Person(
            email="vera@demo.baton",
            name="Vera Lindqvist",
            timezone="America/New_York",
            team_id=maya.team_id,
            created_at=NOW,
        )
        session.add(vera)
        await session.flush()
        maya.manager_id = vera.id
        ids["vera"] = vera.id
        tom_pair = OneOnOne(
            manager_id=ids["maya"],
            report_id=ids["tom"],
            every_weeks=2,
            minutes=30,
            weekday=1,
            at="10:00",
            anchor=date(2026, 10, 27),
            created_at=NOW - timedelta(weeks=6),
        )
        arjun_pair = OneOnOne(
            manager_id=ids["maya"],
            report_id=ids["arjun"],
            every_weeks=1,
            minutes=25,
            weekday=1,
            at="10:00",
            anchor=date(2026, 11, 17),
            created_at=NOW - timedelta(weeks=1),
        )
        maya_pair = OneOnOne(
            manager_id=vera.id,
            report_id=ids["maya"],
            every_weeks=2,
            minutes=45,
            weekday=3,
            at="09:00",
            anchor=date(2026, 11, 12),
            created_at=NOW - timedelta(weeks=2),
        )
        session.add_all([tom_pair, arjun_pair, maya_pair])
        await session.flush()
        skipped = Meeting(
            pair_id=tom_pair.id,
            planned_at=berlin(date(2026, 10, 27)),
            starts_at=berlin(date(2026, 10, 27)),
            status="skipped",
            created_at=NOW - timedelta(weeks=4),
        )
        held = Meeting(
            pair_id=tom_pair.id,
            planned_at=berlin(date(2026, 11, 10)),
            starts_at=berlin(date(2026, 11, 10)),
            status="held",
            shared_notes="Agreed to split the export into two releases",
            recorded_at=berlin(date(2026, 11, 10), 11),
            created_at=NOW - timedelta(weeks=2),
        )
        upcoming = Meeting(
            pair_id=tom_pair.id,
            planned_at=berlin(date(2026, 11, 24)),
            starts_at=berlin(date(2026, 11, 24)),
            status="planned",
            created_at=NOW - timedelta(days=1),
        )
        vera_held = Meeting(
            pair_id=maya_pair.id,
            planned_at=datetime(2026, 11, 12, 14, tzinfo=UTC),
            starts_at=datetime(2026, 11, 12, 14, tzinfo=UTC),
            status="held",
            shared_notes="VERA-MAYA shared: hiring plan",
            created_at=NOW - timedelta(weeks=2),
        )
        session.add_all([skipped, held, upcoming, vera_held])
        await session.flush()
        session.add_all(
            [
                TalkingPoint(
                    pair_id=tom_pair.id,
                    author_id=ids["tom"],
                    text="Talk about the conference budget",
                    meeting_id=held.id,
                    note="Approved up to 800 EUR",
                    discussed_at=held.starts_at,
                    created_at=held.starts_at - timedelta(days=2),
                ),
                TalkingPoint(
                    pair_id=tom_pair.id,
                    author_id=ids["maya"],
                    text=f"Feedback on the design review {SCRIPT}",
                    meeting_id=upcoming.id,
                    created_at=NOW - timedelta(days=1),
                ),
                TalkingPoint(
                    pair_id=tom_pair.id,
                    author_id=ids["tom"],
                    text="Ask about the on-call rota",
                    created_at=NOW - timedelta(hours=3),
                ),
                MeetingNote(meeting_id=held.id, author_id=ids["maya"], text=MAYA_PRIVATE, created_at=held.starts_at),
                MeetingNote(meeting_id=held.id, author_id=ids["tom"], text=TOM_PRIVATE, created_at=held.starts_at),
                MeetingNote(meeting_id=vera_held.id, author_id=vera.id, text="VERA-PRIVATE about Maya", created_at=NOW),
                ActionItem(
                    owner_id=ids["tom"],
                    created_by_id=ids["maya"],
                    text="Write the export RFC",
                    due_on=date(2026, 11, 18),  # two days ago: overdue
                    pair_id=tom_pair.id,
                    meeting_id=held.id,
                    created_at=held.starts_at,
                ),
                ActionItem(
                    owner_id=ids["maya"],
                    text="Book the design review room",
                    due_on=date(2026, 12, 1),
                    pair_id=tom_pair.id,
                    meeting_id=held.id,
                    created_at=held.starts_at,
                ),
                ActionItem(
                    owner_id=ids["tom"],
                    text=FORMULA,
                    pair_id=tom_pair.id,
                    created_at=NOW - timedelta(days=1),
                ),
                ActionItem(
                    owner_id=ids["tom"],
                    text="Old thing, done",
                    due_on=date(2026, 11, 1),
                    pair_id=tom_pair.id,
                    done_at=NOW - timedelta(days=10),
                    created_at=NOW - timedelta(weeks=3),
                ),
                ActionItem(
                    owner_id=ids["arjun"],
                    text="ARJUN-ACTION: update the runbook",
                    due_on=date(2026, 11, 19),
                    pair_id=arjun_pair.id,
                    created_at=NOW - timedelta(days=5),
                ),
            ]
        )
        # What Tom told his manager alone, in his latest check-in (after the last held 1:1).
        run = (
            (
                await session.execute(
                    select(CheckinRun).where(CheckinRun.person_id == ids["tom"]).order_by(CheckinRun.period.desc())
                )
            )
            .scalars()
            .first()
        )
        session.add(CheckinAnswer(run_id=run.id, question_id="needs", text=PRIVATE_ASK, updated_at=NOW))
        return Pairs(tom_pair.id, arjun_pair.id, maya_pair.id)

    return await db.run(work)


def paths(pair_id: int) -> list[str]:
    base = f"/dashboard/1on1/{pair_id}"
    return [base, f"{base}.csv", f"{base}/invite.ics", f"{base}?csv=agenda", f"{base}?csv=history"]


def no_secret_of_the_pair(text: str) -> None:
    for secret in (*PAIR_SECRETS, MAYA_PRIVATE, TOM_PRIVATE, *PEER_COMMENTS):
        assert secret not in text, secret


# -- who may open what ------------------------------------------------------------------------------------


async def test_only_the_two_people_of_a_pair_open_its_page_csv_and_invitation(site) -> None:
    site, pairs = site
    for who in ("tom", "maya"):
        async with await dash.sign_in(site, who) as http:
            for path in paths(pairs.tom):
                status, _ = await dash.get(http, path)
                assert status == 200, (who, path)
    # Another report, the skip-level manager, an admin: the dashboard's usual 403, with nothing of the pair.
    for who in ("arjun", "vera", "sam", "ravi"):
        async with await dash.sign_in(site, who) as http:
            for path in paths(pairs.tom):
                status, page = await dash.get(http, path)
                assert status == 403, (who, path)
                assert "Not yours to see" in page
                no_secret_of_the_pair(page)
                assert "BEGIN:VCALENDAR" not in page
    async with await dash.sign_in(site, "vera") as http:  # the skip-level's own pages hold nothing of Tom's pair
        for path in ("/dashboard/1on1", *paths(pairs.maya)):
            status, page = await dash.get(http, path)
            assert status == 200, path
            no_secret_of_the_pair(page)
            assert "Tom" not in page
    async with await dash.sign_in(site, "tom") as http:  # a report does not open a colleague's pair
        for path in paths(pairs.arjun) + paths(pairs.maya):
            assert (await dash.get(http, path))[0] == 403, path
        for path in ("/dashboard/1on1/999999", "/dashboard/1on1/abc", "/dashboard/1on1/999999.csv"):
            assert (await dash.get(http, path))[0] == 403, path  # no pair or not yours: the same answer
    async with await dash.sign_in(site, "maya") as http:  # both roles: her reports' pairs and her own
        for path in paths(pairs.arjun) + paths(pairs.maya):
            assert (await dash.get(http, path))[0] == 200, path
    async with dash.browser(site) as http:  # signed out: sent to sign in, nothing served
        for path in [*paths(pairs.tom), "/dashboard/1on1"]:
            status, page = await dash.get(http, path)
            assert status == 303, path
            no_secret_of_the_pair(page)
        async with http.get(f"/dashboard/1on1/{pairs.tom}.csv", allow_redirects=False) as response:
            assert response.headers["Location"] == f"/dashboard/signin?next=/dashboard/1on1/{pairs.tom}.csv"


async def test_a_manager_who_loses_the_report_loses_the_pair_at_once(site) -> None:
    site, pairs = site
    async with await dash.sign_in(site, "maya") as http:
        assert (await dash.get(http, f"/dashboard/1on1/{pairs.tom}"))[0] == 200

        async def move(session) -> None:
            tom = await session.get(Person, site.ids["tom"])
            tom.manager_id = site.ids["ravi"]

        await site.baton.db.run(move)
        for path in paths(pairs.tom):
            assert (await dash.get(http, path))[0] == 403, path
        _, listing = await dash.get(http, "/dashboard/1on1")
        assert "Tom Becker" not in listing and "Arjun Rao" in listing
    async with await dash.sign_in(site, "tom") as http:  # the report keeps their own history
        status, page = await dash.get(http, f"/dashboard/1on1/{pairs.tom}")
        assert status == 200 and "Agreed to split the export" in page


async def test_the_list_shows_a_manager_each_report_and_a_report_their_own_pair(site) -> None:
    site, pairs = site
    async with await dash.sign_in(site, "maya") as http:
        status, page = await dash.get(http, "/dashboard/1on1")
        assert status == 200
        assert 'href="/dashboard/1on1"' in page  # in the navigation
        status, text = await dash.get(http, "/dashboard/1on1?csv=reports")
    rows = {r["Report"]: r for r in csv.DictReader(io.StringIO(text.lstrip("\ufeff")))}
    assert set(rows) == {"Arjun Rao", "Tom Becker"}  # reports only: not Vera, not another team
    assert rows["Tom Becker"] | {"Page": ""} == {
        "Report": "Tom Becker",
        "Last 1:1": "2026-11-10",
        "Next 1:1 (your time)": "Tue 24 Nov 10:00",
        "Open actions": "3",
        "Overdue": "1",
        "Page": "",
    }
    assert rows["Arjun Rao"]["Last 1:1"] == "" and rows["Arjun Rao"]["Overdue"] == "1"
    assert rows["Arjun Rao"]["Next 1:1 (your time)"] == "Tue 24 Nov 10:00"
    assert f'href="/dashboard/1on1/{pairs.tom}"' in page and f'href="/dashboard/1on1/{pairs.arjun}"' in page
    assert f'href="/dashboard/1on1/{pairs.maya}"' in page and "Your 1:1 with Vera Lindqvist" in page
    for secret in ("Write the export RFC", "ARJUN-ACTION", MAYA_PRIVATE, PRIVATE_ASK):
        assert secret not in page  # counts and dates, not what the items say

    async with await dash.sign_in(site, "arjun") as http:
        status, page = await dash.get(http, "/dashboard/1on1")
    assert status == 200 and f'href="/dashboard/1on1/{pairs.arjun}"' in page
    assert f"/dashboard/1on1/{pairs.tom}" not in page and "Tom" not in page
    # Arjun is in Kolkata: Maya's Tuesday 10:00 in Berlin is his 14:30.
    assert "next Tue 24 Nov 14:30 your time" in page
    assert "Your reports" not in page


async def test_an_admin_sees_counts_only(site) -> None:
    site, _ = site
    async with await dash.sign_in(site, "sam") as http:
        status, page = await dash.get(http, "/dashboard/1on1")
        _, text = await dash.get(http, "/dashboard/1on1?csv=organisation")
    assert status == 200
    # Counted from the table, not assumed: the scheduler may give other manager–report lines a pair too.
    active = await site.baton.db.run(lambda s: s.scalar(select(func.count()).where(OneOnOne.active.is_(True))))
    assert active >= 3
    assert list(csv.DictReader(io.StringIO(text.lstrip("\ufeff")))) == [
        {"Active pairs": str(active), "1:1s held in the last 30 days": "2", "Overdue action items": "2"}
    ]
    no_secret_of_the_pair(page)
    for name in ("Tom", "Arjun", "Maya", "Vera", "ARJUN-ACTION"):
        assert name not in page.split("<main")[1], name  # the header names the viewer, Sam, only
    assert "/dashboard/1on1/" not in page


async def test_with_fewer_than_three_pairs_an_admin_sees_only_how_many(site) -> None:
    site, pairs = site

    async def end_all_but_toms(session) -> None:
        await session.execute(update(OneOnOne).where(OneOnOne.id != pairs.tom).values(active=False))

    await site.baton.db.run(end_all_but_toms)
    async with await dash.sign_in(site, "sam") as http:
        _, text = await dash.get(http, "/dashboard/1on1?csv=organisation")
    assert list(csv.DictReader(io.StringIO(text.lstrip("\ufeff")))) == [
        {"Active pairs": "1", "1:1s held in the last 30 days": "", "Overdue action items": ""}
    ]


# -- the pair's page ------------------------------------------------------------------------------------------


async def test_the_pair_page_shows_rhythm_agenda_actions_and_history(site) -> None:
    site, pairs = site
    async with await dash.sign_in(site, "tom") as http:
        status, page = await dash.get(http, f"/dashboard/1on1/{pairs.tom}")
        _, agenda = await dash.get(http, f"/dashboard/1on1/{pairs.tom}?csv=agenda")
        _, actions = await dash.get(http, f"/dashboard/1on1/{pairs.tom}?csv=actions")
        _, history = await dash.get(http, f"/dashboard/1on1/{pairs.tom}?csv=history")
    assert status == 200 and "1:1 with Maya Chen" in page
    assert "every 2 weeks on Tuesday at 10:00, 30 minutes (Maya's time, Europe/Berlin)" in page
    assert "Tue 24 Nov 10:00 your time (Europe/Berlin)" in page
    assert "Only Maya gets “How did it go?” after each 1:1. To change it, type 1:1 ask-report on" in page
    assert (
        f'href="/dashboard/1on1/{pairs.tom}/invite.ics"' in page and f'href="/dashboard/1on1/{pairs.tom}.csv"' in page
    )
    items = [(r["#"], r["Item"], r["What"]) for r in csv.DictReader(io.StringIO(agenda.lstrip("\ufeff")))]
    # On the planned 1:1 already, what Baton would gather since the last held one, then Tom's open point.
    assert [i[0] for i in items] == [str(n) for n in range(1, len(items) + 1)]
    assert items[0] == ("1", "From Maya", f"Feedback on the design review {SCRIPT}")
    assert ("Blocker", f"Waiting on the staging database {SCRIPT}") in [i[1:] for i in items]
    assert ("Asked of the manager", PRIVATE_ASK) in [i[1:] for i in items]  # the pair sees it
    assert items[-1][1:] == ("From Tom", "Ask about the on-call rota")
    assert SCRIPT not in page and "&lt;script&gt;" in page
    rows = list(csv.DictReader(io.StringIO(actions.lstrip("\ufeff"))))
    assert [(r["Owner"], r["Due"], r["Overdue"]) for r in rows] == [
        ("Tom", "2026-11-18", "overdue"),
        ("Maya", "2026-12-01", ""),
        ("Tom", "", ""),
    ]
    assert "Old thing, done" not in page
    past = list(csv.DictReader(io.StringIO(history.lstrip("\ufeff"))))
    assert [(r["When (your time)"], r["Status"]) for r in past] == [
        ("2026-11-10 10:00", "held"),
        ("2026-10-27 10:00", "skipped"),
    ]
    assert past[0]["Shared notes"] == "Agreed to split the export into two releases"
    assert past[0]["Talked about"] == "From Tom: Talk about the conference budget — Approved up to 800 EUR"
    assert past[0]["Your private notes"] == TOM_PRIVATE


async def test_private_notes_stay_with_their_author_on_page_and_csv(site) -> None:
    site, pairs = site
    seen = {}
    for who in ("tom", "maya"):
        async with await dash.sign_in(site, who) as http:
            _, page = await dash.get(http, f"/dashboard/1on1/{pairs.tom}")
            _, export = await dash.get(http, f"/dashboard/1on1/{pairs.tom}.csv")
            _, history = await dash.get(http, f"/dashboard/1on1/{pairs.tom}?csv=history")
            seen[who] = page + export + history
    assert PRIVATE_ASK in seen["tom"] and PRIVATE_ASK in seen["maya"]  # "only your manager sees this": the pair
    assert TOM_PRIVATE in seen["tom"] and MAYA_PRIVATE not in seen["tom"]
    assert MAYA_PRIVATE in seen["maya"] and TOM_PRIVATE not in seen["maya"]
    for who in ("tom", "maya"):
        assert "VERA-PRIVATE" not in seen[who]
        for comment in PEER_COMMENTS:  # Tom's 360 is closed and Maya may read it elsewhere: never on a 1:1
            assert comment not in seen[who]
    async with await dash.sign_in(site, "maya") as http:  # as Vera's report, Maya sees Vera's shared notes only
        _, page = await dash.get(http, f"/dashboard/1on1/{pairs.maya}")
    assert "VERA-MAYA shared" in page and "VERA-PRIVATE" not in page


async def test_the_csv_holds_every_meeting_point_and_action_with_formulas_kept_text(site) -> None:
    site, pairs = site
    async with await dash.sign_in(site, "maya") as http:
        async with http.get(f"/dashboard/1on1/{pairs.tom}.csv") as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/csv")
            assert response.headers["Content-Disposition"].startswith("attachment;")
            text = await response.text()
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    kinds = [r["Kind"] for r in rows]
    assert kinds.count("1:1") == 3 and kinds.count("Action item") == 4 and kinds.count("Talking point") == 3
    assert kinds.count("Your private note") == 1
    held = next(r for r in rows if r["Kind"] == "1:1" and r["Status"] == "held")
    assert held["Date"] == "2026-11-10 10:00" and held["Text"].startswith("Agreed to split")
    rfc = next(r for r in rows if r["Text"] == "Write the export RFC")
    assert (rfc["Who"], rfc["Status"], rfc["Due"], rfc["1:1"]) == (
        "Tom Becker",
        "overdue",
        "2026-11-18",
        "2026-11-10 10:00",
    )
    done = next(r for r in rows if r["Text"] == "Old thing, done")
    assert done["Status"] == "done 2026-11-10"
    budget = next(r for r in rows if "conference budget" in r["Text"])
    assert (budget["Who"], budget["Status"], budget["Note"]) == (
        "Tom Becker",
        "discussed 2026-11-10",
        "Approved up to 800 EUR",
    )
    formula = [r for r in rows if "HYPERLINK" in r["Text"]]
    assert [r["Text"] for r in formula] == ["'" + FORMULA]  # a spreadsheet shows it, never runs it
    assert all(not r[k].startswith(("=", "+", "@")) for r in rows for k in r)
    assert MAYA_PRIVATE in text and TOM_PRIVATE not in text and PRIVATE_ASK not in text  # gathered items are not rows


# -- the invitation -------------------------------------------------------------------------------------------


def parse(body: bytes) -> icalendar.Event:
    calendar = icalendar.Calendar.from_ical(body)
    events = calendar.walk("VEVENT")
    assert len(events) == 1
    assert [tz["TZID"] for tz in calendar.walk("VTIMEZONE")] == ["Europe/Berlin"]
    return events[0]


async def test_the_invitation_parses_back_as_the_pairs_recurring_1on1(site) -> None:
    site, pairs = site
    async with await dash.sign_in(site, "tom") as http:
        async with http.get(f"/dashboard/1on1/{pairs.tom}/invite.ics") as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "text/calendar; charset=utf-8"
            assert response.headers["Content-Disposition"] == 'attachment; filename="one-on-one.ics"'
            body = await response.read()
    event = parse(body)
    assert event["RRULE"]["FREQ"] == ["WEEKLY"]
    assert event["RRULE"]["INTERVAL"] == [2] and event["RRULE"]["BYDAY"] == ["TU"]
    assert event["DTSTART"].params["TZID"] == "Europe/Berlin"
    start = event.decoded("DTSTART")
    assert start == datetime(2026, 10, 27, 10, 0, tzinfo=BERLIN) and start.utcoffset() == timedelta(hours=1)
    assert event.decoded("DTEND") - start == timedelta(minutes=30)
    assert str(event["SUMMARY"]) == "1:1 Maya Chen / Tom Becker"
    text = body.decode()
    for secret in (*PAIR_SECRETS, MAYA_PRIVATE, TOM_PRIVATE):
        assert secret not in text  # names and times only, never the agenda

    async with await dash.sign_in(site, "maya") as http:  # Vera–Maya: Maya is the report, Vera's zone rules
        async with http.get(f"/dashboard/1on1/{pairs.maya}/invite.ics") as response:
            other = icalendar.Calendar.from_ical(await response.read()).walk("VEVENT")[0]
    assert other["DTSTART"].params["TZID"] == "America/New_York"
    assert other["RRULE"]["BYDAY"] == ["TH"] and other.decoded("DTEND") - other.decoded("DTSTART") == timedelta(
        minutes=45
    )


async def test_the_chat_link_to_the_invitation_needs_no_sign_in_and_dies_with_the_rhythm(site) -> None:
    site, pairs = site
    sealer = site.baton.core.sealer
    pair = await site.baton.db.run(lambda s: s.get(OneOnOne, pairs.tom))
    token = invite_token(sealer, pair)
    async with dash.browser(site) as http:
        async with http.get(f"{INVITE_PATH}/{token}.ics", allow_redirects=False) as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "text/calendar; charset=utf-8"
            assert response.headers["Content-Disposition"] == 'attachment; filename="one-on-one.ics"'
            assert parse(await response.read())["RRULE"]["INTERVAL"] == [2]
        forged = token[:-4] + ("0000" if not token.endswith("0000") else "1111")
        other_pair = f"{pairs.arjun}-{token.partition('-')[2]}"  # Tom's tag on Arjun's pair
        for bad in (forged, other_pair, "999999-" + "a" * 32, "abc", token + "0"):
            async with http.get(f"{INVITE_PATH}/{bad}.ics", allow_redirects=False) as response:
                assert response.status == 404, bad
                message = await response.text()
                assert "1:1 invite" in message and "BEGIN:VCALENDAR" not in message

        async def retime(session) -> None:
            row = await session.get(OneOnOne, pairs.tom)
            row.every_weeks = 1

        await site.baton.db.run(retime)
        async with http.get(f"{INVITE_PATH}/{token}.ics", allow_redirects=False) as response:
            assert response.status == 404  # stale: the rhythm changed
            assert "fresh link" in await response.text() and "1:1 invite" in await response.text()
        fresh = invite_token(sealer, await site.baton.db.run(lambda s: s.get(OneOnOne, pairs.tom)))
        async with http.get(f"{INVITE_PATH}/{fresh}.ics", allow_redirects=False) as response:
            assert response.status == 200
            assert parse(await response.read())["RRULE"]["INTERVAL"] == [1]


def test_invitation_tokens_are_blanked_in_access_logs() -> None:
    record = logging.LogRecord(
        "aiohttp.access", logging.INFO, __file__, 1, '%s "GET %s HTTP/1.1" 200', ("127.0.0.1", ""), None
    )
    record.args = ("127.0.0.1", f"{INVITE_PATH}/12-{'ab' * 16}.ics")
    RedactTokens().filter(record)
    assert record.getMessage() == f'127.0.0.1 "GET {INVITE_PATH}/[redacted].ics HTTP/1.1" 200'
    signin = logging.LogRecord(
        "aiohttp.access", logging.INFO, __file__, 1, "GET /dashboard/login?token=s3cr3t", (), None
    )
    RedactTokens().filter(signin)
    assert signin.getMessage() == "GET /dashboard/login?token=[redacted]"


# -- in a browser --------------------------------------------------------------------------------------------


@pytest.mark.browser
async def test_in_a_browser_a_report_opens_the_pair_page_and_downloads_the_invitation(
    browser, site, database_url: str, tmp_path: Path
) -> None:
    if "postgresql" in database_url:
        pytest.skip("the browser checks the pages, not the database: once, on SQLite, is enough")
    site, pairs = site
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = await context.new_page()
    await page.goto(await site.link_for("tom"))
    async with page.expect_navigation():
        await page.click("form[action='/dashboard/login'] button[type=submit]")
    await page.click("header nav >> text=1:1s")
    await page.locator("h1", has_text="1:1s").wait_for()
    async with page.expect_navigation():
        await page.click("text=Your 1:1 with Maya Chen")
    assert page.url == f"{site.url}/dashboard/1on1/{pairs.tom}"
    await page.locator("h1", has_text="1:1 with Maya Chen").wait_for()

    agenda = page.locator("section[aria-labelledby='t-agenda'] tbody tr")
    texts = [await row.inner_text() for row in await agenda.all()]
    assert any("Feedback on the design review" in t and t.startswith("1") for t in texts), texts
    assert any(PRIVATE_ASK in t for t in texts) and any("on-call rota" in t for t in texts)
    actions = page.locator("section[aria-labelledby='t-actions'] tbody tr")
    assert await actions.count() == 3
    assert "overdue" in await actions.first.inner_text() and "Write the export RFC" in await actions.first.inner_text()
    assert await page.locator("td", has_text=TOM_PRIVATE).count() == 1
    assert await page.locator("text=" + MAYA_PRIVATE).count() == 0
    assert await page.evaluate("window.pwned === undefined")  # the blocker's <script> is text
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "dashboard-1on1-pair-desktop.png"), full_page=True)

    async with page.expect_download() as pending:
        await page.click("a#ics")
    download = await pending.value
    assert download.suggested_filename == "one-on-one.ics"
    saved = tmp_path / "one-on-one.ics"
    await download.save_as(saved)
    event = parse(saved.read_bytes())
    assert event["RRULE"]["BYDAY"] == ["TU"] and event["DTSTART"].params["TZID"] == "Europe/Berlin"
    assert re.fullmatch(r"one-on-one-\d+@baton", str(event["UID"]))
    await context.close()
