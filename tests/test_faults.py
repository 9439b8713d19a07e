"""Faults with real processes on PostgreSQL: replicas killed with SIGKILL mid fan-out, connections dropped.

Issue 23: with 300 people, `baton checkin send-now` and one of two replicas killed when Slack had accepted
about a third of the invitations, those people got their invitation twice after the restart. The promise
is "nothing lost, nothing twice": each DM reaches Slack exactly once.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from storage.db import Database
from storage.models import Identity, OutboxMessage, Person, Team
from tests.fakes.slack_api import FakeSlack
from tests.harness import SECRET
from tests.test_process import ServeProcess, baton_command

pytestmark = pytest.mark.slow

TOKEN = "xoxb-fault-token"
HELPS = 20  # further messages per person while connections keep dropping
PEOPLE = 300


async def seed_fan_out_team(db: Database, team_id: str) -> None:
    """A team of PEOPLE people on Slack, none of them in quiet hours whatever the time of the run."""
    now = datetime.now(UTC)

    async def work(session) -> None:
        team = Team(name="Fanout", created_at=now)
        session.add(team)
        await session.flush()
        for n in range(PEOPLE):
            person = Person(
                email=f"p{n:04d}@fault.test",
                name=f"Person {n:04d}",
                timezone="UTC",
                quiet_start="00:00",  # equal ends: no quiet hours
                quiet_end="00:00",
                team_id=team.id,
                created_at=now,
            )
            session.add(person)
            await session.flush()
            user = f"U0F{n:04d}"
            session.add(
                Identity(
                    person_id=person.id,
                    platform="slack",
                    external_id=user,
                    address={"team": team_id, "channel": user, "user": user},
                    updated_at=now,
                )
            )

    await db.run(work)


async def test_kill_9_of_one_of_two_replicas_mid_fan_out_sends_every_invitation_once(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    if "postgresql" not in database_url:
        pytest.skip("replicas share PostgreSQL; SQLite is a single-process store")
    fake = FakeSlack(token=TOKEN)
    fake.post_delay = 0.02  # a busy Slack: posts are in flight when the kill lands
    await fake.start()
    await seed_fan_out_team(db, fake.team_id)
    env = {
        "SLACK_BOT_TOKEN": TOKEN,
        "SLACK_SIGNING_SECRET": "fault-signing-secret",
        "SLACK_API_URL": fake.url,
        "BATON_OUTBOX_LEASE_SECONDS": "5",
        "BATON_SLACK_WORKSPACE_RATE": "30",  # 10 s for the whole fan-out
        "BATON_TICK_SECONDS": "3600",
    }
    # The first replica takes the whole fan-out; the second starts once it has (so the kill surely hits
    # the one holding the rows), and takes over what the first held when its lease runs out.
    replicas = [ServeProcess(database_url, tmp_path, **env)]
    try:
        await replicas[0].ready()
        send_now = subprocess.run(
            [baton_command(), "checkin", "send-now", "--team", "Fanout"],
            env={k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "BATON_"))}
            | {"DATABASE_URL": database_url, "BATON_SECRET_KEY": SECRET},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert send_now.returncode == 0, send_now.stderr
        await fake.wait_for(lambda: len(fake.posted()) >= 10, timeout=30, what="the fan-out to start")
        replicas.append(ServeProcess(database_url, tmp_path, **env))
        await replicas[1].ready()
        await fake.wait_for(lambda: len(fake.posted()) >= PEOPLE // 3, timeout=30, what="a third of the fan-out")
        replicas[0].kill()
        killed_at = len(fake.posted())
        assert killed_at < PEOPLE, "the fan-out finished before the kill: slow the fake down"
        replicas[0] = ServeProcess(database_url, tmp_path, **env)  # restarted, as an orchestrator would
        await replicas[0].ready()

        async def settled() -> int:
            return await db.run(
                lambda s: s.scalar(
                    select(func.count())
                    .select_from(OutboxMessage)
                    .where(OutboxMessage.kind == "checkin", OutboxMessage.status.in_(("pending", "sending")))
                )
            )

        deadline = time.monotonic() + 60
        while (await settled() or len({p["channel"] for p in fake.posted()}) < PEOPLE) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        posts = Counter(p["channel"] for p in fake.posted() if p.get("metadata"))
        duplicates = {channel: n for channel, n in posts.items() if n > 1}
        assert len(posts) == PEOPLE, f"lost: {PEOPLE - len(posts)}"
        assert not duplicates, f"{len(duplicates)} people got their invitation twice (killed at {killed_at} posts)"
        sent = await db.run(
            lambda s: s.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.kind == "checkin", OutboxMessage.status == "sent")
            )
        )
        assert sent == PEOPLE
        attempts = await db.run(
            lambda s: s.execute(select(OutboxMessage.attempts, func.count()).group_by(OutboxMessage.attempts))
        )
        assert dict(list(attempts)).get(2), "the killed replica held rows that another took over"
        assert fake.calls_to("conversations.history"), "the rows the killed replica held were checked, not re-sent"
    finally:
        for replica in replicas:
            replica.stop()
        await fake.close()


async def terminate_backends(database_url: str) -> int:
    """Drop every connection to the test database but this one (what a PostgreSQL restart does to clients)."""
    import asyncpg

    dsn = database_url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    try:
        return len(
            await conn.fetch(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
    finally:
        await conn.close()


async def test_connections_dropped_mid_traffic_lose_nothing_acknowledged_and_every_loop_lives_on(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    """Issue 23: `pg_ctl restart` mid-traffic lost acknowledged answers, posted a question twice and killed
    the sender's batch task. Here every connection is dropped again and again while five people answer
    their check-ins through the web chat, resending with the same client_id when told to (503), as the page
    does."""
    if "postgresql" not in database_url:
        pytest.skip("pg_terminate_backend is PostgreSQL's; SQLite has no server to lose")
    import uuid

    import aiohttp

    server = ServeProcess(database_url, tmp_path, BATON_DEMO_HISTORY="0", BATON_TICK_SECONDS="3600")
    answers = ["Shipped the importer", "nothing", "4", "Finish the exporter", "nothing"]
    statuses: Counter[int] = Counter()
    try:
        await server.ready()
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{server.url}/api/local/people") as r:
                people = {p["email"]: p["id"] for p in await r.json() if p["email"] != "sam@demo.baton"}

            async def say(person: int, text: str) -> None:
                body = {"person": person, "client_id": uuid.uuid4().hex, "text": text}
                for _ in range(60):  # the page's behaviour: same body, same client_id, until accepted
                    try:
                        async with http.post(f"{server.url}/api/local/messages", json=body) as r:
                            statuses[r.status] += 1
                            if r.status == 202:
                                return
                            assert r.status == 503, (r.status, await r.text())
                    except aiohttp.ClientError:
                        statuses[0] += 1
                    await asyncio.sleep(0.2)
                raise AssertionError("never accepted")

            async def person(person_id: int) -> None:
                await say(person_id, "checkin")
                for text in answers:
                    await asyncio.sleep(0.05)
                    await say(person_id, text)
                for _ in range(HELPS):
                    await say(person_id, "help")

            stop = asyncio.Event()
            dropped: list[int] = []

            async def storm() -> None:
                while not stop.is_set():
                    await asyncio.sleep(0.1)
                    dropped.append(await terminate_backends(database_url))

            chaos = asyncio.create_task(storm())
            await asyncio.gather(*(person(p) for p in people.values()))
            stop.set()
            await chaos
            assert sum(dropped) >= 5, dropped  # connections really were dropped, many times

            async def settled() -> tuple[int, dict[str, int]]:
                from storage.models import CheckinAnswer, CheckinRun

                async def read(session) -> tuple[int, dict[str, int]]:
                    answered = await session.scalar(
                        select(func.count()).select_from(CheckinRun).where(CheckinRun.status == "answered")
                    )
                    rows = await session.execute(select(OutboxMessage.person_id, OutboxMessage.payload))
                    seconds: Counter[str] = Counter()
                    for person_id, payload in rows:
                        if "Question 2 of 5" in payload.get("text", ""):
                            seconds[str(person_id)] += 1
                        if payload.get("text", "").startswith("Here's what I can do"):
                            seconds[f"help:{person_id}"] += 1
                    count = await session.scalar(select(func.count()).select_from(CheckinAnswer))
                    return answered, dict(seconds) | {"answers": count}

                return await db.run(read)

            deadline = time.monotonic() + 30
            answered, seen = await settled()
            while answered < len(people) and time.monotonic() < deadline:
                await asyncio.sleep(0.3)
                answered, seen = await settled()
            assert answered == len(people), (answered, seen, statuses)
            assert seen.pop("answers") == len(people) * len(answers)  # each answer stored once
            helps = {k: n for k, n in seen.items() if k.startswith("help:")}
            seconds = {k: n for k, n in seen.items() if not k.startswith("help:")}
            assert all(n == 1 for n in seconds.values()) and len(seconds) == len(people), seen  # no question twice
            assert sorted(helps.values()) == [HELPS] * len(people), helps  # every reply once
            # Every loop is still alive: a new message is answered, and the server says it is ready.
            await say(people["tom@demo.baton"], "help")
            async with http.get(f"{server.url}/readyz") as r:
                assert r.status == 200
        assert server.proc.poll() is None
        assert "Task exception was never retrieved" not in server.log.read_text()
    finally:
        server.stop()
