"""`dashboard`: a single-use, ten-minute sign-in link to the web dashboard, sent in chat (`SignInDialog`).

The link carries 32 random bytes; only their SHA-256 is stored (`dashboard_token`),
so a copy of the database cannot sign anyone in. `bot.dashboard` exchanges the
token for a browser session, once.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import ClassVar

from sqlalchemy.ext.asyncio import AsyncSession

from dialogs.engine import END, Dialog, Transition, Turn
from dialogs.engine.messages import Reply
from storage.models import DashboardToken

TOKEN_LIFETIME = timedelta(minutes=10)
LOGIN_PATH = "/dashboard/login"


def digest(secret: str) -> str:
    """The stored form of a token or session id: hex SHA-256 (a random 256-bit secret needs no salt)."""
    return hashlib.sha256(secret.encode()).hexdigest()


async def issue_token(
    session: AsyncSession, person_id: int, now: datetime, *, lifetime: timedelta = TOKEN_LIFETIME
) -> str:
    """Create a sign-in token for `person_id` in the caller's transaction; return the secret (shown once)."""
    secret = secrets.token_urlsafe(32)
    session.add(
        DashboardToken(token_hash=digest(secret), person_id=person_id, created_at=now, expires_at=now + lifetime)
    )
    await session.flush()
    return secret


def login_link(public_url: str, secret: str) -> str:
    return f"{public_url.rstrip('/')}{LOGIN_PATH}?token={secret}"


class SignInDialog(Dialog):
    """Replies with a sign-in link; no states, nothing to answer."""

    name: ClassVar[str] = "dashboard"
    commands: ClassVar[tuple[str, ...]] = ("dashboard",)
    summary: ClassVar[str] = "a sign-in link to your dashboard in the browser"
    audience: ClassVar[str] = "everyone"

    def __init__(self, public_url: str = "http://127.0.0.1:3978") -> None:
        self.public_url = public_url.rstrip("/")
        self.states = {}
        self.first = END

    async def begin(self, turn: Turn, args: str) -> Transition:
        assert turn.person.id is not None
        secret = await issue_token(turn.session, turn.person.id, turn.now)
        minutes = int(TOKEN_LIFETIME.total_seconds() // 60)
        turn.say(
            Reply(
                f"Here is your dashboard link — it works once, for the next {minutes} minutes, and only for you:\n"
                f"{login_link(self.public_url, secret)}\n"
                "Don't forward it. If it has expired, type *dashboard* again for a new one."
            )
        )
        return END
