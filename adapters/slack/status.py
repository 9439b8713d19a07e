"""A Slack status that says someone is away counts as being away, until the status expires or changes.

`users:read` (which Baton has anyway) brings every member's status with the
daily users.list sync and a `user_status_changed` event when one changes, so
nothing is polled: no extra calls against Slack's rate limits. A status is
"away" when its emoji is one of `AWAY_EMOJI` (configurable) or its text holds
one of the away words ("vacationing", "out of office" …). With an expiry,
the person is away through the local day it expires (a status ending before
09:00 frees that morning); without one, for the next 30 days, renewed at
every sync and cleared the moment the status changes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from dialogs.common.absence import set_status_away
from dialogs.engine.clock import tz
from storage import queries
from storage.db import Database

PLATFORM = "slack"
AWAY_EMOJI = ":palm_tree:, :desert_island:, :beach_with_umbrella:, :airplane:, :face_with_thermometer:, :thermometer:"
OPEN_ENDED = timedelta(days=30)
MORNING = 9  # a status that expires before this hour (local) leaves that day free


def emoji_set(raw: str) -> frozenset[str]:
    return frozenset(":" + e.strip().strip(":") + ":" for e in raw.split(",") if e.strip().strip(":"))


def away_until(
    user: dict[str, Any], emoji: frozenset[str], words: re.Pattern[str] | None, now: datetime
) -> date | None:
    """The last local day `user`'s status says they are away, or None when it doesn't say so."""
    profile = user.get("profile") or {}
    status_emoji = str(profile.get("status_emoji") or "")
    text = str(profile.get("status_text") or "").casefold()
    if not (status_emoji in emoji or (words is not None and text and words.search(text))):
        return None
    zone = tz(user.get("tz") or "UTC")
    today = now.astimezone(zone).date()
    expires = int(profile.get("status_expiration") or 0)
    if not expires:
        return today + OPEN_ENDED
    local = datetime.fromtimestamp(expires, UTC).astimezone(zone)
    if local <= now.astimezone(zone):
        return None  # expired already
    return local.date() - timedelta(days=1) if local.hour < MORNING else local.date()


async def apply(
    db: Database,
    users: Iterable[dict[str, Any]],
    emoji: frozenset[str],
    words: re.Pattern[str] | None,
    now: datetime,
) -> int:
    """Record what these Slack members' statuses say for the people they are linked to; how many changed."""
    seen = {u["id"]: u for u in users if u.get("id")}
    if not seen:
        return 0

    async def work(session: Any) -> int:
        people = await queries.sender_ids(session, [(PLATFORM, user_id) for user_id in seen])
        changed = 0
        for (_, user_id), person_id in people.items():
            user = seen[user_id]
            today = now.astimezone(tz(user.get("tz") or "UTC")).date()
            until = away_until(user, emoji, words, now)
            changed += await set_status_away(session, person_id, until, today, now)
        return changed

    return int(await db.run(work))
