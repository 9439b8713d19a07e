"""The migrations and the models describe the same schema, on both databases."""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from storage.db import Database
from storage.models import metadata


async def test_migrated_schema_matches_the_models(db: Database) -> None:
    def diff(connection):  # noqa: ANN001, ANN202
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, metadata)

    async with db.engine.connect() as conn:
        differences = await conn.run_sync(diff)
    assert differences == [], f"models and migrations differ; add a migration: {differences}"
    assert await db.schema_current()


async def test_migrating_again_is_a_no_op(db: Database) -> None:
    await db.migrate()
    assert await db.schema_current()
