"""Sign-in by chat link, browser sessions, CSRF, and who may see whom.

The cookie holds a random session id; the database keeps only its SHA-256,
with a per-session CSRF secret. Every request re-reads the session and the
viewer's reports, so a revoked session or a changed reporting line takes
effect at once.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from aiohttp import web
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from dialogs.signin import digest
from storage.models import DashboardSession, DashboardToken, Person

COOKIE = "baton_dashboard"
COOKIE_PATH = "/dashboard"
SESSION_LIFETIME = timedelta(hours=8)


@dataclass(frozen=True)
class Viewer:
    """The signed-in person and what they may see. `reports` are direct reports' ids."""

    person: Person
    session_id: int
    csrf: str
    reports: frozenset[int]

    @property
    def id(self) -> int:
        assert self.person.id is not None
        return self.person.id

    @property
    def is_admin(self) -> bool:
        return self.person.is_admin

    @property
    def is_manager(self) -> bool:
        return bool(self.reports)

    def may_see_person(self, person_id: int) -> bool:
        """Own data, or a direct report's. Admins get aggregates only, so being admin adds nothing here."""
        return person_id == self.id or person_id in self.reports


async def token_usable(session: AsyncSession, secret: str, now: datetime) -> bool:
    """Whether a sign-in token would open a session now (issued, unused, unexpired, its person active).

    Reads only: showing the sign-in button must not spend the link.
    """
    if not secret or len(secret) > 128:
        return False
    row = (
        await session.execute(
            select(DashboardToken.person_id).where(
                DashboardToken.token_hash == digest(secret),
                DashboardToken.used_at.is_(None),
                DashboardToken.expires_at > now,
            )
        )
    ).first()
    if row is None:
        return False
    person = await session.get(Person, row.person_id)
    return person is not None and person.active


async def exchange_token(session: AsyncSession, secret: str, now: datetime) -> str | None:
    """Spend a sign-in token and open a session; return the new session id, or None for a bad token.

    The token is marked used by one conditional UPDATE, so two browsers racing
    with the same link cannot both win.
    """
    if not secret or len(secret) > 128:
        return None
    token_hash = digest(secret)
    spent = await session.execute(
        update(DashboardToken)
        .where(
            DashboardToken.token_hash == token_hash, DashboardToken.used_at.is_(None), DashboardToken.expires_at > now
        )
        .values(used_at=now)
    )
    if spent.rowcount != 1:
        return None
    person_id = (
        await session.execute(select(DashboardToken.person_id).where(DashboardToken.token_hash == token_hash))
    ).scalar_one()
    person = await session.get(Person, person_id)
    if person is None or not person.active:
        return None
    session_id = secrets.token_urlsafe(32)
    session.add(
        DashboardSession(
            session_hash=digest(session_id),
            person_id=person_id,
            csrf=secrets.token_urlsafe(32),
            created_at=now,
            expires_at=now + SESSION_LIFETIME,
        )
    )
    return session_id


async def load_viewer(session: AsyncSession, session_id: str | None, now: datetime) -> Viewer | None:
    """The viewer behind a cookie value, or None when it is missing, unknown, expired or revoked."""
    if not session_id or len(session_id) > 128:
        return None
    row = (
        (await session.execute(select(DashboardSession).where(DashboardSession.session_hash == digest(session_id))))
        .scalars()
        .first()
    )
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        return None
    person = await session.get(Person, row.person_id)
    if person is None or not person.active:
        return None
    reports = frozenset(
        (
            await session.execute(select(Person.id).where(Person.manager_id == person.id, Person.active.is_(True)))
        ).scalars()
    )
    assert row.id is not None
    return Viewer(person, row.id, row.csrf, reports)


async def revoke(session: AsyncSession, session_row_id: int, now: datetime) -> None:
    await session.execute(update(DashboardSession).where(DashboardSession.id == session_row_id).values(revoked_at=now))


def csrf_ok(viewer: Viewer, submitted: object) -> bool:
    return (
        isinstance(submitted, str) and bool(submitted) and hmac.compare_digest(submitted.encode(), viewer.csrf.encode())
    )


def is_https(request: web.Request) -> bool:
    """Served over HTTPS, directly or behind a proxy that says so."""
    forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    return request.secure or forwarded == "https"


def set_session_cookie(response: web.StreamResponse, request: web.Request, session_id: str) -> None:
    # Lax, not Strict: the first visit arrives from a link in a chat app, a cross-site navigation
    # for which Strict would withhold the cookie set by the redirect that follows it.
    response.set_cookie(
        COOKIE,
        session_id,
        max_age=int(SESSION_LIFETIME.total_seconds()),
        path=COOKIE_PATH,
        httponly=True,
        samesite="Lax",
        secure=is_https(request),
    )


def clear_session_cookie(response: web.StreamResponse, request: web.Request) -> None:
    response.del_cookie(COOKIE, path=COOKIE_PATH)
