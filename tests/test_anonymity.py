"""Anonymous 360 answers against someone who reads the database, its pages and its WAL — but not Baton's secret.

The reader enumerates every table from the database's own catalogue, reads
raw heap pages (dead tuples included) with pageinspect and the WAL segments
themselves on PostgreSQL, and the main and -wal files on SQLite. Each answer
carries a marker. Before close no marker may be found anywhere; after close
only the released answers' markers, only in `answer_360`; the answers of a
group below its threshold and an abandoned draft never, anywhere.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.engine import make_url

from dialogs.services.rhythm import Conductor
from storage.models import Campaign360, DialogState, Person, Pool360, SealedDraft
from tests.harness import Chat, Rig

PEERS = [f"peer{n}@demo.baton" for n in range(1, 6)]
REPORT = "report1@demo.baton"


async def add_people(rig: Rig) -> None:
    tom = rig.people["tom@demo.baton"]
    rows = [
        {"email": e, "name": f"Peer {e[4]}", "timezone": "UTC", "team_id": tom.team_id, "manager_id": tom.manager_id}
        for e in PEERS
    ]
    rows.append({"email": REPORT, "name": "Rae Report", "timezone": "UTC", "team_id": None, "manager_id": tom.id})
    await rig.db.run(lambda s: s.execute(insert(Person), [{**r, "created_at": rig.clock.now()} for r in rows]))
    await rig.reload_people()


async def answer(rig: Rig, email: str, campaign_id: int, mark: str, *, submit: bool = True) -> None:
    rater = rig.chat(email)
    await rater.send(f"360 answer {campaign_id}")
    for n in range(6):
        rater.replies()
        await rater.press(str((n + len(mark)) % 5 + 1))
        rater.expect("Anything to add")
        await rater.send(f"{mark} q{n}")
    if not submit:
        return
    for n in range(2):
        rater.replies()
        await rater.send(f"{mark} open{n}")
    rater.expect("Ready to submit?")
    await rater.press("Submit")
    rater.expect("your answers are in the pool")


class Reader:
    """What an attacker with read access to the database (not the secret) can see."""

    def __init__(self, rig: Rig) -> None:
        self.rig = rig
        self.sqlite = rig.db.is_sqlite

    async def tables(self) -> dict[str, str]:
        """Every user table, found from the catalogue, as one text dump each."""
        listing = (
            "SELECT name FROM sqlite_master WHERE type = 'table'"
            if self.sqlite
            else "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        )

        async def work(session) -> dict[str, str]:
            names = [row[0] for row in await session.execute(text(listing))]
            dumped = {}
            for name in names:
                columns = "*" if self.sqlite else "xmin, ctid, *"
                rows = await session.execute(text(f'SELECT {columns} FROM "{name}"'))
                dumped[name] = "\n".join(repr(tuple(row)) for row in rows)
            return dumped

        return await self.rig.db.run(work)

    async def raw(self) -> dict[str, bytes]:
        """Raw bytes: SQLite's files, or PostgreSQL's heap pages (dead tuples included) and WAL segments."""
        if self.sqlite:
            path = Path(make_url(self.rig.db.url).database or "")
            return {p.name: p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists()}
        return await self.rig.db.run(self._pg_raw)

    async def _pg_raw(self, session) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        if await session.scalar(text("SELECT count(*) FROM pg_extension WHERE extname = 'pageinspect'")):
            relations = await session.execute(
                text(
                    "SELECT c.oid::regclass::text, c.relpages FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE c.relkind IN ('r', 't') AND (n.nspname = 'public' OR n.nspname = 'pg_toast' AND c.oid IN "
                    "(SELECT reltoastrelid FROM pg_class WHERE relnamespace = 'public'::regnamespace))"
                )
            )
            for name, _ in list(relations):
                blocks = await session.scalar(text(f"SELECT pg_relation_size('{name}') / 8192"))
                pages = [
                    await session.scalar(text(f"SELECT get_raw_page('{name}', {block})")) for block in range(blocks)
                ]
                found[f"pages:{name}"] = b"".join(pages)
        segments = await session.execute(text("SELECT name FROM pg_ls_waldir() ORDER BY modification DESC LIMIT 3"))
        for (segment,) in list(segments):
            found[f"wal:{segment}"] = await session.scalar(text(f"SELECT pg_read_binary_file('pg_wal/{segment}')"))
        return found


def where(found: dict[str, str] | dict[str, bytes], mark: str) -> list[str]:
    return [name for name, body in found.items() if (mark.encode() if isinstance(body, bytes) else mark) in body]


@pytest.fixture
async def reader(rig: Rig) -> Reader:
    if not rig.db.is_sqlite:
        await rig.db.run(lambda s: s.execute(text("CREATE EXTENSION IF NOT EXISTS pageinspect")))
    return Reader(rig)


async def test_a_database_reader_finds_no_answer_before_close_and_only_released_ones_after(
    rig: Rig, chat: Chat, reader: Reader
) -> None:
    if rig.db.is_sqlite and ":memory:" in rig.db.url:
        pytest.skip("the SQLite half needs a database file to read")
    await add_people(rig)
    await chat.send("360 tom@demo.baton")
    await chat.press("Start", on=chat.expect("360 about Tom's work"))
    chat.expect("Started.")
    campaign = (await rig.db.run(lambda s: s.scalars(select(Campaign360)))).all()[-1]
    run = uuid.uuid4().hex[:8]
    peer_marks = [f"pm{run}{n}x" for n in range(4)]
    report_mark, draft_mark = f"rm{run}x", f"dm{run}x"
    for email, mark in zip(PEERS, peer_marks, strict=False):
        await answer(rig, email, campaign.id, mark)
    await answer(rig, REPORT, campaign.id, report_mark)  # the only report: below the threshold
    await answer(rig, PEERS[4], campaign.id, draft_mark, submit=False)  # started, never submitted

    # During the campaign: nothing readable anywhere, and every pooled submission looks the same.
    tables, raw = await reader.tables(), await reader.raw()
    for mark in [*peer_marks, report_mark, draft_mark]:
        assert where(tables, mark) == [] and where(raw, mark) == [], f"{mark} readable before close"
    drafted = (await rig.db.run(lambda s: s.scalars(select(SealedDraft)))).all()
    assert len(drafted) == 6 and len({len(row.sealed) for row in drafted}) == 1  # one unsubmitted draft, 6 answers
    pooled = (await rig.db.run(lambda s: s.scalars(select(Pool360)))).all()
    assert len(pooled) == 5 and len({len(row.sealed or "") for row in pooled}) == 1
    assert all(row.group is None and row.comment is None for row in pooled)

    rig.clock.set(campaign.closes_at + timedelta(minutes=1))
    await Conductor(rig.db, sealer=rig.sealer).tick(rig.clock.now())
    await rig.sender.drain_once()

    tables, raw = await reader.tables(), await reader.raw()
    for mark in peer_marks:  # released: readable now, in the released answers and the results sent out only
        assert "answer_360" in where(tables, mark) and set(where(tables, mark)) <= {"answer_360", "outbox"}
        assert {n for n in where(raw, mark) if n.startswith("pages:")} <= {"pages:answer_360", "pages:outbox"}
    # The reader does see plaintext where it is: the released answers, in raw pages or the WAL.
    assert all(where(raw, mark) for mark in peer_marks)
    for mark in (report_mark, draft_mark):  # never released: never readable, in no table, page or WAL
        assert where(tables, mark) == [] and where(raw, mark) == [], f"{mark} readable after close"
    assert tables["pool_360"] == "" and tables["sealed_draft"] == ""
    drafts = (await rig.db.run(lambda s: s.scalars(select(DialogState).where(DialogState.dialog == "review360")))).all()
    assert drafts == []  # the abandoned draft went with the close
    if not rig.db.is_sqlite:  # every released row was written by one transaction: xmin says nothing about who
        xmins = await rig.db.run(lambda s: s.execute(text("SELECT DISTINCT xmin::text FROM answer_360")))
        assert len(list(xmins)) == 1


async def test_a_database_reader_cannot_link_an_anonymous_idea_or_its_thread_to_the_sender(
    rig: Rig, reader: Reader
) -> None:
    """Tom sends an anonymous idea and answers Maya's reply; Maya acts on it. The reader sees the idea's text
    only once it is published, only in `idea` (and its WAL), and nowhere beside Tom: not in his rows, not in
    his outbox messages, not in a transaction of his."""
    if rig.db.is_sqlite and ":memory:" in rig.db.url:
        pytest.skip("the SQLite half needs a database file to read")
    from storage.models import Idea, OutboxMessage

    run = uuid.uuid4().hex[:8]
    idea_mark, owner_mark, answer_mark = f"im{run}x", f"om{run}x", f"am{run}x"
    tom, maya = rig.chat("tom@demo.baton"), rig.chat("maya@demo.baton")
    await tom.send("idea")
    await tom.press("Anonymous")
    await tom.send(f"A better pager rota {idea_mark}")
    tom.expect("Sent anonymously to Maya")
    await tom.send("idea mine")
    tom.expect(idea_mark)

    tables, raw = await reader.tables(), await reader.raw()
    assert where(tables, idea_mark) == [] and where(raw, idea_mark) == [], (
        "an anonymous idea readable before publishing"
    )
    assert "Maya" not in tables["dialog_state"]
    others = [rig.chat(f"{name}@demo.baton") for name in ("arjun", "aiko")]  # anonymity needs company: 3 senders
    for n, other in enumerate(others):
        await other.send(f"idea anonymous Another idea {n}")
        other.expect("Sent anonymously to Maya")

    rig.clock.advance(days=1)
    await Conductor(rig.db, sealer=rig.sealer).tick(rig.clock.now())
    await rig.sender.drain_once()
    ideas = (await rig.db.run(lambda s: s.scalars(select(Idea)))).all()
    [idea] = [i for i in ideas if idea_mark in i.text]
    assert len(ideas) == 3 and len({i.received_on for i in ideas}) == 1
    for each in ideas:  # news for all three senders, or none: one person's news would name their idea
        await maya.send(f"idea ack {each.id[:6]}")
    await maya.send(f"idea reply {idea.id[:6]} {owner_mark}")
    rig.clock.advance(days=1)
    await Conductor(rig.db, sealer=rig.sealer).tick(rig.clock.now())
    await rig.sender.drain_once()
    tom.expect("There's news on an idea you sent anonymously")
    await tom.send(f"idea reply {idea.id[:6]} {answer_mark}")
    await tom.send("idea mine")
    tom.expect(owner_mark)
    for n, (other, each) in enumerate(zip(others, [i for i in ideas if i.id != idea.id], strict=True)):
        await other.send(f"idea reply {each.id[:6]} Another answer {n}")
    rig.clock.advance(days=1)
    await Conductor(rig.db, sealer=rig.sealer).tick(rig.clock.now())
    await rig.sender.drain_once()

    tables, raw = await reader.tables(), await reader.raw()
    assert "idea" in where(tables, idea_mark) and set(where(tables, idea_mark)) <= {"idea", "outbox"}
    everything = (await rig.db.run(lambda s: s.scalars(select(OutboxMessage)))).all()
    readable = [row for row in everything if any(m in repr(row.payload) for m in (idea_mark, owner_mark, answer_mark))]
    assert {row.person_id for row in readable} <= {maya.person.id}  # only the owner's messages quote the thread
    assert set(where(tables, owner_mark)) | set(where(tables, answer_mark)) <= {"idea_message", "outbox"}
    assert not where(tables, answer_mark) or "idea_message" in where(tables, answer_mark)
    for name, body in tables.items():  # the idea's id only in the idea's own tables and the owner's messages
        if name not in ("idea", "idea_message", "outbox"):
            assert idea.id not in body and idea.id[:6] not in body, f"the idea named in {name}"
    pages = {n for mark in (idea_mark, owner_mark, answer_mark) for n in where(raw, mark) if n.startswith("pages:")}
    assert pages <= {"pages:idea", "pages:idea_message", "pages:outbox"}

    mine = (
        await rig.db.run(lambda s: s.scalars(select(OutboxMessage).where(OutboxMessage.person_id == tom.person.id)))
    ).all()
    for row in mine:  # what Tom was told: sealed, or the content-free news
        body = repr(row.payload) + row.key
        assert all(mark not in body for mark in (idea_mark, owner_mark, answer_mark)) and idea.id[:6] not in body
    from dialogs.ideas import relay_for

    other = relay_for(rig.sealer, rig.people["sam@demo.baton"].id, idea.id)
    assert idea.signed_by_id is None and idea.relay is not None and len(idea.relay) == len(other)  # one size
    assert any(set(row.payload) == {"sealed"} for row in mine)
    if not rig.db.is_sqlite:  # the idea was written by a tick, in no transaction of Tom's
        idea_xmins = set(
            await rig.db.run(lambda s: s.scalars(text("SELECT xmin::text FROM idea WHERE id = :i"), {"i": idea.id}))
        )
        toms = await rig.db.run(
            lambda s: s.execute(
                text(
                    "SELECT xmin::text FROM outbox WHERE person_id = :p UNION SELECT xmin::text FROM dialog_state WHERE person_id = :p"
                ),
                {"p": tom.person.id},
            )
        )
        assert idea_xmins and not idea_xmins & {row[0] for row in toms}


async def test_a_database_reader_finds_no_retro_answer_before_the_close_and_only_released_themes_after(
    rig: Rig, chat: Chat, reader: Reader
) -> None:
    """Retro answers are sealed drafts until the close: not in any table, page or WAL; after it, only what
    reached the threshold, written by the close's one transaction."""
    from tests.test_retro import answer, close, start

    if rig.db.is_sqlite and ":memory:" in rig.db.url:
        pytest.skip("the SQLite half needs a database file to read")
    run = uuid.uuid4().hex[:8]
    shared = [f"release checklist pairing kept the launch calm sq{run}{n}x" for n in range(3)]
    lonely = f"the espresso machine on floor two lq{run}x"
    retro = await start(rig, chat)
    people = ["maya@demo.baton", "arjun@demo.baton", "lucia@demo.baton", "tom@demo.baton"]
    for email, story in zip(people, [*shared, lonely], strict=True):
        await answer(rig, email, retro, story, None)
    tables, raw = await reader.tables(), await reader.raw()
    for mark in [*(s.split()[-1] for s in shared), lonely.split()[-1]]:
        assert where(tables, mark) == [] and where(raw, mark) == [], f"{mark} readable before the close"

    await close(rig, retro)
    tables, raw = await reader.tables(), await reader.raw()
    assert where(tables, lonely.split()[-1]) == [] and where(raw, lonely.split()[-1]) == []  # one person: never
    released = [s.split()[-1] for s in shared if where(tables, s.split()[-1])]
    assert released, "the theme three people share is released with its quotes"
    for mark in released:  # quotes under a theme three people share, nowhere else readable but results sent
        assert set(where(tables, mark)) <= {"retro_quote", "outbox"}
    assert tables["sealed_draft"] == ""
    if not rig.db.is_sqlite:  # released rows share the close's transaction: xmin names nobody
        xmins = await rig.db.run(lambda s: s.execute(text("SELECT DISTINCT xmin::text FROM retro_quote")))
        assert len(list(xmins)) == 1
