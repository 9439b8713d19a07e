"""Outlook's automatic replies through Microsoft Graph (optional): away days from a fake Graph on loopback,
with a Graph token from the same credential the bot sends with; only the days are kept."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from adapters.teams.connector import BotToken, Connector
from adapters.teams.outofoffice import GRAPH, Forbidden, OutOfOffice, Replies, away_days, parse
from storage.models import Identity, Leave
from tests.fakes.graph import FakeGraph, when
from tests.fakes.teams_connector import App, FakeConnector
from tests.harness import Rig
from tests.test_teams_credentials import APP_ID, TENANT, options

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)  # the rig's clock: Friday


@pytest.fixture
async def fakes() -> AsyncIterator[tuple[FakeConnector, FakeGraph]]:
    connector = await FakeConnector().start()
    connector.register(App(APP_ID, TENANT, secret="s3cret"))
    graph = await FakeGraph(token=f"{connector.access_token}-for-{GRAPH}/.default").start()
    yield connector, graph
    await graph.stop()
    await connector.stop()


async def reader(rig: Rig, connector: FakeConnector, graph: FakeGraph) -> tuple[OutOfOffice, Connector]:
    teams = options(
        connector,
        CLIENTID=APP_ID,
        CLIENTSECRET="s3cret",
        TENANTID=TENANT,
        AUTHORITY=f"{connector.url}{TENANT}",
        BATON_TEAMS_OUT_OF_OFFICE="1",
        BATON_GRAPH_URL=graph.url,
    )
    assert teams.out_of_office and teams.graph_url == graph.url
    client = Connector(teams, teams.credential())
    token = BotToken(client.token.credential, client.session, resource=GRAPH)
    return OutOfOffice(rig.db, rig.clock, token, client.session, teams.graph_url), client


async def on_teams(rig: Rig, **aad: str) -> None:
    """Teams identities for demo people (by first name), with their Azure AD object ids."""

    async def work(session):
        for first, object_id in aad.items():
            person = rig.people[f"{first}@demo.baton"]
            session.add(
                Identity(
                    person_id=person.id,
                    platform="teams",
                    external_id=object_id,
                    address={"user": {"id": f"29:{first}", "aadObjectId": object_id}, "serviceUrl": "x"},
                    updated_at=NOW,
                )
            )

    await rig.db.run(work)


async def outlook_days(rig: Rig) -> dict[int, list[tuple[date, date]]]:
    async def read(session):
        rows = await session.execute(select(Leave).where(Leave.source == "outlook").order_by(Leave.start))
        found: dict[int, list[tuple[date, date]]] = {}
        for leave in rows.scalars():
            found.setdefault(leave.person_id, []).append((leave.start, leave.end))
        return found

    return await rig.db.run(read)


async def test_scheduled_and_always_on_replies_become_away_days_and_disabled_ones_withdraw_them(
    rig: Rig, fakes: tuple[FakeConnector, FakeGraph]
) -> None:
    connector, graph = fakes
    await on_teams(rig, arjun="aad-arjun", tom="aad-tom", lucia="aad-lucia", aiko="aad-aiko")
    graph.replies = {
        # Kolkata: from Monday 07 Dec 00:00 to Friday 11 Dec 08:00 local (before 09:00: Friday is free)
        "aad-arjun": {
            "status": "scheduled",
            "scheduledStartDateTime": when(datetime(2026, 12, 6, 18, 30, tzinfo=UTC)),
            "scheduledEndDateTime": when(datetime(2026, 12, 11, 2, 30, tzinfo=UTC)),
        },
        "aad-tom": {"status": "alwaysEnabled"},
        "aad-lucia": {"status": "disabled"},
        # aad-aiko has no mailbox: 404, skipped
    }
    ooo, client = await reader(rig, connector, graph)
    try:
        counts = await ooo.read_all()
    finally:
        await client.close()
    assert counts == {"read": 3, "changed": 2, "no_mailbox": 1}
    arjun, tom = rig.people["arjun@demo.baton"], rig.people["tom@demo.baton"]
    assert await outlook_days(rig) == {arjun.id: [(date(2026, 12, 7), date(2026, 12, 10))], tom.id: [(NOW.date(),) * 2]}
    # One Graph token, asked for Graph's scope with the bot's own credential; asked in UTC.
    assert [r["scope"] for r in connector.token_requests] == [f"{GRAPH}/.default"]
    assert {prefer for _, prefer in graph.requests} == {'outlook.timezone="UTC"'}
    # Only days are kept: the reply's text is nowhere in the database.
    assert "Away</p>" not in str(await rig.db.run(lambda s: s.execute(select(Leave)))).__repr__()

    # Tom turns them off: from today on he is no longer away; Arjun's schedule is cancelled too.
    graph.replies["aad-tom"] = {"status": "disabled"}
    graph.replies["aad-arjun"] = {"status": "disabled"}
    ooo, client = await reader(rig, connector, graph)
    try:
        await ooo.read_all()
    finally:
        await client.close()
    assert await outlook_days(rig) == {}

    # `leave` shows where an away day came from.
    graph.replies["aad-arjun"] = {"status": "alwaysEnabled"}
    ooo, client = await reader(rig, connector, graph)
    try:
        await ooo.read_all()
    finally:
        await client.close()
    chat = rig.chat("arjun@demo.baton")
    await chat.send("leave")
    assert "your Outlook automatic replies" in chat.expect("away on these days").text


async def test_a_missing_permission_is_refused_clearly_and_changes_nothing(
    rig: Rig, fakes: tuple[FakeConnector, FakeGraph], caplog: pytest.LogCaptureFixture
) -> None:
    connector, graph = fakes
    await on_teams(rig, arjun="aad-arjun")
    graph.replies = {"aad-arjun": {"status": "alwaysEnabled"}}
    graph.forbidden = True
    ooo, client = await reader(rig, connector, graph)
    try:
        with pytest.raises(Forbidden):
            await ooo.read_all()
        ooo.start()  # the loop logs what to grant, once, and stops
        for _ in range(50):
            if ooo.stopped_for:
                break
            await __import__("asyncio").sleep(0.02)
        await ooo.stop()
    finally:
        await client.close()
    assert ooo.stopped_for == "forbidden"
    assert "MailboxSettings.Read" in caplog.text and "s3cret" not in caplog.text
    assert await outlook_days(rig) == {}


def test_graphs_wire_format_reads_safely() -> None:
    assert parse({"status": "scheduled", "scheduledStartDateTime": {"dateTime": "garbage"}}) == Replies("disabled")
    assert parse(["not", "a", "dict"]) == Replies("disabled")
    assert parse({"status": "somethingNew"}) == Replies("disabled")
    start, end = datetime(2026, 12, 21, 0, 0, tzinfo=UTC), datetime(2027, 1, 4, 9, 0, tzinfo=UTC)
    replies = parse({"status": "scheduled", "scheduledStartDateTime": when(start), "scheduledEndDateTime": when(end)})
    assert replies == Replies("scheduled", start, end)
    # In Berlin the replies end at 10:00 on 4 January: that day is away too; in UTC-10 they end at 23:00 on the 3rd.
    assert away_days(replies, "Europe/Berlin", NOW) == (date(2026, 12, 21), date(2027, 1, 4))
    assert away_days(replies, "Pacific/Honolulu", NOW) == (date(2026, 12, 20), date(2027, 1, 3))
    # Replies that ended yesterday say nothing about today.
    past = Replies("scheduled", NOW - timedelta(days=5), NOW - timedelta(days=1))
    assert away_days(past, "UTC", NOW) is None
