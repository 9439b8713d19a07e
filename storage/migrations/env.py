"""Alembic environment. Baton runs migrations itself (`Database.migrate`) on a shared connection.

Run by the `alembic` command instead (alembic.ini at the repository root, for contributors), it opens
DATABASE_URL itself — the same variable Baton reads, with the same default file.
"""

import asyncio
import os

from alembic import context
from sqlalchemy.engine import Connection

from storage.models import metadata

DEFAULT_URL = "sqlite:///./baton.db"  # bot/config.py's default, for `alembic` run from the repository root


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_on_own_engine(url: str) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    from storage.db import normalise_url

    engine = create_async_engine(normalise_url(url), poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(run)
    finally:
        await engine.dispose()


connection = context.config.attributes.get("connection")
if connection is not None:
    run(connection)
else:
    asyncio.run(run_on_own_engine(os.environ.get("DATABASE_URL", DEFAULT_URL)))
