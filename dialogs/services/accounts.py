"""Platform accounts → people: the linking every platform adapter shares.

An adapter knows how to ask its platform who someone is (Slack's users.info
and users.list, the Bot Connector's member lookup). What Baton does with the
answer is the same on every platform and lives here: find the account's
identity, link it to the person with that email, make a new person when the
organisation allows it, and remember how to reach them (`address`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage import queries
from storage.db import Database
from storage.models import Identity, Person, Team


@dataclass(frozen=True, slots=True)
class Account:
    """What a platform says about one of its users, reduced to what Baton stores."""

    platform: str
    external_id: str
    email: str | None
    name: str
    timezone: str | None = None
    locale: str | None = None
    address: dict[str, Any] = field(default_factory=dict)  # how to reach them there (a DM, a reference)


async def people_of(db: Database, platform: str, external_ids: list[str]) -> dict[str, int]:
    """The people already linked to these accounts (unlinked ones are absent), in one query."""

    async def query(session: AsyncSession) -> dict[str, int]:
        found = await queries.sender_ids(session, [(platform, external_id) for external_id in external_ids])
        return {external_id: person_id for (_, external_id), person_id in found.items()}

    return await db.run(query)


async def link(db: Database, account: Account, *, now: datetime, add_unknown: bool) -> int | None:
    """Link `account` to the person with its email, creating that person when `add_unknown`.

    Returns the person's id, or None when the account has no email or its
    email belongs to nobody and new people may not be added. The person's
    time zone and locale are refreshed from what the platform reports.
    """
    email = account.email
    if not email:
        return None

    async def write(session: AsyncSession) -> int | None:
        if not add_unknown and await queries.person_by_email(session, email) is None:
            return None
        person = await queries.ensure_person(
            session,
            email=email,
            name=account.name or email,
            timezone=account.timezone,
            locale=account.locale,
            now=now,
        )
        await session.flush()
        assert person.id is not None
        await queries.upsert_identity(
            session,
            person_id=person.id,
            platform=account.platform,
            external_id=account.external_id,
            address=account.address,
            now=now,
        )
        return person.id

    return await db.run(write)


async def link_known(db: Database, accounts: list[Account], *, now: datetime) -> int:
    """Link every account whose email belongs to a person; returns how many identities were added.

    Only links: nobody is created, and accounts linked already are left as
    they are (so a directory sync can run again and again).
    """
    by_email = {account.email: account for account in accounts if account.email}
    if not by_email:
        return 0

    async def write(session: AsyncSession) -> int:
        people = await session.execute(select(Person.id, Person.email).where(Person.email.in_(list(by_email))))
        added = 0
        for person_id, email in people:
            account = by_email[email]
            new = await queries.insert_ignore(
                session,
                Identity,
                person_id=person_id,
                platform=account.platform,
                external_id=account.external_id,
                address=account.address,
                updated_at=now,
            )
            added += new is not None
        return added

    return await db.run(write)


async def known(
    db: Database,
    account: Account,
    *,
    now: datetime,
    stale: Callable[[dict[str, Any]], bool],
    refresh: bool = False,
) -> int | None:
    """The person linked to `account`, or None; rewrites the stored address when `stale(stored)` says so.

    `refresh` (an installation, say) rewrites the address whatever it was and
    applies the time zone the platform reports.
    """

    async def read(session: AsyncSession) -> int | None:
        row = (
            await session.execute(
                select(Identity.person_id, Identity.address).where(
                    Identity.platform == account.platform, Identity.external_id == account.external_id
                )
            )
        ).first()
        if row is None:
            return None
        person_id: int = row.person_id
        if refresh or stale(row.address or {}):
            await queries.upsert_identity(
                session,
                person_id=person_id,
                platform=account.platform,
                external_id=account.external_id,
                address=account.address,
                now=now,
            )
        if refresh and account.timezone:
            await session.execute(
                update(Person)
                .where(Person.id == person_id, Person.timezone != account.timezone)
                .values(timezone=account.timezone)
            )
        return person_id

    return await db.run(read)


async def roster(db: Database) -> list[dict[str, Any]]:
    """Everyone active, by name, with their role and team: whom the local web chat lets you talk as."""

    async def query(session: AsyncSession) -> list[dict[str, Any]]:
        rows = await session.execute(
            select(Person, Team.name)
            .outerjoin(Team, Team.id == Person.team_id)
            .where(Person.active.is_(True))
            .order_by(Person.name)
        )
        managers = set(
            (await session.execute(select(Person.manager_id).where(Person.manager_id.is_not(None)))).scalars()
        )
        return [
            {
                "id": person.id,
                "email": person.email,
                "name": person.name,
                "role": "admin" if person.is_admin else "manager" if person.id in managers else "performer",
                "team": team,
                "timezone": person.timezone,
            }
            for person, team in rows
        ]

    return await db.run(query)
