"""Real `baton serve` processes: killed mid-dialog and restarted, the conversation continues."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import aiohttp
import pytest

from storage.db import Database
from tests.conftest import free_port
from tests.harness import SECRET

pytestmark = pytest.mark.slow


def baton_command() -> str:
    return shutil.which("baton") or str(Path(sys.executable).parent / "baton")


def send_now(database_url: str, team: str) -> None:
    """`baton checkin send-now --team TEAM` as an admin would run it beside the servers (no platform set)."""
    done = subprocess.run(
        [baton_command(), "checkin", "send-now", "--team", team],
        env={k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "MICROSOFT_", "BATON_"))}
        | {"DATABASE_URL": database_url, "BATON_SECRET_KEY": SECRET},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr


class ServeProcess:
    """`baton serve` in a subprocess on a free port, against the test database."""

    def __init__(self, database_url: str, workdir: Path, **extra_env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "MICROSOFT_", "BATON_"))}
        env |= {"DATABASE_URL": database_url, "BATON_PORT": str(self.port), "BATON_SECRET_KEY": SECRET} | extra_env
        self.log = workdir / f"serve-{self.port}.log"
        self.proc = subprocess.Popen(
            [baton_command(), "serve"], cwd=workdir, env=env, stdout=self.log.open("w"), stderr=subprocess.STDOUT
        )

    async def ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise AssertionError(f"serve exited early:\n{self.log.read_text()}")
                try:
                    async with http.get(f"{self.url}/readyz") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.2)
        raise AssertionError(f"serve not ready after {timeout}s:\n{self.log.read_text()}")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


async def say(http: aiohttp.ClientSession, base: str, person: int, **body: str) -> int:
    async with http.post(
        f"{base}/api/local/messages", json={"person": person, "client_id": uuid.uuid4().hex, **body}
    ) as r:
        return r.status


async def events(http: aiohttp.ClientSession, base: str, person: int, after: int, count: int) -> list[dict]:
    found: list[dict] = []
    async with http.get(
        f"{base}/api/local/stream?person={person}", headers={"Last-Event-ID": str(after)} if after else {}
    ) as r:

        async def collect() -> None:
            kind = "message"
            async for raw in r.content:
                line = raw.decode()
                if line.startswith("event: "):
                    kind = line[7:].strip()
                elif line.startswith("data: ") and kind == "message":  # not `ready` or `live`
                    found.append(json.loads(line[6:]))
                    if len(found) == count:
                        return

        await asyncio.wait_for(collect(), 15)
    return found


async def test_killed_mid_dialog_the_restarted_server_continues_at_the_same_question(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    first = ServeProcess(database_url, tmp_path)
    try:
        await first.ready()
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{first.url}/api/local/people") as r:
                maya = next(p for p in await r.json() if p["email"] == "maya@demo.baton")["id"]
            assert await say(http, first.url, maya, text="settings") == 202
            (menu,) = await events(http, first.url, maya, 0, 1)
            assert await say(http, first.url, maya, action=menu["choices"][0]["action"], value="timezone") == 202
            (question,) = await events(http, first.url, maya, menu["id"], 1)
            assert "Which time zone" in question["text"]
        first.kill()
    finally:
        first.stop()

    second = ServeProcess(database_url, tmp_path)
    try:
        await second.ready()
        async with aiohttp.ClientSession() as http:
            history = await events(http, second.url, maya, 0, 2)
            assert "Which time zone" in history[-1]["text"]  # the page shows the open question again
            assert await say(http, second.url, maya, text="Tokyo") == 202
            (done, menu_again) = await events(http, second.url, maya, history[-1]["id"], 2)
            assert "now *Asia/Tokyo*" in done["text"] and "What would you like to change" in menu_again["text"]
    finally:
        second.stop()


async def test_two_processes_answering_the_same_prompt_record_it_once(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    if "sqlite" in database_url:
        pytest.skip("two serve processes on one SQLite file is not a supported deployment")
    a, b = ServeProcess(database_url, tmp_path), ServeProcess(database_url, tmp_path)
    try:
        await asyncio.gather(a.ready(), b.ready())
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{a.url}/api/local/people") as r:
                tom = next(p for p in await r.json() if p["email"] == "tom@demo.baton")["id"]
            await say(http, a.url, tom, text="settings")
            (menu,) = await events(http, a.url, tom, 0, 1)
            await say(http, a.url, tom, action=menu["choices"][1]["action"], value="quiet")
            (prompt,) = await events(http, a.url, tom, menu["id"], 1)
            action = prompt["choices"][0]["action"]
            statuses = await asyncio.gather(
                say(http, a.url, tom, action=action, value="22:00-07:00"),
                say(http, b.url, tom, action=action, value="20:00-08:00"),
            )
            assert statuses == [202, 202]
            replies = await events(http, a.url, tom, prompt["id"], 3)
            texts = [e["text"] for e in replies]
            assert sum("quiet hours are now" in t for t in texts) == 1, texts
            assert sum("already been answered" in t for t in texts) == 1, texts
    finally:
        a.stop()
        b.stop()


async def test_two_replicas_through_a_simulated_week_send_each_message_once(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    """Two serve processes tick every 0.1 s on one PostgreSQL while a clock file walks Friday to Monday."""
    if "sqlite" in database_url:
        pytest.skip("replicas share PostgreSQL; SQLite is a single-process store")
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import select

    from storage.models import OutboxMessage, Person

    clock_file = tmp_path / "now"
    now = datetime(2026, 11, 20, 5, 0, tzinfo=UTC)  # Friday, before anyone's 16:00
    clock_file.write_text(now.isoformat())
    env = {"BATON_CLOCK_FILE": str(clock_file), "BATON_TICK_SECONDS": "0.1"}
    replicas = [ServeProcess(database_url, tmp_path, **env), ServeProcess(database_url, tmp_path, **env)]
    try:
        await asyncio.gather(*(r.ready() for r in replicas))
        while now < datetime(2026, 11, 23, 12, 0, tzinfo=UTC):  # through Monday's digest
            now += timedelta(hours=1)
            clock_file.write_text(now.isoformat())
            await asyncio.sleep(0.4)  # several ticks and drains of both replicas
        await asyncio.sleep(1.0)
    finally:
        for replica in replicas:
            replica.stop()

    async def load(session):
        rows = list((await session.execute(select(OutboxMessage))).scalars())
        people = {p.id: p for p in (await session.execute(select(Person))).scalars()}
        return rows, people

    rows, people = await db.run(load)
    team = {pid for pid, p in people.items() if p.team_id is not None}
    invitations = [r for r in rows if r.topic == "checkin:2026-W47"]
    reminders = [r for r in rows if r.topic == "checkin-reminder:2026-W47"]
    digests = [r for r in rows if r.topic == "digest:2026-W47"]
    assert sorted(r.person_id for r in invitations) == sorted(team)  # one each, nobody twice
    assert sorted(r.person_id for r in reminders) == sorted(team)  # nobody answered: one reminder each
    assert [people[r.person_id].email for r in digests] == ["maya@demo.baton"]
    # Everything due by the end went out once (a 1:1 agenda moved out of someone's quiet hours may fall after it).
    due = [r for r in rows if r.due_at <= now - timedelta(hours=1)]
    # (or, a nudge, was held by the weekly budget: the demo's overdue 1:1 action items meet its spent budget)
    gone = [r for r in due if not (r.status == "held" and r.kind == "nudge")]
    assert all(r.status == "sent" for r in gone), [(r.key, r.status) for r in gone if r.status != "sent"]
    assert all(r.attempts == 1 for r in gone), "a row was claimed by both replicas"
    for row in invitations:
        person = people[row.person_id]
        local = row.sent_at.astimezone(__import__("zoneinfo").ZoneInfo(person.timezone))
        # Friday 16:00 their time, give or take the simulated clock's hour steps on a loaded machine
        assert local.weekday() == 4 and 16 <= local.hour <= 17, (person.email, local)
