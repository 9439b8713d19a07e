"""Issue 18: the web surfaces refuse what another site or a rebound host name asks of them.

The local web chat has no sign-in, so the browser's own rules are its guard:
a page on another site may still *send* a `text/plain` POST or point a
rebound DNS name at 127.0.0.1. Every test here starts the whole app
(create_app) on a loopback port and speaks real HTTP, on SQLite and
PostgreSQL; the sign-in link tests follow the link as a link scanner would,
then as the person does; the Slack test reads what the fake Web API received.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import func, select

from adapters.web import WebChat
from bot.app import Baton, create_app
from bot.config import load_settings
from dialogs.engine.clock import FakeClock
from dialogs.engine.messages import Inbound, Sender
from storage.db import Database
from storage.models import DashboardSession, DashboardToken, DialogState, OutboxMessage, ProcessedEvent
from tests.conftest import free_port
from tests.fakes.slack_api import FakeSlack
from tests.test_slack import TEAM, dm, fake, message_text, start_rig  # noqa: F401 - fake is a fixture

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
EVIL = "https://evil.example"


@dataclass
class Served:
    url: str  # http://127.0.0.1:PORT, no trailing slash
    port: int
    baton: Baton


@pytest.fixture
async def served(db: Database, database_url: str) -> AsyncIterator[Served]:
    port = free_port()
    settings = load_settings(
        env_file=None,
        DATABASE_URL=database_url,
        BATON_TICK_SECONDS=3600,
        BATON_DEMO_HISTORY=False,
        BATON_PUBLIC_URL=f"http://127.0.0.1:{port}",
    )
    baton = Baton.build(settings, clock=FakeClock(NOW))
    async with TestServer(create_app(baton), host="127.0.0.1", port=port) as server:
        yield Served(str(server.make_url("")).rstrip("/"), port, baton)


@pytest.fixture
async def http(served: Served) -> AsyncIterator[aiohttp.ClientSession]:
    # unsafe=True: aiohttp's jar otherwise ignores cookies set by an IP address host like 127.0.0.1.
    async with aiohttp.ClientSession(base_url=served.url, cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


async def person_id(http: aiohttp.ClientSession, email: str) -> int:
    async with http.get("/api/local/people") as response:
        assert response.status == 200
        return next(p["id"] for p in await response.json() if p["email"] == email)


async def recorded_for(baton: Baton, who: int) -> tuple[int, int, int]:
    """What a turn for `who` would leave behind: delivery keys, dialog states and queued replies."""

    async def count(session) -> tuple[int, int, int]:
        keys = await session.scalar(select(func.count()).select_from(ProcessedEvent))
        states = await session.scalar(select(func.count()).select_from(DialogState).where(DialogState.person_id == who))
        replies = await session.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.person_id == who)
        )
        return keys, states, replies

    return await baton.db.run(count)


# -- the local web chat: cross-site requests ---------------------------------------------------------------


async def test_a_cross_site_text_plain_post_is_refused_and_nothing_is_recorded(
    served: Served, http: aiohttp.ClientSession
) -> None:
    """Before: a form or `fetch(..., {mode: "no-cors"})` on any site could post as anyone (202)."""
    tom = await person_id(http, "tom@demo.baton")
    before = await recorded_for(served.baton, tom)
    body = json.dumps({"person": tom, "client_id": uuid.uuid4().hex, "text": "settings"})
    # What a browser sends for another site's simple request, and the same body with each signal alone.
    attempts = {
        "the whole attack": {"Content-Type": "text/plain", "Origin": EVIL, "Sec-Fetch-Site": "cross-site"},
        "text/plain alone": {"Content-Type": "text/plain;charset=UTF-8"},
        "a form's encoding": {"Content-Type": "application/x-www-form-urlencoded"},
        "no content type": {},
    }
    for name, headers in attempts.items():
        async with http.post("/api/local/messages", data=body.encode(), headers=headers) as response:
            answer = await response.json()
            assert response.status in (403, 415), name
            assert answer["ok"] is False and len(answer["error"]) > 20, name
            assert response.headers["Content-Type"].startswith("application/json"), name
        if name == "text/plain alone":
            assert response.status == 415 and "application/json" in answer["error"]
    await asyncio.sleep(0.2)  # a reply, had a turn run, would be queued by now
    assert await recorded_for(served.baton, tom) == before


async def test_a_post_from_another_origin_is_refused(served: Served, http: aiohttp.ClientSession) -> None:
    tom = await person_id(http, "tom@demo.baton")
    before = await recorded_for(served.baton, tom)
    for origin in (EVIL, "null", f"http://127.0.0.1:{served.port + 1}", f"http://localhost.evil.example:{served.port}"):
        body = {"person": tom, "client_id": uuid.uuid4().hex, "text": "settings"}
        async with http.post("/api/local/messages", json=body, headers={"Origin": origin}) as response:
            answer = await response.json()
        assert response.status == 403, origin
        assert "another site" in answer["error"] or "another page" in answer["error"], origin
    assert await recorded_for(served.baton, tom) == before


@pytest.mark.parametrize("site", ["cross-site", "same-site"])
async def test_sec_fetch_site_from_elsewhere_is_refused(served: Served, http: aiohttp.ClientSession, site: str) -> None:
    tom = await person_id(http, "tom@demo.baton")
    before = await recorded_for(served.baton, tom)
    body = {"person": tom, "client_id": uuid.uuid4().hex, "text": "settings"}
    async with http.post("/api/local/messages", json=body, headers={"Sec-Fetch-Site": site}) as response:
        answer = await response.json()
    assert response.status == 403 and answer["ok"] is False
    # A stream opened from another site would greet the person: reading is refused as well.
    async with http.get(f"/api/local/stream?person={tom}&greet=1", headers={"Sec-Fetch-Site": site}) as response:
        assert response.status == 403
    async with http.get("/api/local/people", headers={"Sec-Fetch-Site": site}) as response:
        assert response.status == 403
    assert await recorded_for(served.baton, tom) == before


async def test_a_same_origin_json_post_is_still_accepted(served: Served, http: aiohttp.ClientSession) -> None:
    tom = await person_id(http, "tom@demo.baton")
    keys_before, _, _ = await recorded_for(served.baton, tom)
    for headers in (
        {"Origin": served.url, "Sec-Fetch-Site": "same-origin"},  # what the page itself sends
        {"Origin": f"http://localhost:{served.port}", "Host": f"localhost:{served.port}"},  # opened as localhost
        {},  # curl, scripts: no browser, no Origin
    ):
        body = {"person": tom, "client_id": uuid.uuid4().hex, "text": "help"}
        async with http.post("/api/local/messages", json=body, headers=headers) as response:
            assert (response.status, await response.json()) == (202, {"ok": True}), headers
    keys, _, _ = await recorded_for(served.baton, tom)
    assert keys == keys_before + 3  # each one made its turn


# -- the local web chat: DNS rebinding ---------------------------------------------------------------------


async def test_a_rebound_host_name_gets_nothing(served: Served, http: aiohttp.ClientSession) -> None:
    """Before: attacker.example, resolved to 127.0.0.1, read everyone's names from /api/local/people."""
    for host in ("attacker.example", f"attacker.example:{served.port}", "127.0.0.1.nip.io", "localhost.evil.example"):
        for path in ("/api/local/people", "/", "/api/local/history?person=1&before=5", "/static/app.js"):
            async with http.get(path, headers={"Host": host}) as response:
                text = await response.text()
            assert response.status == 421, (host, path)
            assert "Demo" not in text and "@demo.baton" not in text, (host, path)
            assert "BATON_PUBLIC_URL" in text, (host, path)  # says what to do if the name is really ours
    for host in (f"127.0.0.1:{served.port}", f"localhost:{served.port}", "LOCALHOST", f"[::1]:{served.port}"):
        async with http.get("/api/local/people", headers={"Host": host}) as response:
            assert response.status == 200, host
            assert any(p["email"] == "maya@demo.baton" for p in await response.json())


async def test_the_configured_public_name_is_served(db: Database, database_url: str) -> None:
    """Behind a proxy at a name of its own (BATON_PUBLIC_URL), that name is the server's too."""
    settings = load_settings(
        env_file=None, DATABASE_URL=database_url, BATON_TICK_SECONDS=3600, BATON_DEMO_HISTORY=False
    )
    baton = Baton.build(settings, clock=FakeClock(NOW))
    baton.adapters["local"] = WebChat(baton.core, public_url="https://baton.example.org/")
    async with TestServer(create_app(baton), host="127.0.0.1") as server:
        async with aiohttp.ClientSession(base_url=str(server.make_url(""))) as http:
            async with http.get("/api/local/people", headers={"Host": "Baton.Example.org"}) as response:
                assert response.status == 200
            body = {"person": 424242, "client_id": uuid.uuid4().hex, "text": "help"}
            headers = {"Host": "baton.example.org", "Origin": "https://baton.example.org"}
            async with http.post("/api/local/messages", json=body, headers=headers) as response:
                assert response.status == 404  # no such person: it got past the checks
            headers = {"Host": "baton.example.org", "Origin": "https://baton.example.org:8443"}  # another port
            async with http.post("/api/local/messages", json=body, headers=headers) as response:
                assert response.status == 403
            async with http.get("/api/local/people", headers={"Host": "baton.example.net"}) as response:
                assert response.status == 421


@pytest.mark.parametrize(
    ("host", "served"),
    [
        ("192.0.2.2:3978", True),  # the address the connection arrived on (bound to 0.0.0.0 with --public)
        ("192.0.2.2", True),
        ("192.0.2.250:3978", False),  # another machine's
        ("0.0.0.0:3978", False),
        ("[fd00::2]:3978", False),
        ("192.0.2.2:3978:1", False),  # malformed
        ("", False),
    ],
)
def test_a_host_is_served_when_it_is_the_address_the_connection_arrived_on(host: str, served: bool) -> None:
    """Without binding beyond loopback in a test: the request's socket says where it arrived."""
    from unittest.mock import Mock

    from aiohttp.test_utils import make_mocked_request

    transport = Mock()
    transport.get_extra_info.side_effect = lambda key, default=None: (
        ("192.0.2.2", 3978) if key == "sockname" else default
    )
    request = make_mocked_request("GET", "/api/local/people", headers={"Host": host}, transport=transport)
    chat = WebChat(Mock())
    refused = chat.refusal(request)
    assert (refused is None) == served
    if refused is not None:
        assert refused.status == 421


# -- headers --------------------------------------------------------------------------------------------------


class _Inline(HTMLParser):
    """Scripts without src, <style> elements and style= / on…= attributes in a document."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        if tag == "script" and "src" not in names:
            self.found.append("inline <script>")
        if tag == "style":
            self.found.append("<style>")
        self.found.extend(f"{name}= on <{tag}>" for name in names if name == "style" or name.startswith("on"))


async def test_every_web_chat_response_carries_the_security_headers(
    served: Served, http: aiohttp.ClientSession
) -> None:
    tom = await person_id(http, "tom@demo.baton")
    responses: dict[str, dict[str, str]] = {}
    for path in ("/", "/static/app.js", "/static/style.css", "/api/local/people", "/api/local/stream", "/static/nope"):
        async with http.get(path) as response:
            responses[path] = dict(response.headers)
            if path == "/":
                page = await response.text()
    body = {"person": tom, "client_id": uuid.uuid4().hex, "text": "help"}
    async with http.post("/api/local/messages", json=body) as response:
        assert response.status == 202
        responses["POST /api/local/messages"] = dict(response.headers)
    async with http.get(f"/api/local/stream?person={tom}") as response:  # a stream's headers go out first
        responses["stream"] = dict(response.headers)
    async with http.get("/api/local/people", headers={"Host": "attacker.example"}) as response:
        responses["refused"] = dict(response.headers)
    for name, headers in responses.items():
        csp = headers.get("Content-Security-Policy", "")
        directives = dict([*d.strip().split(" ", 1), ""][:2] for d in csp.split(";") if d.strip())
        assert directives.get("default-src") == "'none'", name
        for kind in ("script-src", "style-src", "connect-src"):
            assert directives.get(kind) == "'self'", (name, kind)  # nothing inline, nothing from elsewhere
        assert directives.get("frame-ancestors") == "'none'" and directives.get("base-uri") == "'none'", name
        assert "unsafe" not in csp, name
        assert headers.get("X-Content-Type-Options") == "nosniff", name
        assert headers.get("Referrer-Policy") == "no-referrer", name
        assert headers.get("X-Frame-Options") == "DENY", name
    assert responses["/api/local/people"].get("Cache-Control") == "no-store"
    parser = _Inline()
    parser.feed(page)
    assert parser.found == [] and '<script src="/static/app.js"' in page


async def test_no_response_names_the_servers_software_or_version(served: Served, http: aiohttp.ClientSession) -> None:
    """Before: `Server: Python/3.11 aiohttp/3.x` on every answer."""
    for method, path in [
        ("GET", "/"),
        ("GET", "/healthz"),
        ("GET", "/api/local/people"),
        ("GET", "/static/app.js"),
        ("GET", "/dashboard/signin"),
        ("GET", "/dashboard/static/dashboard.css"),
        ("GET", "/no/such/page"),
        ("POST", "/healthz"),  # 405
    ]:
        async with http.request(method, path) as response:
            server = response.headers.get("Server", "")
        assert "aiohttp" not in server.lower() and "python" not in server.lower(), path
        assert not re.search(r"\d", server), (path, server)


async def test_the_page_runs_under_its_policy_in_a_real_browser(browser, served: Served, database_url: str) -> None:
    if "postgresql" in database_url:
        pytest.skip("the browser checks the page, not the database: once, on SQLite, is enough")
    from tests.test_browser import choose

    page = await browser.new_page()
    complaints: list[str] = []
    page.on("console", lambda m: complaints.append(m.text) if "Content Security Policy" in m.text else None)
    await page.goto(served.url + "/")
    await choose(page, "Maya")
    await page.fill("#composer", "help")
    await page.click("#send")
    await page.locator(".msg.bot", has_text="what I can do for you as a manager").wait_for()
    assert complaints == []  # the page's script, styles and stream all run under the policy

    # Another origin's page sends the simple request a browser allows it; nothing comes of it.
    async with aiohttp.ClientSession(base_url=served.url) as http:
        tom = await person_id(http, "tom@demo.baton")
    before = await recorded_for(served.baton, tom)
    other = await browser.new_page()
    await other.goto("about:blank")
    outcome = await other.evaluate(
        """async ([url, person]) => {
             try {
               const r = await fetch(url, {method: "POST", mode: "no-cors", headers: {"Content-Type": "text/plain"},
                                           body: JSON.stringify({person, client_id: "from-another-page", text: "hi"})});
               return r.type;
             } catch (e) { return "failed"; }
           }""",
        [served.url + "/api/local/messages", tom],
    )
    assert outcome in ("opaque", "failed")
    await asyncio.sleep(0.2)
    assert await recorded_for(served.baton, tom) == before


# -- dashboard sign-in links --------------------------------------------------------------------------------


async def link_for(served: Served, email: str) -> str:
    """Ask Baton for a dashboard link in chat, as the person with `email`; return the link's path and query."""
    async with aiohttp.ClientSession(base_url=served.url) as http:
        who = await person_id(http, email)
    inbound = Inbound(
        Sender(platform="local", user_id=str(who)), address={"person": who}, text="dashboard", event_id=uuid.uuid4().hex
    )
    replies = await served.baton.engine.handle(inbound)
    found = re.search(r"https?://\S+(/dashboard/login\?token=[\w-]+)", replies[-1].text)
    assert found, replies[-1].text
    return found.group(1)


def form_of(page: str) -> tuple[str, str, dict[str, str]]:
    """The one form on a page: its method, its action and its hidden fields."""
    (form,) = re.findall(r"<form\b[^>]*>.*?</form>", page, re.S)
    method = re.search(r'method="([^"]+)"', form)
    action = re.search(r'action="([^"]+)"', form)
    assert method and action, form
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))
    assert "<button" in form
    return method.group(1), action.group(1), fields


async def unused_tokens(baton: Baton) -> int:
    return await baton.db.run(
        lambda s: s.scalar(select(func.count()).select_from(DashboardToken).where(DashboardToken.used_at.is_(None)))
    )


async def test_opening_a_sign_in_link_spends_nothing_until_the_button_is_pressed(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    """Before: a GET spent the link, so a chat app's link scanner signed in instead of the person."""
    caplog.set_level(logging.DEBUG)
    link = await link_for(served, "maya@demo.baton")
    token = link.split("token=")[1]
    async with aiohttp.ClientSession(base_url=served.url, cookie_jar=aiohttp.CookieJar(unsafe=True)) as scanner:
        for _ in range(2):  # a scanner, then the preview of another
            async with scanner.get(link, allow_redirects=False) as response:
                page = await response.text()
                assert response.status == 200 and "Set-Cookie" not in response.headers
                assert "no-store" in response.headers["Cache-Control"]
                assert "script" not in page.lower()
        assert await unused_tokens(served.baton) == 1
    method, action, fields = form_of(page)
    assert (method, action, fields) == ("post", "/dashboard/login", {"token": token})
    assert "Open your dashboard" in page

    async with aiohttp.ClientSession(base_url=served.url, cookie_jar=aiohttp.CookieJar(unsafe=True)) as person:
        async with person.get(link) as response:
            assert response.status == 200
        async with person.post(
            action, data=fields, allow_redirects=False, headers={"Origin": served.url, "Sec-Fetch-Site": "same-origin"}
        ) as response:
            assert response.status == 303 and response.headers["Location"] == "/dashboard"
            cookie = response.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
        async with person.get("/dashboard", allow_redirects=False) as response:
            assert response.status == 200 and "Maya Chen" in await response.text()
        async with person.post(action, data=fields, allow_redirects=False) as response:  # a second press: spent
            assert response.status == 403 and "sign-in link is not valid" in await response.text()
    async with aiohttp.ClientSession(base_url=served.url) as late:  # opening it again now says so
        async with late.get(link, allow_redirects=False) as response:
            assert response.status == 403 and "<kbd>dashboard</kbd>" in await response.text()
    sessions = await served.baton.db.run(lambda s: s.scalar(select(func.count()).select_from(DashboardSession)))
    assert sessions == 1 and await unused_tokens(served.baton) == 0
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "dashboard POST /dashboard/login -> 303" in logged
    assert token not in logged  # not from the query string (GET), nor from the form (POST)


async def test_a_sign_in_posted_from_another_site_is_refused_and_leaves_the_link_usable(served: Served) -> None:
    """Another site must not sign a person in to the account behind a link of its own (login CSRF)."""
    link = await link_for(served, "tom@demo.baton")
    token = link.split("token=")[1]
    async with aiohttp.ClientSession(base_url=served.url, cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        for headers in ({"Sec-Fetch-Site": "cross-site"}, {"Origin": EVIL}):
            async with http.post(
                "/dashboard/login", data={"token": token}, headers=headers, allow_redirects=False
            ) as response:
                assert response.status == 403, headers
                assert "Set-Cookie" not in response.headers
        assert await unused_tokens(served.baton) == 1
        # A form on a page with Referrer-Policy: no-referrer is sent with `Origin: null` by browsers.
        async with http.post(
            "/dashboard/login",
            data={"token": token},
            headers={"Origin": "null", "Sec-Fetch-Site": "same-origin"},
            allow_redirects=False,
        ) as response:
            assert response.status == 303


async def test_a_post_without_a_token_or_with_a_forged_one_is_refused(served: Served) -> None:
    async with aiohttp.ClientSession(base_url=served.url) as http:
        for data in ({}, {"token": ""}, {"token": "A" * 43}, {"token": "x" * 5000}):
            async with http.post("/dashboard/login", data=data, allow_redirects=False) as response:
                assert response.status == 403
                assert "sign-in link is not valid" in await response.text()


# -- Slack: sign-in links are not unfurled ----------------------------------------------------------------------


async def test_a_sign_in_link_sent_on_slack_is_not_unfurled(
    db: Database,
    database_url: str,
    fake: FakeSlack,  # noqa: F811 - the fixture imported from tests.test_slack
) -> None:
    clock = FakeClock(datetime(2026, 11, 20, 15, 30, tzinfo=UTC))
    async for rig in start_rig(db, database_url, fake, clock):
        status, _ = await rig.event(dm("U0MAYA", "dashboard", "Ev0UNFURL001"))
        assert status == 200
        posted: dict[str, Any] = await rig.wait_post("U0MAYA", "/dashboard/login?token=")
        assert "/dashboard/login?token=" in message_text(posted)
        assert posted.get("unfurl_links") in (False, "false", "0")
        assert posted.get("unfurl_media") in (False, "false", "0")


def test_the_public_url_reaches_the_web_chat() -> None:
    """BATON_PUBLIC_URL is a name the web chat answers to (bot/app.py hands it over)."""
    from bot.app import Baton
    from bot.config import load_settings

    baton = Baton.build(load_settings(env_file=None, BATON_PUBLIC_URL="https://baton.example.org"))
    assert "baton.example.org" in baton.adapters["local"].hosts  # type: ignore[attr-defined]
