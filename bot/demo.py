"""The demo organisation seeded in local mode, so a first run has someone to talk to."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from bot.demo_history import people_by_key, seed_history
from dialogs.engine.clock import Clock
from dialogs.engine.sealing import Sealer
from storage.db import Database
from storage.models import Person, Team

DEMO_TEAM = "Platform"
# (email, name, timezone, is_manager, is_admin)
DEMO_PEOPLE = (
    ("maya@demo.baton", "Maya Chen", "Europe/Berlin", True, False),
    ("arjun@demo.baton", "Arjun Rao", "Asia/Kolkata", False, False),
    ("lucia@demo.baton", "Lucía Gómez", "America/Mexico_City", False, False),
    ("tom@demo.baton", "Tom Becker", "Europe/Berlin", False, False),
    ("aiko@demo.baton", "Aiko Tanaka", "Asia/Tokyo", False, False),
    ("sam@demo.baton", "Sam Okafor", "Europe/London", False, True),
)


async def seed_demo(db: Database, clock: Clock, *, sealer: Sealer | None = None, history: bool = False) -> bool:
    """Create the demo organisation if the database has nobody in it. True when it seeded.

    With `history` (what `make run` does), also eight weeks of its past (bot/demo_history.py); the
    closed 360 in it is sealed and opened with `sealer`, as a real one is."""

    async def work(session) -> bool:  # noqa: ANN001
        if await session.scalar(select(func.count()).select_from(Person)):
            return False
        now = clock.now()
        team = Team(name=DEMO_TEAM, created_at=now)
        session.add(team)
        await session.flush()
        manager = None
        for email, name, tz, is_manager, is_admin in DEMO_PEOPLE:
            person = Person(
                email=email,
                name=name,
                timezone=tz,
                team_id=None if is_admin else team.id,
                manager_id=None if (is_manager or is_admin) else manager.id if manager else None,
                is_admin=is_admin,
                created_at=now,
            )
            session.add(person)
            await session.flush()
            if is_manager:
                manager = person
        if history:
            assert sealer is not None, "the demo's history holds a sealed 360: pass the sealer"
            await seed_history(session, team, await people_by_key(session, team), now, sealer)
        return True

    try:
        return await db.run(work)
    except IntegrityError:  # another replica seeded at the same moment
        return False
