"""Slack users → Baton people: identity first, else users.info and the email address.

A Slack user Baton has seen is one identity row (platform "slack", the user
id) whose address is {"team", "user", "channel": user id}, so proactive sends
go to the DM by user id. A new user is looked up once with users.info
(`users:read.email`): their email links them to a person from the org
import, or — unless BATON_SLACK_AUTO_ADD is off — makes a new person; their
Slack time zone and locale are stored either way. Separately, `sync` links
every workspace member whose email matches a person (users.list), so
check-ins reach people in Slack before they ever write to Baton.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.translate import PLATFORM
from dialogs.engine.clock import Clock
from dialogs.services import accounts
from dialogs.services.accounts import Account
from storage.coalesce import Coalescer
from storage.db import Database

log = logging.getLogger(__name__)

PROFILE_TTL = 3600.0
KNOWN_MAX = 50_000
PROFILES_MAX = 10_000


@dataclass(frozen=True, slots=True)
class Profile:
    """What users.info says about a person, reduced to what Baton stores."""

    user_id: str
    email: str | None
    name: str
    timezone: str | None
    locale: str | None
    is_bot: bool = False
    deleted: bool = False

    @classmethod
    def from_user(cls, user: dict[str, Any]) -> Profile:
        profile = user.get("profile") or {}
        name = (
            profile.get("real_name") or user.get("real_name") or profile.get("display_name") or user.get("name") or ""
        )
        return cls(
            user_id=user.get("id", ""),
            email=(profile.get("email") or "").strip().lower() or None,
            name=name,
            timezone=user.get("tz") or None,
            locale=user.get("locale") or None,
            is_bot=bool(user.get("is_bot")) or user.get("id") == "USLACKBOT",
            deleted=bool(user.get("deleted")),
        )


@dataclass(frozen=True, slots=True)
class Resolution:
    """The person behind a Slack user, or why there is none (`reason` is safe to show them)."""

    person_id: int | None
    reason: str | None = None
    email: str | None = None


NOT_ADDED = (
    "Hi! I don't know you yet, so I can't help you here. Ask your Baton admin to add you "
    "(with the email address of your Slack account)."
)
NO_EMAIL = (
    "Hi! I couldn't read the email address of your Slack account, so I can't tell who you are in Baton. "
    "Ask your Baton admin to check that the app has the users:read.email permission."
)
LOOKUP_FAILED = "Sorry, I couldn't look you up in Slack just now. Please try again in a minute."


class Directory:
    """Finds or makes the person for a Slack user. One per adapter; caches are bounded."""

    def __init__(
        self,
        db: Database,
        client: AsyncWebClient,
        clock: Clock,
        *,
        auto_add: Callable[[], bool],
        on_members: Callable[[list[dict[str, Any]]], Awaitable[object]] | None = None,
    ) -> None:
        self.db = db
        self.on_members = on_members  # each users.list page, after linking (statuses are read from it)
        self.client = client
        self.clock = clock
        self.auto_add = auto_add
        self._known: OrderedDict[str, int] = OrderedDict()  # user id → person id
        self._lookup: Coalescer[str, int] = Coalescer(lambda users: accounts.people_of(self.db, PLATFORM, users))
        self._profiles: OrderedDict[str, tuple[float, Profile | None]] = OrderedDict()
        self._pending: dict[str, asyncio.Future[Profile | None]] = {}

    def forget(self, user_id: str) -> None:
        self._known.pop(user_id, None)
        self._profiles.pop(user_id, None)

    def cached(self, user_id: str) -> int | None:
        return self._known.get(user_id)

    def _remember(self, user_id: str, person_id: int) -> None:
        self._known[user_id] = person_id
        self._known.move_to_end(user_id)
        while len(self._known) > KNOWN_MAX:
            self._known.popitem(last=False)

    async def resolve(
        self, team: str | None, user_id: str, token: str | None, *, enterprise: str | None = None
    ) -> Resolution:
        """The person for `user_id`, linking or adding them on first sight."""
        known = self._known.get(user_id)
        if known is not None:
            return Resolution(known)
        person_id = await self._lookup.get(user_id)  # users seen at the same moment share one query
        if person_id is not None:
            self._remember(user_id, person_id)
            return Resolution(person_id)
        try:
            profile = await self.profile(user_id, token)
        except (TimeoutError, SlackApiError, SlackClientError, OSError) as exc:
            log.warning("slack users.info failed (%s)", _error_name(exc))
            return Resolution(None, LOOKUP_FAILED)
        if profile is None or profile.is_bot or profile.deleted:
            return Resolution(None, NOT_ADDED)
        if not profile.email:
            return Resolution(None, NO_EMAIL)
        account = _account(replace(profile, user_id=user_id), team, enterprise)
        person_id = await accounts.link(self.db, account, now=self.clock.now(), add_unknown=self.auto_add())
        if person_id is None:
            return Resolution(None, NOT_ADDED, profile.email)
        self._remember(user_id, person_id)
        return Resolution(person_id, email=profile.email)

    async def profile(self, user_id: str, token: str | None) -> Profile | None:
        """users.info for `user_id` (with locale), cached for an hour; concurrent asks share one call."""
        cached = self._profiles.get(user_id)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        pending = self._pending.get(user_id)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Profile | None] = asyncio.get_running_loop().create_future()
        self._pending[user_id] = future
        try:
            profile = await self._fetch(user_id, token)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it, nobody logs "never retrieved"
            raise
        else:
            future.set_result(profile)
            self._profiles[user_id] = (time.monotonic() + PROFILE_TTL, profile)
            while len(self._profiles) > PROFILES_MAX:
                self._profiles.popitem(last=False)
            return profile
        finally:
            self._pending.pop(user_id, None)

    async def sync(
        self, team: str | None, token: str | None, *, page_pause: float = 3.0, enterprise: str | None = None
    ) -> int:
        """Link every workspace member whose email belongs to a person (users.list, 200 a page).

        So check-ins reach people in Slack before they ever wrote to Baton.
        Only links: nobody is created, and existing identities are left as
        they are. users.list is tier 2, hence the pause between pages.
        Returns how many identities were added.
        """
        cursor: str | None = None
        linked = 0
        while True:
            try:
                response = await self.client.users_list(token=token, limit=200, cursor=cursor)
            except SlackApiError as exc:
                retry = _retry_after(exc)
                if retry is None:
                    raise
                await asyncio.sleep(retry)
                continue
            members = [Profile.from_user(m) for m in response.get("members") or []]
            wanted = {p.email: p for p in members if p.email and not p.is_bot and not p.deleted}
            if wanted:
                linked += await accounts.link_known(
                    self.db, [_account(p, team, enterprise) for p in wanted.values()], now=self.clock.now()
                )
            if self.on_members is not None:
                await self.on_members(list(response.get("members") or []))
            cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                return linked
            await asyncio.sleep(page_pause)

    async def _fetch(self, user_id: str, token: str | None) -> Profile | None:
        for attempt in range(2):
            try:
                response = await self.client.users_info(user=user_id, include_locale=True, token=token)
            except SlackApiError as exc:
                error = exc.response.get("error") if exc.response is not None else None
                if error == "user_not_found":
                    return None
                retry = _retry_after(exc)
                if retry is not None and retry <= 5 and attempt == 0:
                    await asyncio.sleep(retry)
                    continue
                raise
            return Profile.from_user(response.get("user") or {})
        return None


def _account(profile: Profile, team: str | None, enterprise: str | None) -> Account:
    """A workspace member as an account to link; messages go to their DM by user id."""
    address: dict[str, Any] = {"team": team, "user": profile.user_id, "channel": profile.user_id}
    if enterprise:
        address["enterprise"] = enterprise
    return Account(
        PLATFORM, profile.user_id, profile.email, profile.name, profile.timezone, profile.locale, address=address
    )


def _retry_after(exc: SlackApiError) -> float | None:
    if getattr(exc.response, "status_code", 0) != 429:
        return None
    for key, value in dict(getattr(exc.response, "headers", None) or {}).items():
        if key.lower() == "retry-after":
            try:
                return float(value[0] if isinstance(value, list) else value)
            except (TypeError, ValueError):
                return 1.0
    return 1.0


def _error_name(exc: BaseException) -> str:
    if isinstance(exc, SlackApiError) and exc.response is not None:
        try:
            return str(exc.response.get("error"))
        except (AttributeError, KeyError, TypeError, ValueError):  # a body that is not Slack's JSON
            pass
    return type(exc).__name__
