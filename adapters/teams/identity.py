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
from dataclasses import replace
from typing import Any

from adapters.teams.activities import PLATFORM, external_id, fingerprint, locale_of, timezone_of
from adapters.teams.connector import Connector
from dialogs.engine.clock import Clock
from dialogs.services import accounts
from dialogs.services.accounts import Account
from storage.db import Database

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
        seen_as = Account(PLATFORM, account, None, "", zone, address=reference)
        person_id = await accounts.known(
            self.db, seen_as, now=now, stale=lambda stored: fingerprint(stored) != where, refresh=refresh
        )
        if person_id is None:
            email, name = await self._email_of(activity, reference)
            new = replace(seen_as, email=email, name=name or "", locale=locale_of(activity))
            person_id = await accounts.link(self.db, new, now=now, add_unknown=True)
            if person_id is None:
                return None
        self._known[account] = (person_id, where)
        self._known.move_to_end(account)
        if len(self._known) > self.capacity:
            self._known.popitem(last=False)
        return person_id

    def forget(self, account: str) -> None:
        """Drop a remembered account (its identity may have changed elsewhere)."""
        self._known.pop(account, None)

    async def _email_of(self, activity: dict[str, Any], reference: dict[str, Any]) -> tuple[str | None, str | None]:
        """The member's email or UPN from the Bot Connector; in emulator mode, an email typed as name or id."""
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
