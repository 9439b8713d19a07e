"""Goals: status against elapsed time, escalation on trends not dips, nudges that never nag, imports."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import func, select

from bot.app import Baton, create_app
from bot.config import load_settings
from bot.goalsio import create_token, import_progress
from dialogs.goals import should_escalate, status_of
from dialogs.services.rhythm import Conductor
from storage.models import Goal, GoalUpdate, OutboxMessage
from tests.harness import Chat, Rig


def goal(**kw) -> Goal:
    base = dict(
        title="Cut p95 latency",
        kind="metric",
        start_value=480,
        target_value=200,
        unit="ms",
        start_date=date(2026, 1, 1),
        due_date=date(2026, 12, 31),
        committed=True,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    return Goal(**(base | kw))


@pytest.mark.parametrize(
    ("progress", "rag"),
    [(0.50, "green"), (0.40, "green"), (0.3999, "amber"), (0.25, "amber"), (0.2499, "red"), (0.0, "red")],
)
def test_status_boundaries_against_elapsed_time(progress: float, rag: str) -> None:
    halfway = date(2026, 7, 2)  # 182 of 364 days: half the period elapsed
    assert status_of(goal(), progress, halfway).rag == rag


def test_aspirational_goals_are_judged_against_sixty_five_percent() -> None:
    at_end = date(2026, 12, 31)
    assert status_of(goal(committed=False), 0.65, at_end).rag == "green"
    assert status_of(goal(committed=True), 0.65, at_end).rag == "red"
    assert status_of(goal(committed=False), 0.40, at_end).rag == "amber"


def test_a_single_dip_never_escalates_but_a_trend_or_sustained_red_does() -> None:
    def updates(*pairs: tuple[float, float, str]) -> list[GoalUpdate]:
        return [
            GoalUpdate(goal_id=1, value=0, progress=p, expected=e, rag=r, source="t", recorded_at=datetime.now(UTC))
            for p, e, r in pairs
        ]

    assert not should_escalate(updates((0.5, 0.5, "green"), (0.1, 0.55, "red")))  # one dip
    assert not should_escalate(updates((0.5, 0.5, "green"), (0.1, 0.55, "red"), (0.6, 0.6, "green")))  # recovered
    assert should_escalate(updates((0.3, 0.4, "green"), (0.3, 0.5, "amber"), (0.3, 0.62, "amber")))  # worsening trend
    assert should_escalate(updates((0.5, 0.5, "green"), (0.1, 0.55, "red"), (0.12, 0.6, "red")))  # red twice


async def make_goal(rig: Rig, owner: str = "tom@demo.baton", **kw) -> Goal:
    person = rig.people[owner]
    fields = {
        "start_date": rig.clock.now().date(),
        "due_date": (rig.clock.now() + timedelta(days=100)).date(),
        "created_at": rig.clock.now(),
    }
    g = goal(owner_id=person.id, **(fields | kw))

    async def work(session) -> Goal:
        session.add(g)
        await session.flush()
        return g

    return await rig.db.run(work)


async def test_chat_records_progress_refuses_wrong_units_and_escalates_on_a_trend(rig: Rig) -> None:
    g = await make_goal(rig)
    tom = rig.chat("tom@demo.baton")
    await tom.send(f"goal update {g.id} 5 %")
    tom.expect("measured in ms, not %", "Nothing was recorded")
    await tom.send(f"goal update {g.id} 4800000 ms")
    tom.expect("far outside")
    maya = rig.chat("maya@demo.baton")
    for days, value in ((10, 470), (20, 465), (30, 462)):  # falling further behind each time
        rig.clock.set(datetime(2026, 11, 20, 9, tzinfo=UTC) + timedelta(days=days))
        await tom.send(f"goal update {g.id} {value}")
        tom.expect("Recorded.")
    escalation = maya.expect("has been slipping", "Cut p95 latency")
    assert escalation.choices[0].value == "tools tom@demo.baton"
    count = await rig.db.run(lambda s: s.scalar(select(func.count()).select_from(GoalUpdate)))
    assert count == 3


async def test_a_single_bad_update_does_not_reach_the_manager(rig: Rig) -> None:
    g = await make_goal(rig)
    tom, maya = rig.chat("tom@demo.baton"), rig.chat("maya@demo.baton")
    rig.clock.advance(days=50)
    await tom.send(f"goal update {g.id} 470")  # red: 4% of the way at half time
    tom.expect("red")
    maya.expect_nothing()


async def test_an_off_track_update_offers_the_1on1_and_an_on_track_one_does_not(rig: Rig) -> None:
    """Recording progress that leaves a goal amber or red offers "Discuss in our 1:1" to an owner with a
    manager; the button puts the goal on their next agenda. On track, or without a manager, no button."""
    g = await make_goal(rig)
    tom = rig.chat("tom@demo.baton")
    rig.clock.advance(days=50)
    await tom.send(f"goal update {g.id} 470")  # red: 4% of the way at half time
    red = tom.expect("Recorded.", "red")
    assert [c.value for c in red.choices] == [f"1:1 discuss goal:{g.id}"]
    await tom.send(red.choices[0].value)
    tom.expect("Added to your 1:1 with Maya")

    await tom.send(f"goal update {g.id} 275")  # half way at half time: on track
    on_track = tom.expect("Recorded.")
    assert "Discuss in our 1:1" not in [c.label for c in on_track.choices]

    halfway = {
        "start_date": (rig.clock.now() - timedelta(days=50)).date(),
        "due_date": (rig.clock.now() + timedelta(days=50)).date(),
    }
    unmanaged = await make_goal(rig, "maya@demo.baton", **halfway)
    maya = rig.chat("maya@demo.baton")
    await maya.send(f"goal update {unmanaged.id} 470")
    alone = maya.expect("Recorded.", "red")
    assert not alone.choices, "Maya has no manager: there is no 1:1 to discuss it in"


async def test_nudges_share_the_weekly_budget_with_check_ins_and_respect_quiet_hours(rig: Rig) -> None:
    await make_goal(rig, due_date=None)  # not specific: a nudge
    conductor = Conductor(rig.db, sealer=rig.sealer, budget=2)
    tom = rig.people["tom@demo.baton"]
    rig.clock.set(datetime(2026, 11, 20, 15, 0, tzinfo=UTC))  # 16:00 Berlin: check-in time
    await conductor.tick(rig.clock.now())
    rows = list(
        (
            await rig.db.run(lambda s: s.execute(select(OutboxMessage).where(OutboxMessage.person_id == tom.id)))
        ).scalars()
    )
    assert {r.kind for r in rows} == {"checkin", "nudge"} and len(rows) == 2
    rig.clock.set(datetime(2026, 11, 20, 21, 0, tzinfo=UTC))  # 22:00 Berlin: quiet hours
    await rig.db.run(lambda s: _add_goal(s, tom.id, rig.clock.now()))
    report = await conductor.tick(rig.clock.now())
    assert report.held.get("budget", 0) >= 1  # a third unsolicited message would exceed the budget
    rows = list(
        (
            await rig.db.run(lambda s: s.execute(select(OutboxMessage).where(OutboxMessage.person_id == tom.id)))
        ).scalars()
    )
    assert len([r for r in rows if r.status != "held"]) == 2
    assert [(r.kind, r.last_error) for r in rows if r.status == "held"] == [("nudge", "budget")]  # kept, with why


async def _add_goal(session, owner_id: int, now: datetime) -> None:
    session.add(goal(owner_id=owner_id, title="Another", due_date=None, start_date=now.date(), created_at=now))


async def test_a_nudge_in_quiet_hours_waits_for_the_morning_and_can_be_stopped(rig: Rig) -> None:
    g = await make_goal(rig, due_date=None)
    rig.clock.set(datetime(2026, 11, 20, 21, 0, tzinfo=UTC))  # 22:00 Berlin
    await Conductor(rig.db, sealer=rig.sealer).tick(rig.clock.now())
    row = (
        (await rig.db.run(lambda s: s.execute(select(OutboxMessage).where(OutboxMessage.kind == "nudge"))))
        .scalars()
        .one()
    )
    assert row.due_at == datetime(2026, 11, 21, 7, 0, tzinfo=UTC)  # 08:00 Berlin
    rig.clock.set(datetime(2026, 11, 21, 7, 1, tzinfo=UTC))
    await rig.sender.drain_once()
    tom = rig.chat("tom@demo.baton")
    tom._seen = 0
    # The check-in invitation waited for the morning too: both arrive as one "while you were away".
    nudge = tom.expect("has no due date yet")
    assert nudge.text.startswith("While you were away, 2 messages came in")
    labels = [c.label.split(" · ")[-1] for c in nudge.choices]
    assert labels[-4:] == ["Record progress", "Snooze a week", "Stop nudging me about this", "Discuss in our 1:1"]
    await tom.press(nudge.choices[-2].label, on=nudge)
    tom.expect("won't nudge you")
    stored = await rig.db.run(lambda s: s.get(Goal, g.id))
    assert stored.nudges_off


async def test_csv_import_keeps_nothing_from_a_file_with_a_bad_row(rig: Rig) -> None:
    g = await make_goal(rig)
    bad = f"goal_id,value,recorded_at,note\n{g.id},450,,fine\n{g.id},12 %,,wrong unit\n999,1,,no such goal\n{g.id},440,2099-01-01T00:00:00,future\n"
    count, errors = await import_progress(rig.db, bad, rig.clock.now())
    assert count == 0 and [e.split(":")[0] for e in errors] == ["line 3", "line 4", "line 5"]
    assert "not %" in errors[0] and "no goal with id 999" in errors[1] and "future" in errors[2]
    assert await rig.db.run(lambda s: s.scalar(select(func.count()).select_from(GoalUpdate))) == 0
    count, errors = await import_progress(rig.db, f"goal_id,value\n{g.id},450\n{g.id},430 ms\n", rig.clock.now())
    assert (count, errors) == (2, [])
    sources = {u.source for u in (await rig.db.run(lambda s: s.execute(select(GoalUpdate)))).scalars()}
    assert sources == {"csv"}


async def test_http_progress_needs_a_token_and_refuses_bad_values_storing_nothing(rig: Rig, database_url: str) -> None:
    g = await make_goal(rig)
    token = await create_token(rig.db, "grafana", rig.clock.now())
    app = create_app(
        Baton.build(load_settings(env_file=None, DATABASE_URL=database_url, BATON_TICK_SECONDS=3600), clock=rig.clock)
    )
    async with TestServer(app, host="127.0.0.1") as server, aiohttp.ClientSession() as http:
        url = str(server.make_url(f"/api/goals/{g.id}/progress"))
        async with http.post(url, json={"value": 400}) as r:
            assert r.status == 401
        async with http.post(url, json={"value": 400}, headers={"Authorization": "Bearer nope"}) as r:
            assert r.status == 401
        auth = {"Authorization": f"Bearer {token}"}
        async with http.post(url, json={"value": "12 %"}, headers=auth) as r:
            assert r.status == 422 and "not %" in (await r.json())["error"]
        async with http.post(url, json={"value": "NaN"}, headers=auth) as r:
            assert r.status == 422
        async with http.post(str(server.make_url("/api/goals/9999/progress")), json={"value": 1}, headers=auth) as r:
            assert r.status == 404
        assert await rig.db.run(lambda s: s.scalar(select(func.count()).select_from(GoalUpdate))) == 0
        async with http.post(url, json={"value": 340, "note": "after the cache fix"}, headers=auth) as r:
            body = await r.json()
            assert (
                r.status == 201 and body["status"] in ("green", "amber", "red") and abs(body["progress"] - 0.5) < 1e-9
            )
    (update,) = list((await rig.db.run(lambda s: s.execute(select(GoalUpdate)))).scalars())
    assert (update.source, update.value, update.note) == ("http:grafana", 340, "after the cache fix")


async def test_creating_a_goal_in_chat_offers_a_learning_goal_for_new_work(rig: Rig, chat: Chat) -> None:
    await chat.send("goal new")
    await chat.send("Launch the partner API in Japan")
    await chat.press("A number")
    await chat.send("0 to 12 partners")
    await chat.send("2027-06-30")
    await chat.press("Aspirational")
    await chat.press("Yes, it's new")
    chat.expect("Created goal #", "learning goal")
    stored = (await rig.db.run(lambda s: s.execute(select(Goal)))).scalars().one()
    assert (stored.unit, stored.target_value, stored.committed, stored.learning) == ("partners", 12, False, True)
    await chat.send("goals")
    chat.expect("Launch the partner API", "(aspirational)")
