"""The migrations and the models describe the same schema, on both databases."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from storage.db import Database
from storage.models import metadata


async def test_migrated_schema_matches_the_models(db: Database) -> None:
    def diff(connection):
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, metadata)

    async with db.engine.connect() as conn:
        differences = await conn.run_sync(diff)
    assert differences == [], f"models and migrations differ; add a migration: {differences}"
    assert await db.schema_current()


async def test_migrating_again_is_a_no_op(db: Database) -> None:
    await db.migrate()
    assert await db.schema_current()


async def test_every_migration_upgrades_a_database_that_holds_data(database_url: str, tmp_path) -> None:
    """Start at the first revision, fill it as a running Baton would, then upgrade to the newest."""
    from datetime import UTC, datetime

    from sqlalchemy import text

    if "sqlite" in database_url:
        url = f"sqlite+aiosqlite:///{tmp_path}/old.db"
        old = Database(url)
    else:
        from tests.conftest import _create_pg_database, _drop_pg_database, _postgres_admin_url

        admin = _postgres_admin_url()
        url = await _create_pg_database(admin)
        old = Database(url)
    try:
        await old.migrate("0001")
        now = datetime(2026, 11, 20, tzinfo=UTC)
        async with old.engine.begin() as conn:
            await conn.execute(
                text("INSERT INTO team (id, name, created_at) VALUES (1, 'Platform', :now)"), {"now": now}
            )
            await conn.execute(
                text(
                    "INSERT INTO person (id, email, name, timezone, locale, team_id, manager_id, is_admin, quiet_start, quiet_end, active, created_at) "
                    "VALUES (1, 'm@x.org', 'M', 'UTC', 'en', 1, NULL, false, '20:00', '08:00', true, :now), "
                    "(2, 'p@x.org', 'P', 'UTC', 'en', 1, 1, false, '20:00', '08:00', true, :now)"
                ),
                {"now": now},
            )
            await conn.execute(
                text(
                    "INSERT INTO outbox (key, person_id, channel, address, payload, kind, unsolicited, due_at, status, attempts, created_at) "
                    "VALUES ('k', 2, 'local', '{}', '{\"text\": \"hi\"}', 'reply', false, :now, 'sent', 1, :now)"
                ),
                {"now": now},
            )
        await old.migrate()
        assert await old.schema_current()
        async with old.engine.connect() as conn:
            rows = (await conn.execute(text("SELECT email, team_id, manager_id FROM person ORDER BY id"))).all()
            team = (await conn.execute(text("SELECT checkin_weekday, checkin_time FROM team"))).one()
        assert [tuple(r) for r in rows] == [("m@x.org", 1, None), ("p@x.org", 1, 1)]
        assert tuple(team) == (4, "16:00")  # new columns filled with their defaults
    finally:
        await old.close()
        if "sqlite" not in database_url:
            await _drop_pg_database(admin, url)


def test_contributors_can_run_alembic_from_the_repository(tmp_path: Path) -> None:
    """`alembic upgrade head` at the repository root migrates DATABASE_URL to what Baton expects."""
    import os
    import subprocess
    import sys

    root = Path(__file__).parent.parent
    alembic = Path(sys.executable).parent / "alembic"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'dev.db'}"}
    for args in (["upgrade", "head"], ["current"]):
        done = subprocess.run([str(alembic), *args], cwd=root, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    assert "(head)" in done.stdout

    async def current() -> bool:
        db = Database(env["DATABASE_URL"])
        try:
            return await db.schema_current()
        finally:
            await db.close()

    assert asyncio.run(current())
