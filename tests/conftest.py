"""Shared fixtures. Every test that takes `db` runs twice: on SQLite and on PostgreSQL.

PostgreSQL comes from BATON_TEST_DATABASE_URL (the Makefile points it at the
local server). Each run creates its own database and drops it at the end.
Unreachable PostgreSQL skips those tests locally and fails them in CI.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import socket
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from dialogs.engine.clock import FakeClock
from storage.db import Database, normalise_url
from storage.models import metadata
from tests.harness import SECRET, Chat, RecordingDelivery, Rig

# Servers the tests start (in process or as processes) seal with the same secret as the test rigs.
os.environ["BATON_SECRET_KEY"] = SECRET

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
ARTIFACTS = Path(__file__).parent.parent / "test-artifacts"


def _postgres_admin_url() -> str | None:
    raw = os.environ.get("BATON_TEST_DATABASE_URL")
    return normalise_url(raw) if raw else None


async def _create_pg_database(admin_url: str) -> str:
    import asyncpg

    url = make_url(admin_url)
    name = f"baton_test_{os.getpid()}_{secrets.token_hex(3)}"
    conn = await asyncpg.connect(
        user=url.username, password=url.password, host=url.host, port=url.port or 5432, database=url.database, timeout=5
    )
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return url.set(database=name).render_as_string(hide_password=False)


async def _drop_pg_database(admin_url: str, test_url: str) -> None:
    import asyncpg

    url, name = make_url(admin_url), make_url(test_url).database
    conn = await asyncpg.connect(
        user=url.username, password=url.password, host=url.host, port=url.port or 5432, database=url.database
    )
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def _migrate(url: str) -> None:
    db = Database(url)
    try:
        await db.migrate()
    finally:
        await db.close()


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated, empty database for this test session, on each backend."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'baton.db'}"
        asyncio.run(_migrate(url))
        yield url
        return
    admin = _postgres_admin_url()
    if admin is None:
        if IN_CI:
            pytest.fail("BATON_TEST_DATABASE_URL is not set: CI must run the suite against PostgreSQL")
        pytest.skip("BATON_TEST_DATABASE_URL is not set; PostgreSQL half of the suite skipped")
    try:
        url = asyncio.run(_create_pg_database(admin))
    except Exception as exc:  # noqa: BLE001 - asyncpg raises several unrelated kinds for an unreachable server
        if IN_CI:
            pytest.fail(
                f"PostgreSQL at {make_url(admin).render_as_string(hide_password=True)} is unreachable in CI: {exc!r}"
            )
        pytest.skip(f"PostgreSQL unreachable ({type(exc).__name__}); its half of the suite is skipped")
    asyncio.run(_migrate(url))
    yield url
    asyncio.run(_drop_pg_database(admin, url))


TABLES = [t.name for t in reversed(metadata.sorted_tables)]  # children before their parents
# One round trip names the tables a test left rows in: emptying only those is ~10x faster on PostgreSQL than
# a TRUNCATE of every table (160 ms a test, a minute and a half of the suite).
NON_EMPTY = " UNION ALL ".join(f"SELECT '{n}' WHERE EXISTS (SELECT 1 FROM \"{n}\")" for n in TABLES)


async def _truncate(db: Database) -> None:
    async with db.engine.begin() as conn:
        left = {row[0] for row in await conn.execute(text(NON_EMPTY))}
        for name in (n for n in TABLES if n in left):
            await conn.execute(text(f'DELETE FROM "{name}"'))
        if not db.is_sqlite:  # ids start at 1 again in every test, as after TRUNCATE … RESTART IDENTITY
            await conn.execute(
                text(
                    "SELECT setval(c.oid, 1, false) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE c.relkind = 'S' AND n.nspname = current_schema()"
                )
            )


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """The session's database, emptied after each test."""
    database = Database(database_url)
    try:
        yield database
    finally:
        await _truncate(database)
        await database.close()


@pytest.fixture
def clock() -> FakeClock:
    """Friday 2026-11-20 09:00 UTC, standing still until a test moves it."""
    return FakeClock(datetime(2026, 11, 20, 9, 0, tzinfo=UTC))


@pytest.fixture
async def rig(db: Database, clock: FakeClock) -> AsyncIterator[Rig]:
    """An engine, a sender and a recording channel over the test database, with the demo organisation."""
    rig = await Rig.create(db, clock)
    yield rig


@pytest.fixture
def chat(rig: Rig) -> Chat:
    """Chat as the demo manager (Maya)."""
    return rig.chat("maya@demo.baton")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


__all__ = ["ARTIFACTS", "IN_CI", "RecordingDelivery", "free_port"]


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
async def browser() -> AsyncIterator[object]:
    if CHROMIUM is None:
        if IN_CI:
            pytest.fail("Chromium is not installed; .ci/run installs Debian's chromium package")
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            yield browser
        finally:
            await browser.close()
