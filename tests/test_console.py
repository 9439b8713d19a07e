"""The terminal adapter: plain-text rendering, a conversation in-process, and the real `baton chat`."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from adapters.console import Console, format_reply, run_console
from bot.config import Settings
from bot.core import Core
from bot.demo import seed_demo
from dialogs import all_dialogs
from dialogs.engine.clock import FakeClock
from dialogs.engine.messages import Card, Choice, Rating, Reply
from dialogs.engine.sealing import Sealer
from storage.db import Database
from storage.models import Person

ORG_CSV = (
    "email,name,manager_email,team,timezone\n"
    "maya@demo.baton,Maya Chen,,Platform,Europe/Berlin\n"
    "arjun@demo.baton,Arjun Rao,maya@demo.baton,Platform,Asia/Kolkata\n"
)


async def load_person(db: Database, email: str) -> Person:
    async def load(session):
        return (await session.execute(select(Person).where(Person.email == email))).scalars().one()

    return await db.run(load)


def baton_executable() -> str:
    """The `baton` installed next to the interpreter running the tests (so it is this checkout's)."""
    sibling = Path(sys.executable).parent / "baton"
    return str(sibling) if sibling.exists() else (shutil.which("baton") or "baton")


def baton(tmp_path: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """Run the real CLI on a fresh SQLite file in tmp_path, with none of this machine's Baton settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in Settings.model_fields and not k.startswith(("SLACK_", "MICROSOFT_", "BATON_"))
    }
    env["DATABASE_URL"] = f"sqlite:///{tmp_path}/x.db"
    return subprocess.run(
        [baton_executable(), *args], input=stdin, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )


# -- format_reply -----------------------------------------------------------------------------


def test_choices_render_as_numbered_lines_after_the_text() -> None:
    reply = Reply(
        "Pick *one*:", choices=(Choice("Time zone", "timezone"), Choice("Quiet hours", "quiet"), Choice("Done", "done"))
    )
    assert format_reply(reply) == "Pick one:\n  1) Time zone\n  2) Quiet hours\n  3) Done"


def test_a_rating_renders_as_a_bracketed_scale_with_its_end_labels() -> None:
    reply = Reply("How was your week?", rating=Rating(1, 5, "rough", "great"))
    assert format_reply(reply) == "How was your week?\n  [1] [2] [3] [4] [5]  (1 = rough, 5 = great)"


def test_a_rating_without_labels_is_only_the_scale() -> None:
    assert format_reply(Reply("Score?", rating=Rating(0, 3))) == "Score?\n  [0] [1] [2] [3]"


def test_a_card_renders_its_title_fields_and_lines() -> None:
    reply = Reply(
        "Your check-in",
        card=Card("Week 47", fields=(("Mood", "4/5"), ("Blockers", "none")), lines=("Shipped the importer.",)),
    )
    assert format_reply(reply).splitlines() == [
        "Your check-in",
        "┌ Week 47",
        "│ Mood: 4/5",
        "│ Blockers: none",
        "│ Shipped the importer.",
    ]


def test_plain_text_is_passed_through_without_markup() -> None:
    assert format_reply(Reply("Done: your time zone is now *Asia/Tokyo*.")) == "Done: your time zone is now Asia/Tokyo."


# -- Console in-process -----------------------------------------------------------------------


def console_for(db: Database, person_id: int, out: io.StringIO) -> Console:
    """The terminal on the same wiring as `baton chat`."""
    core = Core.assemble(db, all_dialogs(), sealer=Sealer.ephemeral())
    return Console(core, person_id, out, drain=core.sender.drain_once)


async def test_a_terminal_conversation_changes_quiet_hours(db: Database, clock: FakeClock) -> None:
    await seed_demo(db, clock)
    maya = await load_person(db, "maya@demo.baton")
    assert (maya.quiet_start, maya.quiet_end) == ("20:00", "08:00")
    out = io.StringIO()
    console = console_for(db, maya.id, out)

    await console.send("help")
    assert "Here's what I can do for you as a manager" in out.getvalue()
    assert "settings" in out.getvalue()

    mark = len(out.getvalue())
    await console.send("settings")
    menu = out.getvalue()[mark:]
    assert "baton> Your time zone is Europe/Berlin and your quiet hours are 20:00–08:00" in menu
    assert "1) Time zone" in menu and "2) Quiet hours" in menu and "3) Recognition" in menu and "4) Done" in menu

    mark = len(out.getvalue())
    await console.send("2")  # the second button: Quiet hours
    assert "When should I stay quiet?" in out.getvalue()[mark:]

    mark = len(out.getvalue())
    await console.send("22:00-07:00")
    after = out.getvalue()[mark:]
    assert "Done: quiet hours are now 22:00–07:00 your time." in after
    assert "your quiet hours are 22:00–07:00" in after  # the menu again, with the new value

    maya = await load_person(db, "maya@demo.baton")
    assert (maya.quiet_start, maya.quiet_end) == ("22:00", "07:00")


async def test_each_reply_is_printed_once(db: Database, clock: FakeClock) -> None:
    await seed_demo(db, clock)
    maya = await load_person(db, "maya@demo.baton")
    out = io.StringIO()
    console = console_for(db, maya.id, out)
    await console.send("settings")
    await console.show_new()  # what the background poller does: nothing new, so nothing printed
    assert out.getvalue().count("What would you like to change?") == 1


async def test_a_number_beyond_the_buttons_is_read_as_text(db: Database, clock: FakeClock) -> None:
    await seed_demo(db, clock)
    maya = await load_person(db, "maya@demo.baton")
    out = io.StringIO()
    console = console_for(db, maya.id, out)
    await console.send("settings")
    mark = len(out.getvalue())
    await console.send("9")
    assert "Please pick one of the options above" in out.getvalue()[mark:]
    assert (await load_person(db, "maya@demo.baton")).timezone == "Europe/Berlin"


async def test_run_console_reads_lines_until_end_of_input(db: Database, clock: FakeClock) -> None:
    await seed_demo(db, clock)
    out = io.StringIO()
    core = Core.assemble(db, all_dialogs(), sealer=Sealer.ephemeral())
    stdin = io.StringIO("settings\n\n1\nLisbon\n4\n")
    status = await run_console(core, "Aiko@Demo.Baton", drain=core.sender.drain_once, stdin=stdin, out=out)
    assert status == 0
    text = out.getvalue()
    assert text.startswith("Chatting with Baton as Aiko Tanaka <aiko@demo.baton>.")
    assert "Done: your time zone is now Europe/Lisbon." in text and "All set." in text
    assert (await load_person(db, "aiko@demo.baton")).timezone == "Europe/Lisbon"


async def test_run_console_refuses_an_unknown_email(db: Database, clock: FakeClock, capsys) -> None:
    await seed_demo(db, clock)
    out = io.StringIO()
    core = Core.assemble(db, all_dialogs(), sealer=Sealer.ephemeral())
    stdin = io.StringIO("help\n")
    assert await run_console(core, "ghost@demo.baton", drain=core.sender.drain_once, stdin=stdin, out=out) == 2
    assert out.getvalue() == ""
    assert "Nobody with the email ghost@demo.baton" in capsys.readouterr().err


# -- the real command line --------------------------------------------------------------------


def test_baton_chat_through_a_pipe_changes_the_time_zone(tmp_path: Path) -> None:
    (tmp_path / "org.csv").write_text(ORG_CSV, encoding="utf-8")
    imported = baton(tmp_path, "org", "import", "org.csv")
    assert imported.returncode == 0, imported.stderr

    run = baton(tmp_path, "chat", "--as", "maya@demo.baton", stdin="help\nsettings\n1\nTokyo\n")

    assert run.returncode == 0, run.stderr
    assert "Chatting with Baton as Maya Chen <maya@demo.baton>" in run.stdout
    assert "Here's what I can do for you as a manager" in run.stdout
    assert "• settings — Change your time zone, quiet hours and how you like to be recognised." in run.stdout
    assert "Done: your time zone is now Asia/Tokyo." in run.stdout
    assert "Traceback" not in run.stderr

    export = baton(tmp_path, "org", "export")
    assert "maya@demo.baton,Maya Chen,,Platform,Asia/Tokyo" in export.stdout


def test_baton_chat_shows_recent_history_when_reopened(tmp_path: Path) -> None:
    (tmp_path / "org.csv").write_text(ORG_CSV, encoding="utf-8")
    assert baton(tmp_path, "org", "import", "org.csv").returncode == 0
    assert baton(tmp_path, "chat", "--as", "arjun@demo.baton", stdin="settings\n").returncode == 0

    again = baton(tmp_path, "chat", "--as", "arjun@demo.baton", stdin="")
    assert again.returncode == 0
    assert again.stdout.count("What would you like to change?") == 1  # replayed once from history


def test_baton_chat_with_an_unknown_email_exits_2_and_says_why(tmp_path: Path) -> None:
    (tmp_path / "org.csv").write_text(ORG_CSV, encoding="utf-8")
    assert baton(tmp_path, "org", "import", "org.csv").returncode == 0

    run = baton(tmp_path, "chat", "--as", "nobody@demo.baton", stdin="help\n")

    assert run.returncode == 2
    assert "Nobody with the email nobody@demo.baton" in run.stderr
    assert "baton org export" in run.stderr  # tells how to find the right one
    assert run.stdout == ""


async def test_answer_all_at_once_in_the_terminal_asks_each_question_in_turn(db: Database, clock: FakeClock) -> None:
    """Week one: "Answer all at once" was a dead end in the terminal (only "One at a time instead")."""
    await seed_demo(db, clock)
    tom = await load_person(db, "tom@demo.baton")
    out = io.StringIO()
    console = console_for(db, tom.id, out)
    await console.send("checkin")
    assert "Question 1 of 5" in out.getvalue()
    assert console.last_choices is not None
    labels = [c.label for c in console.last_choices.choices]
    await console.send(str(labels.index("Answer all at once") + 1))
    assert "[1/5] What moved forward this week?" in out.getvalue()
    for answer in ("Shipped the exporter", "nothing", "4", "-"):
        await console.send(answer)
    assert "[5/5]" in out.getvalue() and "Thanks, that's your check-in" not in out.getvalue()
    await console.send("no")
    assert "Thanks, that's your check-in" in out.getvalue()
