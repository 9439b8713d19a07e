"""The inbox: a delivery acknowledged before its turn ran survives a crash and is recorded exactly once.

Real database (SQLite and PostgreSQL), real engine and outbox sender; the
"crash" is a delivery kept and never handed to a turn, then a new engine on
the same database, as after a restart.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from sqlalchemy import func, insert, select

from dialogs.engine.inbox import KEPT_SIZE, Inbox
from dialogs.engine.messages import Inbound
from storage.models import DialogState, InboxEvent, OutboxMessage
from tests.harness import Rig

SECRET = "the inbox secret 7f3a"  # typed by the person; must never reach a log line


async def kept_rows(rig: Rig) -> list[InboxEvent]:
    return await rig.db.run(lambda s: _all(s, InboxEvent))


async def _all(session, model):
    return list(await session.scalars(select(model)))


async def count(rig: Rig, model, *where) -> int:
    return await rig.db.run(lambda s: s.scalar(select(func.count()).select_from(model).where(*where)))


async def test_a_turn_removes_its_kept_delivery_in_its_own_transaction(rig: Rig) -> None:
    inbox = Inbox(rig.db, rig.clock, rig.sealer)
    chat = rig.chat("maya@demo.baton")
    kept = await inbox.keep(chat.inbound(text="help"))
    rows = await kept_rows(rig)
    assert kept.durable and [row.key for row in rows] == [rig.sealer.tag(kept.key)]
    await rig.engine.handle(kept)
    assert await kept_rows(rig) == []
    # Slack sends it again (a retry after a slow ack): kept again, dropped as a duplicate, row removed again.
    again = await inbox.keep(chat.inbound(text="help", event_id=kept.event_id))
    assert await rig.engine.handle(again) == [] and await kept_rows(rig) == []


async def test_a_kept_delivery_names_neither_its_sender_nor_what_they_wrote(rig: Rig) -> None:
    """A kept row may be an anonymous 360 answer: a keyed hash for its key, sealed content of one fixed size."""
    inbox = Inbox(rig.db, rig.clock, rig.sealer)
    chat = rig.chat("maya@demo.baton")
    await inbox.keep(chat.inbound(text=SECRET * 100))
    await inbox.keep(chat.inbound(text="x"))
    rows = await kept_rows(rig)
    assert len(rows) == 2
    for row in rows:
        assert SECRET.encode() not in row.sealed and "local:" not in row.key and row.inbound is None
        assert SECRET not in repr(row)
    assert len(rows[0].sealed) == len(rows[1].sealed) == KEPT_SIZE + 28  # sizes tell nothing (nonce and tag added)
    # and a replay opens them again, in order
    rig.clock.advance(minutes=5)
    seen: list[str | None] = []

    async def run(inbound: Inbound) -> None:
        seen.append(inbound.text)

    assert await inbox.replay(run) == 2 and seen == [SECRET * 100, "x"]


async def test_a_delivery_kept_before_a_crash_is_replayed_once_after_the_restart(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    chat = rig.chat("maya@demo.baton")
    await chat.send("feedback")  # start a dialog that records what is typed next
    before = await rig.db.run(lambda s: s.get(DialogState, chat.person.id))
    kept = await Inbox(rig.db, rig.clock, rig.sealer).keep(chat.inbound(text=SECRET))
    # ... and the process dies here, after the ack, before the turn.

    restarted = rig.restart()
    inbox = Inbox(restarted.db, restarted.clock, restarted.sealer)
    assert await inbox.replay(restarted.engine.handle) == 0  # younger than `stale`: maybe still running elsewhere
    restarted.clock.advance(minutes=3)
    with caplog.at_level(logging.DEBUG):
        assert await inbox.replay(restarted.engine.handle) == 1
        await restarted.sender.settle()
        assert await inbox.replay(restarted.engine.handle) == 0
    after = await rig.db.run(lambda s: s.get(DialogState, chat.person.id))
    assert after.version == before.version + 1
    assert await kept_rows(rig) == []
    assert await count(rig, OutboxMessage, OutboxMessage.key.startswith(f"reply:{kept.key}:")) >= 1
    assert SECRET not in caplog.text and "replaying 1" in caplog.text


async def test_a_replay_that_keeps_failing_is_given_up_after_its_attempts(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    inbox = Inbox(rig.db, rig.clock, rig.sealer, max_attempts=3)
    kept = await inbox.keep(rig.chat("maya@demo.baton").inbound(text=SECRET))
    runs: list[str | None] = []

    async def never_commits(inbound) -> None:
        runs.append(inbound.key)

    told: list[str | None] = []

    async def tell(inbound) -> None:
        told.append(inbound.sender.user_id)

    rig.clock.advance(minutes=3)
    with caplog.at_level(logging.DEBUG):
        for _ in range(5):
            await inbox.replay(never_commits, give_up=tell)
    assert runs == [kept.key] * 3 and await kept_rows(rig) == []
    assert told == [kept.sender.user_id]  # given up, but never silently
    assert "gave up on 1 deliveries" in caplog.text and SECRET not in caplog.text


async def test_one_senders_replayed_deliveries_run_in_the_order_they_came(rig: Rig) -> None:
    inbox = Inbox(rig.db, rig.clock, rig.sealer)
    tom, maya = rig.chat("tom@demo.baton"), rig.chat("maya@demo.baton")
    for n in range(4):
        await inbox.keep(tom.inbound(text=f"tom {n}"))
        await inbox.keep(maya.inbound(text=f"maya {n}"))
        rig.clock.advance(seconds=1)
    rig.clock.advance(minutes=3)
    seen: list[str] = []

    async def run(inbound) -> None:
        number = int((inbound.text or "0").rsplit(" ", 1)[-1])
        await asyncio.sleep(0.01 * (4 - number))  # run all at once, the later ones would finish first
        seen.append(inbound.text or "")

    assert await inbox.replay(run) == 8
    assert [t for t in seen if t.startswith("tom")] == [f"tom {n}" for n in range(4)]
    assert [t for t in seen if t.startswith("maya")] == [f"maya {n}" for n in range(4)]


async def test_keys_still_being_worked_on_here_are_not_replayed(rig: Rig) -> None:
    inbox = Inbox(rig.db, rig.clock, rig.sealer)
    chat = rig.chat("maya@demo.baton")
    busy, idle = await inbox.keep(chat.inbound(text="help")), await inbox.keep(chat.inbound(text="help"))
    rig.clock.advance(minutes=3)
    seen: list[str | None] = []

    async def run(inbound) -> None:
        seen.append(inbound.key)
        await rig.engine.handle(inbound)

    assert await inbox.replay(run, skip={busy.key}) == 1 and seen == [idle.key]
    assert [row.key for row in await kept_rows(rig)] == [rig.sealer.tag(busy.key)]


async def test_deliveries_arriving_together_share_one_insert(rig: Rig) -> None:
    inbox = Inbox(rig.db, rig.clock, rig.sealer)
    writes: list[int] = []
    original = inbox._write

    async def counted(keys):
        writes.append(len(keys))
        return await original(keys)

    inbox._writer._fetch = counted  # type: ignore[method-assign]
    chats = [rig.chat(email) for email in ("maya@demo.baton", "tom@demo.baton", "arjun@demo.baton")]
    kept = await asyncio.gather(*(inbox.keep(chat.inbound(text=f"hi {n}")) for n, chat in enumerate(chats * 5)))
    assert all(k.durable for k in kept) and len(await kept_rows(rig)) == 15
    assert sum(writes) == 15 and len(writes) < 15


async def test_a_given_up_delivery_is_told_to_its_sender_through_the_outbox_once(rig: Rig) -> None:
    """The default give-up (the server's replay loop) queues one durable "send it again" to the sender."""
    inbox = Inbox(rig.db, rig.clock, rig.sealer, max_attempts=1)
    chat = rig.chat("tom@demo.baton")
    kept = await inbox.keep(chat.inbound(text=SECRET))
    rig.clock.advance(minutes=3)

    async def never_commits(inbound) -> None:
        return None

    for _ in range(3):
        await inbox.replay(never_commits, give_up=inbox.tell_lost)
    rows = await rig.db.run(lambda s: _all(s, OutboxMessage))
    told = [row for row in rows if row.key == f"inbox-lost:{kept.key}"]
    assert len(told) == 1 and told[0].person_id == chat.person.id and told[0].channel == "local"
    assert "couldn't record a message you sent me earlier" in told[0].payload["text"]
    assert SECRET not in str(told[0].payload) and await kept_rows(rig) == []


async def test_a_delivery_whose_turn_runs_here_is_left_alone_by_the_replay(rig: Rig) -> None:
    inbox = Inbox(rig.db, rig.clock, rig.sealer)
    chat = rig.chat("maya@demo.baton")
    kept = await inbox.keep(chat.inbound(text="help"))
    rig.clock.advance(minutes=3)
    seen: list[str | None] = []

    async def run(inbound) -> None:
        seen.append(inbound.key)

    with inbox.working_on(kept):
        await inbox.replay(run, skip=inbox._working)
    assert seen == []
    await inbox.replay(run, skip=inbox._working)
    assert seen == [kept.key]


async def test_the_server_replays_what_a_crash_left_through_the_engine(rig: Rig, database_url: str) -> None:
    """`Baton.start` runs one replay loop for every platform; a local delivery goes straight to the engine."""
    from bot.app import Baton
    from bot.config import load_settings

    kept = await Inbox(rig.db, rig.clock, rig.sealer).keep(rig.chat("aiko@demo.baton").inbound(text="help"))
    rig.clock.advance(minutes=3)
    baton = Baton.build(
        load_settings(env_file=None, DATABASE_URL=database_url, BATON_TICK_SECONDS=3600), clock=rig.clock
    )
    await baton.start()
    try:
        for _ in range(100):
            if not await kept_rows(rig):
                break
            await asyncio.sleep(0.05)
    finally:
        await baton.close()
    assert await kept_rows(rig) == []
    assert await count(rig, OutboxMessage, OutboxMessage.key.startswith(f"reply:{kept.key}:")) >= 1


async def test_a_delivery_kept_in_the_form_before_revision_0021_is_still_replayed(rig: Rig) -> None:
    """Rows an older Baton kept (sealed as base64 text inside JSON, or not sealed at all) survive the upgrade."""
    chat = rig.chat("maya@demo.baton")
    old_sealed, old_plain = chat.inbound(text=SECRET), chat.inbound(text="plain and old")
    now = rig.clock.now()
    rows = [
        {"key": "a", "inbound": {"sealed": rig.sealer.seal("inbox", old_sealed.to_dict(), size=KEPT_SIZE)}},
        {"key": "b", "inbound": old_plain.to_dict()},
    ]
    await rig.db.run(
        lambda s: s.execute(insert(InboxEvent), [{**row, "attempts": 0, "received_at": now} for row in rows])
    )
    rig.clock.advance(minutes=3)
    seen: list[str | None] = []

    async def run(inbound: Inbound) -> None:
        seen.append(inbound.text)

    assert await Inbox(rig.db, rig.clock, rig.sealer).replay(run) == 2
    assert sorted(seen, key=str) == sorted([SECRET, "plain and old"], key=str)


async def test_revision_0021_keeps_every_kept_delivery_down_and_up_again(database_url: str, tmp_path) -> None:
    """Downgrading to 0020 turns kept bytes back into the old text form, and the newest Baton reads them again."""
    from datetime import UTC, datetime

    from alembic import command
    from sqlalchemy import text

    from dialogs.engine.clock import FakeClock
    from dialogs.engine.messages import Sender
    from dialogs.engine.sealing import Sealer
    from storage.db import Database, _alembic_config

    if "sqlite" in database_url:
        url, admin = f"sqlite+aiosqlite:///{tmp_path}/down.db", None
    else:
        from tests.conftest import _create_pg_database, _postgres_admin_url

        admin = _postgres_admin_url()
        url = await _create_pg_database(admin)
    db, sealer, clock = Database(url), Sealer.ephemeral(), FakeClock(datetime(2026, 12, 4, 9, 0, tzinfo=UTC))
    try:
        await db.migrate()
        inbox = Inbox(db, clock, sealer)
        sent = Inbound(
            sender=Sender(platform="local", user_id="u1"), address={"user": "u1"}, text=SECRET, event_id="e1"
        )
        assert (await inbox.keep(sent)).durable
        async with db.engine.begin() as conn:
            await conn.run_sync(lambda sync: command.downgrade(_alembic_config(sync), "0020"))
        async with db.engine.connect() as conn:
            kept = (await conn.execute(text("SELECT inbound FROM inbox"))).scalar_one()
        assert SECRET not in str(kept)  # back in the old form: base64 text, still sealed
        await db.migrate()
        clock.advance(minutes=3)
        seen: list[str | None] = []

        async def run(inbound: Inbound) -> None:
            seen.append(inbound.text)

        assert await inbox.replay(run) == 1 and seen == [SECRET]
    finally:
        await db.close()
        if admin is not None:
            from tests.conftest import _drop_pg_database

            await _drop_pg_database(admin, url)
