"""Outbound at the platform's limit (issue 16): the aim that matters in production.

Two real `baton serve` replicas on one PostgreSQL fan a check-in out to 3,000
people (`baton checkin send-now`) through the fake Slack Web API (its own
process, as Slack would be), which
refuses with 429 + Retry-After anything over 100 posts in a sliding second
per workspace or 3 per channel, and records when each post arrived. Baton is
configured at 98 posts per second (a little under a hard cap, so a post
woken a few milliseconds late does not tip a window over).

- **ratio** = time from the first invitation to the last / the theoretical
  minimum at the cap for every post the platform accepted meanwhile
  (invitations and the replies below: (posts - 1) / 100 s). Aim ≤ 1.05.
  `ratio_invitations_only` leaves the replies out of the minimum.
- **429s** received ≤ 1% of posts; 0 duplicates, 0 lost (by each post's
  outbox key, which travels as message metadata).
- **replies during the drain**: every half second someone who already has
  their invitation types `checkin` (a signed Events API request, to either
  replica); the time until their first question reaches Slack. Aim p99 ≤ 2 s.

The same for Teams: two replicas in emulator mode (no tokens; the fake does
not ask for them) fan out to 3,000 people through the fake Bot Connector in
its own process, which keeps Teams' documented limits (per conversation
7/1 s, 8/2 s, 60/30 s, 1,800/h; 50 per second per tenant) with 429 +
Retry-After. Baton is configured at 49 per second. Replies are message
activities to either replica.

PostgreSQL only: replicas share it (SQLite is a single-process store).
`python -m bench outbound-limit`.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import scratch_postgres
from bench.slack_outbound import TOKEN, FakeProcess
from storage.db import Database
from tests.test_faults import seed_fan_out_team
from tests.test_process import ServeProcess, send_now
from tests.test_replicas import SIGNING, answer

TEAM = "T0BATON"  # the fake's workspace
CAP = 100
RATE = 98


async def until(predicate: Any, timeout: float, what: str, every: float = 0.02) -> None:
    """Poll the async `predicate` until it is true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(every)


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

            async def invited() -> int:
                return int((await stats())["tracked"])

            try:
                await asyncio.gather(*(replica.ready() for replica in replicas))
                send_now(database_url, "Fanout")

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
    minimum = (found["posted"] - 1) / CAP  # the replies' posts share the cap with the invitations
    posts = found["posted"] + found["rate_limited"]
    return {
        "people": people,
        "posts": found["posted"],
        "cap_per_s": CAP,
        "baton_rate_per_s": RATE,
        "seconds": round(elapsed, 2),
        "theoretical_minimum_s": round(minimum, 2),
        "ratio": round(elapsed / minimum, 3),
        "aim": "<= 1.05",
        "ratio_invitations_only": round(elapsed / ((people - 1) / CAP), 3),
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


TENANT = "tenant-bench"
TENANT_CAP = 50
TENANT_RATE = 49  # BATON_TEAMS_TENANT_RATE allows at most 50


def teams_reference(service_url: str, n: int) -> dict[str, Any]:
    return {
        "user": {"id": f"29:user{n:04d}", "aadObjectId": f"aad-{n:04d}"},
        "bot": {"id": "28:baton", "name": "Baton"},
        "conversation": {"conversationType": "personal", "tenantId": TENANT, "id": f"a:conv{n:04d}"},
        "channelId": "msteams",
        "serviceUrl": service_url,
    }


async def seed_teams_team(db: Database, service_url: str, people: int) -> None:
    """A team of `people` people on Teams (each with a stored conversation reference), no quiet hours."""
    from datetime import UTC, datetime

    from sqlalchemy import insert, select

    from storage.models import Identity, Person, Team

    now = datetime.now(UTC)

    async def work(session: Any) -> None:
        team = (await session.execute(insert(Team).values(name="Fanout", created_at=now).returning(Team.id))).scalar()
        await session.execute(
            insert(Person),
            [
                {
                    "email": f"p{n:04d}@teams.bench",
                    "name": f"Person {n:04d}",
                    "timezone": "UTC",
                    "quiet_start": "00:00",
                    "quiet_end": "00:00",
                    "team_id": team,
                    "created_at": now,
                }
                for n in range(people)
            ],
        )
        ids = list((await session.execute(select(Person.id).order_by(Person.id))).scalars())
        await session.execute(
            insert(Identity),
            [
                {
                    "person_id": pid,
                    "platform": "teams",
                    "external_id": f"aad-{n:04d}",
                    "address": teams_reference(service_url, n),
                    "updated_at": now,
                }
                for n, pid in enumerate(ids)
            ],
        )

    await db.run(work)


class ConnectorProcess:
    """The fake Bot Connector in its own process, enforcing Teams' limits; `url` once started."""

    def __enter__(self) -> ConnectorProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.fakes.teams_connector", "--tenant-cap", str(TENANT_CAP)],
            cwd=Path(__file__).resolve().parent.parent,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.url = f"http://127.0.0.1:{int(self.proc.stdout.readline().strip())}/"
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(10)


async def teams_at_limit(database_url: str, workdir: Path, people: int) -> dict[str, Any]:
    latencies: list[float] = []
    with ConnectorProcess() as fake:
        db = Database(database_url)
        await db.migrate()
        await seed_teams_team(db, fake.url, people)
        await db.close()
        env = {"BATON_TEAMS_EMULATOR": "1", "BATON_TEAMS_TENANT_RATE": str(TENANT_RATE), "BATON_TICK_SECONDS": "3600"}
        replicas = [ServeProcess(database_url, workdir, **env), ServeProcess(database_url, workdir, **env)]
        async with aiohttp.ClientSession() as http:

            async def get(path: str) -> dict[str, Any]:
                async with http.get(fake.url + path) as response:
                    return dict(await response.json())

            async def reached() -> int:
                return int((await get("_stats"))["conversations"])

            async def sent_to(n: int) -> int:
                return int((await get(f"_conversation/a:conv{n:04d}"))["sent"])

            try:
                await asyncio.gather(*(replica.ready() for replica in replicas))
                send_now(database_url, "Fanout")

                async def started() -> bool:
                    return await reached() >= 50

                await until(started, 120, "the fan-out to start")

                async def reply(n: int) -> None:
                    async def invited() -> bool:
                        return await sent_to(n) >= 1

                    await until(invited, 60, "their invitation")
                    before = await sent_to(n)
                    reference = teams_reference(fake.url, n)
                    activity = {
                        "type": "message",
                        "id": f"bench{n}{time.monotonic_ns()}",
                        "text": "checkin",
                        "channelId": "msteams",
                        "serviceUrl": fake.url,
                        "from": {**reference["user"], "name": f"Person {n:04d}"},
                        "recipient": reference["bot"],
                        "conversation": reference["conversation"],
                        "channelData": {"tenant": {"id": TENANT}},
                    }
                    began = time.monotonic()
                    async with http.post(f"{replicas[n % 2].url}/api/messages", json=activity) as response:
                        assert response.status in (200, 201, 202), await response.text()

                    async def answered() -> bool:
                        return await sent_to(n) > before

                    await until(answered, 60, "a reply during the drain", every=0.01)
                    latencies.append(time.monotonic() - began)

                replying: list[asyncio.Task[None]] = []
                while await reached() < people * 0.9:
                    replying.append(asyncio.create_task(reply(len(replying))))
                    await asyncio.sleep(0.5)
                await asyncio.gather(*replying)

                async def finished() -> bool:
                    return await reached() >= people

                await until(finished, people / TENANT_RATE + 120, "every invitation", every=0.2)
                await asyncio.sleep(1.0)  # anything posted twice would arrive now
                found = await get("_stats")
            finally:
                for replica in replicas:
                    replica.stop()
    elapsed = found["last_at"] - found["first_at"]
    minimum = (found["sent"] - 1) / TENANT_CAP  # the replies share the tenant's cap with the invitations
    return {
        "people": people,
        "posts": found["sent"],
        "cap_per_s": TENANT_CAP,
        "baton_rate_per_s": TENANT_RATE,
        "seconds": round(elapsed, 2),
        "theoretical_minimum_s": round(minimum, 2),
        "ratio": round(elapsed / minimum, 3),
        "aim": "<= 1.05",
        "ratio_invitations_only": round(elapsed / ((people - 1) / TENANT_CAP), 3),
        "posts_refused_429": found["throttled"],
        "refused_share": round(found["throttled"] / max(1, found["sent"] + found["throttled"]), 4),
        "refused_aim": "<= 0.01",
        "busiest_wall_clock_second": found["busiest_second"],
        "duplicates": found["twice"],
        "lost": people - found["conversations"],
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
        teams = await scratch_postgres(admin, lambda url: teams_at_limit(url, Path(tmp), people), tag="bench_limit")
    return {"slack_two_replicas": slack, "teams_two_replicas": teams}
