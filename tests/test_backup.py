"""`baton backup` and `baton restore`: taken while the server handles traffic, restored to the same rows.

Real parts: a real `baton serve` process answering the local web chat over
HTTP while the backup is taken (SQLite's online backup API, or pg_dump), and
the CLI as a user runs it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy.engine import make_url

from storage.backup import BackupError, Summary, known_revisions, summarize, summarize_sqlite
from storage.db import Database
from tests.conftest import IN_CI, free_port

BATON = Path(sys.executable).parent / "baton"


def baton(*args: str, env: dict[str, str], check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [str(BATON), *args], capture_output=True, text=True, env=env, timeout=120, input=input, check=False
    )
    if check:
        assert done.returncode == 0, done.stderr
    return done


def environment(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "MICROSOFT_", "BATON_"))}
    env.update(DATABASE_URL=url, BATON_SECRET_KEY=os.environ["BATON_SECRET_KEY"], BATON_TICK_SECONDS="3600")
    return env


class Server:
    """A real `baton serve` in local mode, and a thread of people chatting with it."""

    def __init__(self, env: dict[str, str]) -> None:
        self.port = free_port()
        self.env = {**env, "BATON_PORT": str(self.port), "BATON_DEMO_HISTORY": "false"}
        self.process = subprocess.Popen(
            [str(BATON), "serve"], env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        self.sent = 0
        self._stop = threading.Event()

    async def ready(self) -> None:
        async with aiohttp.ClientSession() as http:
            for _ in range(300):
                try:
                    async with http.get(f"http://127.0.0.1:{self.port}/readyz") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError("baton serve did not become ready")

    async def chat(self, stop: asyncio.Event) -> None:
        base = f"http://127.0.0.1:{self.port}"
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/api/local/people") as response:
                people = [p["id"] for p in await response.json()]
            while not stop.is_set():
                body = {"person": people[self.sent % len(people)], "text": "help", "client_id": uuid.uuid4().hex}
                async with http.post(f"{base}/api/local/messages", json=body) as response:
                    assert response.status in (200, 202), await response.text()
                self.sent += 1

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(20)


async def backup_under_traffic(env: dict[str, str], file: Path) -> tuple[Server, Summary | None]:
    server = Server(env)
    try:
        await server.ready()
        stop = asyncio.Event()
        chatting = asyncio.create_task(server.chat(stop))
        await asyncio.sleep(0.5)
        before = server.sent
        done = await asyncio.to_thread(baton, "backup", str(file), env=env)
        assert "Backed up" in done.stderr and "BATON_SECRET_KEY" in done.stderr
        await asyncio.sleep(0.3)
        stop.set()
        await chatting
        assert server.sent > before  # the server kept answering while the backup ran
    finally:
        server.stop()
    return server, None


async def test_sqlite_backup_while_serving_restores_to_identical_rows(tmp_path: Path) -> None:
    live = tmp_path / "live.db"
    env = environment(f"sqlite:///{live}")
    during, after = tmp_path / "during.baton", tmp_path / "after.baton"
    await backup_under_traffic(env, during)
    snapshot = summarize_sqlite(during)
    assert snapshot.revision == known_revisions()[-1] and snapshot.rows["outbox"] > 0
    with sqlite3.connect(during) as conn:  # one consistent moment: intact, every reference holds
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchone() is None
    assert oct(during.stat().st_mode & 0o777) == "0o600"
    # Stopped now: a second backup equals the live database, and restoring it elsewhere gives the same rows.
    baton("backup", str(after), env=env)
    assert summarize_sqlite(after) == summarize_sqlite(live)
    target = tmp_path / "restored.db"
    restored = baton("restore", str(after), env=environment(f"sqlite:///{target}"))
    assert "Restored" in restored.stderr
    assert summarize_sqlite(target) == summarize_sqlite(live)


def test_restore_refuses_to_overwrite_data_and_backups_are_never_overwritten(tmp_path: Path) -> None:
    live = tmp_path / "live.db"
    env = environment(f"sqlite:///{live}")
    baton("migrate", env=env)
    asyncio.run(_seed(f"sqlite+aiosqlite:///{live}"))
    baton("backup", str(tmp_path / "b1"), env=env)
    again = baton("backup", str(tmp_path / "b1"), env=env, check=False)
    assert again.returncode != 0 and "exists already" in again.stderr
    refused = baton("restore", str(tmp_path / "b1"), env=env, check=False)
    assert refused.returncode != 0 and "--force" in refused.stderr
    forced = baton("restore", str(tmp_path / "b1"), "--force", env=env)
    assert "Restored" in forced.stderr


def test_restore_refuses_what_is_not_a_baton_backup_or_is_newer(tmp_path: Path) -> None:
    env = environment(f"sqlite:///{tmp_path / 'target.db'}")
    junk = tmp_path / "junk"
    junk.write_bytes(b"not a database at all" * 100)
    assert "not a Baton SQLite backup" in baton("restore", str(junk), env=env, check=False).stderr
    newer = tmp_path / "newer.db"
    with sqlite3.connect(newer) as conn:
        conn.execute("CREATE TABLE alembic_version (version_num TEXT)")
        conn.execute("INSERT INTO alembic_version VALUES ('9999_from_the_future')")
    assert "newer Baton" in baton("restore", str(newer), env=env, check=False).stderr
    assert not (tmp_path / "target.db").exists() or summarize_sqlite(tmp_path / "target.db").total == 0


HOLD = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1])
conn.execute("SELECT count(*) FROM person").fetchone()
print("open", flush=True)
sys.stdin.read()
"""


def test_restore_refuses_a_sqlite_database_in_use(tmp_path: Path) -> None:
    from storage.backup import restore_sqlite

    live, copy = tmp_path / "live.db", tmp_path / "copy.db"
    env = environment(f"sqlite:///{live}")
    baton("migrate", env=env)
    baton("backup", str(copy), env=env)
    # An idle Baton: another process with a connection open and nothing locked.
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(live)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        with pytest.raises(BackupError, match="open in another process"):
            restore_sqlite(copy, live, force=True)
    finally:
        holder.communicate("", timeout=10)
    restore_sqlite(copy, live, force=True)  # everyone gone: it goes ahead


async def _seed(url: str) -> None:
    from bot.demo import seed_demo
    from dialogs.engine.clock import SystemClock

    db = Database(url)
    try:
        await seed_demo(db, SystemClock(), history=False)
    finally:
        await db.close()


@pytest.fixture
def postgres_url(database_url: str) -> str:
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only")
    if shutil.which("pg_dump") is None:
        if IN_CI:
            pytest.fail("pg_dump is not on PATH; install postgresql-client")
        pytest.skip("pg_dump is not on PATH")
    return database_url


async def _scratch(admin: str, name: str) -> str:
    import asyncpg

    url = make_url(admin)
    conn = await asyncpg.connect(user=url.username, host=url.host, port=url.port or 5432, database=url.database)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return url.set(database=name).render_as_string(hide_password=False)


async def test_postgres_backup_while_serving_restores_to_identical_rows(postgres_url: str, tmp_path: Path) -> None:
    suffix = f"{os.getpid()}_{int(time.time() * 1000) % 100000}"
    live = await _scratch(postgres_url, f"baton_bk_live_{suffix}")
    target = await _scratch(postgres_url, f"baton_bk_target_{suffix}")
    env = environment(live)
    await backup_under_traffic(env, tmp_path / "during.dump")
    baton("backup", str(tmp_path / "after.dump"), env=env)
    restored = baton("restore", str(tmp_path / "after.dump"), env=environment(target))
    assert "Restored" in restored.stderr

    async def rows(url: str) -> Summary:
        db = Database(url)
        try:
            return await summarize(db)
        finally:
            await db.close()

    original, copy = await rows(live), await rows(target)
    assert copy == original and original.rows["outbox"] > 0
    refused = baton("restore", str(tmp_path / "after.dump"), env=environment(target), check=False)
    assert refused.returncode != 0 and "--force" in refused.stderr
