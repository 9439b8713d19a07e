"""Helpers shared by the benchmarks."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any


async def on_both_databases(
    args: Any, measure: Callable[[str], Awaitable[dict[str, Any]]], *, tag: str, postgres: bool = True
) -> dict[str, Any]:
    """`measure(url)` on a fresh SQLite file, then on a scratch PostgreSQL database when one is configured
    (`--postgres`, else BATON_TEST_DATABASE_URL): {"sqlite": ..., "postgresql": ...}."""
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        results["sqlite"] = await measure(f"sqlite+aiosqlite:///{tmp}/bench.db")
    admin = getattr(args, "postgres", None) or os.environ.get("BATON_TEST_DATABASE_URL")
    if admin and postgres:
        results["postgresql"] = await scratch_postgres(admin, measure, tag=tag)
    return results


async def scratch_postgres(
    admin_url: str, run: Callable[[str], Awaitable[dict[str, Any]]], *, tag: str = "bench"
) -> dict[str, Any]:
    """Run `run(url)` on a PostgreSQL database created for it and dropped afterwards.

    An unreachable server is reported in the result rather than failing the whole run.
    """
    import asyncpg
    from sqlalchemy.engine import make_url

    from storage.db import normalise_url

    url = make_url(normalise_url(admin_url))
    name = f"baton_{tag}_{os.getpid()}"
    connect = dict(
        user=url.username, password=url.password, host=url.host, port=url.port or 5432, database=url.database
    )
    try:
        conn = await asyncpg.connect(**connect, timeout=5)
    except Exception as exc:  # noqa: BLE001 - any connection failure means the PostgreSQL rows are skipped
        return {"skipped": f"PostgreSQL unreachable ({type(exc).__name__})"}
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
        try:
            return await run(url.set(database=name).render_as_string(hide_password=False))
        finally:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def seed_people(
    session: Any, people: int, now: datetime, *, timezone: str = "Europe/Berlin"
) -> tuple[int, list[int]]:
    """One team "Bench" and `people` people in it (p{n}@bench.baton), inserted 2,000 at a time: (team id, person ids)."""
    from sqlalchemy import insert, text

    from storage.models import Person, Team

    await session.execute(insert(Team).values(name="Bench", created_at=now))
    team = await session.scalar(text("SELECT id FROM team"))
    for start in range(0, people, 2000):
        await session.execute(
            insert(Person),
            [
                {
                    "email": f"p{n}@bench.baton",
                    "name": f"Person {n}",
                    "timezone": timezone,
                    "team_id": team,
                    "created_at": now,
                }
                for n in range(start, min(people, start + 2000))
            ],
        )
    return team, [row[0] for row in await session.execute(text("SELECT id FROM person ORDER BY id"))]
