"""The ideas board's authorisation matrix, on both databases: owners read their ideas, senders their signed
ones, a manager's manager counts only, an admin per-team aggregates only — and anonymous ideas name nobody."""

from __future__ import annotations

import csv
import io
from datetime import date

from sqlalchemy import update

from dialogs.common import anonymity
from storage.models import Idea, Person
from tests.test_dashboard import Site, get, sign_in
from tests.test_dashboard import site as site  # the fixture

SIGNED, ANON, OTHER = "WALLABY-1101 pairing on Fridays", "DINGO-2202 fewer meetings", "EMU-3303 a quieter room"


async def _ideas(site: Site) -> None:
    ids = site.ids

    async def work(session) -> None:
        await session.execute(update(Person).where(Person.id == ids["maya"]).values(manager_id=ids["ravi"]))
        day = date(2026, 11, 2)
        session.add_all(
            [
                Idea(
                    id=anonymity.new_id(),
                    owner_id=ids["maya"],
                    text=SIGNED,
                    signed_by_id=ids["tom"],
                    received_on=day,
                    state="decided",
                    decision="adopt",
                    reason="cheap",
                    acknowledged_on=day,
                    decided_on=date(2026, 11, 6),
                ),
                Idea(id=anonymity.new_id(), owner_id=ids["maya"], text=ANON, relay="x" * 40, received_on=day),
                Idea(
                    id=anonymity.new_id(),
                    owner_id=ids["maya"],
                    text=OTHER,
                    signed_by_id=ids["arjun"],
                    received_on=day,
                    state="decided",
                    decision="decline",
                    reason="no budget",
                    acknowledged_on=day,
                    decided_on=day,
                ),
            ]
        )

    await site.baton.db.run(work)


async def test_the_ideas_board_shows_each_viewer_only_what_they_may_see(site: Site) -> None:
    await _ideas(site)
    seen: dict[str, str] = {}
    for who in ("maya", "tom", "ravi", "sam", "lucia"):
        async with await sign_in(site, who) as http:
            status, seen[who] = await get(http, "/dashboard/ideas")
            assert status == 200, who
    assert all(mark in seen["maya"] for mark in ("WALLABY-1101", "DINGO-2202", "EMU-3303"))
    assert "anonymous" in seen["maya"] and "Tom Becker" in seen["maya"]
    assert "WALLABY-1101" in seen["tom"] and "DINGO-2202" not in seen["tom"] and "EMU-3303" not in seen["tom"]
    for who in ("ravi", "sam", "lucia"):
        assert not any(mark in seen[who] for mark in ("WALLABY", "DINGO", "EMU")), who
    assert "Ideas your reports own (counts only)" in seen["ravi"] and "Maya Chen" in seen["ravi"]
    async with await sign_in(site, "ravi") as http:
        _, text = await get(http, "/dashboard/ideas?csv=waiting")
    [row] = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    assert (row["Owner"], row["Waiting for acknowledgement"], row["Decided"]) == ("Maya Chen", "1", "2")
    async with await sign_in(site, "maya") as http:
        _, text = await get(http, "/dashboard/ideas?csv=adoption")
        _, funnel = await get(http, "/dashboard/ideas?csv=funnel")
    assert next(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))["Rate"] == "50%"
    you = next(csv.DictReader(io.StringIO(funnel.lstrip("\ufeff"))))
    assert (you["Received"], you["Decided"], you["Median days to decide"]) == ("3", "2", "2")
