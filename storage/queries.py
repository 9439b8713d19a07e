"""Queries shared by the engine, the adapters and the command line."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel

from storage.models import Identity, OutboxMessage, Person, ProcessedEvent

MAX_ID = 2**63 - 1  # BIGINT: a larger number is no row, and would overflow the driver


def as_int(raw: object, low: int, high: int) -> int | None:
    """A whole number typed, clicked or posted, in [low, high]: an int, or ASCII digits ("①" and "²" are
    digits to Python, not to int()); None for anything else, however long."""
    if isinstance(raw, str):
        raw = raw.strip()
        if not (raw.isascii() and raw.isdigit()) or len(raw) > 19:
            return None
        raw = int(raw)
    if not isinstance(raw, int) or isinstance(raw, bool):
        return None
    return raw if low <= raw <= high else None


def as_id(raw: object) -> int | None:
    """A row id: a whole number from 1 to BIGINT's largest; else None."""
    return as_int(raw, 1, MAX_ID)


async def insert_ignore(session: AsyncSession, model: type[SQLModel], **values: Any) -> Any:
    """Insert one row unless a unique key already holds it. Returns the new row's primary key, or None.

    This is the primitive behind exactly-once: two writers racing on the same
    key both call it, and exactly one gets a key back.
    """
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    table = model.__table__  # type: ignore[attr-defined]
    pk = next(iter(table.primary_key.columns))
    statement = insert(table).values(**values).on_conflict_do_nothing().returning(pk)
    row = (await session.execute(statement)).first()
    return None if row is None else row[0]


async def insert_ignore_many(
    session: AsyncSession, model: type[SQLModel], rows: list[dict[str, Any]], *returning: str
) -> list[Any]:
    """Insert many rows in one statement, skipping those whose unique key is taken; the inserted rows' `returning` columns.

    The batch form of `insert_ignore`: rows that lost to an earlier writer are
    simply absent from the result (match them by a unique column you return).
    """
    if not rows:
        return []
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    table = model.__table__  # type: ignore[attr-defined]
    # Parameters as a list, not .values(rows): SQLAlchemy compiles the statement once and batches the rows
    # itself ("insertmanyvalues"), where a multi-row VALUES clause would be compiled anew for every size.
    statement = insert(table).on_conflict_do_nothing()
    if not returning:
        await session.execute(statement, rows)
        return []
    return list(await session.execute(statement.returning(*(table.c[name] for name in returning)), rows))


async def upsert(session: AsyncSession, model: type[SQLModel], key: dict[str, Any], values: dict[str, Any]) -> None:
    """Insert the row with unique `key`, or overwrite `values` on the one already there — one statement, no read."""
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    await session.execute(_upsert_statement(dialect, model, tuple(key), tuple(values)), {**key, **values})


@functools.lru_cache(maxsize=64)
def _upsert_statement(dialect: str, model: type[SQLModel], key: tuple[str, ...], values: tuple[str, ...]) -> Any:
    """One statement object per shape, so SQLAlchemy compiles it once and reuses it."""
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(model.__table__)  # type: ignore[attr-defined]
    return statement.on_conflict_do_update(
        index_elements=list(key), set_={name: statement.excluded[name] for name in values}
    )


async def mark_event_processed(session: AsyncSession, key: str, now: datetime) -> bool:
    """Record an inbound delivery key; False when it was processed before."""
    return await insert_ignore(session, ProcessedEvent, key=key[:255], created_at=now) is not None


async def mark_events_processed(session: AsyncSession, keys: list[str], now: datetime) -> set[str]:
    """Record many inbound delivery keys at once; the set of those not processed before."""
    rows = [{"key": key[:255], "created_at": now} for key in keys]
    return {row.key for row in await insert_ignore_many(session, ProcessedEvent, rows, "key")}


async def event_processed(session: AsyncSession, key: str) -> bool:
    """Whether an inbound delivery key was recorded already."""
    found = await session.scalar(select(ProcessedEvent.key).where(ProcessedEvent.key == key[:255]))
    return found is not None


async def person_by_email(session: AsyncSession, email: str) -> Person | None:
    result = await session.execute(select(Person).where(Person.email == email.strip().lower()))
    return result.scalars().first()


async def person_by_id(session: AsyncSession, person_id: int) -> Person | None:
    return await session.get(Person, person_id)


async def managers_among(session: AsyncSession, person_ids: list[int]) -> set[int]:
    """Those of `person_ids` whom someone reports to."""
    statement = select(Person.manager_id).where(Person.manager_id.in_(person_ids)).distinct()
    return {manager_id for manager_id in await session.scalars(statement) if manager_id is not None}


async def reports_of(session: AsyncSession, manager_id: int) -> list[Person]:
    result = await session.execute(
        select(Person).where(Person.manager_id == manager_id, Person.active.is_(True)).order_by(Person.name)
    )
    return list(result.scalars())


async def resolve_sender(session: AsyncSession, platform: str, user_id: str, email: str | None) -> Person | None:
    """The person behind a platform account, or None when Baton does not know them.

    `local` senders are person ids (the local chat and terminal pick a person);
    other platforms are looked up by identity, then by email, linking the
    identity on first sight.
    """
    if platform == "local":
        person_id = as_id(user_id)
        return await session.get(Person, person_id) if person_id is not None else None
    result = await session.execute(
        select(Person)
        .join(Identity, Identity.person_id == Person.id)
        .where(Identity.platform == platform, Identity.external_id == user_id)
    )
    person = result.scalars().first()
    if person is None and email:
        person = await person_by_email(session, email)
    return person


async def sender_ids(session: AsyncSession, senders: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """The people behind many platform accounts at once (linked identities only; `local` ids are person ids)."""
    found: dict[tuple[str, str], int] = {}
    local = [number for platform, user in senders if platform == "local" and (number := as_id(user)) is not None]
    if local:
        rows = await session.scalars(select(Person.id).where(Person.id.in_(local)))
        found.update((("local", str(person_id)), person_id) for person_id in rows)
    by_platform: dict[str, list[str]] = {}
    for platform, user in senders:
        if platform != "local":
            by_platform.setdefault(platform, []).append(user)
    for platform, users in by_platform.items():
        statement = select(Identity.external_id, Identity.person_id).where(
            Identity.platform == platform, Identity.external_id.in_(users)
        )
        found.update(
            ((platform, external_id), person_id) for external_id, person_id in await session.execute(statement)
        )
    return found


async def preferred_address(session: AsyncSession, person_id: int) -> tuple[str, dict[str, Any]]:
    """Where to reach a person on Baton's own initiative: their latest platform, else the local chat."""
    return (await preferred_addresses(session, {person_id})).get(person_id, ("local", {}))


async def preferred_addresses(session: AsyncSession, person_ids: set[int]) -> dict[int, tuple[str, dict[str, Any]]]:
    """Each person's latest platform identity, in one query; people without one use the local chat."""
    if not person_ids:
        return {}
    statement = select(Identity.person_id, Identity.platform, Identity.address, Identity.updated_at)
    if len(person_ids) <= 500:  # beyond that, one pass over the table beats a huge IN list
        statement = statement.where(Identity.person_id.in_(person_ids))
    best: dict[int, tuple[datetime, str, dict[str, Any]]] = {}
    for person_id, platform, address, updated_at in await session.execute(statement):
        if person_id not in person_ids:
            continue
        if person_id not in best or updated_at > best[person_id][0]:
            best[person_id] = (updated_at, platform, dict(address))
    return {person_id: (platform, address) for person_id, (_, platform, address) in best.items()}


async def enqueue(
    session: AsyncSession,
    *,
    key: str,
    person_id: int | None,
    channel: str,
    address: dict[str, Any],
    payload: dict[str, Any],
    due_at: datetime,
    now: datetime,
    kind: str = "reply",
    unsolicited: bool = False,
    claimed_until: datetime | None = None,
) -> int | None:
    """Queue one message under an idempotency key; its id, or None when that key was queued before.

    With `claimed_until`, the row is born claimed (status "sending") for a sender
    that delivers it right after the transaction commits.
    """
    return await insert_ignore(
        session,
        OutboxMessage,
        key=key[:255],
        person_id=person_id,
        channel=channel,
        address=address,
        payload=payload,
        kind=kind,
        unsolicited=unsolicited,
        due_at=due_at,
        status="pending" if claimed_until is None else "sending",
        attempts=0 if claimed_until is None else 1,
        claimed_until=claimed_until,
        created_at=now,
    )


async def upsert_identity(
    session: AsyncSession, *, person_id: int, platform: str, external_id: str, address: dict[str, Any], now: datetime
) -> None:
    """Link a platform account to a person and remember how to reach them there (refreshing `address`)."""
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(Identity).values(
        person_id=person_id, platform=platform, external_id=external_id[:255], address=address, updated_at=now
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["platform", "external_id"],
            set_={"person_id": person_id, "address": address, "updated_at": now},
        )
    )


async def ensure_person(
    session: AsyncSession, *, email: str, name: str, timezone: str | None, locale: str | None, now: datetime
) -> Person:
    """The person with `email`, created if Baton has never seen them (platform sign-up of unknown users).

    An existing person's time zone and locale are refreshed from the platform
    when it reports them; name and reporting line are left to the org import.
    """
    email = email.strip().lower()
    await insert_ignore(
        session,
        Person,
        email=email,
        name=name[:200] or email,
        timezone=timezone or "UTC",
        locale=(locale or "en")[:16],
        is_admin=False,
        quiet_start="20:00",
        quiet_end="08:00",
        active=True,
        created_at=now,
    )
    person = await person_by_email(session, email)
    assert person is not None
    if timezone and person.timezone != timezone:
        person.timezone = timezone
    if locale and person.locale != locale[:16]:
        person.locale = locale[:16]
    return person
