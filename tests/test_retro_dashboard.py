"""Retros on the dashboard, who may see what: the team and its manager read released themes and quotes;
an admin outside the team sees counts only; another team gets 403, the same as for an id that names nothing."""

from __future__ import annotations

from datetime import timedelta

import aiohttp

from bot.dashboard.views import AGGREGATE_MINIMUM
from dialogs.common.anonymity import new_id
from storage.models import Retro, RetroProposal, RetroQuote, RetroTheme
from tests.test_dashboard import NOW, Site, get, sign_in, site  # noqa: F401 — `site` is the fixture


async def seed_retro(on: Site) -> int:
    async def work(session) -> int:
        from storage.models import Person

        maya = await session.get(Person, on.ids["maya"])
        retro = Retro(
            team_id=maya.team_id,
            started_by_id=maya.id,
            theme="how we handled the Q3 launch",
            status="done",
            opens_at=NOW - timedelta(days=14),
            closes_at=NOW - timedelta(days=7),
            closed_on=(NOW - timedelta(days=7)).date(),
            voted_on=(NOW - timedelta(days=4)).date(),
            answered=4,
            voters=3,
            created_at=NOW - timedelta(days=14),
        )
        session.add(retro)
        await session.flush()
        day = retro.closed_on
        theme = RetroTheme(
            id=new_id(), retro_id=retro.id, stage="discover", name="checklist, pairing", people=3, written_on=day
        )
        session.add(theme)
        session.add(
            RetroQuote(
                id=new_id(),
                retro_id=retro.id,
                theme_id=theme.id,
                stage="discover",
                text="Released-quote-words",
                written_on=day,
            )
        )
        session.add(
            RetroQuote(
                id=new_id(),
                retro_id=retro.id,
                stage="discover",
                text="Signed-story-words",
                author_id=on.ids["tom"],
                written_on=day,
            )
        )
        session.add(
            RetroProposal(id=new_id(), retro_id=retro.id, number=1, text="Proposal-words", votes=3, written_on=day)
        )
        await session.flush()
        return retro.id

    return await on.baton.db.run(work)


async def test_retro_pages_follow_the_authorisation_matrix(site: Site) -> None:  # noqa: F811 — the imported fixture
    retro_id = await seed_retro(site)
    for who in ("maya", "tom", "aiko"):  # the manager and members of the team
        http = await sign_in(site, who)
        async with http:
            status, page = await get(http, "/dashboard/retro")
            assert status == 200 and "Signed-story-words" in page and "Released-quote-words" in page
            assert "Tom Becker" in page  # the signed story's author, by his choice
            status, page = await get(http, f"/dashboard/retro/{retro_id}")
            assert status == 200 and "checklist, pairing" in page and "Proposal-words" in page
            status, csv = await get(http, f"/dashboard/retro/{retro_id}?csv=quotes")
            assert status == 200 and "Released-quote-words" in csv
    for who in ("ravi", "nina"):  # another team
        http = await sign_in(site, who)
        async with http:
            status, page = await get(http, "/dashboard/retro")
            assert status == 200 and "Released-quote-words" not in page and "Q3 launch" not in page
            assert (await get(http, f"/dashboard/retro/{retro_id}"))[0] == 403
            assert (await get(http, "/dashboard/retro/999999"))[0] == 403  # ids reveal nothing
    http = await sign_in(site, "sam")  # an admin outside the team: counts only
    async with http:
        status, page = await get(http, "/dashboard/retro")
        assert status == 200 and "counts only" in page and "Q3 launch" not in page
        assert "Released-quote-words" not in page and "Signed-story-words" not in page
        assert (await get(http, f"/dashboard/retro/{retro_id}"))[0] == 403
    assert AGGREGATE_MINIMUM >= 3
    async with aiohttp.ClientSession(base_url=site.url) as anonymous:
        status, _ = await get(anonymous, f"/dashboard/retro/{retro_id}")
        assert status in (302, 303)
