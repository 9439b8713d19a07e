"""Persistence: sqlmodel tables, Alembic migrations and the queries the rest of Baton needs.

Everything here is async (SQLAlchemy's asyncio extension over aiosqlite or asyncpg).
"""

from storage.db import Database, DatabaseUnavailable, normalise_url

__all__ = ["Database", "DatabaseUnavailable", "normalise_url"]
