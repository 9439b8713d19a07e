"""The Teams adapter over real HTTP, on both databases.

Activities shaped like Teams' (tests/data/teams/*.json) are posted to the
real app (`create_app(Baton.build(...))`) in aiohttp's TestServer, as the Bot
Framework Emulator or the Teams service does. Their `serviceUrl` points at
a fake Bot Connector on a free loopback port (tests/fakes/teams_connector.py)
that records every activity Baton sends, answers member lookups and can
throttle or refuse; with an app id set it also serves the OpenID metadata,
the JWKS and the token endpoint, and tokens are signed with keys made here.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import struct
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
from aiohttp.test_utils import TestServer
from click.testing import CliRunner
from jsonschema import Draft7Validator
from sqlalchemy import func, select

from adapters.teams import TeamsAdapter
from adapters.teams.activities import parse, reference_of
from adapters.teams.package import MANIFEST_SCHEMA, MANIFEST_VERSION, write_package
from bot.app import BATON_KEY, Baton, create_app
from bot.cli import main as cli
from bot.config import load_settings
from bot.demo import seed_demo
from dialogs.engine.clock import FakeClock
from dialogs.engine.errors import ConfigurationError
from storage.db import Database
from storage.models import CheckinAnswer, CheckinRun, DialogState, Identity, OutboxMessage, Person, ProcessedEvent
from tests.fakes.teams_connector import App, FakeConnector, Issuer, Recorded

DATA = Path(__file__).parent / "data" / "teams"
# The Teams app manifest schema v1.30, the newest GA one, from Microsoft's npm package @microsoft/app-manifest 1.1.2
# (build/json-schemas/teams/v1.30, MIT licence); it declares draft-04 but uses draft-06's `const`, so draft 7 checks it.
MANIFEST_VALIDATOR = Draft7Validator(
    json.loads((DATA / "MicrosoftTeams.schema.v1.30.json").read_text()), format_checker=Draft7Validator.FORMAT_CHECKER
)
APP_ID = "11111111-2222-3333-4444-555555555555"
TOM_ID = "29:1tomBeckerTeamsUserIdXyZ0123456789abcdefABCDEF"
TOM_AAD = "6f1c2d3e-4a5b-4c6d-8e7f-901234567890"
CONVERSATION = "a:1tomPersonalChatWithBatonQwErTy0123456789"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
_ids = itertools.count(1_763_629_300_000)


def activity(recording: str, fake: FakeConnector, **changes: Any) -> dict[str, Any]:
    """A recorded Teams activity from tests/data/teams, pointed at the fake connector, with a fresh id."""
    data = json.loads((DATA / f"{recording}.json").read_text())
    data["serviceUrl"] = fake.url
    data["id"] = str(next(_ids))
    data.update(changes)
    return data


def card_of(recorded: Recorded) -> dict[str, Any]:
    (attachment,) = recorded.body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    return attachment["content"]


def text_of(recorded: Recorded) -> str:
    """All text a person sees in a sent message (the text, or every TextBlock of its card)."""
    if "attachments" not in recorded.body:
        return recorded.body["text"]
    texts: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "TextBlock":
                texts.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(card_of(recorded)["body"])
    return "\n".join(texts)


def button(recorded: Recorded, title: str) -> dict[str, Any]:
    """The submit data of the button titled `title` anywhere on the card."""
    found: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "Action.Submit" and node.get("title") == title:
                found.append(node["data"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(card_of(recorded))
    assert found, f"no button {title!r} on the card"
    return dict(found[0])


@dataclass
class TeamsRig:
    baton: Baton
    server: TestServer
    http: aiohttp.ClientSession
    fake: FakeConnector
    clock: FakeClock
    seen: int = 0
    issuer: Issuer | None = None

    async def post(
        self, body: dict[str, Any], *, token: str | None = None, raw: bytes | None = None
    ) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = token
        data = raw if raw is not None else json.dumps(body).encode()
        async with self.http.post(self.server.make_url("/api/messages"), data=data, headers=headers) as response:
            text = await response.text()
            return response.status, (json.loads(text) if text else None)

    def bearer(self, body: dict[str, Any]) -> str | None:
        if self.issuer is None:
            return None
        return "Bearer " + self.issuer.token(audience=APP_ID, service_url=body["serviceUrl"])

    async def send(self, body: dict[str, Any]) -> int:
        status, _ = await self.post(body, token=self.bearer(body))
        assert status == 200, status
        return status

    async def install(self) -> None:
        await self.send(activity("conversation_update", self.fake))

    async def say(self, text: str) -> None:
        await self.send(activity("message", self.fake, text=text))

    async def submit(self, data: dict[str, Any]) -> None:
        await self.send(activity("card_submit", self.fake, value=data))

    async def expect(self, count: int = 1, *, timeout: float = 10.0) -> list[Recorded]:
        """The next `count` activities Baton sent to Tom's chat (waits for them)."""
        sent = await self.fake.wait_for(self.seen + count, conversation_id=CONVERSATION, timeout=timeout)
        fresh = sent[self.seen : self.seen + count]
        self.seen += count
        return fresh

    async def until(self, fragment: str, *, most: int = 4) -> Recorded:
        """Consume sent activities until one shows `fragment` (other dialogs may chime in around it)."""
        for _ in range(most):
            (recorded,) = await self.expect(1)
            if fragment in text_of(recorded):
                return recorded
        raise AssertionError(f"no message with {fragment!r} among the next {most}")

    async def settle(self, seconds: float = 0.2) -> None:
        """Let stragglers arrive, and skip them."""
        await asyncio.sleep(seconds)
        self.seen = len(self.fake.sent_to(CONVERSATION))

    async def quiet(self, seconds: float = 0.2) -> None:
        """Assert that nothing more arrives for a moment."""
        await asyncio.sleep(seconds)
        assert len(self.fake.sent_to(CONVERSATION)) == self.seen, [
            text_of(r)[:60] for r in self.fake.sent_to(CONVERSATION)[self.seen :]
        ]


@pytest.fixture
async def fake() -> AsyncIterator[FakeConnector]:
    connector = await FakeConnector().start()
    connector.members[TOM_ID] = {
        "name": "Tom Becker",
        "aadObjectId": TOM_AAD,
        "email": "Tom@demo.baton",
        "userPrincipalName": "tom@demo.baton",
        "tenantId": TENANT,
        "userRole": "user",
    }
    yield connector
    await connector.stop()


async def _rig(
    database_url: str,
    db: Database,
    fake: FakeConnector,
    clock: FakeClock,
    issuer: Issuer | None = None,
    **settings: Any,
) -> AsyncIterator[TeamsRig]:
    await seed_demo(db, clock)
    config = load_settings(env_file=None, DATABASE_URL=database_url, BATON_TICK_SECONDS=3600, **settings)
    baton = Baton.build(config, clock=clock)
    async with TestServer(create_app(baton), host="127.0.0.1") as server, aiohttp.ClientSession() as http:
        yield TeamsRig(baton, server, http, fake, clock, issuer=issuer)


@pytest.fixture
async def teams(db: Database, database_url: str, fake: FakeConnector, clock: FakeClock) -> AsyncIterator[TeamsRig]:
    """Baton in emulator mode (no app id), as the Bot Framework Emulator talks to it."""
    async for rig in _rig(database_url, db, fake, clock, BATON_TEAMS_EMULATOR=True):
        yield rig


@pytest.fixture
async def secured(
    db: Database, database_url: str, fake: FakeConnector, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[TeamsRig]:
    """Baton with an app id: tokens required, keys and bot tokens from the fake's loopback endpoints."""
    issuer = Issuer("baton-test-key-1")
    fake.issuers.append(issuer)
    fake.register(App(APP_ID, TENANT, secret="test-secret"))
    monkeypatch.setenv("BATON_TEAMS_OPENID_URL", fake.openid_url)
    monkeypatch.setenv("BATON_TEAMS_AUTHORITY", f"{fake.url}{TENANT}")
    async for rig in _rig(
        database_url, db, fake, clock, issuer, MICROSOFT_APP_ID=APP_ID, MICROSOFT_APP_PASSWORD="test-secret"
    ):
        yield rig


async def count(db: Database, model: type) -> int:
    async def work(session) -> int:
        return int(await session.scalar(select(func.count()).select_from(model)))

    return await db.run(work)


async def tom(db: Database) -> Person:
    async def work(session) -> Person:
        return (await session.execute(select(Person).where(Person.email == "tom@demo.baton"))).scalars().one()

    return await db.run(work)


async def identities(db: Database) -> list[Identity]:
    async def work(session) -> list[Identity]:
        return list((await session.execute(select(Identity))).scalars())

    return await db.run(work)


async def answers(db: Database, person_id: int) -> dict[str, tuple[str | None, float | None]]:
    async def work(session) -> dict[str, tuple[str | None, float | None]]:
        rows = await session.execute(
            select(CheckinAnswer.question_id, CheckinAnswer.text, CheckinAnswer.number)
            .join(CheckinRun, CheckinRun.id == CheckinAnswer.run_id)
            .where(CheckinRun.person_id == person_id)
        )
        return {q: (t, n) for q, t, n in rows}

    return await db.run(work)


async def outbox(db: Database) -> list[OutboxMessage]:
    async def work(session) -> list[OutboxMessage]:
        return list((await session.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars())

    return await db.run(work)


# -- installation and identity ---------------------------------------------------------------


async def test_installing_stores_the_reference_and_greets_once(teams: TeamsRig, db: Database) -> None:
    update = activity("conversation_update", teams.fake)
    await teams.send(update)
    await teams.send(update)  # the same delivery again
    await teams.send(activity("installation_update", teams.fake))  # Teams sends both on install
    (greeting,) = await teams.expect(1)
    await teams.quiet()
    assert "I'm Baton" in text_of(greeting) and "Tom" in text_of(greeting)
    assert button(greeting, "Help") == {"baton_kind": "choice", "baton_action": "cmd", "baton_value": "help"}
    assert greeting.body["from"]["id"] == update["recipient"]["id"] and greeting.body["recipient"]["id"] == TOM_ID
    (identity,) = await identities(db)
    person = await tom(db)
    assert (identity.platform, identity.external_id, identity.person_id) == ("teams", TOM_AAD, person.id)
    assert identity.address["serviceUrl"] == teams.fake.url
    assert identity.address["conversation"] == {"conversationType": "personal", "tenantId": TENANT, "id": CONVERSATION}
    assert identity.address["user"]["aadObjectId"] == TOM_AAD and identity.address["channelId"] == "msteams"


def test_the_stored_reference_is_what_the_agents_sdk_makes_of_the_activity() -> None:
    from microsoft_agents.activity import Activity, ConversationReference

    for name in ("message", "conversation_update", "card_submit", "emulator_message"):
        data = json.loads((DATA / f"{name}.json").read_text())
        sdk = Activity.model_validate(data).get_conversation_reference()
        expected = sdk.model_dump(by_alias=True, exclude_none=True, mode="json")
        ours = reference_of(parse(data))
        if data["type"] == "conversationUpdate":
            # The SDK keeps the id of a conversationUpdate; botbuilder did not, nor does Baton (it is not a
            # message anyone can reply to). Everything else is the same.
            assert expected.pop("activityId") == data["id"] and "activityId" not in ours
        assert ours == expected, name
        assert ConversationReference.model_validate(ours).model_dump(by_alias=True, exclude_none=True) == expected


# A reference as botbuilder-era Baton stored it (TurnContext.get_conversation_reference(...).serialize(), plus
# the tenant id), pointed at the fake connector by the test.
BOTBUILDER_REFERENCE = {
    "activityId": "1763629200123",
    "user": {"id": TOM_ID, "name": "Tom Becker", "aadObjectId": TOM_AAD},
    "bot": {"id": "28:11111111-2222-3333-4444-555555555555", "name": "Baton"},
    "conversation": {"conversationType": "personal", "tenantId": TENANT, "id": CONVERSATION},
    "channelId": "msteams",
    "locale": "en-US",
    "serviceUrl": "https://smba.trafficmanager.net/emea/",
}


async def test_a_reference_botbuilder_stored_still_reaches_the_person(teams: TeamsRig, db: Database) -> None:
    from microsoft_agents.activity import ConversationReference

    stored = BOTBUILDER_REFERENCE | {"serviceUrl": teams.fake.url}
    parsed = ConversationReference.model_validate(stored)  # the SDK reads it as it is
    assert parsed.service_url == teams.fake.url and parsed.agent.id == stored["bot"]["id"]

    async def put(session) -> None:
        person = (await session.execute(select(Person).where(Person.email == "tom@demo.baton"))).scalars().one()
        session.add(
            Identity(
                person_id=person.id, platform="teams", external_id=TOM_AAD, address=stored, updated_at=datetime.now(UTC)
            )
        )

    await db.run(put)
    teams.clock.set(datetime(2026, 11, 20, 15, 30, tzinfo=UTC))
    report = await teams.baton.conductor.tick(teams.clock.now(), force=True)
    assert report.invited >= 1
    teams.baton.sender.wake()
    (invitation,) = await teams.expect(1)
    assert "check-in time" in text_of(invitation)
    assert invitation.body["recipient"] == stored["user"] and invitation.body["from"] == stored["bot"]
    assert invitation.body["conversation"] == stored["conversation"]


async def test_a_new_teams_user_is_linked_by_email_and_takes_the_client_time_zone(
    teams: TeamsRig, db: Database
) -> None:
    async def move(session) -> None:
        person = (await session.execute(select(Person).where(Person.email == "tom@demo.baton"))).scalars().one()
        person.timezone = "Asia/Tokyo"

    await db.run(move)
    await teams.say("help")
    (reply,) = await teams.expect(1)
    assert "what I can do for you as a team member" in text_of(reply)
    assert (await tom(db)).timezone == "Europe/Berlin"  # from the activity's localTimezone
    lookups = [r for r in teams.fake.requests if r.method == "GET"]
    assert [r.path for r in lookups] == [f"/v3/conversations/{CONVERSATION}/members/{TOM_ID}"]
    await teams.say("help")  # known now: no second lookup
    await teams.expect(1)
    assert len([r for r in teams.fake.requests if r.method == "GET"]) == 1


async def test_someone_baton_cannot_identify_is_told_so_and_nothing_is_created(teams: TeamsRig, db: Database) -> None:
    stranger = {
        "id": "29:1strangerWithoutEmail",
        "name": "Mallory",
        "aadObjectId": "0a0b0c0d-0000-4000-8000-000000000001",
    }
    people_before = await count(db, Person)
    await teams.send(activity("message", teams.fake, **{"from": stranger}))
    (notice,) = await teams.expect(1)
    assert "couldn't find you" in text_of(notice)
    assert await count(db, Person) == people_before and await identities(db) == []
    assert await count(db, DialogState) == 0


async def test_the_emulator_can_sign_in_with_an_email_as_the_user_id(teams: TeamsRig, db: Database) -> None:
    body = activity("emulator_message", teams.fake)
    await teams.send(body)
    sent = await teams.fake.wait_for(1, conversation_id=body["conversation"]["id"])
    assert "what I can do for you" in text_of(sent[0])
    (identity,) = await identities(db)
    assert identity.external_id == "tom@demo.baton" and identity.person_id == (await tom(db)).id


# -- messages and cards ------------------------------------------------------------------------


async def test_help_is_answered_with_a_card_at_the_connector(teams: TeamsRig, db: Database) -> None:
    await teams.install()
    await teams.expect(1)
    await teams.say("help")
    (reply,) = await teams.expect(1)
    card = card_of(reply)
    assert card["version"] == "1.5" and card["type"] == "AdaptiveCard"
    assert "what I can do for you as a team member" in text_of(reply)
    titles = [a["title"] for a in card["actions"]]
    assert "Checkin" in titles and 1 < len(titles) <= 5  # help's command buttons, one Action.Submit each
    for title in titles:
        assert button(reply, title) == {"baton_kind": "choice", "baton_action": "cmd", "baton_value": title.lower()}
    assert reply.path == f"/v3/conversations/{CONVERSATION}/activities" and reply.method == "POST"
    assert reply.authorization is None  # emulator mode: no bot token


async def test_a_redelivered_message_is_one_turn(teams: TeamsRig, db: Database) -> None:
    await teams.install()
    await teams.expect(1)
    body = activity("message", teams.fake, text="settings")
    await teams.send(body)
    await teams.send(body)
    (reply,) = await teams.expect(1)
    await teams.quiet()
    assert "time zone is" in text_of(reply)
    person = await tom(db)

    async def version(session) -> int:
        return int(await session.scalar(select(DialogState.version).where(DialogState.person_id == person.id)))

    assert await db.run(version) == 1


async def test_action_execute_is_answered_in_the_invoke_and_routed_like_a_button(teams: TeamsRig) -> None:
    await teams.install()
    await teams.expect(1)
    status, body = await teams.post(activity("execute_invoke", teams.fake))
    assert status == 200 and body == {
        "statusCode": 200,
        "type": "application/vnd.microsoft.activity.message",
        "value": "Got it.",
    }
    (reply,) = await teams.expect(1)
    assert "time zone is" in text_of(reply)
    status, _ = await teams.post(activity("execute_invoke", teams.fake, name="composeExtension/query"))
    assert status == 501


async def test_explicit_nulls_and_empty_strings_mean_absent(teams: TeamsRig) -> None:
    """Channels and testers send `null` / `""` for optional fields; the Agents SDK's model refuses them (a
    stock SDK bot answers 500). Baton drops them before parsing and answers as usual."""
    await teams.install()
    await teams.expect(1)
    body = activity("message", teams.fake, text="help", locale=None, replyToId="", speak=None, attachments=None)
    body["conversation"] = body["conversation"] | {"name": None}
    body["from"] = body["from"] | {"name": ""}
    await teams.send(body)
    (reply,) = await teams.expect(1)
    assert "what I can do" in text_of(reply)


async def test_a_refused_activity_names_the_field_but_logs_nothing_a_person_wrote(
    teams: TeamsRig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "my salary is 81234"
    status, answer = await teams.post(activity("message", teams.fake, text={"secret": secret}))
    assert status == 400 and "text" in answer["error"] and secret not in json.dumps(answer)
    assert secret not in caplog.text  # the SDK's own validation log quotes the input; Baton filters it out


async def test_group_chats_and_garbage_are_ignored(teams: TeamsRig, db: Database) -> None:
    group = activity(
        "message",
        teams.fake,
        conversation={"id": "19:group@thread.v2", "conversationType": "groupChat", "isGroup": True},
    )
    assert (await teams.post(group))[0] == 200
    assert (await teams.post({}, raw=b"{not json"))[0] == 400
    assert (await teams.post({}, raw=b"[1, 2]"))[0] == 400
    assert (await teams.post({}, raw=b'{"type": "message", "text": "help"}'))[0] == 400  # no serviceUrl to answer at
    assert (await teams.post(activity("message", teams.fake, timestamp="yesterday")))[
        0
    ] == 400  # not an activity's shape
    assert (await teams.post(activity("message", teams.fake, **{"from": "Tom"})))[0] == 400
    await teams.quiet()
    assert teams.seen == 0 and await count(db, ProcessedEvent) == 0


# -- a whole check-in in Teams -----------------------------------------------------------------


async def _invited(teams: TeamsRig) -> Recorded:
    teams.clock.set(datetime(2026, 11, 20, 15, 30, tzinfo=UTC))  # Friday 16:30 in Berlin: this week's check-in is open
    await teams.install()
    await teams.expect(1)
    report = await teams.baton.conductor.tick(teams.clock.now(), force=True)
    assert report.invited >= 1
    teams.baton.sender.wake()
    (invitation,) = await teams.expect(1)
    assert "check-in time" in text_of(invitation)
    return invitation


async def test_a_full_checkin_from_the_proactive_invitation_by_buttons_and_text(teams: TeamsRig, db: Database) -> None:
    invitation = await _invited(teams)
    await teams.submit(button(invitation, "Start"))
    (q1,) = await teams.expect(1)
    assert "Question 1 of 5" in text_of(q1)
    await teams.say("Shipped the **importer** [docs](http://evil.example)")  # typed in the compose box
    (q2,) = await teams.expect(1)
    assert "Question 2 of 5" in text_of(q2)
    await teams.submit(button(q2, "Send") | {"baton_text": "Waiting on a review"})  # typed into the card
    (q3,) = await teams.expect(1)
    assert "Question 3 of 5" in text_of(q3) and "1 = Hard going" in text_of(q3)
    await teams.submit(button(q3, "4"))
    (q4,) = await teams.expect(1)
    await teams.submit(button(q4, "Skip question"))
    (q5,) = await teams.expect(1)
    assert "Question 5 of 5" in text_of(q5)
    await teams.say("nothing")
    thanks = await teams.until("Thanks, that's your check-in")
    # The thanks offers one thing: to put the blocker on the agenda of Tom's next 1:1 with his manager.
    assert [a["title"] for a in thanks.body["attachments"][0]["content"]["actions"]] == ["Discuss in our 1:1"]
    person = await tom(db)
    assert await answers(db, person.id) == {
        "progress": ("Shipped the **importer** [docs](http://evil.example)", None),
        "blockers": ("Waiting on a review", None),
        "pulse": (None, 4.0),
        "needs": ("nothing", None),
    }

    async def status(session) -> str:
        return (await session.execute(select(CheckinRun.status).where(CheckinRun.person_id == person.id))).scalar_one()

    assert await db.run(status) == "answered"
    await teams.settle()
    await teams.say("cancel")  # whatever Baton asked next (another dialog may follow a check-in)
    await teams.expect(1)
    await teams.say("checkin")  # the review echoes what Tom wrote: escaped, never a link
    review = await teams.until("Your check-in for")
    shown = text_of(review)
    assert r"\*\*importer\*\* \[docs\](http://evil.example)" in shown and "[docs](" not in shown


async def test_the_engine_passes_a_prompts_form_through(teams: TeamsRig) -> None:
    invitation = await _invited(teams)
    await teams.submit(button(invitation, "Start"))
    (q1,) = await teams.expect(1)
    await teams.submit(button(q1, "Answer all at once"))
    (form,) = await teams.expect(1)
    assert any(e["type"].startswith("Input.") for e in card_of(form)["body"])


async def test_the_checkin_form_answers_everything_in_one_card(teams: TeamsRig, db: Database) -> None:
    invitation = await _invited(teams)
    await teams.submit(button(invitation, "Start"))
    (q1,) = await teams.expect(1)
    await teams.submit(button(q1, "Answer all at once"))
    (form,) = await teams.expect(1)
    inputs = {e["id"]: e for e in card_of(form)["body"] if e["type"].startswith("Input.")}
    assert list(inputs) == ["field_progress", "field_blockers", "field_pulse", "field_priorities", "field_needs"]
    assert inputs["field_pulse"]["type"] == "Input.ChoiceSet" and len(inputs["field_pulse"]["choices"]) == 5
    answers_given = {
        "field_progress": "Released 2.3",
        "field_blockers": "Flaky CI",
        "field_pulse": "2",
        "field_priorities": "Fix CI",
        "field_needs": "",
    }
    await teams.submit(button(form, "Send check-in") | answers_given)
    await teams.until("Thanks, that's your check-in")
    assert await answers(db, (await tom(db)).id) == {
        "progress": ("Released 2.3", None),
        "blockers": ("Flaky CI", None),
        "pulse": (None, 2.0),
        "priorities": ("Fix CI", None),
    }


# -- authentication ----------------------------------------------------------------------------


async def _nothing_changed(db: Database, before: tuple[int, ...]) -> None:
    assert (
        await count(db, ProcessedEvent),
        await count(db, Identity),
        await count(db, OutboxMessage),
        await count(db, Person),
    ) == before


async def test_with_an_app_id_only_a_valid_bot_framework_token_gets_in(secured: TeamsRig, db: Database) -> None:
    body = activity("message", secured.fake, text="help")
    before = (
        await count(db, ProcessedEvent),
        await count(db, Identity),
        await count(db, OutboxMessage),
        await count(db, Person),
    )
    issuer = secured.issuer
    assert issuer is not None
    stranger = Issuer("baton-test-key-2")  # a key that is not in the OpenID metadata
    impostor = Issuer("baton-test-key-3")
    forged_kid = impostor.token(audience=APP_ID, service_url=body["serviceUrl"], kid=issuer.kid)  # right kid, wrong key
    rejected = {
        "no header": None,
        "not bearer": "Basic dXNlcjpwYXNz",
        "empty bearer": "Bearer ",
        "malformed": "Bearer not.a.jwt",
        "garbage": "Bearer " + "x" * 300,
        "unknown key": "Bearer " + stranger.token(audience=APP_ID, service_url=body["serviceUrl"]),
        "forged with a known kid": "Bearer " + forged_kid,
        "wrong audience": "Bearer "
        + issuer.token(audience="22222222-2222-2222-2222-222222222222", service_url=body["serviceUrl"]),
        "wrong issuer": "Bearer "
        + issuer.token(audience=APP_ID, service_url=body["serviceUrl"], iss="https://sts.windows.net/x/"),
        "wrong serviceurl": "Bearer " + issuer.token(audience=APP_ID, service_url="https://elsewhere.example/"),
        "expired": "Bearer " + issuer.token(audience=APP_ID, service_url=body["serviceUrl"], lifetime=-600),
        "issuer elsewhere": "Bearer "
        + issuer.token(audience=APP_ID, service_url=body["serviceUrl"], iss="https://evil.example"),
        "no expiry": "Bearer " + issuer.token(audience=APP_ID, service_url=body["serviceUrl"], exp=None),
        "not valid yet": "Bearer " + issuer.token(audience=APP_ID, service_url=body["serviceUrl"], nbf=2**33),
        "hmac": "Bearer "
        + jwt.encode(
            {"iss": "https://api.botframework.com", "aud": APP_ID, "serviceurl": body["serviceUrl"], "exp": 2**33},
            "x" * 32,
            algorithm="HS256",
            headers={"kid": issuer.kid},
        ),
    }
    for name, header in rejected.items():
        status, _ = await secured.post(body, token=header)
        assert status == 401, name
    await _nothing_changed(db, before)
    assert secured.fake.sent == []
    status, _ = await secured.post(body, token=secured.bearer(body))
    assert status == 200
    (reply,) = await secured.expect(1)
    assert "what I can do" in text_of(reply)
    assert reply.authorization == "Bearer fake-bot-token"  # Baton's own client-credentials token
    assert secured.fake.metadata_reads == 1  # keys fetched once and cached


async def test_without_signing_keys_nothing_gets_in(secured: TeamsRig, db: Database) -> None:
    adapter = secured.server.app[BATON_KEY].adapters["teams"]
    assert isinstance(adapter, TeamsAdapter) and adapter.validator is not None
    adapter.validator.openid_url = "http://127.0.0.1:9/openid"  # nothing listens there
    body = activity("message", secured.fake)
    status, _ = await secured.post(body, token=secured.bearer(body))
    assert status == 503  # not the sender's fault, and not let through either
    assert await count(db, ProcessedEvent) == 0 and secured.fake.sent == []
    adapter.validator.openid_url = secured.fake.openid_url
    assert (await secured.post(body, token=secured.bearer(body)))[0] == 200


async def test_the_bot_token_is_fetched_once_and_reused(secured: TeamsRig) -> None:
    for text in ("help", "settings", "cancel"):
        await secured.say(text)
        await secured.expect(1)
    (request,) = secured.fake.token_requests
    assert request["grant_type"] == "client_credentials" and request["client_id"] == APP_ID
    assert request["scope"] == "https://api.botframework.com/.default"
    assert all(r.authorization == "Bearer fake-bot-token" for r in secured.fake.sent)


def test_emulator_mode_is_refused_on_a_public_bind() -> None:
    settings = load_settings(env_file=None, BATON_TEAMS_EMULATOR=True)
    settings.check_bind("127.0.0.1")  # loopback is fine
    with pytest.raises(ConfigurationError, match="BATON_TEAMS_EMULATOR"):
        settings.check_bind("0.0.0.0")
    with pytest.raises(ConfigurationError, match="BATON_TEAMS_EMULATOR"):
        settings.check_bind("192.168.1.20")


# -- proactive sends: throttling and refusals -----------------------------------------------------


async def test_a_429_storm_still_delivers_exactly_once(teams: TeamsRig, db: Database) -> None:
    await teams.install()
    await teams.expect(1)
    teams.fake.fail_next(429, times=3, retry_after=0)
    teams.fake.fail_next(502)
    await teams.say("help")
    for _ in range(40):  # the sender retries as rows come due again
        teams.baton.sender.wake()
        await asyncio.sleep(0.05)
        if teams.fake.sent_to(CONVERSATION)[teams.seen :]:
            break
        teams.clock.advance(seconds=5)  # past the 502's backoff
    (reply,) = await teams.expect(1)
    await teams.quiet()
    assert "what I can do" in text_of(reply)
    attempts = [r.status for r in teams.fake.requests if r.method == "POST"]
    assert attempts[-5:] == [429, 429, 429, 502, 201]
    row = (await outbox(db))[-1]
    assert (row.status, row.attempts) == ("sent", 2)  # the 502 and the success; the three 429s were waits, not tries


async def test_a_403_marks_the_message_failed_with_its_reason(teams: TeamsRig, db: Database) -> None:
    await teams.install()
    await teams.expect(1)
    teams.fake.fail_next(403, code="ConversationBlockedByUser")
    await teams.say("help")
    for _ in range(50):
        row = (await outbox(db))[-1]
        if row.status == "failed":
            break
        await asyncio.sleep(0.05)
    assert row.status == "failed"
    assert "403 ConversationBlockedByUser" in (row.last_error or "") and "blocked" in (row.last_error or "")
    assert row.attempts == 1  # permanent: not retried
    await teams.quiet()


# -- the app package ---------------------------------------------------------------------------


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_baton_teams_package_writes_a_sideloadable_zip(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "baton-teams.zip"
    result = CliRunner().invoke(
        cli, ["teams", "package", "--app-id", APP_ID.upper(), "--host", "Baton.Example.com", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(out) as archive:
        assert sorted(archive.namelist()) == ["color.png", "manifest.json", "outline.png"]
        manifest = json.loads(archive.read("manifest.json"))
        color, outline = archive.read("color.png"), archive.read("outline.png")
    assert manifest["$schema"] == MANIFEST_SCHEMA and manifest["manifestVersion"] == MANIFEST_VERSION
    assert (
        MANIFEST_SCHEMA
        == f"https://developer.microsoft.com/en-us/json-schemas/teams/v{MANIFEST_VERSION}/MicrosoftTeams.schema.json"
    )
    (bot,) = manifest["bots"]
    assert bot["botId"] == APP_ID and bot["scopes"] == ["personal"] and manifest["id"] == APP_ID
    assert manifest["validDomains"] == ["baton.example.com"]
    assert manifest["icons"] == {"color": "color.png", "outline": "outline.png"}
    commands = bot["commandLists"][0]["commands"]
    assert {c["title"] for c in commands} >= {"help", "checkin", "1:1", "idea"} and len(commands) == 10  # Teams: ten
    assert not {"dashboard", "retro", "settings"} & {c["title"] for c in commands}
    left_out = [line for line in result.output.splitlines() if line.startswith("Not in the command menu")]
    for name in ("dashboard", "retro", "settings", "ask"):  # never dropped silently: each named, with why
        assert any(f": {name} — " in line for line in left_out), name
    assert _png_size(color) == (192, 192) and _png_size(outline) == (32, 32)
    assert len(manifest["name"]["short"]) <= 30 and len(manifest["description"]["short"]) <= 80
    assert manifest["developer"]["privacyUrl"] == "https://baton.example.com/privacy"
    assert manifest["developer"]["termsOfUseUrl"] == "https://baton.example.com/terms"
    errors = sorted(MANIFEST_VALIDATOR.iter_errors(manifest), key=lambda e: list(e.path))
    assert not errors, f"{errors[0].message} at {list(errors[0].path)}"


def test_the_manifest_check_is_the_real_schema() -> None:
    """The schema file rejects what Teams would: a wrong manifestVersion, an unknown field, a non-URL page, more
    than twelve commands in a list (Teams then shows ten, which Baton keeps to)."""
    good = write_manifest_dict()
    assert not list(MANIFEST_VALIDATOR.iter_errors(good))
    assert good["manifestVersion"] == "1.30" and good["$schema"].endswith("/v1.30/MicrosoftTeams.schema.json")
    assert list(MANIFEST_VALIDATOR.iter_errors(good | {"manifestVersion": "1.29"}))  # the file is v1.30's
    assert list(MANIFEST_VALIDATOR.iter_errors(good | {"colour": "blue"}))
    assert list(MANIFEST_VALIDATOR.iter_errors(good | {"developer": good["developer"] | {"privacyUrl": "ftp://x"}}))
    many = [{"title": f"c{n}", "description": "d"} for n in range(13)]
    bots = [good["bots"][0] | {"commandLists": [{"scopes": ["personal"], "commands": many}]}]
    assert list(MANIFEST_VALIDATOR.iter_errors(good | {"bots": bots}))


def write_manifest_dict() -> dict[str, Any]:
    from adapters.teams.package import manifest

    return manifest(APP_ID, "baton.example.com")


def test_the_package_takes_your_own_privacy_and_terms_pages(tmp_path: Path) -> None:
    out = tmp_path / "baton-teams.zip"
    args = ["teams", "package", "--app-id", APP_ID, "--host", "baton.example.com", "--out", str(out)]
    urls = ["--privacy-url", "https://example.com/legal/privacy", "--terms-url", "https://example.com/legal/terms"]
    result = CliRunner().invoke(cli, args + urls)
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(out) as archive:
        developer = json.loads(archive.read("manifest.json"))["developer"]
    assert developer["privacyUrl"] == "https://example.com/legal/privacy"
    assert developer["termsOfUseUrl"] == "https://example.com/legal/terms"
    refused = CliRunner().invoke(cli, [*args, "--privacy-url", "http://example.com/privacy"])
    assert refused.exit_code == 2 and "https://" in refused.output


async def test_baton_serves_the_privacy_and_terms_pages_the_package_points_at(secured: TeamsRig) -> None:
    for path, says in (("/privacy", "What Baton stores"), ("/terms", "Apache License 2.0")):
        async with secured.http.get(secured.server.make_url(path)) as response:
            text = await response.text()
            assert response.status == 200 and response.content_type == "text/html", path
            assert says in text and "<script" not in text
    async with secured.http.get(secured.server.make_url("/privacy")) as response:
        text = await response.text()
    assert "Messages Baton sent you: 30 days" in text and "Check-ins and their answers: 730 days" in text
    assert "your Baton admin" in text  # no BATON_CONTACT set


@pytest.mark.parametrize(
    ("app_id", "host", "says"),
    [
        ("not-a-guid", "baton.example.com", "GUID"),
        (APP_ID, "https://baton.example.com/api", "not a URL"),
        (APP_ID, "localhost", "public host name"),
        (APP_ID, "10.0.0.5", "public host name"),
        (APP_ID, "baton.example.com:8443", "port"),
    ],
)
def test_package_refuses_a_bad_app_id_or_host(tmp_path: Path, app_id: str, host: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        write_package(app_id=app_id, host=host, out=tmp_path / "x.zip")
    assert not (tmp_path / "x.zip").exists()
    result = CliRunner().invoke(
        cli, ["teams", "package", "--app-id", app_id, "--host", host, "--out", str(tmp_path / "y.zip")]
    )
    assert result.exit_code == 2 and says in result.output


ODD_FIELDS = [
    ("from-a-list", {"from": [1, 2]}),
    ("text-an-object", {"text": {"a": 1}}),
    ("value-a-string", {"value": "not an object"}),
    ("conversation-missing", {"conversation": None}),
    ("conversation-id-an-int", {"conversation": {"id": 42, "conversationType": "personal"}}),
    ("text-huge", {"text": "x" * 200_000}),
    ("type-unknown", {"type": "somethingElse"}),
    ("entities-garbage", {"entities": "nope"}),
    ("deep", {"channelData": json.loads("[" * 900 + "]" * 900)}),
    ("channel-id-empty", {"channelId": ""}),
    ("from-id-an-int", {"from": {"id": 7, "name": "Tom"}}),
    ("timestamp-garbage", {"timestamp": "yesterday", "text": "my secret plan"}),
]


@pytest.mark.parametrize(("name", "changes"), ODD_FIELDS, ids=[n for n, _ in ODD_FIELDS])
async def test_an_authenticated_but_odd_activity_never_gets_a_5xx(
    secured: TeamsRig, name: str, changes: dict[str, Any]
) -> None:
    """Issue 23: input is checked at the edge; a token-bearing activity of an odd shape is refused with
    a 4xx or ignored, never a server error."""
    body = activity("message", secured.fake) | changes
    status, _ = await secured.post(body, token=secured.bearer(activity("message", secured.fake)))
    assert status < 500, (name, status)
