"""A person's data on request: `baton person export` and `baton person erase`, on both databases.

The data is the demo organisation with eight weeks of history (check-ins,
goals, feedback and kudos, tool plans, a closed 360 about Tom), as `make run`
seeds it. After an erase, every table the database catalogue lists is
searched for the person's id (in every column that references a person) and
for their email and name (in every text and JSON column).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import String, cast, column, func, inspect, select, table, text

from bot.cli import main as cli
from bot.demo import seed_demo
from dialogs.engine.clock import FakeClock
from storage.db import Database
from storage.models import Answer360, CheckinRun, Person, ToolPlan
from storage.person_data import ANONYMOUS_NOTE, erase, export
from tests.harness import SECRET


@pytest.fixture
async def demo(db: Database, clock: FakeClock) -> Database:
    from dialogs.engine.sealing import Sealer

    assert await seed_demo(db, clock, sealer=Sealer(SECRET.encode()), history=True)
    return db


async def person(db: Database, email: str) -> Person:
    found = await db.run(lambda s: s.scalar(select(Person).where(Person.email == email)))
    assert found is not None
    return found


async def traces(db: Database, person_id: int, marks: list[str]) -> list[str]:
    """Where the catalogue still finds `person_id` (in columns referencing person.id) or any of `marks`."""

    def catalogue(sync_session) -> dict[str, tuple[list[str], list[str]]]:
        inspector = inspect(sync_session.connection())
        found = {}
        for name in inspector.get_table_names():
            refs = [
                c
                for fk in inspector.get_foreign_keys(name)
                if fk["referred_table"] == "person"
                for c in fk["constrained_columns"]
            ]
            if name == "person":
                refs.append("id")
            texts = [
                c["name"]
                for c in inspector.get_columns(name)
                if any(t in str(c["type"]).upper() for t in ("CHAR", "TEXT", "JSON", "CLOB"))
            ]
            found[name] = (refs, texts)
        return found

    async def search(session) -> list[str]:
        tables = await session.run_sync(catalogue)
        hits = []
        for name, (refs, texts) in tables.items():
            t = table(name, *(column(c) for c in {*refs, *texts}))
            for ref in refs:
                if await session.scalar(select(func.count()).select_from(t).where(t.c[ref] == person_id)):
                    hits.append(f"{name}.{ref} = {person_id}")
            for col in texts:
                for mark in marks:
                    if await session.scalar(
                        select(func.count()).select_from(t).where(cast(t.c[col], String).contains(mark))
                    ):
                        hits.append(f"{name}.{col} mentions {mark!r}")
        assert len(tables) > 20  # the catalogue was really read
        return hits

    return await db.run(search)


def marks_of(found: Person) -> list[str]:
    return sorted({m for v in (found.email, found.name) for m in (v, json.dumps(v)[1:-1])})


async def test_export_holds_what_baton_keeps_about_a_person_and_no_anonymous_answers(demo: Database) -> None:
    data = await demo.run(lambda s: export(s, "tom@demo.baton"))
    assert data["person"]["email"] == "tom@demo.baton" and data["person"]["manager"] == "Maya Chen"
    assert data["checkins"] and all(run["answers"] for run in data["checkins"] if run["status"] == "answered")
    assert data["goals"] and data["goals"][0]["updates"]
    assert data["feedback_received"] or data["feedback_given"]
    assert data["reviews_360_about_them"]  # the closed 360 about Tom: that it exists, when, its state …
    assert data["anonymous_360_answers"] == ANONYMOUS_NOTE  # … but none of the anonymous answers
    released = await demo.run(lambda s: s.scalars(select(Answer360.comment).where(Answer360.comment.is_not(None))))
    dumped = json.dumps(data, ensure_ascii=False)
    assert all(comment not in dumped for comment in released.all())
    json.loads(dumped)  # JSON-ready all the way down


@pytest.mark.parametrize("email", ["maya@demo.baton", "lucia@demo.baton"])
async def test_erase_leaves_no_trace_of_id_email_or_name(demo: Database, email: str) -> None:
    """Maya manages the team and created its goals and the 360; Lucía's name is stored with JSON escapes."""
    found = await person(demo, email)
    assert await traces(demo, found.id, marks_of(found))  # there is something to find before
    answers = await demo.run(lambda s: s.scalar(select(func.count()).select_from(Answer360)))
    changed = await demo.run(lambda s: erase(s, email))
    assert changed["person"] >= 1
    assert await traces(demo, found.id, marks_of(found)) == []
    # Released anonymous answers stay; everyone else is still there.
    assert await demo.run(lambda s: s.scalar(select(func.count()).select_from(Answer360))) == answers
    assert await person(demo, "tom@demo.baton")


async def test_erase_keeping_aggregates_keeps_pulse_and_tool_outcomes_under_no_name(demo: Database) -> None:
    found = await person(demo, "tom@demo.baton")
    runs = await demo.run(
        lambda s: s.scalar(select(func.count()).select_from(CheckinRun).where(CheckinRun.person_id == found.id))
    )
    plans = await demo.run(lambda s: s.scalar(select(func.count()).select_from(ToolPlan)))
    await demo.run(lambda s: erase(s, "tom@demo.baton", keep_aggregates=True))
    assert await traces(demo, found.id, marks_of(found)) == []
    stand_in = await demo.run(lambda s: s.scalar(select(Person).where(Person.email.like("erased-%@erased.invalid"))))
    assert stand_in is not None and stand_in.name == "Erased person" and not stand_in.active
    kept = await demo.run(
        lambda s: s.scalar(select(func.count()).select_from(CheckinRun).where(CheckinRun.person_id == stand_in.id))
    )
    assert kept == runs > 0
    assert await demo.run(lambda s: s.scalar(select(func.count()).select_from(ToolPlan))) == plans
    words = await demo.run(
        lambda s: s.scalar(
            text(
                "SELECT count(*) FROM checkin_answer a JOIN checkin_run r ON r.id = a.run_id WHERE r.person_id = :p AND a.text IS NOT NULL"
            ),
            {"p": stand_in.id},
        )
    )
    assert words == 0  # the pulse numbers stayed; what Tom wrote did not


def test_the_cli_asks_before_erasing_and_leaves_nothing_in_the_sqlite_files(
    tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dialogs.engine.sealing import Sealer

    path = tmp_path / "baton.db"

    async def seed() -> None:
        db = Database(f"sqlite+aiosqlite:///{path}")
        try:
            await db.migrate()
            await seed_demo(db, clock, sealer=Sealer(SECRET.encode()), history=True)
        finally:
            await db.close()

    asyncio.run(seed())
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{path}")
    runner = CliRunner()
    exported = runner.invoke(cli, ["person", "export", "lucia@demo.baton"])
    assert exported.exit_code == 0, exported.output
    assert json.loads(exported.stdout)["person"]["name"] == "Lucía Gómez"
    refused = runner.invoke(cli, ["person", "erase", "lucia@demo.baton"], input="n\n")
    assert refused.exit_code != 0 and b"lucia@demo.baton" in path.read_bytes()
    done = runner.invoke(cli, ["person", "erase", "lucia@demo.baton", "--yes"])
    assert done.exit_code == 0, done.output
    for file in tmp_path.iterdir():  # the database, its WAL and shared memory: deleted content is zeroed
        assert b"lucia@demo.baton" not in file.read_bytes(), file.name
    missing = runner.invoke(cli, ["person", "export", "lucia@demo.baton"])
    assert missing.exit_code != 0 and "Nobody with the email" in missing.output


def test_read_only_commands_do_not_create_a_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "nothing-here.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{path}")
    runner = CliRunner()
    for args in (["person", "export", "x@y.z"], ["org", "export"], ["checkin", "report", "--team", "X"]):
        result = runner.invoke(cli, args)
        assert result.exit_code != 0 and "baton migrate" in result.output, args
    suggested = runner.invoke(cli, ["tools", "suggest", "--json", "she waits days for build servers"])
    assert suggested.exit_code == 0 and json.loads(suggested.stdout)["tools"]  # the catalogue alone answers
    assert not path.exists()
