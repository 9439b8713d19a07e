"""Teams turn: Baton's whole Teams path against a stock Agents SDK echo agent, same run, same machine.

Each contender runs as its own server process on a loopback port, in
emulator mode (no authentication) for both:

- **baton**: `serving_app(Baton.build(settings))` (as `baton serve` runs it) with BATON_TEAMS_EMULATOR=1;
  a message is translated, runs a dialog turn (`help`: the state is saved
  with a new version, the reply queued in the outbox, all in one
  transaction) and the outbox sender delivers the rendered Adaptive Card.
- **stock**: the Microsoft 365 Agents SDK's Python quick start
  (`CloudAdapter` + `AgentApplication` with an echo handler, served by the
  SDK's aiohttp host and JWT middleware, anonymous), which replies through
  the connector client it builds per turn.

This process is the load generator and the fake Bot Connector both replies
go to. Closed loop: `users` virtual users, each in its own conversation,
send a message, wait until the bot's reply reaches the connector, and send
the next; `messages` are timed after a warm-up.

Teams allows a bot 8 messages per 2 s in one conversation (and 60 per 30 s),
and Baton paces its sends to stay inside that; the echo agent does not pace
at all (real Teams would answer it with 429s). Each virtual user's closed
loop wants its next reply as soon as the last arrived, so when Baton is fast
every conversation runs into that window: at most 4 replies a second per
user, 512 a second for 128 users, and about 87% of it in a run this short
(the first 8 replies of each conversation go at once, then one every 250 ms,
which is the e2e p50 of ~265 ms). That is the floor of ~445 messages/s the
earlier runs found on both databases: Teams' own limit, which Baton must
keep, not a poll or batching interval. Rates near 4 × users measure Teams'
limit, not Baton; server CPU per message is the comparable figure. The
benchmark also runs with 32 users, reported as `paced_32_users`, to show the
limit at work. Reported per contender: messages per second, end-to-end
latency (request sent → reply received at the connector) p50/p99, HTTP
answer latency p50/p99 and the server process's CPU time per message.
`ratio_cpu` is the stock agent's CPU per message over Baton's (aim >= 5);
`ratio_rate` is Baton's rate over the stock agent's. Counts are bounded;
nothing here is a timed test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import socket
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bench.common import on_both_databases

ROOT = Path(__file__).resolve().parent.parent
TENANTS = 16
BOT_ID = "28:bench-baton"


# -- the fake Bot Connector and the load generator (this process) --------------------------------------


class Connector:
    """Answers `POST /v3/conversations/{id}/activities[/{replyTo}]` and tells the waiting user its reply came."""

    def __init__(self) -> None:
        self.waiting: dict[str, asyncio.Future[float]] = {}
        self.received = 0
        self.unexpected = 0
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v3/conversations/{cid}/activities", self._activity)
        app.router.add_post("/v3/conversations/{cid}/activities/{aid}", self._activity)
        app.router.add_get("/v3/conversations/{cid}/members/{mid}", self._member)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _activity(self, request: web.Request) -> web.Response:
        await request.read()
        arrived = time.perf_counter()
        self.received += 1
        waiter = self.waiting.pop(request.match_info["cid"], None)
        if waiter is not None and not waiter.done():
            waiter.set_result(arrived)
        else:
            self.unexpected += 1
        return web.json_response({"id": f"r{self.received}"}, status=201)

    async def _member(self, request: web.Request) -> web.Response:
        user = request.match_info["mid"]
        number = user.rsplit("-", 1)[-1]
        return web.json_response({"id": user, "name": f"Bench {number}", "email": f"bench{number}@bench.baton"})


def message(connector: Connector, user: int, serial: int) -> dict[str, Any]:
    """A Teams-shaped personal-chat message from bench user `user`."""
    return {
        "type": "message",
        "id": f"m-{user}-{serial}",
        "text": "help",
        "textFormat": "plain",
        "timestamp": "2026-11-20T09:00:00.000Z",
        "localTimezone": "Europe/Berlin",
        "locale": "en-US",
        "channelId": "msteams",
        "serviceUrl": connector.url,
        "from": {"id": f"29:bench-{user}", "name": f"Bench {user}", "aadObjectId": f"aad-bench-{user}"},
        "recipient": {"id": BOT_ID, "name": "Baton"},
        "conversation": {
            "conversationType": "personal",
            "tenantId": f"tenant-{user % TENANTS}",
            "id": f"a:bench-{user}",
        },
        "channelData": {"tenant": {"id": f"tenant-{user % TENANTS}"}},
    }


async def load(
    base_url: str, connector: Connector, *, users: int, warmup: int, messages: int, pid: int
) -> dict[str, Any]:
    """Closed-loop load; returns rate, latencies and the server's CPU per message for the timed part."""
    total = warmup + messages
    issued = 0
    e2e: list[float] = []
    http: list[float] = []
    marks: dict[str, float] = {}
    errors = 0

    async def user(number: int, session: aiohttp.ClientSession) -> None:
        nonlocal issued, errors
        serial = 0
        while issued < total:
            issued += 1
            index = issued
            if index == warmup + 1:
                marks["start"], marks["cpu"] = time.perf_counter(), cpu_seconds(pid)
            serial += 1
            body = json.dumps(message(connector, number, serial)).encode()
            waiter = asyncio.get_running_loop().create_future()
            connector.waiting[f"a:bench-{number}"] = waiter
            sent = time.perf_counter()
            async with session.post(
                f"{base_url}/api/messages", data=body, headers={"Content-Type": "application/json"}
            ) as response:
                await response.read()
                answered = time.perf_counter()
                ok = response.status in (200, 201, 202)
            if not ok:
                errors += 1
                connector.waiting.pop(f"a:bench-{number}", None)
                continue
            try:
                arrived = await asyncio.wait_for(waiter, 30)
            except TimeoutError:
                errors += 1
                continue
            if index > warmup:
                http.append(answered - sent)
                e2e.append(arrived - sent)
                marks["end"] = max(marks.get("end", 0.0), arrived)

    connector_limit = aiohttp.TCPConnector(limit=users + 4)
    async with aiohttp.ClientSession(connector=connector_limit) as session:
        await asyncio.gather(*(user(n, session) for n in range(users)))
    cpu = cpu_seconds(pid) - marks["cpu"]
    elapsed = marks["end"] - marks["start"]
    return {
        "messages": len(e2e),
        "errors": errors,
        "rate_per_s": round(len(e2e) / elapsed, 1),
        "e2e_p50_ms": round(percentile(e2e, 50) * 1000, 1),
        "e2e_p99_ms": round(percentile(e2e, 99) * 1000, 1),
        "http_p50_ms": round(percentile(http, 50) * 1000, 1),
        "http_p99_ms": round(percentile(http, 99) * 1000, 1),
        "server_cpu_ms_per_message": round(cpu / max(1, len(e2e)) * 1000, 2),
    }


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- running the contenders ------------------------------------------------------------------------


async def seed(url: str, users: int, connector: Connector) -> None:
    """People and their Teams identities (references pointing at the fake connector), as after installation."""
    from sqlalchemy import insert, text

    from adapters.teams.activities import reference_of
    from storage.db import Database
    from storage.models import Identity, Person

    db = Database(url)
    try:
        await db.migrate()
        now = datetime.now(UTC)

        async def work(session) -> None:
            await session.execute(
                insert(Person),
                [
                    {
                        "email": f"bench{n}@bench.baton",
                        "name": f"Bench {n}",
                        "timezone": "Europe/Berlin",
                        "created_at": now,
                    }
                    for n in range(users)
                ],
            )
            ids = [r[0] for r in await session.execute(text("SELECT id FROM person ORDER BY id"))]
            await session.execute(
                insert(Identity),
                [
                    {
                        "person_id": ids[n],
                        "platform": "teams",
                        "external_id": f"aad-bench-{n}",
                        "address": reference_of(message(connector, n, 0)),
                        "updated_at": now,
                    }
                    for n in range(users)
                ],
            )

        await db.run(work)
    finally:
        await db.close()


async def contender(
    kind: str, connector: Connector, *, users: int, warmup: int, messages: int, database: str | None
) -> dict[str, Any]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BATON_LOG_LEVEL": "WARNING"}
    for name in (
        "MICROSOFT_APP_ID",
        "MICROSOFT_APP_PASSWORD",
        "MICROSOFT_APP_TENANT_ID",
        "SLACK_BOT_TOKEN",
        "SLACK_SIGNING_SECRET",
        "SLACK_APP_TOKEN",
        "SLACK_CLIENT_ID",
    ):
        env.pop(name, None)
    command = [sys.executable, "-m", "bench.teams_turn", "serve", kind, "--port", str(port)]
    if database:
        command += ["--database", database]
    process = await asyncio.create_subprocess_exec(*command, cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE)
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 60)
        if line.strip() != b"READY":
            raise RuntimeError(f"{kind} server did not start: {line!r}")
        result = await load(
            f"http://127.0.0.1:{port}", connector, users=users, warmup=warmup, messages=messages, pid=process.pid
        )
    finally:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 15)
        except TimeoutError:
            process.kill()
            await process.wait()
    return result


async def engine_floor(url: str, users: int, turns: int) -> dict[str, Any]:
    """Baton's engine and outbox alone, in-process, `users` at once, for the same message: the cost under the adapter."""
    import uuid

    from bot.core import Core
    from dialogs import all_dialogs
    from dialogs.engine.messages import Inbound, Sender
    from dialogs.engine.sealing import Sealer
    from storage.db import Database

    class Drop:
        channel = "teams"

        def limits(self, address: Any) -> None:
            return None

        async def deliver(self, message: Any, pace: Any = None) -> None:
            return None

    db = Database(url)
    try:
        core = Core.assemble(db, all_dialogs(), sealer=Sealer.ephemeral(), deliveries=[Drop()])
        engine = core.engine

        async def user(number: int) -> None:
            for _ in range(turns // users):
                inbound = Inbound(
                    Sender("teams", f"aad-bench-{number}"), {"serviceUrl": "x"}, text="help", event_id=uuid.uuid4().hex
                )
                await engine.handle(inbound)

        start_cpu, start = time.process_time(), time.perf_counter()
        await asyncio.gather(*(user(n) for n in range(users)))
        await core.sender.settle()
        turns = turns // users * users
        return {
            "turns": turns,
            "cpu_ms_per_turn": round((time.process_time() - start_cpu) / turns * 1000, 2),
            "wall_ms_per_turn": round((time.perf_counter() - start) / turns * 1000, 2),
        }
    finally:
        await db.close()


async def run_on(
    url: str, args: Any, connector: Connector, users: int, warmup: int, messages: int, stock: dict[str, Any]
) -> dict[str, Any]:
    await seed(url, users, connector)
    baton = await contender("baton", connector, users=users, warmup=warmup, messages=messages, database=url)
    floor = await engine_floor(url, users, min(400, messages))
    return {
        "baton": baton,
        "ratio_rate": round(baton["rate_per_s"] / stock["rate_per_s"], 2),
        "ratio_cpu": round(stock["server_cpu_ms_per_message"] / baton["server_cpu_ms_per_message"], 2),
        "aim": "ratio_cpu >= 5 (Baton's CPU per message at most 1/5 of the stock agent's)",
        "engine_and_outbox_alone": floor,
    }


async def main(args: Any) -> dict[str, Any]:
    users = int(getattr(args, "teams_users", 128))
    messages = int(getattr(args, "teams_messages", 1600))
    connector = Connector()
    await connector.start()
    try:
        results = await compare(args, connector, users, messages)
        if users > 32:
            paced = await compare(args, connector, 32, 800, postgres=False)
            results["paced_32_users"] = {
                "stock_rate_per_s": paced["stock_echo_bot"]["rate_per_s"],
                "baton_sqlite_rate_per_s": paced["sqlite"]["baton"]["rate_per_s"],
                "ratio_rate": paced["sqlite"]["ratio_rate"],
                "note": "each conversation at Teams' limit of 8 messages per 2 s, which Baton keeps and the echo agent ignores",
            }
        results["unexpected_replies"] = connector.unexpected
        return results
    finally:
        await connector.stop()


async def compare(
    args: Any, connector: Connector, users: int, messages: int, *, postgres: bool = True
) -> dict[str, Any]:
    """The stock bot, then Baton on SQLite (and PostgreSQL), with `users` closed-loop users."""
    warmup = 2 * users
    stock = await contender("stock", connector, users=users, warmup=warmup, messages=messages, database=None)
    both = await on_both_databases(
        args,
        lambda url: run_on(url, args, connector, users, warmup, messages, stock),
        tag="bench_teams",
        postgres=postgres,
    )
    return {"users": users, "stock_echo_bot": stock, **both}


# -- the servers (child processes) -----------------------------------------------------------------


def serve_stock(port: int) -> None:
    """The Microsoft 365 Agents SDK's Python quick start (an echo agent), unchanged in shape: configuration from
    the environment, MsalConnectionManager, CloudAdapter, AgentApplication with its handlers, and the aiohttp host
    with the SDK's JWT middleware. Anonymous, like Baton's emulator mode: no app id, ANONYMOUS_ALLOWED."""
    from microsoft_agents.activity import load_configuration_from_env
    from microsoft_agents.authentication.msal import MsalConnectionManager
    from microsoft_agents.hosting.aiohttp import CloudAdapter, jwt_authorization_middleware, start_agent_process
    from microsoft_agents.hosting.core import AgentApplication, Authorization, MemoryStorage, TurnContext, TurnState

    environ = {**os.environ, "CONNECTIONS__SERVICE_CONNECTION__SETTINGS__ANONYMOUS_ALLOWED": "True"}
    # Without an app id the SDK warns on every turn; a deployment would quiet it, and so does Baton (bot/logs.py).
    logging.getLogger("microsoft_agents").setLevel(logging.ERROR)
    agents_sdk_config = load_configuration_from_env(environ)
    storage = MemoryStorage()
    connection_manager = MsalConnectionManager(**agents_sdk_config)
    adapter = CloudAdapter(connection_manager=connection_manager)
    authorization = Authorization(storage, connection_manager, **agents_sdk_config)
    agent_app = AgentApplication[TurnState](
        storage=storage, adapter=adapter, authorization=authorization, **agents_sdk_config
    )

    @agent_app.conversation_update("membersAdded")
    async def on_members_added(context: TurnContext, _state: TurnState) -> None:
        await context.send_activity("Welcome to the empty agent sample!")

    @agent_app.activity("message")
    async def on_message(context: TurnContext, _state: TurnState) -> None:
        await context.send_activity(f"you said: {context.activity.text}")

    async def entry_point(request: web.Request) -> web.Response:
        return await start_agent_process(request, request.app["agent_app"], request.app["adapter"])

    app = web.Application(middlewares=[jwt_authorization_middleware])
    app.router.add_post("/api/messages", entry_point)
    app["agent_configuration"] = connection_manager.get_default_connection_configuration()
    app["agent_app"] = agent_app
    app["adapter"] = agent_app.adapter
    _run(app, port)


def serve_baton(port: int, database: str) -> None:
    from bot.app import Baton, serving_app
    from bot.config import load_settings

    settings = load_settings(
        env_file=None,
        DATABASE_URL=database,
        BATON_TEAMS_EMULATOR=True,
        BATON_TICK_SECONDS=3600,
        BATON_LOG_LEVEL="WARNING",
    )
    os.environ.setdefault("BATON_TEAMS_TENANT_RATE", "50")
    _run(serving_app(Baton.build(settings)), port)  # as `baton serve` runs it


def _run(app: web.Application, port: int) -> None:
    """Serve `app` on loopback, print READY, stop cleanly on SIGTERM."""
    import logging
    import signal

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    async def start() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        print("READY", flush=True)
        try:
            await stop.wait()
        finally:
            await runner.cleanup()

    asyncio.run(start())


def _cli() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.teams_turn")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run one contender's server (used by the benchmark)")
    serve.add_argument("kind", choices=["baton", "stock"])
    serve.add_argument("--port", type=int, required=True)
    serve.add_argument("--database")
    run = sub.add_parser("run", help="run the benchmark alone")
    run.add_argument("--teams-users", type=int, default=128)
    run.add_argument("--teams-messages", type=int, default=1600)
    run.add_argument("--postgres", default=None)
    args = parser.parse_args()
    if args.command == "serve":
        if args.kind == "stock":
            serve_stock(args.port)
        else:
            serve_baton(args.port, args.database)
        return
    print(json.dumps(asyncio.run(main(args)), indent=2))


if __name__ == "__main__":
    _cli()
