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
