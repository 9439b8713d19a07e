"""Outbound at the platform's limit (issue 16): the aim that matters in production.

Two real `baton serve` replicas on one PostgreSQL fan a check-in out to 3,000
people (`baton checkin send-now`) through the fake Slack Web API, which
refuses with 429 + Retry-After anything over 100 posts in a sliding second
per workspace or 3 per channel, and records when each post arrived. Baton is
configured at 98 posts per second (a little under a hard cap, so a post
woken a few milliseconds late does not tip a window over).

- **ratio** = time from the first invitation to the last / the theoretical
  minimum at the cap ((people - 1) / 100 s). Aim ≤ 1.05.
- **429s** received ≤ 1% of posts; 0 duplicates, 0 lost (by each post's
  outbox key, which travels as message metadata).
- **replies during the drain**: every half second someone who already has
  their invitation types `checkin` (a signed Events API request, to either
  replica); the time until their first question reaches Slack. Aim p99 ≤ 2 s.

PostgreSQL only: replicas share it (SQLite is a single-process store).
`python -m bench outbound-limit`.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import scratch_postgres
from storage.db import Database
from tests.fakes.slack_api import FakeSlack
from tests.harness import SECRET
from tests.test_faults import seed_fan_out_team
from tests.test_process import ServeProcess, baton_command
from tests.test_replicas import SIGNING, answer

TOKEN = "xoxb-limit-token"
CAP = 100
RATE = 98


def _percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))], 3)


async def slack_at_limit(database_url: str, workdir: Path, people: int) -> dict[str, Any]:
    fake = FakeSlack(token=TOKEN, record=True)
    fake.workspace_cap, fake.channel_cap = CAP, 3
    await fake.start()
    db = Database(database_url)
    await db.migrate()
    await seed_fan_out_team(db, fake.team_id, people)
    await db.close()
    env = {
        "SLACK_BOT_TOKEN": TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING,
        "SLACK_API_URL": fake.url,
        "BATON_SLACK_WORKSPACE_RATE": str(RATE),
        "BATON_TICK_SECONDS": "3600",
    }
    replicas = [ServeProcess(database_url, workdir, **env), ServeProcess(database_url, workdir, **env)]

    # Counted as posts arrive: scanning thousands of recorded calls on every poll would make this process,
    # which also serves the fake, the bottleneck it is meant to measure.
    invited: list[str] = []  # users, in the order their invitation arrived
    to_channel: Counter[str] = Counter()
    note = fake._note

    def counting(call: Any) -> None:
        note(call)
        if call.method == "chat.postMessage" and call.ok:
            to_channel[call.args["channel"]] += 1
            if call.args["metadata"]["event_payload"]["key"].startswith("checkin:"):
                invited.append(call.args["channel"])

    fake._note = counting  # type: ignore[method-assign]

    def posts_to(user: str) -> int:
        return to_channel[user] + to_channel["D" + user[1:]]

    async def until(predicate: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            await asyncio.sleep(0.01)

    latencies: list[float] = []
    try:
        await asyncio.gather(*(replica.ready() for replica in replicas))
        send_now = subprocess.run(
            [baton_command(), "checkin", "send-now", "--team", "Fanout"],
            env={k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "BATON_"))}
            | {"DATABASE_URL": database_url, "BATON_SECRET_KEY": SECRET},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if send_now.returncode != 0:
            raise RuntimeError(send_now.stderr)
        await until(lambda: len(invited) >= 50, 120, "the fan-out to start")
        async with aiohttp.ClientSession() as http:

            async def reply(n: int) -> None:
                user = invited[n]  # one who has their invitation already
                before = posts_to(user)
                began = time.monotonic()
                await answer(http, replicas[n % 2].url, fake.team_id, user, "checkin")
                await until(lambda: posts_to(user) > before, 60, "a reply during the drain")
                latencies.append(time.monotonic() - began)

            replying: list[asyncio.Task[None]] = []
            while len(invited) < people * 0.9:
                replying.append(asyncio.create_task(reply(len(replying))))
                await asyncio.sleep(0.5)
            await asyncio.gather(*replying)
        await until(lambda: len(invited) >= people, people / RATE + 120, "every invitation")
        await asyncio.sleep(1.0)  # anything posted twice would arrive now
    finally:
        for replica in replicas:
            replica.stop()
        await fake.close()
    calls = fake.calls_to("chat.postMessage", ok=None)
    sent = [c for c in calls if c.ok and c.args["metadata"]["event_payload"]["key"].startswith("checkin:")]
    keys = Counter(c.args["metadata"]["event_payload"]["key"] for c in calls if c.ok)
    elapsed = max(c.at for c in sent) - min(c.at for c in sent)
    minimum = (people - 1) / CAP
    refused = sum(1 for c in calls if c.status == 429)
    return {
        "people": people,
        "cap_per_s": CAP,
        "baton_rate_per_s": RATE,
        "seconds": round(elapsed, 2),
        "theoretical_minimum_s": round(minimum, 2),
        "ratio": round(elapsed / minimum, 3),
        "aim": "<= 1.05",
        "posts_refused_429": refused,
        "refused_share": round(refused / max(1, len(calls)), 4),
        "refused_aim": "<= 0.01",
        "busiest_second": max(fake.per_second.values()),
        "duplicates": sum(n - 1 for n in keys.values() if n > 1),
        "lost": people - sum(1 for key in keys if key.startswith("checkin:")),
        "replies": len(latencies),
        "reply_p50_s": _percentile(latencies, 0.5),
        "reply_p99_s": _percentile(latencies, 0.99),
        "reply_aim": "p99 <= 2 s",
    }


async def main(args: Any) -> dict[str, Any]:
    admin = getattr(args, "postgres", None) or os.environ.get("BATON_TEST_DATABASE_URL")
    if not admin:
        return {"skipped": "needs PostgreSQL (--postgres or BATON_TEST_DATABASE_URL): replicas share it"}
    people = max(500, min(args.people, 3_000))
    with tempfile.TemporaryDirectory() as tmp:
        slack = await scratch_postgres(admin, lambda url: slack_at_limit(url, Path(tmp), people), tag="bench_limit")
    return {"slack_two_replicas": slack}
