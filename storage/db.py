"""The database handle: engine, transactions with retry, and migrations at start."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

from storage.writer import WriterQueue

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.engine import Connection

log = logging.getLogger(__name__)
T = TypeVar("T")

MIGRATIONS = Path(__file__).parent / "migrations"
# Loggers that print SQL statements with their parameters at DEBUG/INFO — which would put feedback,
# answers and gap descriptions into the logs. Capped whenever Baton opens a database, whatever the
# log level asked for.
LEAKY_LOGGERS = ("aiosqlite", "sqlalchemy.engine", "sqlalchemy.pool", "asyncpg")
MIGRATION_LOCK = 0x42A70E  # an arbitrary, fixed advisory-lock key for schema changes


class DatabaseUnavailable(Exception):
    """The database could not be reached or kept failing after retries."""


class Conflict(Exception):
    """Another writer changed the row first; the whole transaction is retried."""


def normalise_url(url: str) -> str:
    """Return an async SQLAlchemy URL for `url`, or raise ValueError saying what is accepted.

    Accepts `sqlite:///file`, `sqlite+aiosqlite:///file`, `postgresql://…`,
    `postgres://…` and `postgresql+asyncpg://…`.
    """
    try:
        parsed = make_url(url)
    except Exception as exc:  # sqlalchemy raises ArgumentError with the raw URL
        raise ValueError(
            "is not a database URL (expected e.g. sqlite:///baton.db or postgresql://user@host/db)"
        ) from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite").render_as_string(hide_password=False)
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    raise ValueError(f"uses '{backend}', but Baton supports only sqlite and postgresql")


def _transient(exc: BaseException) -> bool:
    """Errors worth retrying: a dropped connection, a busy SQLite file, a serialization failure."""
    if isinstance(exc, Conflict):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        message = str(exc.orig).lower() if exc.orig is not None else ""
        return any(
            marker in message
            for marker in ("database is locked", "connection", "could not serialize", "deadlock", "terminating")
        )
    return isinstance(exc, (ConnectionError, OSError, asyncio.TimeoutError))


class Database:
    """One engine and its sessions. Create once per process; `close()` at exit."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        for name in LEAKY_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
        self.url = normalise_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        if self.is_sqlite:
            self.engine: AsyncEngine = create_async_engine(self.url, connect_args={"timeout": 30})
            _sqlite_pragmas(self.engine)
        else:
            self.engine = create_async_engine(
                self.url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, pool_recycle=1800
            )
        self._writer = WriterQueue() if self.is_sqlite else None
        # Told "retried" for each transient error run again and "unavailable" when the retries ran out (metrics).
        self.on_error: Callable[[str], None] = lambda kind: None
        self._sessions = async_sessionmaker(self.engine, class_=AsyncSession, expire_on_commit=False)

    @property
    def safe_url(self) -> str:
        """The URL with any password masked, for messages and logs."""
        return make_url(self.url).render_as_string(hide_password=True)

    @asynccontextmanager
    async def session(self, *, urgent: bool = False) -> AsyncIterator[AsyncSession]:
        """A session whose transaction commits when the block ends and rolls back on error.

        On SQLite, transactions take turns in this process (storage/writer.py); `urgent` ones go first.
        Never open one session inside another: on SQLite the inner one would wait for the outer forever.
        """
        if self._writer is None:
            async with self._sessions() as session, session.begin():
                yield session
            return
        async with self._writer.turn(urgent=urgent), self._sessions() as session, session.begin():
            yield session

    async def run(self, work: Callable[[AsyncSession], Awaitable[T]], *, attempts: int = 4, urgent: bool = False) -> T:
        """Run `work` in one transaction, retrying the whole of it on transient errors.

        `work` must be safe to run again from the start: everything it wrote is
        rolled back before a retry. Raises DatabaseUnavailable when the retries
        are used up; other exceptions pass through untouched. `urgent` work is
        something a platform is waiting for (an acknowledgement): on SQLite it
        goes ahead of the transactions queued in this process.
        """
        for attempt in range(1, attempts + 1):
            try:
                return await self._attempt(work, urgent)
            except Exception as exc:
                if not _transient(exc):
                    raise
                if attempt == attempts:
                    self.on_error("unavailable")
                    raise DatabaseUnavailable(type(exc).__name__) from exc
                self.on_error("retried")
                log.warning("transient database error (%s), retrying %d/%d", type(exc).__name__, attempt, attempts - 1)
                await asyncio.sleep(min(0.05 * 2**attempt, 1.0) * (0.5 + random.random()))
        raise AssertionError("unreachable")

    async def _attempt(self, work: Callable[[AsyncSession], Awaitable[T]], urgent: bool) -> T:
        if self._writer is None:
            async with self.session() as session:
                return await work(session)
        async with self._writer.turn(urgent=urgent):  # waiting for the turn can be cancelled; the rest cannot

            async def transaction() -> T:
                async with self._sessions() as session, session.begin():
                    return await work(session)

            return await to_the_end(transaction())

    async def ping(self) -> None:
        """Raise if the database does not answer a trivial query."""

        async def select_one() -> None:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))

        await (to_the_end(select_one()) if self.is_sqlite else select_one())

    async def migrate(self, revision: str = "head") -> None:
        """Bring the schema to `revision` (the newest by default), in one transaction where the backend allows.

        Replicas starting together queue on an advisory lock (PostgreSQL), or on
        SQLite's write lock, so only the first one migrates.
        """
        if self.is_sqlite:
            await self._migrate_sqlite(revision)
            return
        async with self.engine.begin() as conn:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            await conn.run_sync(_upgrade, revision)

    async def _migrate_sqlite(self, revision: str) -> None:
        """SQLite alters a table by rebuilding it (copy, drop, rename), which enforced foreign keys
        forbid while other rows point at it. So migrations run on their own connection with foreign
        keys off — the pragma only takes effect outside a transaction — and are checked afterwards."""
        engine = create_async_engine(self.url, connect_args={"timeout": 30}, poolclass=NullPool)
        _sqlite_pragmas(engine, foreign_keys=False)
        try:
            async with engine.begin() as conn:
                await conn.run_sync(_upgrade, revision)
                broken = (await conn.exec_driver_sql("PRAGMA foreign_key_check")).fetchall()
                if broken:
                    raise RuntimeError(f"migration left {len(broken)} rows with broken references; rolled back")
        finally:
            await engine.dispose()

    async def schema_current(self) -> bool:
        """True when the database is at the newest migration."""

        async def current() -> bool:
            async with self.engine.connect() as conn:
                return await conn.run_sync(_is_current)

        return await (to_the_end(current()) if self.is_sqlite else current())

    async def checkpoint(self) -> None:
        """SQLite: copy the WAL into the main file and truncate it, so old page images do not linger there.

        Best effort: a checkpoint that readers block is logged and left to SQLite's own next one.
        PostgreSQL manages its WAL itself; nothing to do.
        """
        if not self.is_sqlite:
            return

        async def truncate_wal() -> int:
            async with self.engine.connect() as conn:
                # On the driver's own connection: SQLAlchemy's would open a transaction (BEGIN IMMEDIATE, below),
                # and SQLite refuses to checkpoint inside one.
                raw = await conn.get_raw_connection()
                cursor = await raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                busy, _, _ = await cursor.fetchone()
                return int(busy)

        try:
            busy = await to_the_end(truncate_wal())  # a TRUNCATE checkpoint holds the write lock while it runs
        except sqlite3.Error as exc:
            log.warning("WAL checkpoint failed (%s)", type(exc).__name__)
            return
        if busy:
            log.info("WAL checkpoint could not finish while readers were active; SQLite will complete it later")

    async def close(self) -> None:
        await self.engine.dispose()


async def to_the_end(work: Awaitable[T]) -> T:
    """Run `work` (one SQLite transaction) to its end even if the caller is cancelled meanwhile.

    A cancel that lands while aiosqlite runs a statement leaves that connection holding the file's write
    lock, even after the engine is closed: every later writer then waits out the busy timeout and fails
    ("database is locked"; tests/test_writer.py). So the transaction finishes — commits, or rolls back on
    its own error — and only then does the caller get its CancelledError. PostgreSQL needs none of this:
    asyncpg cancels the query and the server ends the transaction with the connection.
    """
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        while not task.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait({task})
        if not task.cancelled():
            task.exception()  # retrieved: the caller was cancelled, so nobody else will look at it
        raise


def _sqlite_pragmas(engine: AsyncEngine, *, foreign_keys: bool = True) -> None:
    """WAL for concurrent readers, enforced foreign keys (off only for migrations), and BEGIN IMMEDIATE.

    pysqlite opens transactions lazily and as readers, so two writers can
    deadlock upgrading their locks; taking the write lock at BEGIN makes SQLite
    queue them instead (busy timeout) — the documented SQLAlchemy recipe.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # noqa: ANN001 - SQLAlchemy hook
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        # Deleted content is overwritten with zeros, not left in free pages (set here, not left to the build).
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn) -> None:  # noqa: ANN001 - SQLAlchemy hook
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _alembic_config(connection: Connection) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def _upgrade(connection, revision: str = "head") -> None:  # noqa: ANN001
    from alembic import command

    command.upgrade(_alembic_config(connection), revision)


def _is_current(connection) -> bool:  # noqa: ANN001
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    heads = set(ScriptDirectory.from_config(_alembic_config(connection)).get_heads())
    return set(MigrationContext.configure(connection).get_current_heads()) == heads
