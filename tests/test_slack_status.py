"""A Slack status that says away counts as away (issue 21): from the users.list sync and `user_status_changed`.

Real parts: Baton's server with the Slack adapter, signed Events API requests,
the fake Slack Web API serving members with their statuses, both databases.
"""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select

from adapters.slack.manifest import BOT_EVENTS, BOT_SCOPES
from dialogs.common.manners import leave_days
from dialogs.engine.clock import FakeClock
from storage.db import Database
from storage.models import Person
from tests.fakes.slack_api import FakeSlack
from tests.test_slack import TOKEN, SlackRig, clock, fake, load, start_rig  # noqa: F401 - fixtures

PALM = (":palm_tree:", "Vacationing", 0)


def status_event(api: FakeSlack, user_id: str, event_id: str) -> dict[str, Any]:
    """The Events API envelope Slack sends when a member's status changes: the whole user object inside."""
    payload = load("event_message_im.json")
    payload["event"] = {
        "type": "user_status_changed",
        "user": copy.deepcopy(api.users[user_id]),
        "cache_ts": 1763726400,
        "event_ts": "1763726400.000200",
    }
    payload["event_id"] = event_id
    return payload


async def away_of(rig: SlackRig, email: str, first: date, last: date) -> list[tuple[date, date]]:
    person = await rig.db.run(lambda s: s.scalar(select(Person.id).where(Person.email == email)))
    return (await rig.db.run(lambda s: leave_days(s, [person], first, last))).get(person, [])


def set_status(api: FakeSlack, user_id: str, emoji: str, text: str, expiration: int) -> None:
    profile = api.users[user_id]["profile"]
    profile.update(status_emoji=emoji, status_text=text, status_expiration=expiration)


async def test_the_sync_reads_an_away_status_and_the_event_clears_it(
    db: Database,
    database_url: str,
    fake: FakeSlack,  # noqa: F811
    clock: FakeClock,  # noqa: F811
) -> None:
    # Tom is on holiday until Tuesday 24 Nov, 18:00 Berlin; the clock says Friday 20 Nov.
    until = int(datetime(2026, 11, 24, 17, 0, tzinfo=UTC).timestamp())
    set_status(fake, "U0TOM", ":palm_tree:", "Vacationing", until)
    async for rig in start_rig(db, database_url, fake, clock):
        await rig.adapter.sync_users()
        assert await away_of(rig, "tom@example.com", date(2026, 11, 20), date(2026, 12, 31)) == [
            (date(2026, 11, 20), date(2026, 11, 24))
        ]
        assert await away_of(rig, "maya@example.com", date(2026, 11, 20), date(2026, 12, 31)) == []
        # Back early: the status is cleared, and Slack says so.
        set_status(fake, "U0TOM", "", "", 0)
        status, _ = await rig.event(status_event(fake, "U0TOM", "Ev0STATUS01"))
        assert status == 200
        await rig.settle()
        assert await away_of(rig, "tom@example.com", date(2026, 11, 20), date(2026, 12, 31)) == []


async def test_a_status_text_without_expiry_or_a_sick_emoji_counts_and_others_do_not(
    db: Database,
    database_url: str,
    fake: FakeSlack,  # noqa: F811
    clock: FakeClock,  # noqa: F811
) -> None:
    async for rig in start_rig(db, database_url, fake, clock):
        set_status(fake, "U0AIKO", ":spiral_calendar_pad:", "Out of office", 0)
        set_status(fake, "U0MAYA", ":face_with_thermometer:", "", 0)
        set_status(fake, "U0TOM", ":coffee:", "Focus time", 0)
        for n, user in enumerate(("U0AIKO", "U0MAYA", "U0TOM")):
            await rig.event(status_event(fake, user, f"Ev0STATUS1{n}"))
        await rig.settle()
        aiko = await away_of(rig, "aiko@example.com", date(2026, 11, 20), date(2027, 1, 31))
        assert aiko and aiko[0][0] == date(2026, 11, 20) and aiko[0][1] >= date(2026, 12, 19)  # 30 days, renewed
        assert await away_of(rig, "maya@example.com", date(2026, 11, 20), date(2026, 11, 20))
        assert await away_of(rig, "tom@example.com", date(2026, 11, 20), date(2027, 1, 31)) == []
        # A status that expired already says nothing.
        set_status(fake, "U0TOM", ":palm_tree:", "", int(datetime(2026, 11, 19, tzinfo=UTC).timestamp()))
        await rig.event(status_event(fake, "U0TOM", "Ev0STATUS20"))
        await rig.settle()
        assert await away_of(rig, "tom@example.com", date(2026, 11, 20), date(2027, 1, 31)) == []


def test_the_manifest_subscribes_to_status_changes_without_a_new_scope() -> None:
    assert "user_status_changed" in BOT_EVENTS
    assert "users:read" in BOT_SCOPES and not any("profile" in scope for scope in BOT_SCOPES)
    assert TOKEN  # the rig's token: nothing here calls users.profile.get
