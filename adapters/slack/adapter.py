"""slack-bolt on Baton's aiohttp server (or over Socket Mode): ack at once, then translate and run the turn.

Every listener acknowledges first — the HTTP 200 (or the Socket Mode ack)
never waits for the database — and hands the work to a background task kept
in `tasks`. The task makes sure the Slack user maps to a person, runs the
engine turn (which records the delivery id in the turn's transaction, so a
retry or a double click changes nothing, even while the first is still
running), and the outbox sends the replies. Errors are logged by type and
code location with a reference id, never with what anyone wrote.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from adapters.contract import Host
from adapters.slack import render, status, translate
from adapters.slack.delivery import SlackDelivery
from adapters.slack.identity import NOT_ADDED, Directory
from adapters.slack.installations import DatabaseInstallationStore, SignedStateStore
from adapters.slack.manifest import BOT_SCOPES, COMMAND, EVENTS_PATH, INSTALL_PATH, REDIRECT_PATH
from adapters.slack.translate import PLATFORM
from dialogs.engine.delivery import Delivery
from dialogs.engine.errors import ConfigurationError, UnknownPerson
from dialogs.engine.feed import form_of
from dialogs.engine.messages import Inbound, Reply
from dialogs.services.calendars import DEFAULT_WORDS, words_pattern
from dialogs.services.home import overview
from storage.db import DatabaseUnavailable

log = logging.getLogger(__name__)

ALREADY = "You've already pressed that — it's done, so I left things as they were."
FORM_GONE = "That form isn't available any more. Type *checkin* to get a fresh one."
FORM_FAILED = "Sorry, the form didn't open. Please press the button again."
DATABASE_LATER = (
    "Sorry, my database is having trouble, so I couldn't record that yet. I've kept your message and will "
    "record it as soon as I can; no need to send it again."
)
DATABASE_DOWN = "Sorry, I can't record anything right now: my database is unreachable. Nothing was saved; please try again in a few minutes."
TOKEN_TTL = 300.0
DEFAULT_WORKSPACE_RATE = 10.0  # chat.postMessage per second per workspace; Slack: "several hundred per minute"
SYNC_INTERVAL = 24 * 3600.0
# Turns running at once. More wait their turn in memory (they are acked already). Running turns share
# the engine's batched transactions and coalesced lookups rather than holding a connection each, so
# this can be wide; it bounds only how much work a burst of events starts at one time.
TURN_SLOTS = 256


class _NotTheTokenWarning(logging.Filter):
    """bolt reads SLACK_BOT_TOKEN from the environment by itself, then warns that the client we pass wins."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("As you gave `client` as well")


def _quiet_logger(name: str) -> logging.Logger:
    """A logger for bolt and the SDK that never goes below WARNING.

    Their INFO and DEBUG messages include request bodies (what people wrote)
    and, for a request with a bad signature, the whole payload.
    """
    logger = logging.getLogger(name)
    if logger.level < logging.WARNING:
        logger.setLevel(logging.WARNING)
    if not any(isinstance(f, _NotTheTokenWarning) for f in logger.filters):
        logger.addFilter(_NotTheTokenWarning())
    return logger


def _secret(value: Any) -> str | None:
    return value.get_secret_value() if value is not None else None


def _flag(raw: object, default: bool) -> bool:
    if raw is None or raw == "":
        return default
    if isinstance(raw, bool):
        return raw
    return str(raw).strip().lower() not in ("0", "false", "no", "off")


AWAY_EMOJI = status.emoji_set(status.AWAY_EMOJI)
AWAY_WORDS = words_pattern(("vacationing", *DEFAULT_WORDS))


@dataclass(frozen=True, slots=True)
class SlackOptions:
    """What the Slack adapter needs to know, read once at start.

    Credentials: `bot_token` + `signing_secret` (HTTP), `app_token` (Socket
    Mode), `client_id` + `client_secret` (OAuth installs into several
    workspaces). BATON_SLACK_AUTO_ADD (default on: unknown Slack users who
    talk to Baton become people) and BATON_SLACK_WORKSPACE_RATE (messages per
    second per workspace, default 10).
    """

    bot_token: str | None = None
    signing_secret: str = ""
    app_token: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    api_url: str = "https://slack.com/api/"
    auto_add: bool = True
    workspace_rate: float = DEFAULT_WORKSPACE_RATE
    # A status with one of these emoji, or text with one of these words, counts as away (adapters/slack/status.py).
    away_emoji: frozenset[str] = AWAY_EMOJI
    away_words: re.Pattern[str] | None = AWAY_WORDS

    @classmethod
    def from_settings(cls, settings: Any) -> SlackOptions:
        """Read the options from Baton's settings (or the environment); ConfigurationError names a wrong one."""

        def read(name: str) -> object:
            value = getattr(settings, name, None)
            return os.environ.get(name) if value is None else value

        raw_rate = read("BATON_SLACK_WORKSPACE_RATE")
        try:
            rate = float(str(raw_rate)) if raw_rate not in (None, "") else DEFAULT_WORKSPACE_RATE
        except (TypeError, ValueError):
            rate = -1.0
        if not 0 < rate <= 100_000:
            raise ConfigurationError(
                "BATON_SLACK_WORKSPACE_RATE must be a number of messages per second above 0 (e.g. 10)"
            )
        api_url = str(read("SLACK_API_URL") or "https://slack.com/api/")
        return cls(
            bot_token=_secret(getattr(settings, "SLACK_BOT_TOKEN", None)),
            signing_secret=_secret(getattr(settings, "SLACK_SIGNING_SECRET", None)) or "",
            app_token=_secret(getattr(settings, "SLACK_APP_TOKEN", None)),
            client_id=getattr(settings, "SLACK_CLIENT_ID", None) or None,
            client_secret=_secret(getattr(settings, "SLACK_CLIENT_SECRET", None)),
            api_url=api_url if api_url.endswith("/") else api_url + "/",
            auto_add=_flag(read("BATON_SLACK_AUTO_ADD"), True),
            workspace_rate=rate,
            away_emoji=status.emoji_set(str(read("BATON_SLACK_AWAY_EMOJI") or status.AWAY_EMOJI)),
            away_words=words_pattern(
                ("vacationing", *str(read("BATON_AWAY_WORDS") or ", ".join(DEFAULT_WORDS)).split(","))
            ),
        )


class NotKept(Exception):
    """A delivery could not be kept in the inbox (the database is down): refuse it so it comes again."""


class SlackAdapter:
    """Baton's Slack surface: bolt app, listeners, identity, delivery, and their lifecycle."""

    platform = PLATFORM

    def __init__(self, host: Host, options: SlackOptions) -> None:
        self.host = host
        self.options = options
        self.oauth = bool(options.client_id)
        self.app_token = options.app_token
        # The one Web API client (its aiohttp session is opened on start). bolt's per-request
        # clients, the OAuth flow, Socket Mode and the outbox delivery all share its session.
        self.client = AsyncWebClient(
            token=None if self.oauth else options.bot_token,
            base_url=options.api_url,
            timeout=30,
            logger=_quiet_logger("adapters.slack.sdk"),
        )
        self.store = DatabaseInstallationStore(host.db, on_saved=self._installed) if self.oauth else None
        self.directory = Directory(
            host.db, self.client, host.clock, auto_add=lambda: self.options.auto_add, on_members=self._statuses
        )
        self.delivery = SlackDelivery(
            self.client, self.token_for, workspace_rate=self.options.workspace_rate, ready=self._ensure_session
        )
        self.tasks: set[asyncio.Task[None]] = set()
        # Deliveries are kept in the inbox before the ack, and replayed if a crash beat their turn.
        self.inbox = host.inbox
        self._slots = asyncio.Semaphore(TURN_SLOTS)
        self.socket_handler: Any = None
        self._closing = False
        self._tokens: dict[tuple[str | None, str | None], tuple[float, str | None]] = {}
        self._sync_task: asyncio.Task[None] | None = None
        self.synced = asyncio.Event()  # set after the first users.list pass (tests wait on it)
        self.bolt = self._build_bolt()

    # -- bolt ------------------------------------------------------------------------------------

    def _build_bolt(self) -> AsyncApp:
        options = self.options
        logger = _quiet_logger("adapters.slack.bolt")
        kwargs: dict[str, Any] = {
            "name": "baton",
            "client": self.client,
            "signing_secret": options.signing_secret,
            # Listeners only ack and start a task, so running them before responding costs nothing
            # and the response never waits on bolt's ack polling.
            "process_before_response": True,
            "logger": logger,
        }
        if self.oauth:
            client_secret = options.client_secret or ""
            kwargs["installation_store"] = self.store
            kwargs["oauth_settings"] = AsyncOAuthSettings(
                client_id=options.client_id,
                client_secret=client_secret,
                scopes=list(BOT_SCOPES),
                installation_store=self.store,
                state_store=SignedStateStore(client_secret),
                install_path=INSTALL_PATH,
                redirect_uri_path=REDIRECT_PATH,
                logger=logger,
            )
        app = AsyncApp(**kwargs)
        if self.oauth:
            app.enable_token_revocation_listeners()  # deletes the workspace's installation
        else:
            app.event("app_uninstalled")(self._on_uninstalled)
            app.event("tokens_revoked")(self._on_uninstalled)
        app.event("message")(self._on_message)
        app.event("app_mention")(self._on_mention)
        app.event("app_home_opened")(self._on_home_opened)
        app.event("user_status_changed")(self._on_status_changed)
        app.command(COMMAND)(self._on_command)
        app.action(re.compile(rf"^{re.escape(render.FORM_ACTION)}\|"))(self._on_form_button)
        app.action(re.compile(r"."))(self._on_action)
        app.view(render.FORM_CALLBACK)(self._on_view)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        """POST /slack/events (events, interactivity, slash commands) and, with OAuth, the install pages."""
        flow = self.bolt.oauth_flow
        if request.method == "GET" and flow is not None and request.path == flow.install_path:
            response = await flow.handle_installation(await to_bolt_request(request))
        elif request.method == "GET" and flow is not None and request.path == flow.redirect_uri_path:
            response = await flow.handle_callback(await to_bolt_request(request))
        else:
            # Slack's own requests go straight through; a body's shape is looked at only when reading it
            # failed, so the hot path parses nothing twice.
            try:
                with self.host.inbox.acks.acknowledging():
                    response = await self.bolt.async_dispatch(await to_bolt_request(request))
            except Exception:
                refused = await self._refuse_malformed(request)
                if refused is None:
                    raise
                return refused
            if response.status >= 500 and (refused := await self._refuse_malformed(request)) is not None:
                return refused
            if response.status == 401:
                log.warning("slack: refused a request with a bad or stale signature")
        return await to_aiohttp_response(response)

    async def _refuse_malformed(self, request: web.Request) -> web.Response | None:
        """A 400 for a signed body that is not Slack's shape (a 401 if unsigned): never a 500 Slack would
        retry. None when the body is fine, so a real failure (the inbox down, say) keeps its 500."""
        raw = await request.read()
        problem = translate.malformed(raw, request.content_type or "")
        if problem is None:
            return None
        if not self._signed(request, raw):
            return web.json_response({"ok": False, "error": "invalid signature"}, status=401)
        log.warning("slack: refused a signed request whose body is not Slack's shape (%s)", problem)
        return web.json_response({"ok": False, "error": f"malformed request: {problem}"}, status=400)

    def _signed(self, request: web.Request, body: bytes) -> bool:
        """Slack's signature on this request is good."""
        if not self.options.signing_secret:
            return True  # Socket Mode: no HTTP events; nothing to verify here
        return SignatureVerifier(self.options.signing_secret).is_valid(
            body=body,
            timestamp=request.headers.get("X-Slack-Request-Timestamp", ""),
            signature=request.headers.get("X-Slack-Signature", ""),
        )

    def routes(self, app: web.Application) -> None:
        if not self.app_token:
            app.router.add_post(EVENTS_PATH, self.handle)
        if self.oauth:
            app.router.add_get(INSTALL_PATH, self.handle)
            app.router.add_get(REDIRECT_PATH, self.handle)

    # -- lifecycle -------------------------------------------------------------------------------

    def _ensure_session(self) -> bool:
        """Open the shared aiohttp session on first use inside the loop; False once shutting down."""
        if self._closing:
            return False
        if self.client.session is None or self.client.session.closed:
            self.client.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        return True

    def deliveries(self) -> list[Delivery]:
        return [self.delivery]

    async def start(self) -> None:
        """Open the session (and Socket Mode); start the daily directory sync."""
        self._closing = False
        self._ensure_session()
        if self.app_token:
            from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler

            self.socket_handler = AsyncSocketModeHandler(
                self.bolt, self.app_token, logger=_quiet_logger("adapters.slack.socket"), web_client=self.client
            )
            try:
                await self.socket_handler.connect_async()
            except SlackApiError as exc:
                raise ConfigurationError(
                    f"Slack Socket Mode could not connect ({exc.response.get('error')}): check SLACK_APP_TOKEN "
                    "(an app-level token with connections:write) and that Socket Mode is on for the app"
                ) from None
            log.info("slack: connected over Socket Mode")
        self._sync_task = asyncio.get_running_loop().create_task(self._sync_loop(), name="slack-users-sync")

    async def problem(self) -> str | None:
        """Why this adapter cannot take work now (readiness), or None."""
        if self.socket_handler is not None and not await self.socket_handler.client.is_connected():
            return "Slack Socket Mode is disconnected (it reconnects by itself; check SLACK_APP_TOKEN if it stays so)"
        return None

    async def stop(self) -> None:
        """Stop the sync, close Socket Mode, finish the turns in flight (10 s at most), close the session."""
        if self._sync_task is not None:
            self._sync_task.cancel()
            await asyncio.gather(self._sync_task, return_exceptions=True)
        if self.socket_handler is not None:
            await self.socket_handler.close_async()
        await self.drain(10.0)
        try:  # replies the last turns handed straight to the sender still use the session
            await asyncio.wait_for(self.host.settle(), 10.0)
        except TimeoutError:
            log.warning("slack: replies still being sent at shutdown; they are retried after the restart")
        self._closing = True
        if self.client.session is not None:
            await self.client.session.close()

    async def drain(self, timeout: float) -> None:
        """Wait up to `timeout` seconds for turns in flight; cancel what is left."""
        if not self.tasks:
            return
        _, pending = await asyncio.wait(set(self.tasks), timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=1.0)

    async def _sync_loop(self) -> None:
        """Link workspace members to people by email at start, then daily."""
        while True:
            try:
                await self.sync_users()
            except asyncio.CancelledError:
                raise
            except DatabaseUnavailable:
                log.warning("slack users sync skipped: database unavailable")
            except Exception as exc:  # noqa: BLE001 - a failed sync is reported and tried again next interval
                self.host.engine.report(exc, where="slack users sync")
            finally:
                self.synced.set()
            await asyncio.sleep(SYNC_INTERVAL)

    async def sync_users(self) -> int:
        """One users.list pass over every workspace Baton is in; returns identities added."""
        if self.oauth:
            assert self.store is not None
            workspaces = await self.store.installed()
        else:
            workspaces = [(None, None)]
        linked = 0
        for enterprise, team in workspaces:
            token = await self.token_for(team, enterprise)
            if not token:
                continue
            if team is None and not self.oauth:
                team = await self._team_of_token(token)
            try:
                linked += await self.directory.sync(team, token, enterprise=enterprise)
            except (TimeoutError, SlackApiError, SlackClientError, OSError) as exc:
                log.warning("slack users sync failed for workspace %s (%s)", team, type(exc).__name__)
        if linked:
            log.info("slack: linked %d people to their Slack accounts by email", linked)
        return linked

    def _installed(self, installation: Any) -> None:
        """A workspace just installed Baton: forget cached tokens and link its members now."""
        self._tokens.clear()
        if installation.bot_token:
            team = None if installation.is_enterprise_install else installation.team_id
            work = self.directory.sync(team, installation.bot_token, enterprise=installation.enterprise_id)
            self.spawn(work, "users sync", limited=False)

    async def _team_of_token(self, token: str) -> str | None:
        response = await self.client.auth_test(token=token)
        return response.get("team_id")

    def spawn(self, work: Awaitable[Any], what: str, *, limited: bool = True) -> None:
        """Run `work` after the ack, keeping a reference until it ends; errors are logged without content.

        `limited` work waits for one of TURN_SLOTS; opening a modal does not
        (its trigger expires three seconds after the click).
        """
        task = asyncio.get_running_loop().create_task(self._guarded(work, what, limited))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _guarded(self, work: Awaitable[Any], what: str, limited: bool) -> None:
        try:
            if limited:
                async with self._slots:
                    await self.host.inbox.acks.after_acks()
                    await work
            else:
                await work
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - one bad event must not stop Socket Mode; the hook reports it
            self.host.engine.report(exc, where=f"slack {what}")

    # -- tokens ----------------------------------------------------------------------------------

    async def token_for(self, team: str | None, enterprise: str | None = None) -> str | None:
        """The bot token for a workspace: the configured one, or the installation's (cached 5 minutes)."""
        if not self.oauth:
            return self.client.token
        assert self.store is not None
        key = (enterprise, team)
        cached = self._tokens.get(key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        bot = await self.store.async_find_bot(enterprise_id=enterprise, team_id=team)
        if bot is None and enterprise:
            bot = await self.store.async_find_bot(enterprise_id=enterprise, team_id=None, is_enterprise_install=True)
        token = bot.bot_token if bot is not None else None
        self._tokens[key] = (time.monotonic() + (TOKEN_TTL if token else 30.0), token)
        return token

    @staticmethod
    def _context_token(context: Any) -> str | None:
        return context.get("bot_token") or context.get("token")

    # -- listeners (ack, translate, spawn) -------------------------------------------------------

    async def _keep(self, inbound: Inbound) -> Inbound:
        """`inbound`, durably in the inbox — or NotKept, which bolt answers with HTTP 500 so that Slack sends
        it again (events are retried; a failed command, button or form shows the person it didn't go
        through). Never acknowledge what was not kept."""
        kept = await self.inbox.keep(inbound)
        if inbound.key is not None and not kept.durable:
            raise NotKept("the inbox could not keep a delivery; Slack will retry it")
        return kept

    async def _on_message(self, body: dict[str, Any], context: Any) -> None:
        inbound = translate.from_message(body)
        if inbound is not None:
            self.spawn(self.turn(await self._keep(inbound), self._context_token(context)), "message")

    async def _on_mention(self, body: dict[str, Any], context: Any) -> None:
        inbound = translate.from_mention(body)
        if inbound is not None:
            self.spawn(self.turn(await self._keep(inbound), self._context_token(context)), "mention")

    async def _on_command(self, ack: Any, body: dict[str, Any], context: Any) -> None:
        inbound = translate.from_command(body)
        kept = await self._keep(inbound) if inbound is not None else None
        if (body.get("channel_id") or "").startswith("D"):
            await ack()
        else:
            await ack(text="I'll answer in our direct messages (Apps → Baton).")
        if kept is not None:
            self.spawn(self.turn(kept, self._context_token(context)), "command")

    async def _on_action(self, ack: Any, body: dict[str, Any], context: Any) -> None:
        inbound = translate.from_block_action(body)
        kept = await self._keep(inbound) if inbound is not None else None
        await ack()
        if kept is not None:
            self.spawn(self._press(kept, body, self._context_token(context)), "action")

    async def _on_form_button(self, ack: Any, body: dict[str, Any], context: Any) -> None:
        await ack()
        self.spawn(self._open_form(body, self._context_token(context)), "form button", limited=False)

    async def _on_view(self, ack: Any, body: dict[str, Any], context: Any) -> None:
        inbound = translate.from_view_submission(body)
        kept = await self._keep(inbound) if inbound is not None else None  # not kept: the modal stays open
        await ack()  # closes the modal; the answers are recorded by the turn and confirmed in the DM
        if kept is not None:
            self.spawn(self.turn(kept, self._context_token(context), interaction=True), "form")

    async def _on_home_opened(self, body: dict[str, Any], event: dict[str, Any], context: Any) -> None:
        user = event.get("user")
        if event.get("tab") == "home" and user:
            self.spawn(self.publish_home(body.get("team_id"), user, self._context_token(context)), "home")

    async def _on_status_changed(self, event: dict[str, Any]) -> None:
        user = event.get("user")
        if isinstance(user, dict) and user.get("id"):
            self.spawn(self._statuses([user]), "status", limited=False)

    async def _statuses(self, members: list[dict[str, Any]]) -> None:
        """What these members' statuses say about being away (adapters/slack/status.py)."""
        changed = await status.apply(
            self.host.db, members, self.options.away_emoji, self.options.away_words, self.host.clock.now()
        )
        if changed:
            log.info("slack: %d people's away days changed with their status", changed)

    async def _on_uninstalled(self, body: dict[str, Any]) -> None:
        log.warning(
            "slack: Baton was uninstalled from workspace %s or its token was revoked; messages there will fail",
            body.get("team_id"),
        )

    # -- the work after the ack ------------------------------------------------------------------

    async def turn(
        self,
        inbound: Inbound,
        token: str | None,
        *,
        interaction: bool = False,
        on_fresh: Callable[[], Awaitable[None]] | None = None,
    ) -> list[Reply] | None:
        """Resolve the person, drop an interaction seen before (politely), run the engine turn.

        Returns the replies queued, [] for a duplicate the engine dropped, or
        None when no turn ran. `on_fresh` runs alongside a turn that is not a
        known repeat (e.g. taking the pressed buttons off the message).
        """
        with self.inbox.working_on(inbound):  # a replay leaves it alone while this turn runs
            return await self._turn(inbound, token, interaction, on_fresh)

    async def _turn(
        self,
        inbound: Inbound,
        token: str | None,
        interaction: bool,
        on_fresh: Callable[[], Awaitable[None]] | None,
    ) -> list[Reply] | None:
        user, team = inbound.sender.user_id, inbound.address.get("team")
        side: asyncio.Task[None] | None = None
        try:
            resolved = await self.directory.resolve(team, user, token)
            if resolved.person_id is None:
                await self.inbox.drop(inbound)
                await self.notice(token, user, resolved.reason or NOT_ADDED)
                return None
            if interaction and inbound.key and await self.host.engine.handled(inbound.key):
                await self.inbox.drop(inbound)
                await self.notice(token, user, ALREADY, channel=inbound.address.get("channel"))
                return None
            if resolved.email:
                inbound = replace(inbound, sender=replace(inbound.sender, email=resolved.email))
            side = asyncio.create_task(on_fresh()) if on_fresh is not None else None
            return await self.host.engine.handle(inbound, person_id=resolved.person_id)
        except UnknownPerson:  # the person was removed between the lookup and the turn
            self.directory.forget(user)
            await self._quietly(self.inbox.drop(inbound))
            await self.notice(token, user, NOT_ADDED)
        except DatabaseUnavailable:
            # A delivery kept in the inbox is replayed once the database answers again.
            await self.notice(token, user, DATABASE_LATER if inbound.durable else DATABASE_DOWN)
        finally:
            if side is not None:
                await asyncio.gather(side, return_exceptions=True)
        return None

    @staticmethod
    async def _quietly(work: Awaitable[Any]) -> None:
        try:
            await work
        except Exception as exc:  # noqa: BLE001 - best effort; a stale inbox row is replayed and dropped again
            log.warning("slack: inbox cleanup failed (%s)", type(exc).__name__)

    async def replay(self, inbound: Inbound) -> None:
        """Run a kept delivery again (the inbox's replay loop calls this), with its workspace's token."""
        token = await self.token_for(inbound.address.get("team"), inbound.address.get("enterprise"))
        await self._guarded(self.turn(inbound, token), "replay", True)

    async def _press(self, inbound: Inbound, body: dict[str, Any], token: str | None) -> None:
        container = body.get("container") or {}
        message = body.get("message") or {}
        action = (body.get("actions") or [{}])[0]
        channel, ts = container.get("channel_id"), container.get("message_ts")

        async def take_buttons_off() -> None:
            label = (
                (action.get("text") or {}).get("text")
                or (action.get("selected_option") or {}).get("text", {}).get("text")
                or ""
            )
            blocks = render.pressed(message.get("blocks") or [], label)
            await self._call(
                "chat.update",
                self.client.chat_update(
                    token=token, channel=channel, ts=ts, text=message.get("text") or " ", blocks=blocks
                ),
            )

        in_message = bool(channel and ts and message.get("blocks"))
        await self.turn(inbound, token, interaction=True, on_fresh=take_buttons_off if in_message else None)
        if container.get("type") == "view":
            await self.publish_home(inbound.address.get("team"), inbound.sender.user_id, token)

    async def _open_form(self, body: dict[str, Any], token: str | None) -> None:
        user = (body.get("user") or {}).get("id")
        if not user:
            return
        team = (body.get("team") or {}).get("id")
        action = (body.get("actions") or [{}])[0]
        channel = (body.get("container") or {}).get("channel_id")
        resolved = await self.directory.resolve(team, user, token)
        if resolved.person_id is None:
            await self.notice(token, user, resolved.reason or NOT_ADDED)
            return
        ref = action.get("value") or ""
        reply = await form_of(self.host.db, ref, resolved.person_id)
        if reply is None or reply.form is None:
            await self.notice(token, user, FORM_GONE, channel=channel)
            return
        view = render.modal(reply.form, action=reply.action, channel=channel)
        if not await self._call(
            "views.open", self.client.views_open(token=token, trigger_id=body.get("trigger_id"), view=view)
        ):
            await self.notice(token, user, FORM_FAILED, channel=channel)

    async def publish_home(self, team: str | None, user: str, token: str | None) -> None:
        """Publish the App Home tab for `user` (what dialogs.services.home says, or why Baton can't help)."""
        resolved = await self.directory.resolve(team, user, token)
        if resolved.person_id is None:
            reply = Reply(resolved.reason or NOT_ADDED)
        else:
            try:
                found = await overview(self.host.db, resolved.person_id, self.host.clock.now())
            except DatabaseUnavailable:
                found = Reply(DATABASE_DOWN)
            reply = found or Reply(NOT_ADDED)
        await self._call(
            "views.publish", self.client.views_publish(token=token, user_id=user, view=render.home_view(reply))
        )

    async def notice(self, token: str | None, user: str, text: str, *, channel: str | None = None) -> None:
        """A message from the adapter itself, outside the outbox: ephemeral in `channel`, else to the DM."""
        message = render.notice(text)
        if channel and channel != user:
            call = self.client.chat_postEphemeral(
                token=token, channel=channel, user=user, text=message.text, blocks=message.blocks
            )
        else:
            call = self.client.chat_postMessage(
                token=token,
                channel=user,
                text=message.text,
                blocks=message.blocks,
                unfurl_links=False,
                unfurl_media=False,
            )
        await self._call("notice", call)

    @staticmethod
    async def _call(what: str, call: Awaitable[Any]) -> bool:
        """Await one Web API call; log a failure by its Slack error name only. True on success."""
        try:
            await call
            return True
        except SlackApiError as exc:
            error = exc.response.get("error") if exc.response is not None else None
            log.warning("slack %s failed (%s)", what, error or type(exc).__name__)
        except (TimeoutError, SlackClientError, OSError) as exc:
            log.warning("slack %s failed (%s)", what, type(exc).__name__)
        return False
