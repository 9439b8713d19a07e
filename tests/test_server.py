"""The aiohttp server over real HTTP on a free loopback port: health, readiness, the local web chat API."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import select

from bot.app import BATON_KEY, Baton, create_app
from bot.config import load_settings
from storage.db import Database
from storage.models import OutboxMessage


@pytest.fixture
async def server(db: Database, database_url: str) -> AsyncIterator[TestServer]:
    settings = load_settings(env_file=None, DATABASE_URL=database_url)
    app = create_app(Baton.build(settings))
    async with TestServer(app, host="127.0.0.1") as srv:
        yield srv


@pytest.fixture
async def http(server: TestServer) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=str(server.make_url("/"))) as session:
        yield session


async def people(http: aiohttp.ClientSession) -> dict[str, dict]:
    async with http.get("/api/local/people") as response:
        assert response.status == 200
        return {p["email"]: p for p in await response.json()}


async def post(http: aiohttp.ClientSession, body: dict) -> tuple[int, dict]:
    async with http.post("/api/local/messages", json=body) as response:
        return response.status, await response.json()


async def read_events(
    http: aiohttp.ClientSession,
    person_id: int,
    count: int,
    *,
    last_id: int = 0,
    timeout: float = 10,
    greet: bool = False,
) -> list[dict]:
    """Read `count` SSE message events for a person, as EventSource would."""
    headers = {"Last-Event-ID": str(last_id)} if last_id else {}
    events: list[dict] = []
    query = f"person={person_id}" + ("&greet=1" if greet else "")
    async with http.get(f"/api/local/stream?{query}", headers=headers) as response:
        assert response.headers["Content-Type"].startswith("text/event-stream")

        async def collect() -> None:
            kind = "message"
            async for raw in response.content:
                line = raw.decode().rstrip("\n")
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: ") and kind == "message":
                    events.append(json.loads(line[6:]))
                    if len(events) == count:
                        return

        await asyncio.wait_for(collect(), timeout)
    return events


async def test_health_and_readiness(http: aiohttp.ClientSession) -> None:
    async with http.get("/healthz") as response:
        assert response.status == 200 and (await response.json())["status"] == "ok"
    async with http.get("/readyz") as response:
        assert response.status == 200 and (await response.json())["status"] == "ready"


async def test_the_page_is_served_without_a_cdn(http: aiohttp.ClientSession) -> None:
    async with http.get("/") as response:
        page = await response.text()
    assert response.status == 200 and "Local tool without sign-in" in page
    assert "http://" not in page and "https://" not in page
    for asset in ("/static/app.js", "/static/style.css"):
        async with http.get(asset) as response:
            assert response.status == 200
            assert "https://" not in await response.text()


async def test_local_mode_seeds_a_demo_organisation_in_two_time_zones(http: aiohttp.ClientSession) -> None:
    everyone = await people(http)
    roles = [p["role"] for p in everyone.values()]
    assert roles.count("manager") == 1 and roles.count("performer") == 4
    performers = [p for p in everyone.values() if p["role"] == "performer"]
    assert len({p["timezone"] for p in performers}) >= 2 and {p["team"] for p in performers} == {"Platform"}


async def test_help_over_http_arrives_on_the_stream(http: aiohttp.ClientSession) -> None:
    maya = (await people(http))["maya@demo.baton"]
    status, body = await post(http, {"person": maya["id"], "client_id": uuid.uuid4().hex, "text": "help"})
    assert (status, body) == (202, {"ok": True})
    (event,) = await read_events(http, maya["id"], 1)
    assert "what I can do for you as a manager" in event["text"]
    assert {"label": "Checkin", "action": "cmd", "value": "checkin", "style": None} in event["choices"]


async def test_a_double_submit_with_one_client_id_is_handled_once(http: aiohttp.ClientSession) -> None:
    tom = (await people(http))["tom@demo.baton"]
    body = {"person": tom["id"], "client_id": "same-client-id-1", "text": "settings"}
    results = await asyncio.gather(post(http, body), post(http, body))
    assert [r[0] for r in results] == [202, 202]
    first = await read_events(http, tom["id"], 1)
    await post(http, {"person": tom["id"], "client_id": uuid.uuid4().hex, "text": "help"})
    after = await read_events(http, tom["id"], 1, last_id=first[-1]["id"])
    assert "what I can do" in after[0]["text"]  # the next message is help, not a second settings menu


async def test_history_is_replayed_and_last_event_id_resumes(http: aiohttp.ClientSession) -> None:
    aiko = (await people(http))["aiko@demo.baton"]
    for text in ("help", "settings"):
        await post(http, {"person": aiko["id"], "client_id": uuid.uuid4().hex, "text": text})
    replay = await read_events(http, aiko["id"], 2)
    texts = sorted(e["text"][:20] for e in replay)  # two replies delivered close together may arrive in either order
    assert texts[0].startswith("Here's what I can do") and texts[1].startswith("Your time zone is")
    await post(http, {"person": aiko["id"], "client_id": uuid.uuid4().hex, "text": "cancel"})
    last = max(replay, key=lambda e: (e["created_at"], e["id"]))
    (resumed,) = await read_events(http, aiko["id"], 1, last_id=last["id"])
    assert resumed["text"].startswith("Stopped")


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        (b"not json", 400, "should be JSON"),
        (b"[1, 2]", 400, "JSON object"),
        (
            json.dumps({"person": "1", "client_id": "abcdefgh", "text": "hi"}).encode(),
            400,
            "person (a positive number)",
        ),
        (json.dumps({"person": 1, "client_id": "short", "text": "hi"}).encode(), 400, "client_id"),
        (json.dumps({"person": 1, "client_id": "abcdefgh"}).encode(), 400, "text or an action"),
        (json.dumps({"person": 424242, "client_id": "abcdefgh", "text": "hi"}).encode(), 404, "no such person"),
        (json.dumps({"person": 1, "client_id": "abcdefgh", "text": "x" * 70000}).encode(), 413, "too large"),
    ],
    ids=["not-json", "not-object", "person-not-int", "short-client-id", "nothing-to-say", "unknown-person", "huge"],
)
async def test_bad_requests_get_a_polite_json_answer(
    http: aiohttp.ClientSession, body: bytes, status: int, says: str
) -> None:
    async with http.post("/api/local/messages", data=body, headers={"Content-Type": "application/json"}) as response:
        payload = await response.json()
    assert response.status == status and payload["ok"] is False and says.lower() in payload["error"].lower()


async def test_stream_without_a_person_is_refused(http: aiohttp.ClientSession) -> None:
    async with http.get("/api/local/stream") as response:
        assert response.status == 400
    async with http.get("/api/local/stream?person=" + "9" * 30) as response:  # no overflow, no 500
        assert response.status == 400


async def test_earlier_pages_of_history_and_which_buttons_are_live(http: aiohttp.ClientSession) -> None:
    """Week one: the web chat showed only the last 50 messages and re-enabled every old button."""
    lucia = (await people(http))["lucia@demo.baton"]["id"]
    for n in range(56):
        await post(http, {"person": lucia, "client_id": f"history-{n:04d}", "text": "settings" if n == 55 else "help"})
    for _ in range(100):  # the replies are delivered in the background, in batches: wait for all 56
        latest = await read_events(http, lucia, 50)
        async with http.get(f"/api/local/history?person={lucia}&before={latest[0]['id']}") as response:
            if len((await response.json())["messages"]) == 6:
                break
        await asyncio.sleep(0.1)
    ready: dict = {}
    async with http.get(f"/api/local/stream?person={lucia}") as response:
        kind = ""
        async for raw in response.content:
            line = raw.decode().rstrip("\n")
            kind = line[7:] if line.startswith("event: ") else kind
            if kind == "ready" and line.startswith("data: "):
                ready = json.loads(line[6:])
                break
    assert ready["more"] is True
    menu = next(m for m in latest if "What would you like to change?" in m["text"])
    assert menu["choices"] and menu["choices"][0]["action"] in ready["live"]  # the settings menu is on screen
    async with http.get(f"/api/local/history?person={lucia}&before={latest[0]['id']}") as response:
        page = await response.json()
    assert response.status == 200 and page["more"] is False and len(page["messages"]) == 6
    ids = [m["id"] for m in page["messages"]] + [m["id"] for m in latest]
    assert len(set(ids)) == 56
    for query, says in [("before=abc", "before"), ("before=" + "9" * 40, "before")]:
        async with http.get(f"/api/local/history?person={lucia}&{query}") as response:
            assert response.status == 400 and says in (await response.json())["error"]


async def test_someone_picked_for_the_first_time_is_greeted_once(http: aiohttp.ClientSession) -> None:
    """Week one: a person picked for the first time saw an empty chat."""
    sam = (await people(http))["sam@demo.baton"]["id"]
    events = await read_events(http, sam, 1, greet=True)
    assert "I'm Baton" in events[0]["text"] and [c["value"] for c in events[0]["choices"]][-1] == "help"
    again = await read_events(http, sam, 1)  # the page reloaded: the same greeting, replayed, not a new one
    assert again[0]["id"] == events[0]["id"]
    status, _ = await post(http, {"person": sam, "client_id": uuid.uuid4().hex, "text": "help"})
    assert status == 202
    replies = await read_events(http, sam, 2)
    assert replies[0]["id"] == events[0]["id"] and "I'm Baton" not in replies[1]["text"]


async def test_a_database_outage_gets_503_with_retry_after_and_the_resend_is_recorded_once(
    http: aiohttp.ClientSession, server
) -> None:
    """Issue 23: the web chat must not tell the person to type it again; the page resends with the same
    client_id when told to retry, and that is recorded once."""
    tom = (await people(http))["tom@demo.baton"]["id"]
    baton = server.app[BATON_KEY]
    engine = baton.core.engine
    working = engine.db
    engine.db = Database("postgresql://postgres@127.0.0.1:1/gone")  # a real server that isn't there
    body = {"person": tom, "client_id": "outage-client-1", "text": "settings"}
    try:
        async with http.post("/api/local/messages", json=body) as response:
            status, retry_after, answer = response.status, response.headers.get("Retry-After"), await response.json()
    finally:
        await engine.db.close()
        engine.db = working
    assert status == 503 and retry_after is not None and 1 <= int(retry_after) <= 30
    assert "trying again" in answer["error"] or "try again" in answer["error"]
    assert (await post(http, body))[0] == 202
    assert (await post(http, body))[0] == 202  # a second resend of the same client_id: still once
    (menu,) = await read_events(http, tom, 1)
    assert "What would you like to change?" in menu["text"]
    await asyncio.sleep(0.3)
    rows = await baton.db.run(lambda s: s.execute(select(OutboxMessage.payload).where(OutboxMessage.person_id == tom)))
    assert len([p for (p,) in rows if "What would you like to change?" in p["text"]]) == 1


def test_the_serving_process_freezes_its_startup_heap(tmp_path) -> None:
    """`serving_app` (what `baton serve` runs) leaves the startup heap frozen; plain `create_app` does not."""
    script = textwrap.dedent(
        f"""
        import asyncio, gc
        from aiohttp import web
        from bot.app import Baton, create_app, serving_app
        from bot.config import load_settings

        async def main():
            for build in (create_app, serving_app):
                settings = load_settings(env_file=None, DATABASE_URL="sqlite+aiosqlite:///{tmp_path}/" + build.__name__,
                                         BATON_TICK_SECONDS=3600, BATON_DEMO=False)
                runner = web.AppRunner(build(Baton.build(settings)))
                await runner.setup()
                print(build.__name__, gc.get_freeze_count() > 0)
                await runner.cleanup()

        asyncio.run(main())
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["create_app", "False", "serving_app", "True"]
