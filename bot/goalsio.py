"""Goal progress from other systems: `baton goals import FILE.csv` and `POST /api/goals/{id}/progress`.

Both validate everything before storing anything; a bad value is refused with
its reason, and every stored value keeps its source and time.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import secrets
from datetime import datetime
from typing import Any

from aiohttp import web
from sqlalchemy import select

from dialogs.engine.clock import tz
from dialogs.engine.errors import UserFacingError
from dialogs.goals import parse_value, record_progress
from storage import queries
from storage.db import Database, DatabaseUnavailable
from storage.models import Goal, IntegrationToken, Person

CSV_COLUMNS = ("goal_id", "value", "recorded_at", "note")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_token(db: Database, name: str, now: datetime) -> str:
    """A new integration token, shown once; only its hash is stored."""
    token = "baton_" + secrets.token_urlsafe(32)

    async def work(session) -> None:  # noqa: ANN001
        session.add(IntegrationToken(name=name, token_hash=hash_token(token), created_at=now))

    await db.run(work)
    return token


async def _goal_today(session, goal: Goal, now: datetime):  # noqa: ANN001, ANN202
    owner = await session.get(Person, goal.owner_id) if goal.owner_id else None
    return now.astimezone(tz(owner.timezone if owner else "UTC")).date()


async def import_progress(db: Database, text: str, now: datetime) -> tuple[int, list[str]]:
    """Import goal progress rows (goal_id,value,recorded_at,note). All or nothing: (count, []) or (0, errors)."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    missing = [c for c in ("goal_id", "value") if c not in (reader.fieldnames or [])]
    if missing:
        return 0, [f"line 1: header lacks {', '.join(missing)}; expected: {','.join(CSV_COLUMNS)}"]

    async def work(session) -> tuple[int, list[str]]:  # noqa: ANN001
        errors: list[str] = []
        parsed: list[tuple[Goal, float, datetime, str | None]] = []
        for row in reader:
            line = reader.line_num
            raw_id = (row.get("goal_id") or "").strip().lstrip("#")
            number = queries.as_id(raw_id)
            goal = await session.get(Goal, number) if number is not None else None
            if goal is None:
                errors.append(f"line {line}: no goal with id {raw_id or '(empty)'}")
                continue
            try:
                value = parse_value(goal, (row.get("value") or "").strip())
            except UserFacingError as exc:
                errors.append(f"line {line}: {exc.message.replace('*', '')}")
                continue
            when = now
            if (row.get("recorded_at") or "").strip():
                try:
                    when = datetime.fromisoformat(row["recorded_at"].strip())
                    when = when if when.tzinfo else when.replace(tzinfo=tz("UTC"))
                except ValueError:
                    errors.append(f"line {line}: recorded_at '{row['recorded_at']}' is not an ISO date-time")
                    continue
                if when > now:
                    errors.append(f"line {line}: recorded_at is in the future")
                    continue
            parsed.append((goal, value, when, (row.get("note") or "").strip() or None))
        if errors:
            raise _Rejected(errors)
        for goal, value, when, note in sorted(parsed, key=lambda p: p[2]):
            await record_progress(session, goal, value, source="csv", now=when, today=when.date(), note=note)
        return len(parsed), []

    try:
        return await db.run(work)
    except _Rejected as rejected:
        return 0, rejected.errors


class _Rejected(Exception):
    def __init__(self, errors: list[str]) -> None:
        super().__init__(f"{len(errors)} rows rejected")
        self.errors = errors


def setup_goal_api(app: web.Application, db: Database, clock) -> None:  # noqa: ANN001
    """POST /api/goals/{id}/progress with `Authorization: Bearer TOKEN` and JSON {"value": …, "note": …}."""

    async def post_progress(request: web.Request) -> web.Response:
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
        if not token:
            return _json(
                401,
                "Send an integration token: Authorization: Bearer <token> (create one with `baton goals token create NAME`).",
            )
        goal_id = request.match_info["goal_id"]
        try:
            body = await request.json()
        except ValueError:
            return _json(400, 'The body should be JSON like {"value": 42}.')
        if not isinstance(body, dict) or "value" not in body:
            return _json(400, 'The body should be JSON like {"value": 42}.')
        note = body.get("note")
        if note is not None and (not isinstance(note, str) or len(note) > 500):
            return _json(400, "note must be text of at most 500 characters.")

        async def work(session) -> web.Response:  # noqa: ANN001
            known = (
                await session.execute(select(IntegrationToken).where(IntegrationToken.revoked_at.is_(None)))
            ).scalars()
            integration = next((t for t in known if hmac.compare_digest(t.token_hash, hash_token(token))), None)
            if integration is None:
                return _json(401, "That token is unknown or revoked.")
            number = queries.as_id(goal_id)
            goal = await session.get(Goal, number) if number is not None else None
            if goal is None:
                return _json(404, f"No goal with id {goal_id}.")
            try:
                value = parse_value(goal, str(body["value"]).strip())
            except UserFacingError as exc:
                return _json(422, exc.message.replace("*", ""))
            now = clock.now()
            update, _ = await record_progress(
                session,
                goal,
                value,
                source=f"http:{integration.name}",
                now=now,
                today=await _goal_today(session, goal, now),
                note=note,
            )
            return web.json_response(
                {
                    "ok": True,
                    "goal": goal.id,
                    "progress": update.progress,
                    "expected": update.expected,
                    "status": update.rag,
                },
                status=201,
            )

        try:
            return await db.run(work)
        except DatabaseUnavailable:
            return _json(503, "The database is unavailable; nothing was stored. Try again shortly.")

    app.router.add_post("/api/goals/{goal_id}/progress", post_progress)


def _json(status: int, message: str) -> web.Response:
    payload: dict[str, Any] = {"ok": False, "error": message}
    return web.json_response(payload, status=status)
