"""The dashboard over real HTTP: sign-in by chat link, sessions, CSRF, who may see what, CSV exports.

Each test runs against the whole app (create_app) on a loopback port, on SQLite
and PostgreSQL, with the demo organisation plus a second team (Payments) and
realistic check-ins, goals, a closed 360, feedback and a tool plan.
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import select
from yarl import URL

from bot.app import Baton, create_app
from bot.config import load_settings
from dialogs.checkin import DEFAULT_QUESTIONS
from dialogs.common.anonymity import new_id
from dialogs.common.periods import Rhythm, period_of
from dialogs.engine import Engine
from dialogs.engine.clock import FakeClock
from dialogs.engine.messages import Inbound, Reply, Sender
from dialogs.services.rhythm import previous_periods
from dialogs.signin import SignInDialog
from storage.db import Database
from storage.models import (
    Answer360,
    Campaign360,
    CheckinAnswer,
    CheckinRun,
    DashboardSession,
    DashboardToken,
    FeedbackEntry,
    Goal,
    GoalUpdate,
    OutboxMessage,
    Person,
    Rater360,
    Team,
    ToolPlan,
)
from tests.conftest import free_port

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)  # a Friday morning
SCRIPT = "<script>window.pwned=1</script>"
PULSES = {"arjun": [4, 3, 3, 2], "lucia": [5, 4, 4, 4], "tom": [3, 3, 2, 2], "aiko": [4, 4, 5, 3]}


@dataclass
class Site:
    url: str
    baton: Baton
    clock: FakeClock
    engine: Engine
    ids: dict[str, int]
    campaign_id: int
    other_campaign_id: int

    async def link_for(self, who: str) -> str:
        """Ask Baton for a dashboard link in chat, as `who` (a first name), and return the link."""
        inbound = Inbound(
            Sender(platform="local", user_id=str(self.ids[who])),
            address={"person": self.ids[who]},
            text="dashboard",
            event_id=uuid.uuid4().hex,
        )
        replies = await self.engine.handle(inbound)
        found = re.search(r"https?://\S+/dashboard/login\?token=[\w-]+", replies[-1].text)
        assert found, replies[-1].text
        return found.group(0)


def chat_engine(baton: Baton) -> Engine:
    """The product's engine, with the dashboard command added if dialogs/__init__ does not list it yet."""
    if "dashboard" not in baton.engine.commands:
        dialog = SignInDialog(baton.settings.public_url)
        baton.engine.dialogs[dialog.name] = dialog
        baton.engine.commands["dashboard"] = dialog
    return baton.engine


async def seed(db: Database, now: datetime) -> tuple[dict[str, int], int, int]:
    """A second team, four weeks of check-ins, goals with history, a closed 360, feedback and a tool plan."""

    async def work(session) -> tuple[dict[str, int], int, int]:
        people = {p.email.split("@")[0]: p for p in (await session.execute(select(Person))).scalars()}
        payments = Team(name="Payments", created_at=now)
        session.add(payments)
        await session.flush()
        ravi = Person(
            email="ravi@demo.baton", name="Ravi Iyer", timezone="Asia/Kolkata", team_id=payments.id, created_at=now
        )
        session.add(ravi)
        await session.flush()
        nina = Person(
            email="nina@demo.baton",
            name="Nina Berg",
            timezone="Europe/Oslo",
            team_id=payments.id,
            manager_id=ravi.id,
            created_at=now,
        )
        session.add(nina)
        peers = [
            Person(
                email=f"peer{n}@demo.baton",
                name=f"Peer {n}",
                team_id=people["maya"].team_id,
                manager_id=people["maya"].id,
                created_at=now,
            )
            for n in range(1, 4)
        ]
        session.add_all(peers)
        await session.flush()
        people |= {"ravi": ravi, "nina": nina}
        periods = previous_periods(period_of(Rhythm().open_send(now, "UTC"), "UTC"), 4)
        questions = [dict(q) for q in DEFAULT_QUESTIONS]
        for who, pulses in (PULSES | {"nina": [2, 2, 2, 2]}).items():
            for index, (period, pulse) in enumerate(zip(periods, pulses, strict=True)):
                run = CheckinRun(
                    person_id=people[who].id,
                    team_id=people[who].team_id,
                    period=period,
                    questions=questions,
                    status="answered",
                    started_at=now - timedelta(weeks=4 - index),
                    answered_at=now - timedelta(weeks=4 - index),
                )
                session.add(run)
                await session.flush()
                blocker = "nothing"
                if who == "tom" and index == 3:
                    blocker = f"Waiting on the staging database {SCRIPT}"
                if who == "nina":
                    blocker = "Payments secret: card vault migration stuck"
                session.add_all(
                    [
                        CheckinAnswer(
                            run_id=run.id, question_id="progress", text=f"{who} progress in {period}", updated_at=now
                        ),
                        CheckinAnswer(run_id=run.id, question_id="blockers", text=blocker, updated_at=now),
                        CheckinAnswer(run_id=run.id, question_id="pulse", number=float(pulse), updated_at=now),
                    ]
                )
        team_goal = Goal(
            team_id=people["maya"].team_id,
            title="Cut p95 latency to 200 ms",
            start_value=400,
            target_value=200,
            unit="ms",
            start_date=date(2026, 10, 1),
            due_date=date(2026, 12, 31),
            created_at=now,
        )
        session.add(team_goal)
        await session.flush()
        goal = Goal(
            owner_id=people["tom"].id,
            parent_id=team_goal.id,
            title=f"Ship the <b>export</b> {SCRIPT}",
            start_value=0,
            target_value=10,
            start_date=date(2026, 10, 1),
            due_date=date(2026, 12, 31),
            rag="amber",
            created_at=now,
        )
        nina_goal = Goal(
            owner_id=nina.id,
            title="Payments secret goal",
            start_value=0,
            target_value=1,
            start_date=date(2026, 10, 1),
            created_at=now,
        )
        session.add_all([goal, nina_goal])
        await session.flush()
        for weeks, (value, progress, expected, rag) in enumerate(
            [(1, 0.1, 0.2, "green"), (2, 0.2, 0.35, "amber"), (3, 0.3, 0.5, "amber")]
        ):
            session.add(
                GoalUpdate(
                    goal_id=goal.id,
                    value=value,
                    progress=progress,
                    expected=expected,
                    rag=rag,
                    source="chat",
                    recorded_at=now - timedelta(weeks=3 - weeks),
                )
            )
        campaign = Campaign360(
            subject_id=people["tom"].id,
            created_by_id=people["maya"].id,
            status="closed",
            created_at=now - timedelta(weeks=3),
            closes_at=now - timedelta(days=1),
            closed_on=(now - timedelta(days=1)).date(),
        )
        other = Campaign360(
            subject_id=nina.id,
            created_by_id=ravi.id,
            status="closed",
            created_at=now - timedelta(weeks=3),
            closed_on=now.date(),
        )
        session.add_all([campaign, other])
        await session.flush()
        raters = [(people["maya"], "manager"), (people["tom"], "self")] + [
            (p, "peer") for p in [people["arjun"], people["lucia"], people["aiko"]]
        ]
        for rater, group in raters:
            session.add(Rater360(campaign_id=campaign.id, rater_id=rater.id, group=group, answered=True))
        for group, rating, comment in [
            ("manager", 4, None),
            ("self", 3, None),
            ("peer", 4, f"Great reviewer {SCRIPT}"),
            ("peer", 5, "Shares context early"),
            ("peer", 3, "Could delegate more"),
        ]:
            session.add(
                Answer360(
                    id=new_id(),
                    campaign_id=campaign.id,
                    group=group,
                    question_id="expectations",
                    rating=rating,
                    written_on=now.date(),
                )
            )
            if comment:
                session.add(
                    Answer360(
                        id=new_id(),
                        campaign_id=campaign.id,
                        group=group,
                        question_id="keep",
                        comment=comment,
                        written_on=now.date(),
                    )
                )
        session.add(Rater360(campaign_id=other.id, rater_id=ravi.id, group="manager", answered=True))
        session.add(
            Answer360(
                id=new_id(),
                campaign_id=other.id,
                group="manager",
                question_id="keep",
                comment="Nina private comment",
                written_on=now.date(),
            )
        )
        session.add(
            FeedbackEntry(
                from_id=people["tom"].id,
                to_id=people["maya"].id,
                kind="upward",
                text=f"Thanks for the 1:1 {SCRIPT}",
                created_at=now,
            )
        )
        session.add(
            FeedbackEntry(
                from_id=people["maya"].id,
                to_id=people["tom"].id,
                kind="downward",
                text="Tom-only feedback",
                created_at=now,
            )
        )
        session.add(
            ToolPlan(
                asked_by_id=people["maya"].id,
                person_id=people["tom"].id,
                gap="Tom's reviews drag on",
                influence="expectations",
                tool_id="role-outcome-talk",
                created_at=now - timedelta(weeks=2),
                follow_up_at=now - timedelta(days=1),
                status="closed",
                outcome="yes",
                outcome_at=now,
            )
        )
        ids = {k: v.id for k, v in people.items()}
        return ids, campaign.id, other.id

    return await db.run(work)


@pytest.fixture
async def site(db: Database, database_url: str) -> AsyncIterator[Site]:
    clock = FakeClock(NOW)
    port = free_port()
    settings = load_settings(
        env_file=None,
        DATABASE_URL=database_url,
        BATON_TICK_SECONDS=3600,
        BATON_PUBLIC_URL=f"http://127.0.0.1:{port}",
        BATON_DEMO_HISTORY=False,  # these tests seed their own, exactly known, history
    )
    baton = Baton.build(settings, clock=clock)
    async with TestServer(create_app(baton), host="127.0.0.1", port=port) as server:
        ids, campaign_id, other_id = await seed(baton.db, NOW)
        yield Site(str(server.make_url("")).rstrip("/"), baton, clock, chat_engine(baton), ids, campaign_id, other_id)


def browser(site: Site) -> aiohttp.ClientSession:
    # unsafe=True: aiohttp's jar otherwise ignores cookies set by an IP address host like 127.0.0.1.
    return aiohttp.ClientSession(base_url=site.url, cookie_jar=aiohttp.CookieJar(unsafe=True))


async def sign_in(site: Site, who: str) -> aiohttp.ClientSession:
    http = browser(site)
    link = await site.link_for(who)
    status, headers = await follow(http, link.removeprefix(site.url))
    assert status == 303 and headers["Location"] == "/dashboard"
    return http


async def follow(http: aiohttp.ClientSession, link: str, headers: dict[str, str] | None = None) -> tuple[int, dict]:
    """Open a sign-in link and press its button, as a person does: the status and headers of the press."""
    status, page = await get(http, link)
    assert status == 200, page
    return await press(http, link, headers)


async def press(http: aiohttp.ClientSession, link: str, headers: dict[str, str] | None = None) -> tuple[int, dict]:
    """The sign-in button's POST for `link` (what the page it opens sends)."""
    data = {"token": link.split("token=")[1]}
    async with http.post("/dashboard/login", data=data, headers=headers, allow_redirects=False) as response:
        return response.status, dict(response.headers)


async def get(http: aiohttp.ClientSession, path: str) -> tuple[int, str]:
    async with http.get(path, allow_redirects=False) as response:
        return response.status, await response.text()


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found
    return found.group(1)


# -- sign-in, sessions, CSRF ----------------------------------------------------------------------------


async def test_a_chat_link_signs_in_once_with_safe_cookie_flags(site: Site) -> None:
    link = await site.link_for("maya")
    assert link.startswith(site.url + "/dashboard/login?token=")
    token = link.split("token=")[1]
    stored = (await site.baton.db.run(lambda s: s.execute(select(DashboardToken)))).scalars().all()
    assert (
        len(stored) == 1 and stored[0].token_hash != token and token not in stored[0].token_hash
    )  # only a hash is kept
    assert stored[0].expires_at == NOW + timedelta(minutes=10)

    async with browser(site) as http:
        status, headers = await follow(http, link.removeprefix(site.url))
        assert status == 303 and headers["Location"] == "/dashboard"
        cookie = headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/dashboard" in cookie
        assert "Secure" not in cookie  # plain HTTP here: a Secure cookie would never come back
        status, page = await get(http, "/dashboard")
        assert status == 200 and "Your dashboard" in page and "Maya Chen" in page
        session_id = cookie.split(";")[0].split("=", 1)[1]
        sessions = (await site.baton.db.run(lambda s: s.execute(select(DashboardSession)))).scalars().all()
        assert len(sessions) == 1 and session_id not in sessions[0].session_hash

    async with browser(site) as again:  # the same link, a second time: spent
        status, page = await get(again, link.removeprefix(site.url))
        assert status == 403
        assert "type <kbd>dashboard</kbd> to Baton" in page


async def test_two_browsers_racing_with_one_link_get_one_session(site: Site) -> None:
    link = (await site.link_for("maya")).removeprefix(site.url)
    async with browser(site) as first, browser(site) as second:
        results = await asyncio.gather(press(first, link), press(second, link))
    assert sorted(status for status, _ in results) == [303, 403]
    sessions = (await site.baton.db.run(lambda s: s.execute(select(DashboardSession)))).scalars().all()
    assert len(sessions) == 1


async def test_behind_an_https_proxy_the_cookie_is_secure(site: Site) -> None:
    link = await site.link_for("tom")
    async with browser(site) as http:
        status, headers = await follow(http, link.removeprefix(site.url), {"X-Forwarded-Proto": "https"})
        assert status == 303
        assert "Secure" in headers["Set-Cookie"]


async def test_expired_and_forged_links_get_403_and_say_how_to_get_a_new_one(site: Site) -> None:
    link = await site.link_for("maya")
    site.clock.advance(minutes=10, seconds=1)
    async with browser(site) as http:
        for path in (
            link.removeprefix(site.url),
            "/dashboard/login?token=" + "A" * 43,
            "/dashboard/login",
            "/dashboard/login?token=" + "x" * 5000,
        ):
            status, page = await get(http, path)
            assert status == 403, path
            assert "sign-in link is not valid" in page and "<kbd>dashboard</kbd>" in page
        status, _ = await get(http, "/dashboard")
        assert status == 303  # nothing signed in


async def test_without_a_session_the_dashboard_explains_how_to_sign_in(site: Site) -> None:
    async with browser(site) as http:
        async with http.get("/dashboard/team", allow_redirects=False) as response:
            assert response.status == 303
            assert response.headers["Location"] == "/dashboard/signin?next=/dashboard/team"
        async with http.get("/dashboard") as response:  # follows the redirect
            page = await response.text()
            assert response.status == 200 and str(response.url).endswith("/dashboard/signin")
        assert "type <kbd>dashboard</kbd> to Baton in chat" in page
        async with http.get("/dashboard/team?csv=weekly", allow_redirects=False) as response:
            assert response.status == 303  # no CSV without a session either


async def test_sessions_expire_after_eight_hours(site: Site) -> None:
    async with await sign_in(site, "maya") as http:
        assert (await get(http, "/dashboard"))[0] == 200
        site.clock.advance(hours=8, seconds=1)
        assert (await get(http, "/dashboard"))[0] == 303


async def test_sign_out_needs_the_csrf_token_and_then_revokes_the_session(site: Site) -> None:
    async with await sign_in(site, "maya") as http:
        _, page = await get(http, "/dashboard")
        token = csrf_of(page)
        for data in ({}, {"csrf": "wrong"}, {"csrf": ""}):
            async with http.post("/dashboard/logout", data=data, allow_redirects=False) as response:
                assert response.status == 403
                assert "nothing was changed" in await response.text()
        assert (await get(http, "/dashboard"))[0] == 200  # still signed in
        cookie = http.cookie_jar.filter_cookies(URL(site.url + "/dashboard"))["baton_dashboard"].value
        async with http.post("/dashboard/logout", data={"csrf": token}, allow_redirects=False) as response:
            assert response.status == 303 and response.headers["Location"] == "/dashboard/signin?out=1"
        assert (await get(http, "/dashboard"))[0] == 303
    async with browser(site) as replay:  # the old cookie, replayed: revoked on the server
        replay.cookie_jar.update_cookies({"baton_dashboard": cookie})
        assert (await get(replay, "/dashboard"))[0] == 303


async def test_a_settings_form_without_a_valid_csrf_token_changes_nothing(site: Site) -> None:
    team_id = (
        await site.baton.db.run(lambda s: s.execute(select(Team.id).where(Team.name == "Platform")))
    ).scalar_one()
    form = {
        "checkin_weekday": "2",
        "checkin_time": "10:30",
        "reminder_count": "2",
        "reminder_after_minutes": "90",
        "digest_weekday": "3",
        "digest_time": "08:00",
    }
    async with await sign_in(site, "sam") as http:
        for extra in ({}, {"csrf": "forged"}):
            async with http.post(
                f"/dashboard/settings/teams/{team_id}", data=form | extra, allow_redirects=False
            ) as response:
                assert response.status == 403
        team = await site.baton.db.run(lambda s: s.get(Team, team_id))
        assert (team.checkin_weekday, team.checkin_time) == (4, "16:00")
        _, page = await get(http, "/dashboard/settings")
        async with http.post(
            f"/dashboard/settings/teams/{team_id}", data=form | {"csrf": csrf_of(page)}, allow_redirects=False
        ) as response:
            assert response.status == 303 and response.headers["Location"] == f"/dashboard/settings?saved={team_id}"
        _status, page = await get(http, f"/dashboard/settings?saved={team_id}")
        assert "Saved Platform's rhythm" in page
        async with http.post(
            f"/dashboard/settings/teams/{team_id}", data=form | {"csrf": csrf_of(page), "checkin_time": "25:99"}
        ) as response:
            assert response.status == 400 and "Nothing was saved" in await response.text()
    team = await site.baton.db.run(lambda s: s.get(Team, team_id))
    assert (team.checkin_weekday, team.checkin_time, team.reminder_count, team.digest_time) == (2, "10:30", 2, "08:00")
    async with await sign_in(site, "maya") as manager:  # a manager is not an admin
        _, page = await get(manager, "/dashboard")
        async with manager.post(
            f"/dashboard/settings/teams/{team_id}", data=form | {"csrf": csrf_of(page)}, allow_redirects=False
        ) as response:
            assert response.status == 403


# -- who may see what --------------------------------------------------------------------------------------


async def test_a_manager_sees_their_reports_but_not_another_teams_people(site: Site) -> None:
    ids = site.ids
    async with await sign_in(site, "maya") as http:
        status, page = await get(http, f"/dashboard/people/{ids['tom']}")
        assert status == 200 and "tom progress in" in page
        assert "Tom-only feedback" not in page  # feedback is for the two people involved
        for path in (
            f"/dashboard/people/{ids['nina']}",
            f"/dashboard/people/{ids['ravi']}",
            f"/dashboard/people/{ids['sam']}",
            f"/dashboard/goals?person={ids['nina']}",
            f"/dashboard/people/{ids['nina']}?csv=checkins",
            f"/dashboard/360/{site.other_campaign_id}",
            "/dashboard/360/999999",
            "/dashboard/people/abc",
            "/dashboard/org",
            "/dashboard/settings",
            "/dashboard/deliveries",
            "/dashboard/deliveries?csv=failed",
        ):
            status, page = await get(http, path)
            assert status == 403, path
            assert "Payments secret" not in page and "Nina private comment" not in page
        for path in ("/dashboard/team", "/dashboard/goals", "/dashboard/360", "/dashboard/tools"):
            status, page = await get(http, path)
            assert status == 200, path
            assert "Payments secret" not in page and "Nina" not in page, path


async def test_a_performer_cannot_reach_manager_pages_or_colleagues(site: Site) -> None:
    ids = site.ids
    async with await sign_in(site, "arjun") as http:
        for path in (
            "/dashboard/team",
            "/dashboard/team?csv=weekly",
            "/dashboard/org",
            "/dashboard/settings",
            "/dashboard/deliveries",
            "/dashboard/deliveries?csv=failed",
            "/dashboard/deliveries?csv=reasons",
            f"/dashboard/people/{ids['tom']}",
            f"/dashboard/people/{ids['maya']}",
            f"/dashboard/360/{site.campaign_id}",
            f"/dashboard/goals?person={ids['tom']}",
        ):
            status, _ = await get(http, path)
            assert status == 403, path
        status, page = await get(http, "/dashboard")
        assert status == 200 and "arjun progress in" in page and "tom progress" not in page
        assert 'href="/dashboard/team"' not in page  # no link to what they cannot open
        assert 'href="/dashboard/deliveries"' not in page
    async with await sign_in(site, "tom") as http:  # the subject sees their own 360 report and feedback
        status, page = await get(http, f"/dashboard/360/{site.campaign_id}")
        assert status == 200 and "Shares context early" in page
        status, page = await get(http, "/dashboard")
        assert "Tom-only feedback" in page
        assert "from your manager" in page and "downward" not in page  # said as the reader would say it


async def test_an_admin_gets_aggregates_but_no_individual_360_answers(site: Site) -> None:
    ids = site.ids
    async with await sign_in(site, "sam") as http:
        for path in (
            f"/dashboard/360/{site.campaign_id}",
            f"/dashboard/360/{site.campaign_id}?csv=comments",
            f"/dashboard/people/{ids['tom']}",
            f"/dashboard/360/{site.other_campaign_id}",
        ):
            status, page = await get(http, path)
            assert status == 403, path
            assert "Shares context early" not in page and "Could delegate" not in page
        status, page = await get(http, "/dashboard/org")
        assert status == 200 and 'id="pulse-chart"' in page
        assert "Platform" in page and "Payments" in page
        status, text = await get(http, "/dashboard/org?csv=teams")
        rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
        platform = [r for r in rows if r["Team"] == "Platform" and r["People asked"] != "0"]
        assert platform and all(r["Average pulse"] not in ("", "–") for r in platform)
        payments = [r for r in rows if r["Team"] == "Payments"]
        assert payments and all(r["Average pulse"] == "" for r in payments)  # one person: withheld, an empty cell
        status, text = await get(http, "/dashboard/org?csv=360-participation")
        assert "closed" in text
        for path in ("/dashboard/360", "/dashboard/tools", "/dashboard/org", "/dashboard/settings"):
            _, page = await get(http, path)
            assert (
                "Shares context early" not in page
                and "Nina private comment" not in page
                and "reviews drag on" not in page
            )


# -- pages and exports ---------------------------------------------------------------------------------------


async def test_team_overview_shows_participation_pulse_chart_and_escaped_blockers(site: Site) -> None:
    async with await sign_in(site, "maya") as http:
        status, page = await get(http, "/dashboard/team")
    assert status == 200
    chart = re.search(r'<svg[^>]*id="pulse-chart".*?</svg>', page, re.S)
    assert chart is not None
    values = [float(v) for v in re.findall(r'data-value="([\d.]+)"', chart.group(0))]
    # Mean pulse of the reports with answers (Arjun, Lucía, Tom, Aiko and three peers without check-ins).
    assert values[-4:] == [pytest.approx(sum(p[i] for p in PULSES.values()) / 4, abs=0.01) for i in range(4)]
    assert SCRIPT not in page and "&lt;script&gt;window.pwned=1&lt;/script&gt;" in page
    assert "Waiting on the staging database" in page
    assert "<script" not in page.lower()


async def test_csv_exports_hold_the_tables_rows_and_need_the_same_rights(site: Site) -> None:
    async with await sign_in(site, "maya") as http:
        async with http.get("/dashboard/team?csv=weekly") as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/csv")
            assert response.headers["Content-Disposition"].startswith("attachment;")
            weekly = list(csv.DictReader(io.StringIO((await response.text()).lstrip("\ufeff"))))
        assert [r["Average pulse"] for r in weekly[-4:]] == ["4.0", "3.5", "3.5", "2.8"]
        assert [r["Answered"] for r in weekly[-4:]] == ["4"] * 4
        status, text = await get(http, "/dashboard/team?csv=blockers")
        blockers = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
        assert blockers == [
            {"Person": "Tom Becker", "Week": weekly[-1]["Week"], "Blocker": f"Waiting on the staging database {SCRIPT}"}
        ]
        status, text = await get(http, "/dashboard/goals?csv=goals")
        goals = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
        tom = next(r for r in goals if r["Owner"] == "Tom Becker")
        assert (
            tom["Trend"] == "10% 20% 30%" and tom["Aligned to"] == "Cut p95 latency to 200 ms" and tom["RAG"] == "amber"
        )
        status, _ = await get(http, "/dashboard/team?csv=nosuch")
        assert status == 404
    async with await sign_in(site, "ravi") as other:
        status, text = await get(other, "/dashboard/team?csv=blockers")
        assert status == 200 and "staging database" not in text and "card vault" in text


async def test_goal_board_360_report_and_tool_plans_escape_what_people_wrote(site: Site) -> None:
    async with await sign_in(site, "maya") as http:
        _, goals = await get(http, "/dashboard/goals")
        _, review = await get(http, f"/dashboard/360/{site.campaign_id}")
        _, tools = await get(http, "/dashboard/tools")
        _, home = await get(http, "/dashboard")
        status, comments = await get(http, f"/dashboard/360/{site.campaign_id}?csv=comments")
    for page in (goals, review, home):
        assert SCRIPT not in page and "&lt;script&gt;" in page
    assert 'class="sparkline"' in goals and "Cut p95 latency" in goals and "Payments secret goal" not in goals
    assert "Shares context early" in review and "Peers" in review and "Manager" in review
    assert "Role and outcome clarification talk" in tools
    assert "reviews drag on" in tools
    assert status == 200 and "Could delegate more" in comments


async def test_dashboard_logs_name_routes_and_statuses_only(site: Site, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    link = await site.link_for("maya")
    async with browser(site) as http:
        await follow(http, link.removeprefix(site.url))
        for path in (
            "/dashboard",
            "/dashboard/team",
            "/dashboard/team?csv=blockers",
            f"/dashboard/360/{site.campaign_id}",
        ):
            await get(http, path)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "dashboard GET /dashboard/team -> 200" in logged
    token = link.split("token=")[1]
    for secret in (token, "staging database", "Shares context", "Thanks for the 1:1", "progress in"):
        assert secret not in logged


# -- failed deliveries (admins) --------------------------------------------------------------------------------


DELIVERY_SECRET = "Feedback text: zebra-7731 was a mess"  # in the failed rows' payloads, never on a page


async def test_an_admin_sees_failed_deliveries_without_their_content(site: Site) -> None:
    ids = site.ids

    def row(
        key: str, days: float, reason: str | None, person: str | None, *, status: str = "failed", channel: str = "slack"
    ) -> OutboxMessage:
        when = NOW - timedelta(days=days)
        return OutboxMessage(
            key=key,
            person_id=ids[person] if person else None,
            channel=channel,
            address={"team": "T1", "channel": "C1"},
            payload=Reply(f"{DELIVERY_SECRET} {SCRIPT}").to_dict(),
            kind="reminder" if person else "post",
            due_at=when,
            status=status,
            attempts=3,
            last_error=reason,
            created_at=when,
        )

    async def work(session) -> None:
        session.add_all(
            [
                row("a", 0.5, "user_not_found", "tom"),
                row("b", 2, "account_inactive", "nina", channel="teams"),
                row("c", 3, "channel_not_found", None),
                row("d", 20, "gave up after 8 attempts: network: ClientConnectorError", "tom"),
                row("old", 31, "is_archived", "tom"),  # older than 30 days
                row("sent", 1, None, "tom", status="sent"),
                row("pending", 1, "ratelimited", "tom", status="pending"),
            ]
        )

    await site.baton.db.run(work)
    async with await sign_in(site, "sam") as http:
        status, home = await get(http, "/dashboard")
        assert 'href="/dashboard/deliveries"' in home  # in the navigation and on the admin's own page
        status, page = await get(http, "/dashboard/deliveries")
        assert status == 200 and "Delivery problems" in page
        assert "never shown" in page and 'name="csrf"' in page  # the sign-out form keeps its CSRF token
        status, text = await get(http, "/dashboard/deliveries?csv=failed")
        assert status == 200
        rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
        assert rows == [
            {
                "When (UTC)": "2026-11-19 21:00",
                "Channel": "slack",
                "Recipient": "Tom Becker",
                "Kind": "reminder",
                "Reason": "user_not_found",
            },
            {
                "When (UTC)": "2026-11-18 09:00",
                "Channel": "teams",
                "Recipient": "Nina Berg",
                "Kind": "reminder",
                "Reason": "account_inactive",
            },
            {
                "When (UTC)": "2026-11-17 09:00",
                "Channel": "slack",
                "Recipient": "team channel",
                "Kind": "post",
                "Reason": "channel_not_found",
            },
            {
                "When (UTC)": "2026-10-31 09:00",
                "Channel": "slack",
                "Recipient": "Tom Becker",
                "Kind": "reminder",
                "Reason": "network (retries ran out)",
            },
        ]
        status, reasons = await get(http, "/dashboard/deliveries?csv=reasons")
        assert list(csv.DictReader(io.StringIO(reasons.lstrip("\ufeff")))) == [
            {"Reason": "account_inactive", "Messages": "1"},
            {"Reason": "channel_not_found", "Messages": "1"},
            {"Reason": "network (retries ran out)", "Messages": "1"},
            {"Reason": "user_not_found", "Messages": "1"},
        ]
        for shown in (page, text, reasons, home):
            assert "zebra" not in shown and DELIVERY_SECRET not in shown and "pwned" not in shown
            assert "is_archived" not in shown and "ratelimited" not in shown
    async with await sign_in(site, "maya") as manager:  # a manager is not an admin
        _, page = await get(manager, "/dashboard")
        assert 'href="/dashboard/deliveries"' not in page


async def test_an_admins_goal_board_shows_the_organisation_not_no_goals(site: Site) -> None:
    """Week one: the admin's goal board said "No goals yet" while goals existed."""
    async with await sign_in(site, "sam") as http:
        status, page = await get(http, "/dashboard/goals")
    assert status == 200 and "No goals yet" not in page
    assert "Goals across the organisation" in page and "Platform" in page and "Payments" in page
    assert "Cut p95 latency to 200 ms" in page  # a team goal is the team's shared work
    assert "export" not in page and "Payments secret goal" not in page  # people's own goals stay theirs


async def test_a_360_can_be_closed_early_from_the_dashboard_after_seeing_what_stays_hidden(site: Site) -> None:
    """Week one: nothing in chat, CLI or dashboard closed a 360 before its window ended."""
    ids = site.ids

    async def open_one(session) -> int:
        campaign = Campaign360(
            subject_id=ids["arjun"],
            created_by_id=ids["maya"],
            status="open",
            opens_at=NOW - timedelta(days=2),
            closes_at=NOW + timedelta(days=5),
            created_at=NOW - timedelta(days=2),
        )
        session.add(campaign)
        await session.flush()
        for who, group, answered in [("maya", "manager", True), ("lucia", "peer", True), ("aiko", "peer", True)]:
            session.add(Rater360(campaign_id=campaign.id, rater_id=ids[who], group=group, answered=answered))
        session.add(Rater360(campaign_id=campaign.id, rater_id=ids["tom"], group="peer", answered=False))
        return campaign.id

    campaign_id = await site.baton.db.run(open_one)
    path = f"/dashboard/360/{campaign_id}"
    async with await sign_in(site, "sam") as http:  # an admin may close one early, and sees counts only
        _, listing = await get(http, "/dashboard/360")
        assert "Open 360s" in listing and f'href="{path}"' in listing
        status, page = await get(http, path)
        assert status == 200 and "Would stay hidden" in page and f'action="{path}/close"' in page
    async with await sign_in(site, "tom") as http:  # a peer: neither the manager nor an admin
        assert (await get(http, path))[0] == 403
        _, home = await get(http, "/dashboard")
        async with http.post(path + "/close", data={"csrf": csrf_of(home)}, allow_redirects=False) as response:
            assert response.status == 403
    async with await sign_in(site, "maya") as http:
        status, page = await get(http, path)
        assert status == 200 and "Would stay hidden: Peers (2 answered, fewer than 3)" in page
        assert f'action="{path}/close"' in page
        async with http.post(path + "/close", data={"csrf": "forged"}, allow_redirects=False) as response:
            assert response.status == 403
        still = await site.baton.db.run(lambda s: s.get(Campaign360, campaign_id))
        assert still.closes_at > NOW  # a forged form changes nothing
        async with http.post(path + "/close", data={"csrf": csrf_of(page)}, allow_redirects=False) as response:
            assert response.status in (302, 303) and response.headers["Location"] == path
        status, page = await get(http, path)
        assert "Closing now" in page and f'action="{path}/close"' not in page
    closed = await site.baton.db.run(lambda s: s.get(Campaign360, campaign_id))
    assert closed.closes_at <= site.clock.now()
    await site.baton.conductor.tick(site.clock.now())
    closed = await site.baton.db.run(lambda s: s.get(Campaign360, campaign_id))
    assert closed.status == "closed"
    async with await sign_in(site, "sam") as http:  # an admin: may close, never reads results
        _, listing = await get(http, "/dashboard/360")
        assert (await get(http, path))[0] == 403  # closed: results are the subject's and their manager's
