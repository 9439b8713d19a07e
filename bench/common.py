"""Helpers shared by the benchmarks."""
from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Any


async def scratch_postgres(admin_url: str, run: Callable[[str], Awaitable[dict[str, Any]]], *, tag: str = "bench") -> dict[str, Any]:
    """Run `run(url)` on a PostgreSQL database created for it and dropped afterwards.

    An unreachable server is reported in the result rather than failing the whole run.
    """
    import asyncpg
    from sqlalchemy.engine import make_url

    from storage.db import normalise_url

    url = make_url(normalise_url(admin_url))
    name = f"baton_{tag}_{os.getpid()}"
    connect = dict(user=url.username, password=url.password, host=url.host, port=url.port or 5432, database=url.database)
    try:
        conn = await asyncpg.connect(**connect, timeout=5)
    except Exception as exc:
        return {"skipped": f"PostgreSQL unreachable ({type(exc).__name__})"}
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
        try:
            return await run(url.set(database=name).render_as_string(hide_password=False))
        finally:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
