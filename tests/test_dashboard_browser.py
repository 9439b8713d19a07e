"""The dashboard in a real headless Chromium (Debian's package), driven by Playwright.

A manager asks for the link in the local web chat, follows it and presses its button, sees the team's
pulse chart, downloads a CSV; a used and an expired link are refused.
Screenshots (desktop and a 360 px phone) land in test-artifacts/.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import select

from bot.app import Baton, create_app
from bot.config import load_settings
from dialogs.engine.clock import FakeClock
from storage.db import Database
from storage.models import Campaign360, Person
from tests.conftest import ARTIFACTS, free_port
from tests.test_browser import choose
from tests.test_dashboard import NOW, PULSES, SCRIPT, Site, chat_engine, seed

pytestmark = pytest.mark.browser


@pytest.fixture
async def site(db: Database, database_url: str) -> AsyncIterator[Site]:
    if "postgresql" in database_url:
        pytest.skip("the browser checks the pages, not the database: once, on SQLite, is enough")
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


async def press_sign_in(page) -> None:
    """Press the button on the page a sign-in link opens, and wait for the dashboard."""
    async with page.expect_navigation():
        await page.click("form[action='/dashboard/login'] button[type=submit]")
    await page.locator("h1", has_text="Your dashboard").wait_for()


async def test_a_manager_signs_in_from_chat_sees_the_pulse_chart_and_exports_a_csv(
    browser, site: Site, tmp_path: Path
) -> None:
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = await context.new_page()
    await page.goto(site.url + "/")
    await choose(page, "Maya")
    await page.fill("#composer", "dashboard")
    await page.click("#send")
    message = page.locator(".msg.bot", has_text="/dashboard/login?token=")
    await message.wait_for()
    link = re.search(r"http://\S+/dashboard/login\?token=[\w-]+", await message.inner_text())
    assert link is not None
    anchor = message.locator("a", has_text="/dashboard/login?token=")
    assert await anchor.get_attribute("href") == link.group(0)  # the chat shows it as a link
    async with page.expect_navigation():
        await anchor.click()
    assert page.url == link.group(0)  # a page with one button: opening the link spends nothing
    await press_sign_in(page)
    assert page.url == site.url + "/dashboard"
    await page.locator("h1", has_text="Your dashboard").wait_for()

    await page.click("header nav >> text=Team")
    await page.locator("h1", has_text="Team overview").wait_for()
    chart = page.locator("svg#pulse-chart")
    await chart.wait_for()
    values = [float(v) for v in await chart.locator("circle.dot").evaluate_all("ds => ds.map(d => d.dataset.value)")]
    assert values == [pytest.approx(sum(p[i] for p in PULSES.values()) / 4, abs=0.01) for i in range(4)]
    box = await chart.bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 80  # drawn, not collapsed
    # What people wrote shows as text; nothing they wrote runs.
    assert await page.locator("td", has_text=SCRIPT).count() == 1
    assert await page.evaluate("window.pwned === undefined")

    async with page.expect_download() as pending:
        await page.locator("section[aria-labelledby='t-weekly'] a.csv").click()
    download = await pending.value
    assert download.suggested_filename.endswith(".csv")
    saved = tmp_path / "weekly.csv"
    await download.save_as(saved)
    rows = list(csv.DictReader(io.StringIO(saved.read_text(encoding="utf-8-sig"))))
    assert len(rows) == 8 and list(rows[0]) == ["Week", "Answered", "Asked", "Participation", "Average pulse"]
    assert [r["Participation"] for r in rows[-4:]] == ["100%"] * 4
    assert [r["Average pulse"] for r in rows[-4:]] == ["4.0", "3.5", "3.5", "2.8"]

    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "dashboard-team-desktop.png"), full_page=True)
    await page.click("header nav >> text=Goals")
    await page.locator("svg.sparkline").first.wait_for()
    await page.screenshot(path=str(ARTIFACTS / "dashboard-goals-desktop.png"), full_page=True)

    # The same link again, in another browser: spent.
    other = await browser.new_context()
    again = await other.new_page()
    response = await again.goto(link.group(0))
    assert response is not None and response.status == 403
    assert "type dashboard to Baton in chat" in (await again.inner_text("main")).replace("\n", " ")
    await other.close()
    await context.close()


async def test_on_a_phone_the_team_page_fits_and_an_expired_link_is_refused(browser, site: Site) -> None:
    context = await browser.new_context(
        viewport={"width": 360, "height": 780}, device_scale_factor=2, is_mobile=True, has_touch=True
    )
    page = await context.new_page()
    await page.goto(await site.link_for("maya"))
    await press_sign_in(page)
    await page.goto(site.url + "/dashboard/team")
    await page.locator("svg#pulse-chart circle.dot").first.wait_for()
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "dashboard-team-phone.png"), full_page=True)
    await page.goto(site.url + f"/dashboard/360/{site.campaign_id}")
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    await page.screenshot(path=str(ARTIFACTS / "dashboard-360-phone.png"), full_page=True)

    stale = await site.link_for("maya")
    site.clock.advance(minutes=11)
    fresh = await (await browser.new_context(viewport={"width": 360, "height": 780})).new_page()
    response = await fresh.goto(stale)
    assert response is not None and response.status == 403
    await fresh.locator("h1", has_text="sign-in link is not valid").wait_for()
    assert await fresh.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    await fresh.screenshot(path=str(ARTIFACTS / "dashboard-expired-link-phone.png"), full_page=True)
    await context.close()


# A word the browser split across two lines ("answere|d"): one Range over its letters has two boxes.
BROKEN_WORDS = """() => {
  const broken = [];
  for (const cell of document.querySelectorAll("main th, main td, main h1, main h2, main p, main dt, main dd")) {
    const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (const match of node.data.matchAll(/[A-Za-zÀ-ÿ]{2,}/g)) {
        const range = document.createRange();
        range.setStart(node, match.index);
        range.setEnd(node, match.index + match[0].length);
        const lines = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
        if (lines.size > 1) broken.push(match[0]);
      }
    }
  }
  return broken;
}"""
# Every table wider than the page sits in a container that scrolls sideways.
UNSCROLLABLE_TABLES = """() => [...document.querySelectorAll("main table")].filter((t) => {
  if (t.getBoundingClientRect().right <= window.innerWidth + 1) return false;
  for (let p = t.parentElement; p && p !== document.body; p = p.parentElement) {
    const style = getComputedStyle(p);
    if (["auto", "scroll"].includes(style.overflowX) && p.clientWidth <= window.innerWidth) return false;
  }
  return true;
}).map((t) => t.id || t.closest("section")?.getAttribute("aria-labelledby") || "table")"""


@pytest.fixture
async def demo(db: Database, database_url: str) -> AsyncIterator[tuple[str, Baton]]:
    """What `make run` serves: the demo organisation with its eight weeks of history."""
    if "postgresql" in database_url:
        pytest.skip("the browser checks the pages, not the database: once, on SQLite, is enough")
    port = free_port()
    settings = load_settings(
        env_file=None, DATABASE_URL=database_url, BATON_TICK_SECONDS=3600, BATON_PUBLIC_URL=f"http://127.0.0.1:{port}"
    )
    baton = Baton.build(settings, clock=FakeClock(NOW))
    async with TestServer(create_app(baton), host="127.0.0.1", port=port) as server:
        yield str(server.make_url("")).rstrip("/"), baton


@pytest.mark.parametrize("width", [1280, 390])
async def test_the_demo_dashboard_reads_well_on_a_desktop_and_a_phone(browser, demo, width: int) -> None:
    """Week one: words broke mid-word at 1280 px ("answere d") and the 360 table was cut off at 390 px."""
    url, baton = demo
    ids = {p.email.split("@")[0]: p.id for p in (await baton.db.run(lambda s: s.execute(select(Person)))).scalars()}
    site = Site(url, baton, baton.clock, chat_engine(baton), ids, 0, 0)  # type: ignore[arg-type]
    campaign = await baton.db.run(lambda s: s.scalar(select(Campaign360.id)))
    pages = {
        "maya": ["/dashboard", "/dashboard/team", "/dashboard/goals", f"/dashboard/360/{campaign}", "/dashboard/tools"],
        "tom": ["/dashboard", f"/dashboard/360/{campaign}"],
        "sam": ["/dashboard/org", "/dashboard/goals", "/dashboard/360"],
    }
    ARTIFACTS.mkdir(exist_ok=True)
    problems: dict[str, object] = {}
    for who, paths in pages.items():
        context = await browser.new_context(viewport={"width": width, "height": 900})
        page = await context.new_page()
        await page.goto(await site.link_for(who))
        await press_sign_in(page)
        for path in paths:
            response = await page.goto(url + path)
            assert response is not None and response.status == 200, path
            if broken := await page.evaluate(BROKEN_WORDS):
                problems[f"{who} {path} broken words"] = broken
            if cut := await page.evaluate(UNSCROLLABLE_TABLES):
                problems[f"{who} {path} tables cut off"] = cut
            if not await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"):
                problems[f"{who} {path}"] = "the page scrolls sideways"
            if "*" in await page.inner_text("main"):
                problems[f"{who} {path} literal *"] = True
            name = path.strip("/").replace("/", "-").replace("dashboard-", "") or "home"
            await page.screenshot(
                path=str(ARTIFACTS / f"demo-{who}-{name.replace('dashboard', 'home')}-{width}.png"), full_page=True
            )
        await context.close()
    assert not problems, problems


async def test_the_ideas_board_in_a_browser_shows_the_owner_their_ideas_and_exports_the_funnel(
    browser, site: Site, tmp_path: Path
) -> None:
    """Maya owns three ideas (one anonymous): the board names the signed senders, says "anonymous" for the
    other, runs nothing an idea's text holds, and its funnel downloads as CSV."""
    from tests.test_ideas_dashboard import ANON, SIGNED, _ideas

    await _ideas(site)
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = await context.new_page()
    await page.goto(site.url + "/")
    await choose(page, "Maya")
    await page.fill("#composer", "dashboard")
    await page.click("#send")
    message = page.locator(".msg.bot", has_text="/dashboard/login?token=")
    await message.wait_for()
    async with page.expect_navigation():
        await message.locator("a", has_text="/dashboard/login?token=").click()
    await press_sign_in(page)
    await page.click("header nav >> text=Ideas")
    await page.locator("h1", has_text="Ideas").wait_for()
    board = await page.inner_text("main")
    assert SIGNED in board and ANON in board and "Tom Becker" in board and "anonymous" in board.casefold()
    assert await page.evaluate("window.pwned === undefined")
    async with page.expect_download() as pending:
        await page.locator("a.csv[href*='csv=funnel']").click()
    saved = tmp_path / "funnel.csv"
    await (await pending.value).save_as(saved)
    rows = list(csv.DictReader(io.StringIO(saved.read_text(encoding="utf-8-sig"))))
    assert rows, "the funnel has rows"
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "dashboard-ideas-desktop.png"), full_page=True)
    await context.close()
