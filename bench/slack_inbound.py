"""Slack inbound: signed DM answers through Baton's full path against a peer bot built the usual way.

Full path: HTTP → bolt's signature check → ack → identity → the engine turn
(delivery id recorded, state row-locked, the check-in answer stored, state
saved with version + 1, the next question queued in the outbox and posted)
— served by the real `serving_app(Baton.build(settings))`, as `baton serve` runs it.

Baseline — **a peer bot**, written the way a typical stand-up bot is
(`peer_bot` below, short enough to judge): a bolt `AsyncApp`; each signed DM
answer looks up the person by Slack id, loads the conversation state, stores
the answer, saves the state and posts the next question with an awaited
`chat.postMessage`, one SQLAlchemy async session and transaction per event.
Same database, same seeded people, same fake Slack (its own process), same
kind of signed requests from a load generator in a separate process (aiohttp
client, 32 at once) on loopback, in the same run.

Throughput counts until every turn has committed and its reply was posted
(not just until the acks came back); ratio = Baton / peer requests per
second, medians of the repeats; aim ≥ 2.0. Ack p99 aim ≤ 100 ms at 32
concurrent requests. Each repeat sends one answer per person to a fresh
slice of people, so every request does the same work.

Also reported: the CPU each bot's own process spends per answer (both run in
this process, one after the other; Baton's counts until its replies are posted).
On a machine whose cores are all busy, their quotient bounds the ratio.

Limit rows (no aim): a bare bolt app whose listener does nothing (the cost of
bolt and HTTP alone), and `adapter_only` — Baton with the engine turn swapped
for a no-op (what bolt, the adapter and the HTTP stack cost without the turn).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import multiprocessing
import statistics
import time
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from sqlalchemy import insert, text

from bench.common import on_both_databases, seed_people
from bench.slack_outbound import TOKEN, FakeProcess
from storage.db import Database
from storage.models import CheckinRun, DialogState, Identity

SECRET = "bench-signing-secret"
TEAM = "T0BENCH"
# Saturday noon UTC: week 47's check-in is open everywhere and nothing is due, so the scheduler stays quiet.
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
PERIOD = "2026-W47"
CLOSES = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
CONCURRENCY = 32
MAX_REQUESTS = 1000  # per repeat and side: a full-path turn costs ~20 ms of CPU here, so this bounds the run


# -- the load generator (its own process) -------------------------------------------------------


def _payload(user: str, event_id: str, text: str) -> str:
    return json.dumps(
        {
            "token": "x",
            "team_id": TEAM,
            "api_app_id": "A0BENCH",
            "event": {
                "type": "message",
                "user": user,
                "text": text,
                "ts": "1763726400.000100",
                "channel": "D" + user[1:],
                "event_ts": "1763726400.000100",
                "channel_type": "im",
            },
            "type": "event_callback",
            "event_id": event_id,
            "event_time": 1763726400,
            "authorizations": [{"team_id": TEAM, "user_id": "UBATON", "is_bot": True}],
        }
    )


async def _load(url: str, users: list[str], tag: str, concurrency: int) -> dict[str, Any]:
    import aiohttp

    bodies = [
        (f"Ev{tag}{n:06d}", _payload(user, f"Ev{tag}{n:06d}", f"Answer {n}: shipped the thing"))
        for n, user in enumerate(users)
    ]
    sent: dict[str, float] = {}
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    queue = iter(bodies)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        async def worker() -> None:
            for event_id, body in queue:
                stamp = str(int(time.time()))
                signature = "v0=" + hmac.new(SECRET.encode(), f"v0:{stamp}:{body}".encode(), hashlib.sha256).hexdigest()
                headers = {
                    "Content-Type": "application/json",
                    "X-Slack-Request-Timestamp": stamp,
                    "X-Slack-Signature": signature,
                }
                start = time.monotonic()
                sent[event_id] = start
                async with session.post(url, data=body.encode(), headers=headers) as response:
                    await response.read()
                    statuses[response.status] = statuses.get(response.status, 0) + 1
                latencies.append(time.monotonic() - start)

        begin = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        end = time.monotonic()
    return {"begin": begin, "end": end, "latencies": latencies, "sent": sent, "statuses": statuses}


def _load_process(url: str, users: list[str], tag: str, concurrency: int, pipe: Any) -> None:
    pipe.send(asyncio.run(_load(url, users, tag, concurrency)))
    pipe.close()


async def generate(url: str, users: list[str], tag: str) -> dict[str, Any]:
    """Run the load generator in a fresh process and wait for its report without blocking the loop."""
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=_load_process, args=(url, users, tag, CONCURRENCY, send), daemon=True)
    process.start()
    send.close()
    loop = asyncio.get_running_loop()
    try:
        return await asyncio.wait_for(loop.run_in_executor(None, receive.recv), 300)
    finally:
        process.join(10)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


# -- the two servers ------------------------------------------------------------------------------


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}/slack/events"


def bare_bolt(api_url: str) -> web.Application:
    """The baseline: bolt's AsyncApp with the same secret, acking every event and doing nothing else."""
    from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
    from slack_bolt.async_app import AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient

    bolt = AsyncApp(client=AsyncWebClient(token=TOKEN, base_url=api_url), signing_secret=SECRET)

    @bolt.event("message")
    async def ignore() -> None:
        return None

    async def events(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await bolt.async_dispatch(await to_bolt_request(request)))

    app = web.Application()
    app.router.add_post("/slack/events", events)
    return app


def peer_bot(api_url: str, database_url: str) -> tuple[web.Application, Any]:
    """The baseline: a stand-up bot as people write them with bolt and SQLAlchemy. Returns (app, engine)."""
    from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
    from slack_bolt.async_app import AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient
    from sqlalchemy import select
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

    from dialogs.checkin import DEFAULT_QUESTIONS
    from storage.db import normalise_url
    from storage.models import CheckinAnswer

    engine = create_async_engine(normalise_url(database_url), pool_size=10)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    bolt = AsyncApp(client=AsyncWebClient(token=TOKEN, base_url=api_url), signing_secret=SECRET)

    @bolt.event("message")
    async def answer(event: dict[str, Any], client: AsyncWebClient) -> None:
        async with sessions() as session, session.begin():
            person = await session.scalar(
                select(Identity.person_id).where(Identity.platform == "slack", Identity.external_id == event["user"])
            )
            state = await session.scalar(
                select(DialogState).where(DialogState.person_id == person, DialogState.dialog == "checkin")
            )
            if state is None:
                return
            asked = DEFAULT_QUESTIONS[state.data["i"]]
            session.add(
                CheckinAnswer(run_id=state.data["run"], question_id=asked["id"], text=event["text"], updated_at=NOW)
            )
            state.data = {**state.data, "i": state.data["i"] + 1}
            state.version += 1
            following = DEFAULT_QUESTIONS[state.data["i"]]["prompt"]
        await client.chat_postMessage(channel=event["channel"], text=following)
        answered[event["user"]] = time.monotonic()

    answered: dict[str, float] = {}

    async def events(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await bolt.async_dispatch(await to_bolt_request(request)))

    app = web.Application()
    app.router.add_post("/slack/events", events)
    app["answered"] = answered
    return app, engine


async def seed(db: Database, people: int) -> list[str]:
    """`people` people linked to Slack users, each in the middle of week 47's check-in (question 1)."""

    async def work(session) -> None:
        team, ids = await seed_people(session, people, NOW)
        from dialogs.checkin import DEFAULT_QUESTIONS

        questions = [dict(q) for q in DEFAULT_QUESTIONS]
        for start in range(0, people, 2000):
            chunk = list(enumerate(ids))[start : start + 2000]
            await session.execute(
                insert(Identity),
                [
                    {
                        "person_id": pid,
                        "platform": "slack",
                        "external_id": f"U{n:07d}",
                        "address": {"team": TEAM, "user": f"U{n:07d}", "channel": f"U{n:07d}"},
                        "updated_at": NOW,
                    }
                    for n, pid in chunk
                ],
            )
            await session.execute(
                insert(CheckinRun),
                [
                    {
                        "person_id": pid,
                        "team_id": team,
                        "period": PERIOD,
                        "questions": questions,
                        "status": "open",
                        "snoozes": 0,
                        "started_at": NOW,
                    }
                    for _, pid in chunk
                ],
            )
        runs = dict(list(await session.execute(text("SELECT person_id, id FROM checkin_run"))))
        for start in range(0, people, 2000):
            await session.execute(
                insert(DialogState),
                [
                    {
                        "person_id": pid,
                        "dialog": "checkin",
                        "state": "question",
                        "data": {"run": runs[pid], "i": 0, "closes": CLOSES.isoformat(), "period": PERIOD},
                        "prompt_id": "bench",
                        "version": 0,
                        "updated_at": NOW,
                    }
                    for pid in ids[start : start + 2000]
                ],
            )

    await db.run(work)
    return [f"U{n:07d}" for n in range(people)]


async def measure(url: str, people: int, repeat: int) -> dict[str, Any]:
    from adapters.slack import SlackAdapter
    from bot.app import Baton, serving_app
    from bot.config import load_settings
    from dialogs.engine.clock import FakeClock

    per_repeat = max(1, min(MAX_REQUESTS, people // max(1, 2 * repeat)))  # Baton's slices, then the peer's
    db = Database(url)
    try:
        await db.migrate()
        users = await seed(db, people)
    finally:
        await db.close()
    base_rps, full_rps, bare_rps, base_lat, ack_lat, turn_lat = [], [], [], [], [], []
    peer_rps, peer_lat = [], []
    peer_cpu, full_cpu = [], []  # this process's CPU seconds per answer: what each bot's own loop spends
    recorded_ok = True
    with FakeProcess() as fake:
        settings = load_settings(
            env_file=None,
            DATABASE_URL=url,
            SLACK_BOT_TOKEN=TOKEN,
            SLACK_SIGNING_SECRET=SECRET,
            SLACK_API_URL=fake.url,
            BATON_TICK_SECONDS=3600,
            # Slack would hold one workspace's replies to ~10/s; unpaced, every reply is posted while the load runs,
            # so the measured path shares the CPU with all of its deliveries (the harder case for Baton).
            BATON_SLACK_WORKSPACE_RATE=100_000,
        )
        baton = Baton.build(settings, clock=FakeClock(NOW))
        app = serving_app(baton)  # as `baton serve` runs it
        adapter = baton.adapters["slack"]
        assert isinstance(adapter, SlackAdapter)
        done: dict[str, float] = {}
        turn = adapter.turn

        async def timed_turn(inbound, token, **kwargs):
            try:
                return await turn(inbound, token, **kwargs)
            finally:
                done[inbound.event_id] = time.monotonic()

        adapter.turn = timed_turn  # type: ignore[method-assign]
        full_runner, full_url = await serve(app)
        base_runner, base_url = await serve(bare_bolt(fake.url))
        peer_app, peer_engine = peer_bot(fake.url, url)
        peer_runner, peer_url = await serve(peer_app)
        peer_users = users[repeat * per_repeat :]
        try:
            await asyncio.wait_for(adapter.synced.wait(), 30)
            await generate(full_url, users[: min(50, len(users))], "warm")  # warm-up: auth.test, caches, pools
            await generate(base_url, users[:50], "warmbase")
            await adapter.drain(60)
            for r in range(repeat):
                batch = (
                    users[r * per_repeat : (r + 1) * per_repeat]
                    if len(users) >= (r + 1) * per_repeat
                    else users[:per_repeat]
                )
                peer_batch = peer_users[r * per_repeat : (r + 1) * per_repeat]
                peer_app["answered"].clear()
                cpu = time.process_time()
                peer = await generate(peer_url, peer_batch, f"peer{r}")
                deadline = time.monotonic() + 120
                while len(peer_app["answered"]) < len(peer_batch) and time.monotonic() < deadline:
                    await asyncio.sleep(0.01)
                peer_cpu.append((time.process_time() - cpu) / len(peer_batch))
                peer_rps.append(len(peer_batch) / (max(peer_app["answered"].values()) - peer["begin"]))
                peer_lat.extend(peer["latencies"])
                recorded_ok &= len(peer_app["answered"]) == len(peer_batch)
                base = await generate(base_url, batch, f"base{r}")
                base_rps.append(len(batch) / (base["end"] - base["begin"]))
                base_lat.extend(base["latencies"])
                before = await count_answers(baton.db)
                done.clear()
                cpu = time.process_time()
                full = await generate(full_url, batch, f"full{r}")
                await adapter.drain(300)
                await baton.sender.settle()
                full_cpu.append((time.process_time() - cpu) / len(batch))
                finished = max(done.values()) if done else full["end"]
                full_rps.append(len(batch) / (finished - full["begin"]))
                ack_lat.extend(full["latencies"])
                turn_lat.extend(done[e] - t for e, t in full["sent"].items() if e in done)
                recorded = await count_answers(baton.db) - before
                recorded_ok &= (
                    recorded == len(batch)
                    and full["statuses"] == {200: len(batch)}
                    and base["statuses"] == {200: len(batch)}
                )
                handle = baton.engine.handle
                baton.engine.handle = no_turn  # type: ignore[method-assign]
                try:
                    done.clear()
                    bare = await generate(full_url, batch, f"bare{r}")
                    await adapter.drain(60)
                    bare_rps.append(len(batch) / ((max(done.values()) if done else bare["end"]) - bare["begin"]))
                finally:
                    baton.engine.handle = handle  # type: ignore[method-assign]
            await baton.sender.settle()
        finally:
            await full_runner.cleanup()
            await base_runner.cleanup()
            await peer_runner.cleanup()
            await peer_engine.dispose()
    ms = lambda v: round(v * 1000, 2)  # noqa: E731
    return {
        "people": people,
        "requests_per_repeat": per_repeat,
        "concurrency": CONCURRENCY,
        "peer_bot_rps": round(statistics.median(peer_rps)),
        "full_path_rps": round(statistics.median(full_rps)),
        "ratio": round(statistics.median(full_rps) / statistics.median(peer_rps), 2),
        "aim": ">= 2.0",
        "peer_cpu_ms_per_answer": ms(statistics.median(peer_cpu)),
        "full_cpu_ms_per_answer": ms(statistics.median(full_cpu)),
        "full_ack_p50_ms": ms(percentile(ack_lat, 0.5)),
        "full_ack_p99_ms": ms(percentile(ack_lat, 0.99)),
        "ack_aim": "p99 <= 100 ms",
        "peer_ack_p99_ms": ms(percentile(peer_lat, 0.99)),
        "limit_bare_bolt_rps": round(statistics.median(base_rps)),
        "limit_ratio_vs_bare_bolt": round(statistics.median(full_rps) / statistics.median(base_rps), 2),
        "limit_bare_bolt_ack_p99_ms": ms(percentile(base_lat, 0.99)),
        "adapter_only_rps": round(statistics.median(bare_rps)),
        "adapter_only_ratio": round(statistics.median(bare_rps) / statistics.median(base_rps), 2),
        "full_turn_p50_ms": ms(percentile(turn_lat, 0.5)),
        "full_turn_p99_ms": ms(percentile(turn_lat, 0.99)),
        "every_answer_recorded_once": recorded_ok,
    }


async def no_turn(inbound, **_: object) -> list:
    """Stands in for Engine.handle in the adapter_only run."""
    return []


async def count_answers(db: Database) -> int:
    return await db.run(lambda s: s.scalar(text("SELECT count(*) FROM checkin_answer")))


async def main(args) -> dict[str, Any]:
    people = max(100, min(args.people, 50_000))
    repeat = max(1, min(args.repeat, 5))
    return await on_both_databases(args, lambda url: measure(url, people, repeat), tag="bench_slack_in")
