"""Watching Baton: /metrics after a scripted day, JSON log lines without private text, readiness that means it.

Real parts: Baton's aiohttp server on a loopback port, the fake Slack Web API
(429s and permanent errors in Slack's wire format), both databases.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.logs import configure
from dialogs.engine.clock import FakeClock
from dialogs.engine.messages import Reply
from storage import queries
from storage.db import Database
from tests.fakes.slack_api import FakeSlack
from tests.test_slack import TEAM, SlackRig, clock, dm, fake, start_rig  # noqa: F401 - fixtures

PRIVATE = ("ANSWER-TEXT-31", "REPLY-TEXT-57")


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(sample name, sorted labels): value} from a Prometheus text exposition."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def scrape(rig: SlackRig, **headers: str) -> tuple[int, str]:
    async with rig.http.get("/metrics", headers=headers) as response:
        return response.status, await response.text()


async def queue(rig: SlackRig, key: str, user: str, text: str) -> None:
    now = rig.clock.now()
    await rig.db.run(
        lambda s: queries.enqueue(
            s,
            key=key,
            person_id=None,
            channel="slack",
            address={"team": TEAM, "channel": user, "user": user},
            payload=Reply(text).to_dict(),
            due_at=now,
            now=now,
        )
    )
    rig.baton.sender.wake()


async def wait_for(condition: Any, timeout: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


@pytest.fixture
async def rig(db: Database, database_url: str, fake: FakeSlack, clock: FakeClock):  # noqa: F811
    async for value in start_rig(db, database_url, fake, clock):
        yield value


async def test_metrics_after_a_scripted_day(rig: SlackRig) -> None:
    for n, user in enumerate(("U0MAYA", "U0TOM", "U0AIKO")):  # three turns, each answered in the DM
        status, _ = await rig.event(dm(user, "help", f"Ev0MET{n:04d}"))
        assert status == 200
        await rig.wait_post(user, "what I can do")
    rig.fake.rate_limit("chat.postMessage", 1, retry_after=1)  # the next post meets a 429 …
    await queue(rig, "met:429", "U0LATE", "after a wait")
    rig.fake.fail("U0GONE", "account_inactive")  # … and one person's DM is gone for good
    await queue(rig, "met:gone", "U0GONE", "never arrives")

    def count(found: dict, outcome: str) -> float:
        return found.get(("baton_deliveries_total", (("channel", "slack"), ("outcome", outcome))), 0)

    async def settled() -> bool:
        rig.clock.advance(seconds=2)  # past the Retry-After
        rig.baton.sender.wake()
        if not rig.fake.calls_to("chat.postMessage", ok=None) or not any(
            c.args.get("channel") == "U0LATE" for c in rig.fake.calls_to("chat.postMessage", ok=True)
        ):
            return False
        # The counters move a moment after the fake has answered (once CI saw 3 sent here, not 4): wait for them.
        found = samples((await scrape(rig))[1])
        return count(found, "sent") >= 4 and count(found, "failed") >= 1

    await wait_for(settled)
    status, text = await scrape(rig)
    assert status == 200
    found = samples(text)
    slack = functools.partial(count, found)
    assert slack("sent") >= 4  # three replies and the post after the 429
    assert slack("rate_limited") == 1
    assert slack("failed") == 1
    assert found[("baton_delivery_failures_total", (("channel", "slack"), ("reason", "account_inactive")))] == 1
    assert found[("baton_turn_seconds_count", ())] >= 3
    assert found[("baton_turn_batch_size_count", ())] >= 1
    assert found[("baton_outbox_messages", (("channel", "slack"), ("state", "failed")))] == 1
    assert found[("baton_outbox_messages", (("channel", "slack"), ("state", "sent")))] >= 4
    assert found[("baton_outbox_oldest_due_seconds", (("channel", "slack"),))] == 0
    assert ("baton_scheduler_lag_seconds", ()) in found and ("baton_database_errors_total", ()) not in found
    for secret in ("help", "after a wait", "never arrives", "U0GONE", "maya"):
        assert secret not in text.replace("# HELP", "")  # labels carry channels and codes, not ids or text


async def test_metrics_are_not_public(rig: SlackRig) -> None:
    status, text = await scrape(rig, **{"X-Forwarded-For": "203.0.113.9"})  # came through a proxy
    assert status == 403 and "BATON_METRICS_TOKEN" in text


async def test_with_a_token_metrics_need_it(db: Database, database_url: str, fake: FakeSlack, clock: FakeClock) -> None:  # noqa: F811
    async for rig in start_rig(db, database_url, fake, clock, BATON_METRICS_TOKEN="scrape-me-please"):
        assert (await scrape(rig))[0] == 403
        assert (await scrape(rig, Authorization="Bearer wrong"))[0] == 403
        status, text = await scrape(rig, Authorization="Bearer scrape-me-please")
        assert status == 200 and "baton_deliveries" in text


async def test_readiness_fails_when_the_outbox_sender_stops(rig: SlackRig) -> None:
    async with rig.http.get("/readyz") as response:
        assert response.status == 200
    sender = next(t for t in rig.baton.tasks if t.get_name() == "outbox-sender")
    sender.cancel()
    await asyncio.gather(sender, return_exceptions=True)
    async with rig.http.get("/readyz") as response:
        assert response.status == 503
        assert "outbox sender" in (await response.json())["reason"]


async def test_readiness_fails_while_socket_mode_is_disconnected(
    db: Database,
    database_url: str,
    fake: FakeSlack,  # noqa: F811
    clock: FakeClock,  # noqa: F811
) -> None:
    async for rig in start_rig(
        db, database_url, fake, clock, SLACK_APP_TOKEN=fake.app_token, SLACK_SIGNING_SECRET=None
    ):
        await asyncio.wait_for(fake.socket_connected.wait(), 5)
        async with rig.http.get("/readyz") as response:
            assert response.status == 200
        await rig.adapter.socket_handler.client.disconnect()  # the connection drops (Slack restarts sockets often)
        async with rig.http.get("/readyz") as response:
            assert response.status == 503
            assert "Socket Mode" in (await response.json())["reason"]


async def test_json_log_lines_parse_and_carry_no_private_text(rig: SlackRig, capfd: pytest.CaptureFixture[str]) -> None:
    configure("DEBUG", "json")
    try:
        await rig.event(dm("U0MAYA", f"remember {PRIVATE[0]}", "Ev0JSON0001"))
        await rig.wait_post("U0MAYA", "didn't understand")
        rig.fake.fail("U0TOM", "account_inactive")
        await queue(rig, "json:1", "U0TOM", PRIVATE[1])
        await rig.fake.wait_for(lambda: rig.fake.calls_to("chat.postMessage", ok=False))
        await rig.settle()
        logging.getLogger("bot.outbox").warning("marker line with ünïcode")
    finally:
        logging.getLogger().handlers.clear()
    lines = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    records = [json.loads(line) for line in lines if line.startswith("{")]
    assert records and all({"time", "level", "logger", "message"} <= set(r) for r in records)
    assert any(r["message"] == "marker line with ünïcode" for r in records)
    assert any("account_inactive" in r["message"] for r in records)  # the log is not simply empty
    for line in lines:
        for secret in PRIVATE:
            assert secret not in line


async def test_apscheduler_does_not_log_every_tick(caplog: pytest.LogCaptureFixture) -> None:
    configure("INFO", "text")
    try:
        assert not logging.getLogger("apscheduler.executors.default").isEnabledFor(logging.INFO)
        assert not logging.getLogger("aiohttp.access").isEnabledFor(logging.INFO)
    finally:
        logging.getLogger().handlers.clear()


def test_baton_says_its_version() -> None:
    from importlib.metadata import version

    from click.testing import CliRunner

    from bot.cli import main

    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"baton {version('baton')}"


async def test_stopping_the_scheduler_ends_a_job_still_running(db: Database) -> None:
    """APScheduler's shutdown leaves a running job alone; one left mid-transaction outlived the database it
    wrote to (a CI run once found a SQLite file still locked after the server had stopped)."""
    from bot.scheduler import Scheduler
    from dialogs.engine.clock import SystemClock
    from dialogs.engine.sealing import Sealer
    from dialogs.services.rhythm import Conductor

    class Stuck:
        def __init__(self) -> None:
            self.started = asyncio.Event()

        async def run_once(self) -> dict[str, int]:
            self.started.set()
            await asyncio.Event().wait()  # a round that never finishes by itself
            return {}

    stuck = Stuck()
    scheduler = Scheduler(
        Conductor(db, sealer=Sealer.ephemeral()),
        SystemClock(),
        interval=3600,
        wake=lambda: None,
        calendars=stuck,  # type: ignore[arg-type]
    )
    scheduler.start()
    job = asyncio.create_task(scheduler.read_calendars())
    await asyncio.wait_for(stuck.started.wait(), 5)
    await asyncio.wait_for(scheduler.stop(), 5)
    assert job.done()
