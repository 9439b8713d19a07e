"""Microsoft Teams over the Bot Framework: `POST /api/messages` in, the outbox's `teams` channel out.

A request is authenticated before anything else happens to it (see
`auth.py`; emulator mode skips that on loopback only), parsed as JSON,
checked against the Microsoft 365 Agents SDK's activity model and
translated (`activities.py`) into an `Inbound` for the engine. The engine
queues the replies in the outbox; `TeamsDelivery` sends them from the
stored conversation reference. Installing Baton (conversationUpdate /
installationUpdate) links the account and greets the person once. An
`Action.Execute` invoke is answered in the HTTP response itself (200 with
the invoke response's body), which is all botbuilder's CloudAdapter did for
Baton.

Every Agents SDK import lives in this package.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web

from adapters.contract import Host
from adapters.teams.activities import (
    EXECUTE_INVOKE,
    PLATFORM,
    BadActivity,
    external_id,
    inbound_of,
    installer_of,
    is_personal,
    members_added,
    parse,
    reference_of,
)
from adapters.teams.auth import KeysUnavailable, TokenValidator, Unauthorized
from adapters.teams.cards import render
from adapters.teams.connector import BotToken, Connector
from adapters.teams.credentials import CredentialError
from adapters.teams.delivery import TeamsDelivery
from adapters.teams.identity import Directory
from adapters.teams.options import TeamsOptions
from adapters.teams.outofoffice import GRAPH, OutOfOffice
from dialogs.engine import COMMAND_ACTION
from dialogs.engine.delivery import Delivery, DeliveryError
from dialogs.engine.errors import ConfigurationError, UnknownPerson
from dialogs.engine.messages import Choice, Reply
from storage import queries
from storage.db import DatabaseUnavailable

log = logging.getLogger(__name__)

MAX_BODY = 256 * 1024

UNKNOWN_PERSON = Reply(
    "Hi! I couldn't find you in Baton's organisation yet. Ask your Baton admin to add you with your work email "
    "address, then say hi again."
)
NO_DATABASE = Reply(
    "Sorry, I can't reach my database right now, so I couldn't record that. Please send it again in a few minutes."
)


def welcome(name: str | None) -> Reply:
    """The one greeting a person gets when Baton is installed for them."""
    first = (name or "").split(" ")[0].strip()
    hello = f"Hi {first}! " if first else "Hi! "
    return Reply(
        hello + "I'm Baton. Once a week I'll ask you a few short questions about how your work is going — never "
        "outside your working hours — and pass a summary to your manager. Type *help* any time to see what I can do.",
        choices=(Choice("Help", "help", "primary"), Choice("Settings", "settings")),
        action=COMMAND_ACTION,
    )


class TeamsAdapter:
    """The `/api/messages` endpoint and what it needs. One per application."""

    platform = PLATFORM

    def __init__(self, host: Host, options: TeamsOptions, connector: Connector) -> None:
        self.host = host
        self.options = options
        self.connector = connector
        self.validator = (
            TokenValidator(app_id=options.app_id, openid_url=options.openid_url, session=connector.session)
            if options.authenticated
            else None
        )
        self.directory = Directory(host.db, host.clock, connector, emulator=options.emulator)
        self.out_of_office = (
            OutOfOffice(
                host.db,
                host.clock,
                BotToken(connector.token.credential, connector.session, resource=GRAPH),
                connector.session,
                options.graph_url,
            )
            if options.out_of_office
            else None
        )

    @classmethod
    def create(cls, host: Host, options: TeamsOptions) -> TeamsAdapter:
        """The adapter with its own Bot Connector client. ConfigurationError when the credentials cannot be used
        (a certificate file that cannot be read)."""
        try:
            credential = options.credential()
        except CredentialError as exc:
            raise ConfigurationError(f"Teams: {exc}") from None
        return cls(host, options, Connector(options, credential))

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/api/messages", self.messages)

    def deliveries(self) -> list[Delivery]:
        return [TeamsDelivery(self.connector, tenant_rate=self.options.tenant_rate)]

    async def start(self) -> None:
        if self.options.authenticated:
            log.info(
                "teams: enabled for app %s, %s (requests need a Bot Framework token)",
                self.options.app_id,
                self.options.auth_type,
            )
        else:
            log.warning("teams: EMULATOR MODE: requests are not authenticated; this must only ever listen on loopback")
        if self.out_of_office is not None:
            self.out_of_office.start()

    async def stop(self) -> None:
        if self.out_of_office is not None:
            await self.out_of_office.stop()
        await self.connector.close()

    async def messages(self, request: web.Request) -> web.StreamResponse:
        """`POST /api/messages`: authenticate, parse, run the turn; 401 for anything not properly signed."""
        token = None
        if self.validator is not None:
            try:
                token = await self.validator.verify(request.headers.get("Authorization"))
            except Unauthorized as exc:
                log.info("teams: rejected a request: %s", exc)
                return web.json_response({"error": "unauthorized"}, status=401)
            except KeysUnavailable:
                return web.json_response({"error": "cannot verify requests right now"}, status=503)
        if request.content_length is not None and request.content_length > MAX_BODY:
            return web.json_response({"error": "activity too large"}, status=413)
        if not (request.content_type or "").endswith("json"):
            return web.json_response({"error": "expected application/json"}, status=415)
        try:
            raw = await request.content.read(MAX_BODY + 1)
            if len(raw) > MAX_BODY:
                return web.json_response({"error": "activity too large"}, status=413)
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return web.json_response({"error": "not a JSON activity"}, status=400)
        if not isinstance(body, dict) or not isinstance(body.get("type"), str):
            return web.json_response({"error": "not an activity"}, status=400)
        if token is not None:
            try:  # the token must name this activity's serviceUrl: replies carry Baton's own token there
                TokenValidator.check_activity(token, body)
            except Unauthorized as exc:
                log.info("teams: rejected a request: %s", exc)
                return web.json_response({"error": "unauthorized"}, status=401)
        try:
            activity = parse(body)
        except BadActivity as exc:
            return web.json_response({"error": f"not a Bot Framework activity: {exc}"}, status=400)
        if not isinstance(activity.get("serviceUrl"), str):
            return web.json_response({"error": "activity has no serviceUrl"}, status=400)
        try:
            answer = await self.turn(activity)
        except DatabaseUnavailable:
            return web.json_response({"error": "database unavailable"}, status=503)
        except Exception as exc:  # noqa: BLE001 - a bug here must not leak details; the hook logs without content
            ref = self.host.engine.report(exc, channel=PLATFORM, activity=str(activity.get("type"))[:32])
            return web.json_response({"error": f"internal error (ref {ref})"}, status=500)
        if activity.get("type") == "invoke":
            # The invoke response goes back in this HTTP answer, as the Bot Framework expects of an invoke.
            status, payload = answer if answer is not None else (200, None)
            return web.json_response(payload, status=status) if payload is not None else web.Response(status=status)
        return web.Response(status=200)

    async def turn(self, activity: dict[str, Any]) -> tuple[int, Any] | None:
        """Act on one authenticated activity; return (status, body) when it is an invoke that needs an answer."""
        kind = activity.get("type")
        if not is_personal(activity):
            return (200, None) if kind == "invoke" else None  # Baton lives in personal chats only
        if kind in ("conversationUpdate", "installationUpdate"):
            if members_added(activity):
                await self.installed(installer_of(activity))
            return None
        if kind == "invoke":
            if activity.get("name") != EXECUTE_INVOKE:
                return (501, None)
            await self.message(activity)
            return (200, {"statusCode": 200, "type": "application/vnd.microsoft.activity.message", "value": "Got it."})
        if kind == "message":
            await self.message(activity)
        return None

    async def message(self, activity: dict[str, Any]) -> None:
        reference = reference_of(activity)
        inbound = inbound_of(activity, reference)
        if inbound is None:
            return
        try:
            person_id = await self.directory.person_id(activity, reference)
            if person_id is None:
                await self._notice(
                    reference, UNKNOWN_PERSON, key=f"teams:unknown:{inbound.event_id or external_id(activity)}"
                )
                return
            await self.host.engine.handle(inbound, person_id=person_id)
        except UnknownPerson:  # the identity vanished between linking and the turn (an org import, say)
            self.directory.forget(inbound.sender.user_id)
            await self._notice(reference, UNKNOWN_PERSON, key=f"teams:unknown:{inbound.event_id}")
        except DatabaseUnavailable:
            await self._direct(reference, NO_DATABASE)

    async def installed(self, activity: dict[str, Any]) -> None:
        """Baton was added to a personal chat: store the reference and greet the person, once per account."""
        account = external_id(activity)
        if not account:
            return
        reference = reference_of(activity)
        person_id = await self.directory.person_id(activity, reference, refresh=True)
        if person_id is None:
            await self._notice(reference, UNKNOWN_PERSON, key=f"teams:unknown:install:{account}")
            return
        await self._notice(reference, welcome, key=f"teams:welcome:{account}", person_id=person_id)

    async def _notice(
        self,
        reference: dict[str, Any],
        reply: Reply | Callable[[str | None], Reply],
        *,
        key: str,
        person_id: int | None = None,
    ) -> None:
        """Queue a message Baton sends on its own account (not a dialog turn) under an idempotency key.

        `reply` may be a function of the person's name (read in the same transaction).
        """
        now = self.host.clock.now()

        async def queue(session) -> bool:  # noqa: ANN001
            message = reply
            if callable(message):
                person = await queries.person_by_id(session, person_id) if person_id is not None else None
                message = message(person.name if person else None)
            return await queries.enqueue(
                session,
                key=key,
                person_id=person_id,
                channel=PLATFORM,
                address=reference,
                payload=message.to_dict(),
                due_at=now,
                now=now,
                kind="notice",
            )

        if await self.host.db.run(queue):
            self.host.wake_sender()

    async def _direct(self, reference: dict[str, Any], reply: Reply) -> None:
        """Tell the person at once, bypassing the outbox — only for when the database itself is down."""
        try:
            await self.connector.send(reference, render(reply))
        except DeliveryError as exc:
            log.warning("teams: could not tell a person the database is down: %s", exc.reason)


__all__ = ["TeamsAdapter", "welcome"]
