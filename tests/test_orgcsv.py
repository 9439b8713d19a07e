"""`baton org import` / `export`: the CSV parser, the import on both databases, and the real command line."""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from bot.config import Settings
from bot.demo import seed_demo
from bot.orgcsv import COLUMNS, export_csv, import_csv, parse
from dialogs.engine.clock import FakeClock
from storage.db import Database
from storage.models import Person, Team

HEADER = ",".join(COLUMNS) + "\n"
# Ada (line 2) reports to Grace, who only appears on line 3.
ORG = HEADER + (
    "ada@example.org,Ada Lovelace,grace@example.org,Engines,Europe/London\n"
    "grace@example.org,Grace Hopper,,Compilers,America/New_York\n"
    "linus@example.org,Linus Torvalds,grace@example.org,Compilers,Europe/Helsinki\n"
)
ODD_NAMES = {
    "zoe@example.org": "Zoë Ødegård-李",
    "maryam@example.org": "مريم الحسن",  # right-to-left
    "noa@example.org": "נועה \u200fכהן",  # Hebrew with a right-to-left mark inside
    "quote@example.org": 'Dana "DJ" O\'Neil, Jr.',  # a comma and quotes: the CSV must quote it
    "dev@example.org": "Kai 👩\u200d💻",  # an emoji joined with a zero-width joiner
}


# -- helpers ----------------------------------------------------------------------------------


async def people(db: Database) -> dict[str, Person]:
    async def load(session):
        return list((await session.execute(select(Person))).scalars())

    return {p.email: p for p in await db.run(load)}


async def count(db: Database, model: type) -> int:
    async def work(session):
        return await session.scalar(select(func.count()).select_from(model))

    return await db.run(work)


async def team_names(db: Database) -> dict[int, str]:
    async def load(session):
        return {t.id: t.name for t in (await session.execute(select(Team))).scalars()}

    return await db.run(load)


async def empty_org(db: Database) -> None:
    """Remove every person and team, as a fresh database would have it."""

    async def work(session):
        await session.execute(update(Person).values(manager_id=None))
        await session.execute(Person.__table__.delete())
        await session.execute(Team.__table__.delete())

    await db.run(work)


def csv_text(rows: list[tuple[str, ...]]) -> str:
    """An import file with these rows under the header, quoted the way a spreadsheet would."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([COLUMNS, *rows])
    return out.getvalue()


def baton_executable() -> str:
    """The `baton` installed next to the interpreter running the tests (so it is this checkout's)."""
    sibling = Path(sys.executable).parent / "baton"
    return str(sibling) if sibling.exists() else (shutil.which("baton") or "baton")


def baton(tmp_path: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the real CLI on a fresh SQLite file in tmp_path, with none of this machine's Baton settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in Settings.model_fields and not k.startswith(("SLACK_", "MICROSOFT_", "BATON_"))
    }
    env["DATABASE_URL"] = f"sqlite:///{tmp_path}/x.db"
    return subprocess.run(
        [baton_executable(), *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout
    )


# -- parse ------------------------------------------------------------------------------------


def test_a_valid_file_parses_without_problems_in_file_order() -> None:
    rows, errors = parse(ORG)
    assert errors == []
    assert [(r.line, r.email, r.manager_email, r.team, r.timezone) for r in rows] == [
        (2, "ada@example.org", "grace@example.org", "Engines", "Europe/London"),
        (3, "grace@example.org", "", "Compilers", "America/New_York"),
        (4, "linus@example.org", "grace@example.org", "Compilers", "Europe/Helsinki"),
    ]


def test_a_utf8_byte_order_mark_before_the_header_is_ignored() -> None:
    rows, errors = parse("\ufeff" + ORG)
    assert errors == []
    assert [r.email for r in rows] == ["ada@example.org", "grace@example.org", "linus@example.org"]


def test_columns_may_come_in_any_order_and_case_and_emails_are_lowercased() -> None:
    rows, errors = parse("Timezone, Name ,EMAIL,Team,Manager_Email\n,Ada,ADA@Example.org,, \n")
    assert errors == []
    assert rows[0].email == "ada@example.org" and rows[0].name == "Ada"
    assert rows[0].timezone == "UTC"  # an empty time zone means UTC


def test_a_manager_already_in_baton_is_accepted() -> None:
    text = HEADER + "new@example.org,New Person,maya@demo.baton,,UTC\n"
    assert parse(text)[1] != []  # unknown without the database's people...
    assert parse(text, known_emails=["maya@demo.baton"])[1] == []  # ...known with them


# -- import -----------------------------------------------------------------------------------


async def test_import_creates_people_teams_and_manager_links_in_any_order(db: Database, clock: FakeClock) -> None:
    result, errors = await import_csv(db, ORG, clock.now())
    assert errors == []
    assert result is not None
    assert (result.created, result.updated, result.unchanged, result.teams_created) == (3, 0, 0, 2)
    org, teams = await people(db), await team_names(db)
    assert sorted(teams.values()) == ["Compilers", "Engines"]
    ada, grace, linus = org["ada@example.org"], org["grace@example.org"], org["linus@example.org"]
    assert ada.manager_id == grace.id  # Grace was listed after Ada
    assert linus.manager_id == grace.id and grace.manager_id is None
    assert (teams[ada.team_id], teams[grace.team_id], teams[linus.team_id]) == ("Engines", "Compilers", "Compilers")
    assert (ada.name, ada.timezone) == ("Ada Lovelace", "Europe/London")


async def test_importing_the_same_file_again_changes_nothing(db: Database, clock: FakeClock) -> None:
    await import_csv(db, ORG, clock.now())
    before = await export_csv(db)
    result, errors = await import_csv(db, ORG, clock.now())
    assert errors == []
    assert result is not None
    assert (result.created, result.updated, result.unchanged, result.teams_created) == (0, 0, 3, 0)
    assert await count(db, Person) == 3 and await count(db, Team) == 2
    assert await export_csv(db) == before


async def test_changing_one_time_zone_updates_exactly_that_person(db: Database, clock: FakeClock) -> None:
    await import_csv(db, ORG, clock.now())
    changed = ORG.replace("Europe/Helsinki", "America/Los_Angeles")
    result, errors = await import_csv(db, changed, clock.now())
    assert errors == []
    assert result is not None
    assert (result.created, result.updated, result.unchanged) == (0, 1, 2)
    org = await people(db)
    assert org["linus@example.org"].timezone == "America/Los_Angeles"
    assert org["ada@example.org"].timezone == "Europe/London"


async def test_a_manager_who_is_already_in_baton_can_be_named(db: Database, clock: FakeClock) -> None:
    await seed_demo(db, clock)
    result, errors = await import_csv(
        db, HEADER + "new@example.org,New Person,maya@demo.baton,Platform,UTC\n", clock.now()
    )
    assert errors == [] and result is not None and (result.created, result.teams_created) == (1, 0)
    org = await people(db)
    assert org["new@example.org"].manager_id == org["maya@demo.baton"].id
    assert org["new@example.org"].team_id == org["maya@demo.baton"].team_id  # the existing team, not a new one


# One bad row among good ones; (the file, the line it must name, what it must say).
BAD_FILES = {
    "bad email": (ORG + "not-an-email,Someone,,,UTC\n", 5, "'not-an-email' is not a valid address"),
    "duplicate email": (ORG + "ADA@example.org,Ada Again,,,UTC\n", 5, "already appears on line 2"),
    "unknown time zone": (
        ORG + "mars@example.org,Marvin,,,Mars/Olympus_Mons\n",
        5,
        "'Mars/Olympus_Mons' is not an IANA time zone",
    ),
    "unknown manager": (
        ORG + "orphan@example.org,Orphan,nobody@example.org,,UTC\n",
        5,
        "nobody@example.org is neither in the file nor in Baton",
    ),
    "manager loop": (
        ORG + "a@example.org,Alpha,b@example.org,,UTC\nb@example.org,Beta,a@example.org,,UTC\n",
        5,
        "managers form a loop: a@example.org → b@example.org → a@example.org",
    ),
    "own manager": (ORG + "self@example.org,Self,self@example.org,,UTC\n", 5, "cannot be their own manager"),
    "too few columns": (ORG + "short@example.org,Short Row\n", 5, "has 2 columns, the header has 5"),
    "empty name": (ORG + "anon@example.org,,,,UTC\n", 5, "name is empty"),
    "missing header column": (ORG.replace(",timezone\n", "\n", 1), 1, "header lacks timezone"),
    "empty file": ("", 1, "the file is empty"),
}


@pytest.mark.parametrize("case", BAD_FILES, ids=list(BAD_FILES))
async def test_one_bad_row_imports_nothing_and_names_its_line(db: Database, clock: FakeClock, case: str) -> None:
    text, line, reason = BAD_FILES[case]
    await seed_demo(db, clock)
    # The good part of the file would also move Maya to Tokyo: that must not happen either.
    text = text + "maya@demo.baton,Maya Chen,,Platform,Asia/Tokyo\n" if text else text
    before_people, before_teams, before = await count(db, Person), await count(db, Team), await export_csv(db)

    result, errors = await import_csv(db, text, clock.now())

    assert result is None
    assert len(errors) == 1 and errors[0].line == line and reason in errors[0].reason, [str(e) for e in errors]
    assert str(errors[0]).startswith(f"line {line}: ")
    assert (await count(db, Person), await count(db, Team)) == (before_people, before_teams)
    assert await export_csv(db) == before
    assert (await people(db))["maya@demo.baton"].timezone == "Europe/Berlin"


async def test_every_bad_row_is_reported_not_just_the_first(db: Database, clock: FakeClock) -> None:
    text = ORG + "bad,One,,,UTC\ntwo@example.org,Two,,,Nowhere/Land\n"
    result, errors = await import_csv(db, text, clock.now())
    assert result is None
    assert [e.line for e in errors] == [5, 6]
    assert await count(db, Person) == 0


async def test_a_byte_order_mark_file_imports(db: Database, clock: FakeClock) -> None:
    result, errors = await import_csv(db, "\ufeff" + ORG, clock.now())
    assert errors == [] and result is not None and result.created == 3
    assert "ada@example.org" in await people(db)


async def test_unusual_unicode_names_round_trip_unchanged(db: Database, clock: FakeClock) -> None:
    text = csv_text([(email, name, "", "Ünïcødé 团队", "Asia/Shanghai") for email, name in ODD_NAMES.items()])
    result, errors = await import_csv(db, text, clock.now())
    assert errors == [] and result is not None and result.created == len(ODD_NAMES)
    stored = {email: p.name for email, p in (await people(db)).items()}
    assert stored == ODD_NAMES
    assert list((await team_names(db)).values()) == ["Ünïcødé 团队"]
    exported = await export_csv(db)
    assert parse(exported)[1] == []
    assert {r.email: r.name for r in parse(exported)[0]} == ODD_NAMES


async def test_an_export_imported_into_an_empty_database_reproduces_the_export(db: Database, clock: FakeClock) -> None:
    await seed_demo(db, clock)
    odd = csv_text([(email, name, "maya@demo.baton", "Ünïcødé", "") for email, name in ODD_NAMES.items()])
    assert (await import_csv(db, odd, clock.now()))[1] == []
    assert (await import_csv(db, ORG, clock.now()))[1] == []
    first = await export_csv(db)
    assert first.count("\n") == 1 + 6 + len(ODD_NAMES) + 3

    await empty_org(db)
    assert await count(db, Person) == 0
    result, errors = await import_csv(db, first, clock.now())
    assert errors == [] and result is not None and result.created == 6 + len(ODD_NAMES) + 3

    assert await export_csv(db) == first


async def test_two_thousand_rows_import_in_one_go(db: Database, clock: FakeClock) -> None:
    # 20 teams of 100; each team's first person manages the rest and reports to p0000.
    # Written backwards, so every report comes before their manager.
    lines = []
    for i in range(2000):
        lead = i - i % 100
        manager = "" if i == 0 else f"p{lead:04d}@example.org" if i != lead else "p0000@example.org"
        lines.append(f"p{i:04d}@example.org,Person {i},{manager},Team {i // 100:02d},Europe/Berlin\n")
    text = HEADER + "".join(reversed(lines))
    progress: list[int] = []

    result, errors = await import_csv(db, text, clock.now(), progress=progress.append)

    assert errors == []
    assert result is not None and (result.created, result.teams_created) == (2000, 20)
    assert sum(progress) == 2000
    assert await count(db, Person) == 2000 and await count(db, Team) == 20
    org = await people(db)
    assert sum(1 for p in org.values() if p.manager_id == org["p0000@example.org"].id) == 99 + 19
    assert org["p1999@example.org"].manager_id == org["p1900@example.org"].id
    again, _ = await import_csv(db, text, clock.now())
    assert again is not None and (again.created, again.updated, again.unchanged) == (0, 0, 2000)


# -- found while writing these tests: loops through the database, control characters, line numbers ----


async def test_a_row_that_closes_a_loop_with_people_already_in_baton_is_refused(db: Database, clock: FakeClock) -> None:
    await import_csv(db, HEADER + "a@example.org,Alpha,b@example.org,,UTC\nb@example.org,Beta,,,UTC\n", clock.now())
    # b now names a as manager, while the database already has a → b.
    result, errors = await import_csv(db, HEADER + "b@example.org,Beta,a@example.org,,UTC\n", clock.now())
    org = await people(db)
    assert org["b@example.org"].manager_id is None, "a manager loop a → b → a was stored"
    assert result is None and [e.line for e in errors] == [2] and "loop" in errors[0].reason


async def test_a_nul_character_in_a_name_is_reported_with_its_line(db: Database, clock: FakeClock) -> None:
    result, errors = await import_csv(db, ORG + "nul@example.org,Bad\x00Name,,,UTC\n", clock.now())
    assert result is None and [e.line for e in errors] == [5]
    assert await count(db, Person) == 0


def test_a_row_with_a_line_break_in_a_quoted_name_is_reported_at_its_first_line() -> None:
    text = HEADER + 'ada@example.org,"Ada\nLovelace",,,Mars/Base\n'  # the row starts on line 2
    _rows, errors = parse(text)
    assert [e.line for e in errors] == [2]
    assert "control characters" in errors[0].reason and "'Mars/Base' is not an IANA time zone" in errors[0].reason


# -- the real command line --------------------------------------------------------------------


def test_cli_refuses_a_malformed_file_and_imports_nothing(tmp_path: Path) -> None:
    csv_file = tmp_path / "org.csv"
    csv_file.write_text(
        ORG.replace("grace@example.org,Grace Hopper", "grace@@example.org,Grace Hopper"), encoding="utf-8"
    )

    run = baton(tmp_path, "org", "import", str(csv_file))

    assert run.returncode != 0
    assert "line 3" in run.stderr and "not a valid address" in run.stderr
    assert "Nothing was imported" in run.stderr
    assert "Traceback" not in run.stderr
    export = baton(tmp_path, "org", "export")
    assert export.returncode == 0 and export.stdout == HEADER


def test_cli_imports_a_good_file_and_exports_it(tmp_path: Path) -> None:
    csv_file = tmp_path / "org.csv"
    csv_file.write_text(ORG, encoding="utf-8")

    run = baton(tmp_path, "org", "import", str(csv_file))
    assert run.returncode == 0, run.stderr
    assert "3 created, 0 updated, 0 unchanged, 2 new team(s)" in run.stderr

    export = baton(tmp_path, "org", "export")
    assert export.returncode == 0, export.stderr
    assert export.stdout == HEADER + (  # sorted by email
        "ada@example.org,Ada Lovelace,grace@example.org,Engines,Europe/London\n"
        "grace@example.org,Grace Hopper,,Compilers,America/New_York\n"
        "linus@example.org,Linus Torvalds,grace@example.org,Compilers,Europe/Helsinki\n"
    )
    to_file = baton(tmp_path, "org", "export", str(tmp_path / "out.csv"))
    assert to_file.returncode == 0
    assert (tmp_path / "out.csv").read_text(encoding="utf-8") == export.stdout

    again = baton(tmp_path, "org", "import", str(tmp_path / "out.csv"))
    assert again.returncode == 0 and "0 created, 0 updated, 3 unchanged" in again.stderr


def test_cli_explains_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    csv_file = tmp_path / "org.csv"
    csv_file.write_bytes((HEADER + "zoe@example.org,Zoë Ødegård,,,Europe/Oslo\n").encode("latin-1"))

    run = baton(tmp_path, "org", "import", str(csv_file))

    assert run.returncode != 0
    assert "not UTF-8" in run.stderr and "CSV UTF-8" in run.stderr
    assert "Traceback" not in run.stderr


async def test_an_admin_connects_everyones_calendar_from_a_calendar_column(db: Database, clock: FakeClock) -> None:
    """Issue 21: the optional `calendar` column, sealed on import, never exported, idempotent."""
    from dialogs.engine.sealing import Sealer
    from storage.models import CalendarFeed

    sealer = Sealer(b"k" * 32)
    secret = "https://calendar.example/private-3f9a/basic.ics"
    text = (
        "email,name,manager_email,team,timezone,calendar\n"
        f"ada@example.org,Ada Lovelace,,Engines,Europe/London,{secret}\n"
        "grace@example.org,Grace Hopper,,Engines,America/New_York,webcal://cal.example/g.ics\n"
        "linus@example.org,Linus T,,Engines,Europe/Helsinki,\n"
    )
    result, errors = await import_csv(db, text, clock.now(), sealer=sealer)
    assert errors == [] and result is not None and result.created == 3
    feeds = await db.run(lambda s: s.execute(select(CalendarFeed.person_id, CalendarFeed.sealed_url)))
    opened = {sealer.open("calendar", sealed, context=str(pid)) for pid, sealed in feeds}
    assert opened == {secret, "https://cal.example/g.ics"}
    assert secret not in await export_csv(db)  # an address is a secret: never exported
    again, _ = await import_csv(db, text, clock.now(), sealer=sealer)
    assert again is not None and (again.updated, again.unchanged) == (0, 3)
    bad, problems = await import_csv(db, text.replace(secret, "not a url"), clock.now(), sealer=sealer)
    assert bad is None and "calendar is not a calendar address" in str(problems[0])
    assert "not a url" not in str(problems[0])
    # An address that is itself on a private network is refused at import, unless the admin allows them.
    inside = "http://10.20.0.5/cal/private-7c1e.ics"
    refused, problems = await import_csv(db, text.replace(secret, inside), clock.now(), sealer=sealer)
    assert refused is None and "calendar http://10.20.0.5/… is on a private or internal network" in str(problems[0])
    assert "private-7c1e" not in str(problems[0])
    allowed, _ = await import_csv(db, text.replace(secret, inside), clock.now(), sealer=sealer, private_calendars=True)
    assert allowed is not None and allowed.updated == 1
