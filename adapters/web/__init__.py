"""The local web chat: pick a person, talk to Baton in the browser. Translation only.

Routes: `/` (the page), `/static/*`, `GET /api/local/people`,
`GET /api/local/stream?person=ID` (server-sent events: the last page of
history, a `ready` event, then every message Baton delivers to that person),
`GET /api/local/history?person=ID&before=MSG` (an earlier page) and
`POST /api/local/messages`. There is no sign-in: it binds to loopback unless
told otherwise.

Without a sign-in, the browser's own rules are its guard, so every request is
checked before it reaches a handler (`WebChat.refusal`): the `Host` must name
this server — loopback, the address the connection arrived on, or the public
URL Baton was given — or it gets 421, which stops a DNS-rebinding page from
reading the roster; `/api/local/*` refuses, with 403, a `Sec-Fetch-Site` other
than `same-origin`/`none` and an `Origin` other than this server's own; and a
message must be `application/json` (415 otherwise), which no other site can
send without a CORS preflight this server never grants. Every response of the
web chat carries `SECURITY_HEADERS`: the page runs only its own script and
stylesheet from /static, talks only to this server and is never framed.

What the person typed is not kept by the server as a transcript (an anonymous
360 answer must not sit in the database beside its author): the page keeps its
own side in the browser's storage and places it back among Baton's messages.
`ready`, `live` and the history page say which buttons still do something, so
a reload shows answered and superseded questions disabled.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import hdrs, web
from yarl import URL

from adapters.contract import Host
from dialogs.engine.delivery import Delivery
from dialogs.engine.errors import UnknownPerson
from dialogs.engine.feed import DeliveredFeed, live_actions
from dialogs.engine.messages import Inbound, Reply, Sender
from dialogs.services import accounts
from storage.db import DatabaseUnavailable
from storage.queries import as_id

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
MAX_BODY = 64 * 1024
MAX_VALUE = 48 * 1024  # a button's value, or a whole form's answers as JSON
KEEPALIVE_SECONDS = 15.0
POLL_SECONDS = 1.0  # how soon a message delivered by another process (the terminal) shows up
PAGE = 50  # messages replayed on open, and per "earlier messages" page
RETRY_AFTER = 2  # seconds a page waits before sending again what the database could not take

# The page runs its own script and stylesheet from /static and talks only to this server; nothing
# inline, nothing from elsewhere, never framed. (`data:` images: the page's empty favicon.)
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
# `same-origin`: the page itself; `none`: typed or bookmarked; absent: not a browser (curl, scripts).
# `same-site` is refused too: another port of localhost is another application.
OWN_FETCH_SITES = frozenset({"same-origin", "none"})
WRONG_HOST = (
    "This server answers only to its own address (such as 127.0.0.1 or localhost), and this request named "
    "another one, so it was refused. If you reach Baton through a proxy or under a name of its own, set "
    "BATON_PUBLIC_URL to that address."
)
ANOTHER_SITE = (
    "This request came from another site or page, so it was refused: only Baton's own chat page may use "
    "this address. Nothing was recorded."
)
NOT_JSON = (
    "I only take messages as JSON (Content-Type: application/json), the way the chat page sends them, "
    "so nothing was recorded."
)


class LocalHub:
    """Wakes the open streams of people who just received something.

    The streams re-read the outbox themselves, so a message delivered by
    another process (the terminal chat) shows up too, at the next poll.
    """

    def __init__(self) -> None:
        self._waiters: dict[int, set[asyncio.Event]] = {}
        self.closing = False

    async def close(self, _app: web.Application | None = None) -> None:
        """End every open stream, so shutting down does not wait for browsers to hang up."""
        self.closing = True
        self.notify(set(self._waiters))

    def notify(self, person_ids: set[int]) -> None:
        for person_id in person_ids:
            for event in self._waiters.get(person_id, ()):
                event.set()

    def subscribe(self, person_id: int) -> asyncio.Event:
        event = asyncio.Event()
        self._waiters.setdefault(person_id, set()).add(event)
        return event

    def unsubscribe(self, person_id: int, event: asyncio.Event) -> None:
        waiters = self._waiters.get(person_id)
        if waiters is not None:
            waiters.discard(event)
            if not waiters:
                del self._waiters[person_id]


def render(message_id: int, sent_at: datetime | None, reply: Reply) -> dict[str, Any]:
    """A reply as the page's JSON (see static/app.js)."""
    return {
        "id": message_id,
        "created_at": sent_at.isoformat() if sent_at else None,
        "text": reply.text,
        "choices": [
            {"label": c.label, "action": reply.action, "value": c.value, "style": c.style} for c in reply.choices
        ],
        "rating": {
            "min": reply.rating.min,
            "max": reply.rating.max,
            "low_label": reply.rating.low_label,
            "high_label": reply.rating.high_label,
            "action": reply.action,
        }
        if reply.rating
        else None,
        "input": {
            "placeholder": reply.input.placeholder,
            "max_length": reply.input.max_length,
            "multiline": reply.input.multiline,
        }
        if reply.input
        else None,
        "form": reply.form.to_dict() | {"action": reply.action} if reply.form and reply.action else None,
        "card": {
            "title": reply.card.title,
            "fields": [{"label": label, "value": value} for label, value in reply.card.fields],
            "lines": list(reply.card.lines),
        }
        if reply.card
        else None,
    }


class WebChat:
    """The local web chat as an adapter: its page, the people to pick from, a stream and a message endpoint."""

    platform = "local"

    def __init__(self, host: Host, *, public_url: str | None = None) -> None:
        """`public_url` is the address people reach Baton at (BATON_PUBLIC_URL): its host name is served
        besides loopback and the address each connection arrived on."""
        self.host = host
        self.hub = LocalHub()
        host.on_delivered(self.hub.notify)
        self.hosts = set(LOOPBACK_NAMES)
        self.origins: set[tuple[str, str, int | None]] = set()
        if public_url:
            public = URL(public_url)
            if public.host and not _unspecified(public.host):
                self.hosts.add(public.host.lower().rstrip("."))
                self.origins.add((public.scheme, public.host.lower(), public.port))

    def deliveries(self) -> list[Delivery]:
        return []  # the local channel is the core's own: the stream reads sent rows itself

    async def start(self) -> None:
        self.hub.closing = False

    async def stop(self) -> None:
        await self.hub.close()

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/", self.index)
        app.router.add_static("/static/", STATIC, show_index=False)
        app.router.add_get("/api/local/people", self.people)
        app.router.add_get("/api/local/stream", self.stream)
        app.router.add_get("/api/local/history", self.history)
        app.router.add_post("/api/local/messages", self.post_message)
        app.on_shutdown.append(self.hub.close)  # open streams end before the server waits for them
        app.middlewares.append(self._guard())
        app.on_response_prepare.append(_add_headers)

    def _guard(self) -> Callable[..., Awaitable[web.StreamResponse]]:
        @web.middleware
        async def guard(
            request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
        ) -> web.StreamResponse:
            if _ours(request.path):
                refused = self.refusal(request)
                if refused is not None:
                    return refused
            return await handler(request)

        return guard

    def refusal(self, request: web.Request) -> web.Response | None:
        """Why the web chat will not answer `request` (a response saying so), or None to go ahead."""
        api = request.path.startswith("/api/local/")
        name = _host_name(request.headers.get(hdrs.HOST))
        if name is None or not (name in self.hosts or _loopback(name) or name == _arrived_at(request)):
            log.info("web chat: refused a request for another host name (%s %s)", request.method, _route(request))
            return _error(421, WRONG_HOST) if api else web.Response(status=421, text=WRONG_HOST)
        if not api:
            return None  # the page and its files: opening them from a link on another site is fine
        site = request.headers.get("Sec-Fetch-Site")
        origin = request.headers.get(hdrs.ORIGIN)
        if (site is not None and site.lower() not in OWN_FETCH_SITES) or (
            origin is not None and not self._own_origin(origin, request)
        ):
            log.info("web chat: refused a request from another site (%s %s)", request.method, _route(request))
            return _error(403, ANOTHER_SITE)
        return None

    def _own_origin(self, origin: str, request: web.Request) -> bool:
        """`origin` is this server as the request reached it, or the public URL it was given."""
        try:
            theirs = URL(origin)
            ours = URL.build(scheme=_scheme(request), authority=request.headers.get(hdrs.HOST, ""))
        except ValueError:
            return False
        if not theirs.absolute or theirs.host is None or theirs.path not in ("", "/"):
            return False
        seen = (theirs.scheme, theirs.host.lower(), theirs.port)
        return seen == (ours.scheme, (ours.host or "").lower(), ours.port) or seen in self.origins

    async def index(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    async def people(self, request: web.Request) -> web.Response:
        return web.json_response(await accounts.roster(self.host.db))

    async def stream(self, request: web.Request) -> web.StreamResponse:
        person_id = _person_param(request.query.get("person"))
        last_id = _int_or(request.headers.get("Last-Event-ID"), 0)
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        )
        await response.prepare(request)
        hub = self.hub
        wake = hub.subscribe(person_id)
        feed = DeliveredFeed(self.host.db, person_id, sealer=self.host.sealer)
        idle = 0.0
        try:
            while True:  # a database that blips delays the history; it doesn't end the stream
                try:
                    history = await feed.history(PAGE + 1) if last_id == 0 else await feed.resume(last_id)
                    live = await live_actions(self.host.db, person_id)
                    break
                except DatabaseUnavailable:
                    if hub.closing:
                        return response
                    await asyncio.sleep(POLL_SECONDS)
            more = last_id == 0 and len(history) > PAGE
            history = history[-PAGE:] if last_id == 0 else history
            if not history and last_id == 0 and request.query.get("greet") == "1":
                await self._welcome(person_id)
            for message_id, sent_at, reply in history:
                await _send_event(response, message_id, render(message_id, sent_at, reply))
            await _send_named(response, "ready", {"more": more, "live": sorted(live)})
            while not hub.closing:
                try:
                    await asyncio.wait_for(wake.wait(), POLL_SECONDS)
                except TimeoutError:
                    pass
                wake.clear()
                try:
                    fresh = await feed.fresh()
                except DatabaseUnavailable:
                    continue  # the page keeps waiting; the next poll tries again
                for message_id, sent_at, reply in fresh:
                    await _send_event(response, message_id, render(message_id, sent_at, reply))
                if fresh:
                    try:
                        now_live = await live_actions(self.host.db, person_id)
                    except DatabaseUnavailable:
                        now_live = live
                    if now_live != live:
                        live = now_live
                        await _send_named(response, "live", {"live": sorted(live)})
                idle = 0.0 if fresh else idle + POLL_SECONDS
                if idle >= KEEPALIVE_SECONDS:  # proxies drop silent connections
                    await response.write(b": keep-alive\n\n")
                    idle = 0.0
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            hub.unsubscribe(person_id, wake)
        return response

    async def history(self, request: web.Request) -> web.Response:
        """An earlier page: up to PAGE messages delivered before message `before`, oldest first."""
        person_id = _person_param(request.query.get("person"))
        before = as_id(request.query.get("before"))
        if before is None:
            return _error(400, "Say which message to page back from (?before=ID, the oldest one shown).")
        feed = DeliveredFeed(self.host.db, person_id, sealer=self.host.sealer)
        try:
            page = await feed.before(before, PAGE + 1)
            live = await live_actions(self.host.db, person_id)
        except DatabaseUnavailable:
            return _error(503, "I can't reach my database right now. Please try again in a moment.")
        return web.json_response(
            {
                "messages": [render(i, at, reply) for i, at, reply in page[-PAGE:]],
                "more": len(page) > PAGE,
                "live": sorted(live),
            }
        )

    async def _welcome(self, person_id: int) -> None:
        """Someone picked for the first time sees what Baton is and three things to try, not an empty page.
        Once per person: the event id makes a second greeting a no-op."""
        inbound = Inbound(
            sender=Sender(platform="local", user_id=str(person_id)),
            address={"person": person_id},
            text="hi",
            event_id=f"{person_id}:welcome",
        )
        try:
            await self.host.engine.handle(inbound)
        except (UnknownPerson, DatabaseUnavailable):
            return  # the page shows what it can; a real message will say more

    async def post_message(self, request: web.Request) -> web.Response:
        if request.content_type != "application/json":
            # The only body another site can send here without asking (CORS) is text/plain or a form's.
            return _error(415, NOT_JSON)
        if (request.content_length or 0) > MAX_BODY:
            return _error(413, "That message is too large for me to take in one go. Please shorten it.")
        try:
            body = json.loads(await request.read())
        except RecursionError:
            return _error(400, "I couldn't read that request: it is nested too deeply.")
        except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
            return _error(400, "I couldn't read that request: it should be JSON.")
        if not isinstance(body, dict):
            return _error(400, "I couldn't read that request: it should be a JSON object.")
        person_id = body.get("person")
        client_id = body.get("client_id")
        text, action, value = body.get("text"), body.get("action"), body.get("value")
        if (
            not isinstance(person_id, int)
            or as_id(person_id) is None
            or not isinstance(client_id, str)
            or not 8 <= len(client_id) <= 64
            or not (client_id.isascii() and client_id.isprintable())
        ):
            return _error(
                400, "A message needs a person (a positive number) and a client_id (8–64 printable ASCII characters)."
            )
        if isinstance(text, str) and not _encodable(text):
            return _error(400, "That text holds characters that aren't valid Unicode (a lone surrogate).")
        if action is None and not isinstance(text, str):
            return _error(400, "A message needs either text or an action.")
        if action is not None and (
            not isinstance(action, str) or not isinstance(value, str) or len(action) > 255 or len(value) > MAX_VALUE
        ):
            return _error(400, "A button press needs an action and a value, both short strings.")
        inbound = Inbound(
            sender=Sender(platform="local", user_id=str(person_id)),
            address={"person": person_id},
            text=text if action is None else None,
            action=action,
            value=value,
            event_id=f"{person_id}:{client_id}",
        )
        try:
            await self.host.engine.handle(inbound)
        except UnknownPerson:
            return _error(
                404, "There is no such person in this organisation. Reload the page and pick someone from the list."
            )
        except DatabaseUnavailable:
            # The page sends it again by itself after Retry-After, with the same client_id: recorded once.
            return _error(
                503,
                "I can't reach my database right now, so nothing was recorded yet; your page is trying again.",
                headers={"Retry-After": str(RETRY_AFTER)},
            )
        return web.json_response({"ok": True}, status=202)


async def _send_event(response: web.StreamResponse, message_id: int, data: dict[str, Any]) -> None:
    payload = json.dumps(data, ensure_ascii=False)
    await response.write(f"id: {message_id}\nevent: message\ndata: {payload}\n\n".encode())


async def _send_named(response: web.StreamResponse, event: str, data: dict[str, Any]) -> None:
    await response.write(f"event: {event}\ndata: {json.dumps(data)}\n\n".encode())


def _person_param(raw: str | None) -> int:
    person_id = as_id(raw)
    if person_id is None:
        raise web.HTTPBadRequest(
            text=json.dumps({"ok": False, "error": "Choose a person first (?person=ID)."}),
            content_type="application/json",
        )
    return person_id


def _int_or(raw: str | None, default: int) -> int:
    """A Last-Event-ID: a message id, or `default` for anything else (however long)."""
    number = as_id(raw)
    return default if number is None else number


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _ours(path: str) -> bool:
    return path == "/" or path.startswith(("/static/", "/api/local/"))


async def _add_headers(request: web.Request, response: web.StreamResponse) -> None:
    """The security headers on everything the web chat sends (pages, files, answers, errors, streams)."""
    if not _ours(request.path):
        return
    response.headers.update(SECURITY_HEADERS)
    # The page and the API are never cached; files are, but checked again each time (an upgrade shows at once).
    response.headers.setdefault(hdrs.CACHE_CONTROL, "no-cache" if request.path.startswith("/static/") else "no-store")


def _host_name(raw: str | None) -> str | None:
    """The host name of a Host header, lower case, without port or brackets; None when it is malformed."""
    if not raw:
        return None
    raw = raw.strip().lower()
    if raw.startswith("["):
        name, bracket, port = raw[1:].partition("]")
        if not bracket or (port and not (port.startswith(":") and port[1:].isdigit())):
            return None
        return name or None
    name, _, port = raw.partition(":")
    if port and not port.isdigit():
        return None
    return name.rstrip(".") or None


def _loopback(name: str) -> bool:
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _unspecified(name: str) -> bool:
    try:
        return ipaddress.ip_address(name).is_unspecified
    except ValueError:
        return False


def _arrived_at(request: web.Request) -> str | None:
    """The address of this server the connection arrived on (a LAN address when bound to 0.0.0.0)."""
    transport = request.transport
    sockname = transport.get_extra_info("sockname") if transport is not None else None
    if isinstance(sockname, tuple) and sockname and isinstance(sockname[0], str):
        return sockname[0].lower()
    return None


def _scheme(request: web.Request) -> str:
    forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    return "https" if request.secure or forwarded == "https" else "http"


def _route(request: web.Request) -> str:
    """The route a request matched, for logs (never the query string or a person's id)."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "?"


def _error(status: int, message: str, *, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"ok": False, "error": message}, status=status, headers=headers)
