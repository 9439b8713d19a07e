"""The local web chat in a real headless Chromium (Debian's package), driven by Playwright."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from aiohttp.test_utils import TestServer

from bot.app import Baton, create_app
from bot.config import load_settings
from dialogs.engine.clock import FakeClock
from storage.db import Database
from tests.conftest import ARTIFACTS

pytestmark = pytest.mark.browser


@pytest.fixture
async def served(db: Database, database_url: str) -> AsyncIterator[tuple[str, Baton]]:
    if "postgresql" in database_url:
        pytest.skip("the browser checks the page, not the database: once, on SQLite, is enough")
    # Friday 09:00 UTC: daytime in Tokyo, Berlin and Kolkata, so nobody's quiet hours hold messages back.
    clock = FakeClock(datetime(2026, 11, 20, 9, 0, tzinfo=UTC))
    baton = Baton.build(load_settings(env_file=None, DATABASE_URL=database_url, BATON_TICK_SECONDS=3600), clock=clock)
    async with TestServer(create_app(baton), host="127.0.0.1") as server:
        yield str(server.make_url("/")), baton


@pytest.fixture
def base_url(served: tuple[str, Baton]) -> str:
    return served[0]


# Waits are functions ("() => …"): Playwright polls a bare expression with eval, which the page's CSP refuses.
async def choose(page, name: str) -> None:
    await page.wait_for_function(
        "() => document.querySelectorAll('#person option[value]:not([value=\"\"])').length >= 6"
    )
    value = await page.eval_on_selector(
        "#person", f"s => [...s.options].find(o => o.textContent.includes('{name}')).value"
    )
    await page.select_option("#person", value)
    await page.wait_for_function("() => document.querySelector('#status').textContent.includes('connected')")


async def test_a_manager_asks_for_help_and_walks_a_dialog_in_the_browser(browser, base_url: str) -> None:
    page = await browser.new_page(viewport={"width": 1280, "height": 800})
    await page.goto(base_url)
    await page.wait_for_function(
        "() => document.querySelectorAll('#person option[value]:not([value=\"\"])').length >= 6"
    )
    maya = await page.eval_on_selector("#person", "s => [...s.options].find(o => o.textContent.includes('Maya')).value")
    await page.select_option("#person", maya)
    await page.wait_for_function("() => document.querySelector('#status').textContent.includes('connected')")
    await page.fill("#composer", "help")
    await page.click("#send")
    help_message = page.locator(".msg.bot", has_text="what I can do for you as a manager")
    await help_message.wait_for()
    assert "settings" in (await help_message.inner_text()).lower()
    await page.fill("#composer", "settings")
    await page.click("#send")
    menu = page.locator(".msg.bot", has_text="What would you like to change?")
    await menu.wait_for()
    await menu.locator("button.choice", has_text="Time zone").click()
    await page.locator(".msg.bot", has_text="Which time zone").wait_for()
    await page.fill("#composer", "Tokyo")
    await page.keyboard.press("Enter")
    await page.locator(".msg.bot", has_text="Done: your time zone is now").wait_for()
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "web-chat-desktop.png"), full_page=True)

    # A reload keeps the person and replays the conversation.
    await page.reload()
    await page.locator(".msg.bot", has_text="Done: your time zone is now").wait_for()
    assert await page.locator("#person").input_value() == maya


async def test_the_page_works_on_a_phone_and_shows_text_literally(browser, base_url: str) -> None:
    page = await browser.new_page(viewport={"width": 360, "height": 740})
    await page.goto(base_url)
    await page.wait_for_function(
        "() => document.querySelectorAll('#person option[value]:not([value=\"\"])').length >= 6"
    )
    tom = await page.eval_on_selector("#person", "s => [...s.options].find(o => o.textContent.includes('Tom')).value")
    await page.select_option("#person", tom)
    await page.wait_for_function("() => document.querySelector('#status').textContent.includes('connected')")
    await page.fill("#composer", "<b>bold?</b><script>window.pwned=1</script>")
    await page.click("#send")
    await page.locator(".msg.bot", has_text="didn't understand").wait_for()
    assert await page.evaluate("window.pwned === undefined")
    assert await page.locator(".msg.user", has_text="<b>bold?</b>").count() == 1
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "web-chat-phone.png"), full_page=True)


async def test_a_check_in_arrives_without_a_reload_and_is_answered_in_the_page(browser, served) -> None:
    base_url, baton = served
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    await page.goto(base_url)
    await choose(page, "Aiko")
    await baton.conductor.tick(baton.clock.now(), force=True)  # what `baton checkin send-now` does
    baton.sender.wake()
    invitation = page.locator(".msg.bot", has_text="it's check-in time")
    await invitation.wait_for(timeout=10_000)
    await invitation.locator("button.choice", has_text="Start").click()
    await page.locator(".msg.bot", has_text="Question 1 of 5").wait_for()
    await page.fill("#composer", "Shipped the <billing> export")
    await page.keyboard.press("Enter")
    await page.locator(".msg.bot", has_text="Question 2 of 5").wait_for()
    await page.fill("#composer", "nothing")
    await page.keyboard.press("Enter")
    pulse = page.locator(".msg.bot", has_text="Question 3 of 5")
    await pulse.wait_for()
    assert await pulse.locator("button.choice").count() == 6  # 1..5 and "Skip question"
    await pulse.locator("button.choice", has_text="4").click()
    await page.locator(".msg.bot", has_text="Question 4 of 5").wait_for()
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "web-chat-checkin.png"), full_page=True)


async def test_answer_all_at_once_is_a_real_form_in_the_page(browser, base_url: str) -> None:
    """Week one: "Answer all at once" showed only "One at a time instead", never the questions."""
    page = await browser.new_page(viewport={"width": 390, "height": 844})
    await page.goto(base_url)
    await choose(page, "Arjun")
    await page.fill("#composer", "checkin")
    await page.keyboard.press("Enter")
    first = page.locator(".msg.bot", has_text="Question 1 of 5")
    await first.wait_for()
    await first.locator("button.choice", has_text="Answer all at once").click()
    form = page.locator(".msg.bot form.form")
    await form.wait_for()
    assert await form.locator(".form-input").count() == 5
    inputs = form.locator(".form-input")
    await inputs.nth(0).fill("Closed the on-call handbook")
    await inputs.nth(1).fill("nothing")
    await inputs.nth(2).select_option("4")
    await form.locator("button[type=submit]").click()
    await page.locator(".msg.bot", has_text="Thanks, that's your check-in").wait_for(timeout=10_000)
    assert await form.locator("button[type=submit]").is_disabled()  # answered: no second submit
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "web-chat-form-phone.png"), full_page=True)


async def test_a_reload_keeps_both_sides_and_answered_buttons_stay_answered(browser, base_url: str) -> None:
    """Week one: a reload lost the person's own messages and re-enabled every old button."""
    page = await browser.new_page(viewport={"width": 1280, "height": 800})
    await page.goto(base_url)
    await choose(page, "Maya")
    await page.fill("#composer", "settings")
    await page.keyboard.press("Enter")
    menu = page.locator(".msg.bot", has_text="What would you like to change?")
    await menu.wait_for()
    await menu.locator("button.choice", has_text="Time zone").click()
    await page.locator(".msg.bot", has_text="Which time zone").wait_for()
    await page.fill("#composer", "Tokyo")
    await page.keyboard.press("Enter")
    await page.locator(".msg.bot", has_text="Done: your time zone is now").wait_for()
    await page.fill("#composer", "goals")
    await page.keyboard.press("Enter")
    await page.locator(".msg.bot", has_text="set your settings aside").wait_for()

    await page.reload()
    await page.locator(".msg.bot", has_text="Done: your time zone is now").wait_for()
    await page.wait_for_function("() => document.querySelector('#transcript').dataset.ready === '1'")
    mine = await page.locator(".msg.user").all_inner_texts()
    assert (
        any("settings" in t for t in mine) and any("Tokyo" in t for t in mine) and any("Time zone" in t for t in mine)
    )
    # Both sides in their order: "settings" before the menu, "Tokyo" after "Which time zone".
    order = await page.eval_on_selector_all(".msg", "ns => ns.map(n => n.innerText.split('\\n')[0])")
    assert order.index("settings") < next(i for i, t in enumerate(order) if "What would you like to change?" in t)
    assert order.index("Tokyo") == next(i for i, t in enumerate(order) if "Which time zone" in t) + 1
    menus = page.locator(".msg.bot", has_text="What would you like to change?")
    first, second = menus.nth(0), menus.nth(1)
    assert await first.locator("button.choice").count() > 0
    assert await first.locator("button.choice:enabled").count() == 0  # answered before the reload
    assert await first.locator("button.choice.chosen", has_text="Time zone").count() == 1
    # The second menu was set aside by "goals": its buttons still take the conversation back.
    assert await second.locator("button.choice:enabled").count() > 0


async def test_long_histories_page_back_and_a_phone_opens_at_the_bottom(browser, base_url: str) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as http:
        people = await (await http.get(base_url + "api/local/people")).json()
        tom = next(p["id"] for p in people if p["name"].startswith("Tom"))
        for n in range(35):  # 70 messages of Baton's: more than one page
            body = {"person": tom, "client_id": f"page-test-{n:04d}", "text": "help"}
            assert (await http.post(base_url + "api/local/messages", json=body)).status == 202
            body = {"person": tom, "client_id": f"page-test-x{n:04d}", "text": "hi"}
            assert (await http.post(base_url + "api/local/messages", json=body)).status == 202
    page = await browser.new_page(viewport={"width": 390, "height": 844})
    await page.goto(f"{base_url}?person={tom}")
    await page.wait_for_function("() => document.querySelector('#transcript').dataset.ready === '1'")
    at_bottom = "() => (t => t.scrollHeight - t.scrollTop - t.clientHeight < 4)(document.querySelector('#transcript'))"
    await page.wait_for_function(at_bottom)
    shown = await page.locator(".msg.bot").count()
    assert shown < 70
    older = page.locator("#earlier")
    assert await older.is_visible()
    while await older.is_visible():
        await older.click()
        await page.wait_for_function(f"() => document.querySelectorAll('.msg.bot').length > {shown}")
        shown = await page.locator(".msg.bot").count()
    assert shown >= 70
    ids = await page.eval_on_selector_all(".msg.bot", "ns => ns.map(n => Number(n.dataset.id))")
    assert ids == sorted(ids) and len(ids) == len(set(ids))
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "web-chat-history-phone.png"))


async def test_a_message_sent_while_the_database_is_down_is_sent_again_by_the_page(browser, served) -> None:
    """Issue 23: the page resends with the same client_id after a 503, so nothing typed is lost."""
    from storage.db import Database

    base_url, baton = served
    page = await browser.new_page(viewport={"width": 1280, "height": 800})
    await page.goto(base_url)
    await choose(page, "Aiko")
    engine = baton.core.engine
    working = engine.db
    engine.db = Database("postgresql://postgres@127.0.0.1:1/gone")  # a real server that isn't there
    try:
        await page.fill("#composer", "settings")
        await page.keyboard.press("Enter")
        await page.locator(".msg.user .send-state", has_text="Baton is busy").wait_for()
    finally:
        await engine.db.close()
        engine.db = working
    await page.locator(".msg.bot", has_text="What would you like to change?").wait_for(timeout=15_000)
    assert await page.locator(".msg.user", has_text="settings").count() == 1
    assert await page.locator(".msg.bot", has_text="What would you like to change?").count() == 1
