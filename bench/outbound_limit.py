"""Outbound at the platform's limit (issue 16): the aim that matters in production.

Two real `baton serve` replicas on one PostgreSQL fan a check-in out to 3,000
people (`baton checkin send-now`) through the fake Slack Web API (its own
process, as Slack would be), which
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
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import scratch_postgres
from bench.slack_outbound import TOKEN, FakeProcess
from storage.db import Database
from tests.harness import SECRET
from tests.test_faults import seed_fan_out_team
from tests.test_process import ServeProcess, baton_command
from tests.test_replicas import SIGNING, answer

TEAM = "T0BATON"  # the fake's workspace
CAP = 100
RATE = 98


def _percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))], 3)


async def slack_at_limit(database_url: str, workdir: Path, people: int) -> dict[str, Any]:
    db = Database(database_url)
    await db.migrate()
    await seed_fan_out_team(db, TEAM, people)
    await db.close()
    caps = ("--workspace-cap", str(CAP), "--channel-cap", "3", "--track", "checkin:")
    latencies: list[float] = []
    with FakeProcess(*caps) as fake, tempfile.TemporaryDirectory() as _:
        env = {
            "SLACK_BOT_TOKEN": TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING,
            "SLACK_API_URL": fake.url,
            "BATON_SLACK_WORKSPACE_RATE": str(RATE),
            "BATON_TICK_SECONDS": "3600",
        }
        replicas = [ServeProcess(database_url, workdir, **env), ServeProcess(database_url, workdir, **env)]
        async with aiohttp.ClientSession() as http:

            async def stats() -> dict[str, Any]:
                return await fake.stats(http)

            async def posts_to(user: str) -> int:
                async with http.post(
                    fake.url + "_channel", data={"channel": user}, headers={"Authorization": f"Bearer {TOKEN}"}
                ) as response:
                    return int((await response.json())["posts"])

            async def until(predicate: Any, timeout: float, what: str, every: float = 0.02) -> None:
                deadline = time.monotonic() + timeout
                while not await predicate():
                    if time.monotonic() > deadline:
                        raise AssertionError(f"timed out waiting for {what}")
                    await asyncio.sleep(every)

            async def invited() -> int:
                return int((await stats())["tracked"])

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

                async def started() -> bool:
                    return await invited() >= 50

                await until(started, 120, "the fan-out to start")

                async def reply(n: int) -> None:
                    user = f"U0F{n:04d}"

                    async def invited_already() -> bool:  # their invitation arrived: they answer it
                        return await posts_to(user) >= 1

                    await until(invited_already, 60, "their invitation")
                    before = await posts_to(user)
                    began = time.monotonic()
                    await answer(http, replicas[n % 2].url, TEAM, user, "checkin")

                    async def arrived() -> bool:
                        return await posts_to(user) > before

                    await until(arrived, 60, "a reply during the drain", every=0.01)
                    latencies.append(time.monotonic() - began)

                replying: list[asyncio.Task[None]] = []
                while await invited() < people * 0.9:
                    replying.append(asyncio.create_task(reply(len(replying))))
                    await asyncio.sleep(0.5)
                await asyncio.gather(*replying)

                async def finished() -> bool:
                    return await invited() >= people

                await until(finished, people / RATE + 120, "every invitation", every=0.2)
                await asyncio.sleep(1.0)  # anything posted twice would arrive now
                found = await stats()
            finally:
                for replica in replicas:
                    replica.stop()
    elapsed = found["tracked_last_at"] - found["tracked_first_at"]
    minimum = (people - 1) / CAP
    posts = found["posted"] + found["rate_limited"]
    return {
        "people": people,
        "cap_per_s": CAP,
        "baton_rate_per_s": RATE,
        "seconds": round(elapsed, 2),
        "theoretical_minimum_s": round(minimum, 2),
        "ratio": round(elapsed / minimum, 3),
        "aim": "<= 1.05",
        "posts_refused_429": found["rate_limited"],
        "refused_share": round(found["rate_limited"] / max(1, posts), 4),
        "refused_aim": "<= 0.01",
        "busiest_wall_clock_second": found["busiest_second"],
        "duplicates": found["keys_twice"],
        "lost": people - found["tracked"],
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
