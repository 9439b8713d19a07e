"""Backups and restores of Baton's database, safe while Baton runs.

SQLite: SQLite's online backup API copies the database page by page into a
new file while Baton keeps writing (WAL mode); the copy is one consistent
moment and is checked (integrity and foreign keys) before it is kept.
PostgreSQL: `pg_dump --format=custom` (a consistent snapshot, taken without
stopping anyone) and `pg_restore`, which must be on PATH and not older than
the server.

A restore refuses to overwrite a database that holds data unless forced,
refuses a backup whose schema is newer than this Baton knows, and never
touches a SQLite database another process is writing to.

The backup holds sealed answers, not the secret that opens them: keep
BATON_SECRET_KEY (or the key file) separately — without it open anonymous
campaigns and kept deliveries cannot be read after a restore.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import Database


class BackupError(Exception):
    """A backup or restore could not be done; the message says what to do."""


@dataclass(frozen=True)
class Summary:
    """What a backup or a restored database holds: its schema revision and rows per table."""

    revision: str | None
    rows: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.rows.values())


def known_revisions() -> list[str]:
    """Every schema revision this Baton's migrations know, oldest first."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from storage.db import MIGRATIONS

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return [script.revision for script in reversed(list(ScriptDirectory.from_config(config).walk_revisions()))]


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL; None for other databases. In-memory databases cannot be backed up."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    if not parsed.database or parsed.database == ":memory:":
        raise BackupError("an in-memory database cannot be backed up or restored; set DATABASE_URL to a file")
    return Path(parsed.database)


# -- SQLite ----------------------------------------------------------------------------------------


def summarize_sqlite(path: Path) -> Summary:
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        return _summary(conn)


def _summary(conn: sqlite3.Connection) -> Summary:
    tables = [
        name
        for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
        )
    ]
    rows = {name: conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] for name in tables}
    revision = None
    if "alembic_version" in tables:
        found = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        revision = found[0] if found else None
    rows.pop("alembic_version", None)
    return Summary(revision, rows)


def backup_sqlite(source: Path, target: Path) -> Summary:
    """Copy the live database at `source` into `target` (a new file) and check the copy."""
    if not source.exists():
        raise BackupError(f"there is no database at {source}; check DATABASE_URL")
    if target.exists():
        raise BackupError(f"{target} exists already; choose a new file name (backups are never overwritten)")
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        with (
            contextlib.closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)) as src,
            contextlib.closing(sqlite3.connect(partial)) as dst,
        ):
            # In one step: a WAL reader sees one moment and never blocks Baton's writers (a copy in steps would
            # start over after every write by another process, and might never finish under traffic).
            src.backup(dst)
            dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no WAL beside it
            _check(dst, partial)
            summary = _summary(dst)
        os.chmod(partial, 0o600)  # sealed, but still people's data
        partial.replace(target)
    except sqlite3.Error as exc:
        partial.unlink(missing_ok=True)
        raise BackupError(f"the backup failed ({type(exc).__name__}: {exc}); nothing was written") from None
    except BackupError:
        partial.unlink(missing_ok=True)
        raise
    return summary


def _check(conn: sqlite3.Connection, path: Path) -> None:
    problems = [row[0] for row in conn.execute("PRAGMA integrity_check")]
    if problems != ["ok"]:
        raise BackupError(f"{path} is damaged ({problems[0]}); it cannot be used")
    if conn.execute("PRAGMA foreign_key_check").fetchone() is not None:
        raise BackupError(f"{path} has rows whose references are broken; it cannot be used")


def restore_sqlite(backup: Path, target: Path, *, force: bool) -> Summary:
    """Replace the database at `target` with the backup at `backup`."""
    if not backup.exists():
        raise BackupError(f"there is no backup at {backup}")
    try:
        with contextlib.closing(sqlite3.connect(f"file:{backup}?mode=ro", uri=True)) as conn:
            _check(conn, backup)
            summary = _summary(conn)
    except sqlite3.DatabaseError:
        raise BackupError(f"{backup} is not a Baton SQLite backup") from None
    _check_revision(summary.revision, backup)
    if target.exists():
        current = summarize_sqlite(target)
        if current.total and not force:
            raise BackupError(
                f"{target} holds {current.total} rows; restoring would replace them. Stop Baton, keep a "
                "backup of it first (baton backup FILE), then run restore again with --force"
            )
    if _open_elsewhere(target):
        raise BackupError(f"{target} is open in another process; stop Baton and any baton command first")
    target.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.closing(sqlite3.connect(target, timeout=1)) as dst:
        try:
            dst.execute("BEGIN EXCLUSIVE")  # refuses while anyone reads or writes it: a running Baton
            dst.execute("ROLLBACK")
        except sqlite3.OperationalError:
            raise BackupError(f"{target} is in use; stop Baton (and any baton command) before restoring") from None
        with contextlib.closing(sqlite3.connect(f"file:{backup}?mode=ro", uri=True)) as src:
            src.backup(dst)
        dst.execute("PRAGMA journal_mode=WAL")
    return summarize_sqlite(target)


def _open_elsewhere(database: Path) -> bool:
    """Whether another process has `database` open in WAL mode, idle or not.

    Every such connection holds a shared lock on one byte of the -shm file (SQLite's "dead man switch",
    byte 128 on Unix) for as long as it is open; SQLite itself tests it to learn whether it is the last.
    """
    shm = Path(f"{database}-shm")
    if not shm.exists():
        return False
    with open(shm, "rb+") as handle:
        try:
            fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 128)
        except OSError:
            return True
        fcntl.lockf(handle, fcntl.LOCK_UN, 1, 128)
    return False


def _check_revision(revision: str | None, where: object) -> None:
    known = known_revisions()
    if revision is None:
        raise BackupError(f"{where} has no schema version; it is not a Baton database backup")
    if revision not in known:
        raise BackupError(
            f"{where} was made by a newer Baton (schema {revision}); upgrade this Baton before restoring it"
        )


# -- PostgreSQL ------------------------------------------------------------------------------------


def _libpq_url(url: str) -> str:
    """A URL pg_dump understands (no SQLAlchemy driver name)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(
            f"{name} is not on PATH. Install the PostgreSQL client tools of your server's major version "
            f"(Debian/Ubuntu: apt install postgresql-client) or run {name} from the server's own image"
        )
    return found


def _run(command: list[str], what: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        detail = re.sub(
            r"postgres(ql)?://\S+", "<database>", done.stderr.strip().splitlines()[-1] if done.stderr else ""
        )
        raise BackupError(f"{what} failed: {detail or 'exit status ' + str(done.returncode)}")
    return done


def backup_postgres(url: str, target: Path) -> None:
    if target.exists():
        raise BackupError(f"{target} exists already; choose a new file name (backups are never overwritten)")
    partial = target.with_name(target.name + ".partial")
    try:
        _run([_tool("pg_dump"), "--format=custom", "--no-owner", f"--file={partial}", _libpq_url(url)], "pg_dump")
        os.chmod(partial, 0o600)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)


def dump_revision(backup: Path) -> str | None:
    """The schema revision inside a pg_dump custom-format file (read with pg_restore, not restored)."""
    if not backup.exists():
        raise BackupError(f"there is no backup at {backup}")
    done = _run(
        [_tool("pg_restore"), "--data-only", "--table=alembic_version", "--file=-", str(backup)],
        f"reading {backup} (is it a Baton PostgreSQL backup made with baton backup?)",
    )
    rows = done.stdout.split("COPY public.alembic_version", 1)
    if len(rows) < 2:
        return None
    data = rows[1].split("\n", 1)[1].split("\\.", 1)[0].strip()
    return data.splitlines()[0].strip() if data else None


def restore_postgres(url: str, backup: Path, *, current: Summary, connected: int, force: bool) -> None:
    """Replace the schema and data of the database at `url` with the dump.

    `current`: what the database holds now; `connected`: other sessions on it (running replicas).
    """
    _check_revision(dump_revision(backup), backup)
    if connected:
        raise BackupError(f"{connected} other sessions are connected to this database; stop every Baton replica first")
    if current.total and not force:
        raise BackupError(
            f"the database holds {current.total} rows; restoring would replace them. Back it up first "
            "(baton backup FILE), then run restore again with --force"
        )
    _run(
        [
            _tool("pg_restore"),
            "--clean",
            "--if-exists",
            "--no-owner",
            "--single-transaction",
            "--exit-on-error",
            f"--dbname={_libpq_url(url)}",
            str(backup),
        ],
        "pg_restore",
    )


# -- both ------------------------------------------------------------------------------------------


async def summarize(db: Database) -> Summary:
    """Schema revision and rows per table of an open database (read only)."""

    async def read(session: AsyncSession) -> Summary:
        names = await session.run_sync(lambda sync: inspect(sync.connection()).get_table_names())
        rows = {name: int(await session.scalar(text(f'SELECT count(*) FROM "{name}"')) or 0) for name in names}
        revision = None
        if "alembic_version" in rows:
            revision = await session.scalar(text("SELECT version_num FROM alembic_version"))
            rows.pop("alembic_version")
        return Summary(revision, dict(sorted(rows.items())))

    return await db.run(read)


async def other_sessions(db: Database) -> int:
    """PostgreSQL: sessions on this database besides ours (a running replica shows up here)."""
    if db.is_sqlite:
        return 0
    query = text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
    return int(await db.run(lambda session: session.scalar(query)) or 0)
