"""The team's rhythm as one picture (dialogs/services/picture.py, /dashboard/rhythm, `baton rhythm show`).

The picture must say what the scheduler does: the Conductor is driven across a week on a fake clock and
every check-in invitation, reminder and digest it queues is compared with the picture's times. Changing
the rhythm through the command line and the dashboard's settings form changes the picture. On both
databases.
"""

from __future__ import annotations

import asyncio
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner, Result
from sqlalchemy import select

from bot.cli import main
from bot.dashboard.rhythm import rhythm_svg
from bot.demo import seed_demo
from dialogs.engine.clock import FakeClock
from dialogs.services.picture import Picture, picture_of
from dialogs.services.rhythm import Conductor
from storage.db import Database
from storage.models import OutboxMessage, Team
from tests.harness import Rig
from tests.test_dashboard import Site, csrf_of, get, sign_in, site  # noqa: F401 - `site` is a fixture

SVG = "{http://www.w3.org/2000/svg}"
START = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)  # Friday, before the demo team's first invitation (Tokyo, 07:00)


async def picture(db: Database, now: datetime, team: str = "Platform") -> Picture:
    async def work(session) -> Picture:
        row = (await session.execute(select(Team).where(Team.name == team))).scalars().one()
        return await picture_of(session, row, now)

    return await db.run(work)


def expected(pic: Picture, kind: str, until: datetime) -> set[tuple[int, datetime]]:
    return {(m.person_id, m.at) for s in pic.timed if s.kind == kind for m in s.moments if not m.held and m.at < until}


async def queued(db: Database, kind: str, topic: str) -> set[tuple[int, datetime]]:
    async def work(session) -> set[tuple[int, datetime]]:
        rows = await session.execute(
            select(OutboxMessage.person_id, OutboxMessage.due_at).where(
                OutboxMessage.kind == kind, OutboxMessage.topic.like(f"{topic}:%")
            )
        )
        return {(p, d.astimezone(UTC)) for p, d in rows}

    return await db.run(work)


async def test_the_picture_lists_exactly_what_the_scheduler_queues_over_a_week(rig: Rig) -> None:
    rig.clock.set(START)
    week = START + timedelta(days=7)
    pic = await picture(rig.db, START)
    invitations, reminders, digests = (expected(pic, k, week) for k in ("checkin", "reminder", "digest"))
    assert len(invitations) == 5 and len(reminders) == 5 and len(digests) == 1  # five people, one manager
    conductor = Conductor(rig.db, sealer=rig.sealer)
    # Ticks at every instant the picture names and a minute before each (and hourly on the first day): a wrong
    # time in the picture either finds nothing due (too early) or a tick that already sent it (too late).
    listed = {m.at for s in pic.timed for m in s.moments if m.at < week}
    instants = listed | {at - timedelta(minutes=1) for at in listed} | {START + timedelta(hours=h) for h in range(24)}
    for instant in sorted(instants):
        rig.clock.set(instant)
        await conductor.tick(instant)
        await rig.sender.drain_once()  # reminders count from when the invitation was really sent
    assert await queued(rig.db, "checkin", "checkin") == invitations
    assert await queued(rig.db, "reminder", "checkin-reminder") == reminders
    assert await queued(rig.db, "digest", "digest") == digests


async def test_the_picture_lists_the_1on1_agendas_when_the_scheduler_sends_them(rig: Rig) -> None:
    """Four pairs on the defaults, before they exist; then the scheduler creates them and sends agendas."""
    rig.clock.set(START)
    pic = await picture(rig.db, START)
    until = START + timedelta(days=6)
    agendas = expected(pic, "agenda", until)
    # Each of four reports once, and Maya four times at one moment (one per pair).
    assert len(agendas) == 5 and sum(len(s.moments) for s in pic.timed if s.kind == "agenda") == 8
    conductor = Conductor(rig.db, sealer=rig.sealer)
    # At each time the picture lists and a minute before it: a wrong time finds nothing due, or it went early.
    # (and at START, when the pairs get their rhythm, as the picture assumed)
    for instant in sorted({START} | {at for _, at in agendas} | {at - timedelta(minutes=1) for _, at in agendas}):
        rig.clock.set(instant)
        await conductor.tick(instant)

    async def work(session) -> set[tuple[int, datetime]]:
        rows = await session.execute(
            select(OutboxMessage.person_id, OutboxMessage.due_at).where(OutboxMessage.topic == "1on1-agenda")
        )
        return {(p, d.astimezone(UTC)) for p, d in rows}

    assert await rig.db.run(work) == agendas


async def test_times_are_shown_in_each_persons_own_zone(rig: Rig) -> None:
    pic = await picture(rig.db, START)
    [w47] = [s for s in pic.timed if s.id == "checkin:2026-W47"]
    local = {m.name.split(" ")[0]: (m.zone, f"{m.local:%a %H:%M}", f"{m.at:%H:%M}") for m in w47.moments}
    assert local == {
        "Maya": ("Europe/Berlin", "Fri 16:00", "15:00"),
        "Tom": ("Europe/Berlin", "Fri 16:00", "15:00"),
        "Arjun": ("Asia/Kolkata", "Fri 16:00", "10:30"),
        "Lucía": ("America/Mexico_City", "Fri 16:00", "22:00"),
        "Aiko": ("Asia/Tokyo", "Fri 16:00", "07:00"),
    }
    # No 1:1 rows yet: the pairs are shown on Baton's defaults, and say so.
    one_on_ones = [s for s in pic.timed if s.kind == "one-on-one"]
    assert len(one_on_ones) == 4 and not any(s.scheduled for s in one_on_ones)
    assert all("not yet scheduled" in s.describe() for s in one_on_ones)
    # The agenda for Lucía would fall at 03:00 her time: quiet hours move it, and the picture says so.
    lucia = next(m for s in pic.timed if s.kind == "agenda" for m in s.moments if m.name.startswith("Lucía"))
    assert lucia.moved == "quiet hours" and f"{lucia.local:%H:%M}" == "08:00"


async def test_the_svg_parses_and_its_description_names_every_step(rig: Rig) -> None:
    pic = await picture(rig.db, START)
    root = ET.fromstring(rhythm_svg(pic, "Europe/Berlin"))
    desc = root.find(f"{SVG}desc")
    assert desc is not None and desc.text
    for step in pic.steps:
        assert step.title in desc.text
    drawn = {g.get("data-step") for g in root.iter(f"{SVG}g")}
    assert drawn == {s.id for s in pic.steps}
    timed = {s.id for s in pic.timed}
    arrows = [p for p in root.iter(f"{SVG}path") if p.get("class") == "flow"]
    assert len(arrows) == sum(f.source in timed and f.target in timed for f in pic.flows) > 0
    assert all(f"{pic.step(f.source).title} → {pic.step(f.target).title}" in desc.text for f in pic.flows)


def cli(database_url: str, *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env={"DATABASE_URL": database_url}, catch_exceptions=False)


async def test_changing_the_rhythm_on_the_command_line_changes_the_picture(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    await seed_demo(db, FakeClock(START))
    before = await picture(db, START)
    done = await asyncio.to_thread(
        cli, database_url, "checkin", "schedule", "--team", "Platform", "--day", "mon", "--time", "07:30"
    )
    assert done.exit_code == 0, done.output
    after = await picture(db, START)
    assert before.steps != after.steps
    tom = next(m for s in after.timed if s.kind == "checkin" for m in s.moments if m.name.startswith("Tom"))
    # Monday 07:30 in Berlin is inside Tom's quiet hours (20:00–08:00): the scheduler sends at 08:00.
    assert (f"{tom.wanted.astimezone(tom.local.tzinfo):%a %H:%M}", f"{tom.local:%a %H:%M}") == (
        "Mon 07:30",
        "Mon 08:00",
    )
    assert tom.moved == "quiet hours"
    shown = await asyncio.to_thread(
        cli, database_url, "rhythm", "show", "--team", "Platform", "--svg", str(tmp_path / "r.svg")
    )
    assert shown.exit_code == 0, shown.output
    assert re.search(
        r"Check-in invitation, week \d+ → Tom Becker, Mon 08:00 Europe/Berlin \(moved from 07:30", shown.output
    )
    assert "Aiko Tanaka, Mon 08:00 Asia/Tokyo" in shown.output
    ET.parse(tmp_path / "r.svg")
    unknown = await asyncio.to_thread(
        lambda: CliRunner().invoke(main, ["rhythm", "show", "--team", "Nope"], env={"DATABASE_URL": database_url})
    )
    assert unknown.exit_code != 0 and "Teams: Platform" in unknown.output


async def test_the_dashboard_shows_the_rhythm_to_the_team_and_follows_the_settings_form(site: Site) -> None:  # noqa: F811
    team_id = (
        await site.baton.db.run(lambda s: s.execute(select(Team.id).where(Team.name == "Platform")))
    ).scalar_one()
    async with await sign_in(site, "tom") as member:
        status, page = await get(member, "/dashboard/rhythm")
        assert status == 200 and "Platform's rhythm" in page and 'href="/dashboard/rhythm"' in page
        svg = ET.fromstring(re.search(r"<svg.*?</svg>", page, re.S).group(0))  # type: ignore[union-attr]
        assert "Check-in invitation" in svg.find(f"{SVG}desc").text  # type: ignore[union-attr, operator]
        assert "Fri 20 Nov 22:00 (America/Mexico_City" not in page  # Lucía's invitation is 16:00 her time
        assert "Fri 27 Nov 16:00 (America/Mexico_City)" in page  # the table: her own time
    async with await sign_in(site, "nina") as outsider:  # Payments: not Platform's
        status, page = await get(outsider, f"/dashboard/rhythm?team={team_id}")
        assert status == 403 and "Platform's rhythm" not in page
    form = {
        "checkin_weekday": "2",
        "checkin_time": "10:30",
        "reminder_count": "0",
        "reminder_after_minutes": "90",
        "digest_weekday": "3",
        "digest_time": "08:00",
    }
    async with await sign_in(site, "sam") as admin:
        _, settings = await get(admin, "/dashboard/settings")
        assert f'href="/dashboard/rhythm?team={team_id}"' in settings
        async with admin.post(
            f"/dashboard/settings/teams/{team_id}", data=form | {"csrf": csrf_of(settings)}, allow_redirects=False
        ) as response:
            assert response.status == 303
        status, page = await get(admin, f"/dashboard/rhythm?team={team_id}")
        assert status == 200
        assert "Wed 25 Nov 10:30 (Asia/Tokyo)" in page  # Wednesday 10:30 in Aiko's zone now
        assert "Fri 27 Nov 16:00" not in page and "reminder" not in page.split("<table")[1].lower()


async def test_a_running_retro_is_on_the_picture_when_the_scheduler_reminds_and_closes_it(rig: Rig) -> None:
    from dialogs.services.retros import REMIND_WITHIN
    from storage.models import Retro, RetroParticipant

    rig.clock.set(START)
    closes = START + timedelta(days=5, hours=3)

    async def start_retro(session) -> int:
        team = (await session.execute(select(Team).where(Team.name == "Platform"))).scalars().one()
        maya = rig.people["maya@demo.baton"]
        retro = Retro(
            team_id=team.id,
            started_by_id=maya.id,
            theme="how we handled the Q3 launch",
            opens_at=START,
            closes_at=closes,
            invited_at=START,
            created_at=START,
        )
        session.add(retro)
        await session.flush()
        for email in ("arjun@demo.baton", "tom@demo.baton"):
            session.add(RetroParticipant(retro_id=retro.id, person_id=rig.people[email].id))
        return retro.id

    await rig.db.run(start_retro)
    pic = await picture(rig.db, START)
    [reminder] = [s for s in pic.timed if s.kind == "retro-reminder"]
    assert {m.wanted for m in reminder.moments} == {closes - REMIND_WITHIN} and len(reminder.moments) == 2
    assert [s for s in pic.timed if s.kind == "retro-close"]
    conductor = Conductor(rig.db, sealer=rig.sealer)
    for instant in sorted({m.at for m in reminder.moments}):
        rig.clock.set(instant)
        await conductor.tick(instant)
    queued = await queued_topic(rig.db, "retro-reminder")
    assert queued == {(m.person_id, m.at) for m in reminder.moments}


async def queued_topic(db: Database, topic: str) -> set[tuple[int, datetime]]:
    async def work(session) -> set[tuple[int, datetime]]:
        rows = await session.execute(
            select(OutboxMessage.person_id, OutboxMessage.due_at).where(OutboxMessage.topic == topic)
        )
        return {(p, d.astimezone(UTC)) for p, d in rows}

    return await db.run(work)
