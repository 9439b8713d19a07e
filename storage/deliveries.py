"""Deliveries Baton gave up on: outbox rows with status "failed", for admins.

These queries never select `OutboxMessage.payload` — a payload can hold
feedback text — nor the address. What they report is when, on which channel,
to whom (a person's name, or None for a post to a team channel), what kind of
message, and why, the reason cut down to the platform's error name by
`reason_name`.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import OutboxMessage, Person

FAILED = "failed"  # bot.outbox marks a row so when a delivery fails permanently or its retries run out
REASON_LENGTH = 60
_GAVE_UP = re.compile(r"^gave up after \d+ attempts: ")


def reason_name(last_error: str | None) -> str:
    """The error's name from an outbox row's `last_error`, at most 60 characters.

    Slack's error codes pass as they are ("user_not_found"); an explanation
    after ": " is dropped ("Teams refused (403 BotDisabled): Baton was…" →
    "Teams refused (403 BotDisabled)"), and a row whose retries ran out says
    so ("network (retries ran out)"). None or blank: "unknown".
    """
    text = " ".join((last_error or "").split())
    gave_up = _GAVE_UP.match(text) is not None
    head = _GAVE_UP.sub("", text).split(": ", 1)[0].strip() or "unknown"
    if len(head) > REASON_LENGTH:
        head = head[: REASON_LENGTH - 1].rstrip() + "…"
    return f"{head} (retries ran out)" if gave_up else head


@dataclass(frozen=True, slots=True)
class FailedDelivery:
    """One message that was not delivered. `when` is when its last attempt was due (UTC)."""

    id: int
    when: datetime
    channel: str
    recipient: str | None  # the person's name; None for a post to a shared place (a team channel)
    kind: str
    reason: str


async def failed_deliveries(session: AsyncSession, since: datetime, *, limit: int = 500) -> list[FailedDelivery]:
    """Failed deliveries whose last attempt was due at or after `since`, newest first, at most `limit`."""
    rows = await session.execute(
        select(
            OutboxMessage.id,
            OutboxMessage.due_at,
            OutboxMessage.channel,
            OutboxMessage.person_id,
            Person.name,
            OutboxMessage.kind,
            OutboxMessage.last_error,
        )
        .join(Person, Person.id == OutboxMessage.person_id, isouter=True)
        .where(OutboxMessage.status == FAILED, OutboxMessage.due_at >= since)
        .order_by(OutboxMessage.due_at.desc(), OutboxMessage.id.desc())
        .limit(limit)
    )
    return [
        FailedDelivery(
            id=row.id,
            when=row.due_at,
            channel=row.channel,
            recipient=None if row.person_id is None else (row.name or "(unknown person)"),
            kind=row.kind,
            reason=reason_name(row.last_error),
        )
        for row in rows
    ]


async def failure_reasons(session: AsyncSession, since: datetime) -> list[tuple[str, int]]:
    """(reason name, how many) for failed deliveries due at or after `since`, the most frequent first."""
    counts: Counter[str] = Counter()
    rows = await session.execute(
        select(OutboxMessage.last_error, func.count())
        .where(OutboxMessage.status == FAILED, OutboxMessage.due_at >= since)
        .group_by(OutboxMessage.last_error)
    )
    for last_error, count in rows:
        counts[reason_name(last_error)] += count
    return sorted(counts.items(), key=lambda item: (-item[1], item[0].casefold()))
