"""Two real `baton serve` replicas on one PostgreSQL against the fake Slack Web API enforcing its limits.

Issue 16: each process paced Slack's per-workspace rate on its own, so N replicas posted at N times the
rate and collected 429s; a 429 paused only the replica that got it; a reply waited behind bulk sends.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections import Counter
from pathlib import Path

import aiohttp
import pytest

from bot.pacing import BLOCK
from storage.db import Database
from tests.fakes.slack_api import FakeSlack
from tests.test_faults import seed_fan_out_team
from tests.test_process import ServeProcess, send_now

pytestmark = pytest.mark.slow

TOKEN = "xoxb-replica-token"
SIGNING = "replica-signing-secret"
PEOPLE = 200
CAP = 20  # the fake's workspace cap: posts per sliding second
RATE = 19  # Baton's configured rate, a little below a hard cap (late wake-ups must not tip it over)


async def answer(http: aiohttp.ClientSession, url: str, team: str, user: str, text: str) -> None:
    """A signed DM event, as Slack sends it, to one replica."""
    event_id = f"Ev{user}{int(time.time() * 1000)}"
    body = json.dumps(
        {
            "token": "x",
            "team_id": team,
            "api_app_id": "A0REPLICA",
            "event": {
                "type": "message",
                "user": user,
                "text": text,
                "ts": f"{time.time():.6f}",
                "channel": "D" + user[1:],
                "event_ts": f"{time.time():.6f}",
                "channel_type": "im",
            },
            "type": "event_callback",
            "event_id": event_id,
            "event_time": int(time.time()),
            "authorizations": [{"team_id": team, "user_id": "UBATON", "is_bot": True}],
        }
    )
    stamp = str(int(time.time()))
    signature = "v0=" + hmac.new(SIGNING.encode(), f"v0:{stamp}:{body}".encode(), hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/json", "X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": signature}
    async with http.post(f"{url}/slack/events", data=body.encode(), headers=headers) as response:
        assert response.status == 200, await response.text()


async def test_two_replicas_share_the_workspace_rate_a_429_pauses_both_and_a_reply_goes_first(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    if "postgresql" not in database_url:
        pytest.skip("replicas share PostgreSQL; SQLite is a single-process store")
    fake = FakeSlack(token=TOKEN, record=True)
    fake.workspace_cap, fake.channel_cap = CAP, 3
    await fake.start()
    await seed_fan_out_team(db, fake.team_id, PEOPLE)
    env = {
        "SLACK_BOT_TOKEN": TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING,
        "SLACK_API_URL": fake.url,
        "BATON_SLACK_WORKSPACE_RATE": str(RATE),
        "BATON_TICK_SECONDS": "3600",
    }
    replicas = [ServeProcess(database_url, tmp_path, **env), ServeProcess(database_url, tmp_path, **env)]
    try:
        await asyncio.gather(*(replica.ready() for replica in replicas))
        started = time.monotonic()
        send_now(database_url, "Fanout")
        await fake.wait_for(lambda: len(fake.posted()) >= 40, timeout=60, what="the fan-out to get going")
        # One person who already has their invitation starts the check-in, on the replica that is not
        # necessarily the one sending to them: their first question must not wait behind the drain.
        first = fake.posted()[0]["channel"]

        def to_first() -> int:  # by user id, or by the DM's id once Baton has seen it
            return sum(1 for p in fake.posted() if p["channel"] in (first, "D" + first[1:]))

        before = to_first()
        asked = time.monotonic()
        async with aiohttp.ClientSession() as http:
            await answer(http, replicas[1].url, fake.team_id, first, "checkin")
        await fake.wait_for(lambda: to_first() > before, timeout=30, what="the first question")
        reply_after = time.monotonic() - asked
        # Slack says 429 with Retry-After: 2 to one post: neither replica may post in the next two seconds.
        scripted_at = time.monotonic()
        fake.rate_limit("chat.postMessage", 1, retry_after=2)
        await fake.wait_for(
            lambda: any(c.status == 429 and c.at > scripted_at for c in fake.calls_to("chat.postMessage", ok=None)),
            timeout=30,
            what="429",
        )
        await fake.wait_for(
            lambda: (
                sum(1 for p in fake.posted() if p["metadata"]["event_payload"]["key"].startswith("checkin:")) >= PEOPLE
            ),
            timeout=90,
            what="every invitation",
        )
        elapsed = time.monotonic() - started
    finally:
        for replica in replicas:
            replica.stop()
        await fake.close()
    calls = fake.calls_to("chat.postMessage", ok=None)
    scripted = next(c for c in calls if c.status == 429 and c.at > scripted_at)
    throttled = [c for c in calls if c.status == 429 and c is not scripted]
    keys = Counter(c.args["metadata"]["event_payload"]["key"] for c in calls if c.ok)
    assert max(keys.values()) == 1, keys.most_common(3)  # nothing posted twice
    assert sum(1 for key in keys if key.startswith("checkin:")) == PEOPLE  # every invitation arrived
    assert len(throttled) <= 2, len(throttled)  # the combined rate stayed under the cap (≤ 1% of posts refused)
    assert max(fake.per_second.values()) <= CAP
    # The replica that got the 429 stops at once; the other learns of the pause at its next block of slots
    # (a quarter of a second), so a slot it already held may still go out just after the 429 — never later.
    learnt = BLOCK + 0.1
    paused = [c for c in calls if c.ok and scripted.at + learnt < c.at < scripted.at + 1.8]
    assert not paused, (
        f"posts inside the pause both replicas were told of: {[round(c.at - scripted.at, 3) for c in paused]}"
    )
    assert sum(1 for c in calls if c.ok and scripted.at < c.at <= scripted.at + learnt) <= RATE * learnt + 1
    assert reply_after < 2.0, reply_after  # the reply went ahead of about 150 queued invitations
    assert elapsed < PEOPLE / RATE + 15  # and together they used the rate (about 11 s of it, plus the pause)
