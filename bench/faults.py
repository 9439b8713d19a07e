"""Issue 23's aims, at full size: nothing lost, nothing twice, never a crash.

- **kill-9**: two `baton serve` replicas on one PostgreSQL send a 2,000-person check-in fan-out to the fake
  Slack Web API (100 posts/s); the replica holding it is killed with SIGKILL at a third and restarted.
  Aim: 0 lost, 0 duplicates on Slack.
- **restarts**: 1,000 messages from five people through a real server's web chat while every database
  connection is dropped 4 times (`pg_terminate_backend`, what a PostgreSQL restart does to clients), the
  senders resending with the same client_id on a 503 as the page does. Aim: 0 acknowledged-but-lost,
  0 stored twice, 0 questions posted twice, every loop alive.
- **inputs**: 10,000 generated inputs (odd Unicode, huge numbers, commands with random arguments, button
  presses) from five people through the engine, on each database. Aim: 0 apologies, 0 exceptions, every
  input answered, p99 reply under 1 s.

These are counts, not speed ratios: the limit is the promise itself. `python -m bench faults`.
"""

from __future__ import annotations

import os
import random
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import on_both_databases, scratch_postgres
from tests.test_input import APOLOGY, COMMANDS  # the same commands the property tests try

ODD = ("①", "²", "٣", "1e999", "NaN", "-0", "Infinity", "\u202e", "\ufeff", "💥💥", "[" * 300, "é" * 80, "2019-W01")


def generated(rng: random.Random) -> str:
    """One input as a person, an attacker or a cat on the keyboard might type it."""
    roll = rng.random()
    if roll < 0.35:
        args = [rng.choice([str(rng.randint(-(10**25), 10**25)), rng.choice(ODD), "x" * rng.randint(0, 40)])]
        return " ".join([rng.choice(COMMANDS), *args[: rng.randint(0, 1)]])
    if roll < 0.55:
        return rng.choice(ODD)
    if roll < 0.75:
        return "".join(
            chr(rng.choice([rng.randint(32, 126), rng.randint(0xA0, 0x2FFF)])) for _ in range(rng.randint(0, 60))
        )
    return str(rng.choice([rng.randint(0, 12), rng.uniform(-1e6, 1e6), rng.randint(1, 5)]))


async def inputs(url: str, count: int) -> dict[str, Any]:
    import asyncio

    from dialogs.engine.clock import FakeClock
    from storage.db import Database
    from tests.harness import Rig

    db = Database(url)
    await db.migrate()
    rig = await Rig.create(db, FakeClock(datetime(2026, 11, 20, 9, 0, tzinfo=UTC)))
    emails = ["maya@demo.baton", "tom@demo.baton", "arjun@demo.baton", "lucia@demo.baton", "aiko@demo.baton"]
    chats = [rig.chat(email) for email in emails]
    latencies: list[float] = []
    tally = {"apologies": 0, "unanswered": 0, "exceptions": 0, "presses": 0}

    async def person(index: int) -> None:
        rng = random.Random(index)
        chat = chats[index]
        for _ in range(count // len(chats)):
            began = time.perf_counter()
            try:
                prompt = chat.last_prompt
                if prompt is not None and prompt.choices and rng.random() < 0.3:
                    tally["presses"] += 1
                    await chat.press(rng.choice(prompt.choices).value, on=prompt)
                else:
                    await chat.send(generated(rng))
            except Exception:  # noqa: BLE001 - counted: the aim is zero
                tally["exceptions"] += 1
                continue
            latencies.append(time.perf_counter() - began)
            replies = chat.replies()
            tally["unanswered"] += not replies
            tally["apologies"] += sum(APOLOGY in r.text for r in replies)

    await asyncio.gather(*(person(i) for i in range(len(chats))))
    await db.close()
    latencies.sort()
    return {
        "inputs": len(latencies) + tally["exceptions"],
        **tally,
        "reply_p50_ms": round(1000 * latencies[len(latencies) // 2], 1),
        "reply_p99_ms": round(1000 * latencies[int(0.99 * (len(latencies) - 1))], 1),
        "aim": "0 apologies, 0 exceptions, 0 unanswered, p99 < 1000 ms",
    }


async def main(args: Any) -> dict[str, Any]:
    import sys

    from storage.db import Database
    from tests.test_faults import fan_out_with_a_kill, traffic_through_drops

    results: dict[str, Any] = {}
    print("-- inputs (10,000 per database)", file=sys.stderr, flush=True)
    results["inputs"] = await on_both_databases(args, lambda url: inputs(url, 10_000), tag="faults_inputs")
    admin = getattr(args, "postgres", None) or os.environ.get("BATON_TEST_DATABASE_URL")
    if not admin:
        results["kill-9"] = results["restarts"] = "skipped: needs PostgreSQL (BATON_TEST_DATABASE_URL)"
        return results

    async def kill(url: str) -> dict[str, Any]:
        db = Database(url)
        await db.migrate()
        with tempfile.TemporaryDirectory() as work:
            found = await fan_out_with_a_kill(db, url, Path(work), 2_000, rate=100)
        await db.close()
        return found | {"aim": "0 lost, 0 duplicates"}

    async def restarts(url: str) -> dict[str, Any]:
        db = Database(url)
        await db.migrate()
        with tempfile.TemporaryDirectory() as work:
            found = await traffic_through_drops(db, url, Path(work), helps=194, drop_every=0.8, drops=4)
        await db.close()
        return found | {"aim": "0 lost, 0 twice, loops alive"}

    print("-- kill -9 of one of two replicas during a 2,000-person fan-out", file=sys.stderr, flush=True)
    results["kill-9"] = await scratch_postgres(admin, kill, tag="faults_kill")
    print("-- 4 rounds of dropped connections during 1,000 messages", file=sys.stderr, flush=True)
    results["restarts"] = await scratch_postgres(admin, restarts, tag="faults_drop")
    return results
