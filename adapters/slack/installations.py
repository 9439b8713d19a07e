"""OAuth for several workspaces: bolt's installation store in Baton's database, and a stateless state store.

Each install is one `slack_installation` row whose `data` is the SDK's
Installation as plain JSON (what slack_sdk's own file store writes). The
newest row for a workspace (or org) wins. The rows hold bot tokens: protect
the database like any secret store; tokens are never logged.

The OAuth `state` is signed rather than stored (HMAC with the client secret,
ten-minute expiry), so any replica can finish an install another one began;
bolt also binds it to a browser cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from logging import Logger
from typing import Any

from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.installation_store.models.bot import Bot
from slack_sdk.oauth.installation_store.models.installation import Installation
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore
from sqlalchemy import delete, select

from storage.db import Database
from storage.models import SlackInstallation

log = logging.getLogger(__name__)


class DatabaseInstallationStore(AsyncInstallationStore):
    """bolt's AsyncInstallationStore over the slack_installation table (async, via `Database`)."""

    def __init__(self, db: Database, *, on_saved: Callable[[Installation], None] | None = None) -> None:
        self.db = db
        self.on_saved = on_saved  # told about each new installation once it is stored

    @property
    def logger(self) -> Logger:
        return log

    async def async_save(self, installation: Installation) -> None:
        data = _jsonable(vars(installation))
        team = None if installation.is_enterprise_install else installation.team_id

        async def work(session) -> None:  # noqa: ANN001
            session.add(
                SlackInstallation(
                    enterprise_id=installation.enterprise_id,
                    team_id=team,
                    user_id=installation.user_id,
                    is_enterprise_install=bool(installation.is_enterprise_install),
                    data=data,
                    installed_at=datetime.fromtimestamp(installation.installed_at, UTC),
                )
            )

        await self.db.run(work)
        log.info("slack: installed in workspace %s", installation.team_id or installation.enterprise_id)
        if self.on_saved is not None:
            self.on_saved(installation)

    async def installed(self) -> list[tuple[str | None, str | None]]:
        """Every (enterprise id, team id) with an installation."""

        async def work(session) -> list[tuple[str | None, str | None]]:  # noqa: ANN001
            rows = await session.execute(select(SlackInstallation.enterprise_id, SlackInstallation.team_id).distinct())
            return [tuple(row) for row in rows]

        return await self.db.run(work)

    async def async_save_bot(self, bot: Bot) -> None:
        raise NotImplementedError("Baton saves whole installations (async_save)")

    async def async_find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        if is_enterprise_install:
            team_id = None

        async def work(session) -> dict[str, Any] | None:  # noqa: ANN001
            statement = (
                select(SlackInstallation.data)
                .where(
                    SlackInstallation.enterprise_id.is_(None)
                    if enterprise_id is None
                    else SlackInstallation.enterprise_id == enterprise_id
                )
                .where(SlackInstallation.team_id.is_(None) if team_id is None else SlackInstallation.team_id == team_id)
                .order_by(SlackInstallation.installed_at.desc(), SlackInstallation.id.desc())
                .limit(1)
            )
            if user_id is not None:
                statement = statement.where(SlackInstallation.user_id == user_id)
            return await session.scalar(statement)

        data = await self.db.run(work)
        if data is None:
            return None
        installation = Installation(**data)
        if user_id is not None or installation.bot_token is None:
            latest = await self.async_find_installation(
                enterprise_id=enterprise_id, team_id=team_id, is_enterprise_install=is_enterprise_install
            )
            if latest is not None and latest.bot_token and latest.bot_token != installation.bot_token:
                for name in (
                    "bot_id",
                    "bot_user_id",
                    "bot_token",
                    "bot_scopes",
                    "bot_refresh_token",
                    "bot_token_expires_at",
                ):
                    setattr(installation, name, getattr(latest, name))
        return installation

    async def async_find_bot(
        self, *, enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool | None = False
    ) -> Bot | None:
        installation = await self.async_find_installation(
            enterprise_id=enterprise_id, team_id=team_id, is_enterprise_install=is_enterprise_install
        )
        if installation is None or not installation.bot_token:
            return None
        return installation.to_bot()

    async def async_delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await self.async_delete_installation(enterprise_id=enterprise_id, team_id=team_id)

    async def async_delete_installation(
        self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None
    ) -> None:
        async def work(session) -> None:  # noqa: ANN001
            statement = delete(SlackInstallation).where(
                SlackInstallation.enterprise_id.is_(None)
                if enterprise_id is None
                else SlackInstallation.enterprise_id == enterprise_id,
                SlackInstallation.team_id.is_(None) if team_id is None else SlackInstallation.team_id == team_id,
            )
            if user_id is not None:
                statement = statement.where(SlackInstallation.user_id == user_id)
            await session.execute(statement)

        await self.db.run(work)
        log.info("slack: installation removed for workspace %s", team_id or enterprise_id)


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in values.items():
        if isinstance(value, datetime):
            value = value.timestamp()
        elif isinstance(value, tuple):
            value = list(value)
        out[key] = value
    return out


class SignedStateStore(AsyncOAuthStateStore):
    """OAuth `state` values signed with a secret and valid for `expiration_seconds`; nothing is stored."""

    def __init__(self, secret: str, *, expiration_seconds: int = 600) -> None:
        self._key = hashlib.sha256(b"baton-slack-oauth-state:" + secret.encode()).digest()
        self.expiration_seconds = expiration_seconds

    @property
    def logger(self) -> Logger:
        return log

    def _sign(self, body: str) -> str:
        return hmac.new(self._key, body.encode(), hashlib.sha256).hexdigest()[:32]

    async def async_issue(self, *args: Any, **kwargs: Any) -> str:
        body = f"{int(time.time())}.{secrets.token_urlsafe(12)}"
        return f"{body}.{self._sign(body)}"

    async def async_consume(self, state: str) -> bool:
        body, _, signature = state.rpartition(".")
        issued, _, _nonce = body.partition(".")
        if not body or not hmac.compare_digest(self._sign(body), signature):
            return False
        try:
            return 0 <= time.time() - int(issued) <= self.expiration_seconds
        except ValueError:
            return False
