"""Teams accounts → Baton people, and the conversation reference kept up to date for each.

A Teams user is known by their Azure AD object id (`from.aadObjectId`). On
first sight Baton asks the Bot Connector for the member's email / UPN
(activities do not carry it), links the account to the person with that
email (creating them, as a platform sign-up, when the organisation does not
list them yet), and stores the conversation reference as plain JSON in
`Identity.address`. The time zone the Teams client reports is applied when
the account is linked and on every (re)installation; afterwards a person's
own `settings` choice stands.

Accounts seen recently are remembered in this process, so an ordinary
message costs no query here: the reference is rewritten only when where it
points (service URL, conversation, bot, user) changes.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from typing import Any

from sqlalchemy import select, update

from adapters.teams.activities import PLATFORM, external_id, fingerprint, locale_of, timezone_of
from adapters.teams.connector import Connector
from dialogs.clock import Clock
from storage import queries
from storage.db import Database
from storage.models import Identity, Person

_EMAIL = re.compile(r"[^@\s<>]{1,64}@[^@\s<>]{1,190}\.[^@\s<>.]{2,63}")


class Directory:
    """Finds (and links) the person behind a Teams account. One per process."""

    def __init__(
        self, db: Database, clock: Clock, connector: Connector, *, emulator: bool, capacity: int = 50_000
    ) -> None:
        self.db = db
        self.clock = clock
        self.connector = connector
        self.emulator = emulator
        self.capacity = capacity
        self._known: OrderedDict[str, tuple[int, tuple[Any, ...]]] = OrderedDict()

    async def person_id(
        self, activity: dict[str, Any], reference: dict[str, Any], *, refresh: bool = False
    ) -> int | None:
        """The person's id, linking the account on first sight; None when Baton cannot tell who this is.

        `refresh` (an installation) rewrites the reference and applies the
        reported time zone even for a known account.
        """
        account = external_id(activity)
        if not account:
            return None
        where = fingerprint(reference)
        seen = self._known.get(account)
        if seen is not None and seen[1] == where and not refresh:
            self._known.move_to_end(account)
            return seen[0]
        zone, now = timezone_of(activity), self.clock.now()

        async def known(session) -> int | None:  # noqa: ANN001 - AsyncSession
            row = (
                await session.execute(
                    select(Identity.person_id, Identity.address).where(
                        Identity.platform == PLATFORM, Identity.external_id == account
                    )
                )
            ).first()
            if row is None:
                return None
            if refresh or fingerprint(row.address or {}) != where:
                await queries.upsert_identity(
                    session, person_id=row.person_id, platform=PLATFORM, external_id=account, address=reference, now=now
                )
            if refresh and zone:
                await session.execute(
                    update(Person).where(Person.id == row.person_id, Person.timezone != zone).values(timezone=zone)
                )
            return row.person_id

        person_id = await self.db.run(known)
        if person_id is None:
            email, name = await self._email_of(activity, reference)
            if email is None:
                return None
            locale = locale_of(activity)

            async def link(session) -> int:  # noqa: ANN001
                person = await queries.ensure_person(
                    session, email=email, name=name or email, timezone=zone, locale=locale, now=now
                )
                assert person.id is not None
                await queries.upsert_identity(
                    session, person_id=person.id, platform=PLATFORM, external_id=account, address=reference, now=now
                )
                return person.id

            person_id = await self.db.run(link)
        self._known[account] = (person_id, where)
        self._known.move_to_end(account)
        if len(self._known) > self.capacity:
            self._known.popitem(last=False)
        return person_id

    def forget(self, account: str) -> None:
        """Drop a remembered account (its identity may have changed elsewhere)."""
        self._known.pop(account, None)

    async def _email_of(self, activity: dict[str, Any], reference: dict[str, Any]) -> tuple[str | None, str | None]:
        """The member's email or UPN from the Bot Connector; in emulator mode an email typed as the user's name or id."""
        sender = activity.get("from") or {}
        name = sender.get("name") if isinstance(sender.get("name"), str) else None
        candidates: list[Any] = [sender.get("email"), sender.get("userPrincipalName")]  # when the channel sends them
        has_email = any(isinstance(c, str) and _EMAIL.fullmatch(c.strip()) for c in candidates)
        member = (
            await self.connector.member(reference, str(sender["id"])) if sender.get("id") and not has_email else None
        )
        if member:
            candidates += [member.get("email"), member.get("userPrincipalName")]
            name = member.get("name") if isinstance(member.get("name"), str) else name
        if self.emulator:
            candidates += [sender.get("name"), sender.get("id")]  # the Emulator lets you pick both
        for candidate in candidates:
            if isinstance(candidate, str) and _EMAIL.fullmatch(candidate.strip()):
                return candidate.strip().lower(), name
        return None, name
