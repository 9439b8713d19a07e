"""A small fake of Slack's Web API on a free loopback port: the real wire format, every call recorded.

It speaks what slack_sdk sends and expects: `POST /api/<method>` with a JSON
or form-encoded body (or GET with a query string), `Authorization: Bearer
<token>`, answers `{"ok": true, ...}` or `{"ok": false, "error": "..."}`
with HTTP 200, and HTTP 429 with `Retry-After` when told to rate-limit.
Socket Mode is there too: `apps.connections.open` hands out a WebSocket URL
on the same server, and `send_envelope()` pushes an event down it.

Used by the tests (in-process) and the benchmarks (as a separate process, see
`main()`).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web


@dataclass
class Call:
    """One request the fake received."""

    method: str
    args: dict[str, Any]
    token: str | None
    status: int
    ok: bool
    error: str | None = None
    response: dict[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.monotonic)


class FakeSlack:
    """The fake Web API. Configure users and failures, `await start()`, point SLACK_API_URL at `url`."""

    def __init__(
        self,
        *,
        token: str = "xoxb-test-token",
        team_id: str = "T0BATON",
        bot_user_id: str = "UBATON",
        bot_id: str = "BBATON",
        app_token: str = "xapp-1-test",
        record: bool = True,
    ) -> None:
        self.tokens: dict[str, str] = {token: team_id}  # bot token → team
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.app_token = app_token
        self.record = record
        self.calls: list[Call] = []
        self.counts: Counter[str] = Counter()  # method → successful calls (also when not recording)
        self.users: dict[str, dict[str, Any]] = {}
        self.channel_errors: dict[str, str] = {}  # channel or user id → error for chat.postMessage
        self.oauth_clients: dict[str, str] = {}  # client id → secret, for oauth.v2.access
        self.oauth_grants: dict[str, dict[str, Any]] = {}  # code → the answer
        self._limits: dict[str, list[float]] = {}  # method → Retry-After of each scripted 429, in order
        self._every: dict[str, tuple[int, float]] = {}  # method → (every n-th call is 429, Retry-After)
        self._seen: Counter[str] = Counter()
        self._ts = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._sockets: set[web.WebSocketResponse] = set()
        self._acks: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.socket_connected = asyncio.Event()
        self.history: dict[str, list[dict[str, Any]]] = {}  # conversation id → messages posted, oldest first
        self.post_delay = 0.0  # seconds chat.postMessage takes, as a busy Slack does (a kill lands mid-post)
        # Slack's documented limits for chat.postMessage, enforced when set: posts per second per workspace
        # and per channel (Slack: about 1 a second per channel, short bursts allowed). Over them: 429 with
        # Retry-After. `per_second` counts the posts accepted in each wall-clock second, per workspace.
        self.workspace_cap: float | None = None
        self.channel_cap: float | None = None
        self.per_second: Counter[tuple[str, int]] = Counter()
        self._window: dict[str, list[float]] = {}
        self.port = 0
        self.host = "127.0.0.1"

    # -- configuration -----------------------------------------------------------------------

    def add_user(
        self,
        user_id: str,
        email: str | None,
        name: str,
        *,
        tz: str = "Europe/Berlin",
        locale: str = "en-GB",
        is_bot: bool = False,
        deleted: bool = False,
        status: tuple[str, str, int] = ("", "", 0),
    ) -> None:
        """`status`: (emoji, text, expiration as Unix seconds or 0), as Slack's profile carries it."""
        profile: dict[str, Any] = {
            "real_name": name,
            "display_name": name.split(" ")[0],
            "status_emoji": status[0],
            "status_text": status[1],
            "status_expiration": status[2],
        }
        if email:
            profile["email"] = email
        self.users[user_id] = {
            "id": user_id,
            "team_id": self.team_id,
            "name": name.split(" ")[0].lower(),
            "real_name": name,
            "deleted": deleted,
            "is_bot": is_bot,
            "tz": tz,
            "tz_label": tz,
            "tz_offset": 3600,
            "locale": locale,
            "profile": profile,
        }

    def rate_limit(self, method: str, count: int, *, retry_after: float = 1) -> None:
        """The next `count` calls of `method` get 429 with `Retry-After: retry_after`."""
        self._limits.setdefault(method, []).extend([retry_after] * count)

    def rate_limit_every(self, method: str, every: int, *, retry_after: float = 1) -> None:
        """Every `every`-th call of `method` gets 429 (a storm that never quite ends); every=0 stops it."""
        if every:
            self._every[method] = (every, retry_after)
        else:
            self._every.pop(method, None)

    def fail(self, channel: str, error: str | None) -> None:
        """chat.postMessage to `channel` answers {"ok": false, "error": error} (None: stop failing).

        "invalid_blocks" is answered only to messages that have blocks, as Slack does.
        """
        if error is None:
            self.channel_errors.pop(channel, None)
        else:
            self.channel_errors[channel] = error

    # -- reading what happened -----------------------------------------------------------------

    def calls_to(self, method: str, *, ok: bool | None = True) -> list[Call]:
        return [c for c in self.calls if c.method == method and (ok is None or c.ok == ok)]

    def conversation_of(self, channel: str) -> str:
        """The conversation a post to `channel` lands in: a user id means the app's DM with them."""
        return "D" + channel[1:] if channel.startswith("U") else channel

    def posted(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Arguments of successful chat.postMessage calls (to `channel`), oldest first."""
        return [
            c.args for c in self.calls_to("chat.postMessage") if channel is None or c.args.get("channel") == channel
        ]

    async def wait_for(
        self, predicate: Callable[[], Any], timeout: float = 10.0, *, what: str = "the fake Slack"
    ) -> Any:
        """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; calls: {[c.method for c in self.calls][-20:]}")
            await asyncio.sleep(0.02)

    # -- server --------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/api/"

    async def start(self, port: int = 0) -> FakeSlack:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_get("/socket", self._socket)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def close(self) -> None:
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakeSlack:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _args(self, request: web.Request) -> dict[str, Any]:
        args: dict[str, Any] = dict(request.query)
        if request.method == "POST" and request.can_read_body:
            raw = await request.read()
            if request.content_type == "application/json":
                args.update(json.loads(raw or b"{}"))
            else:
                args.update(parse_qsl(raw.decode(), keep_blank_values=True))
        for key in ("blocks", "view", "attachments", "metadata"):
            if isinstance(args.get(key), str) and args[key][:1] in "[{":
                args[key] = json.loads(args[key])
        return args

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args = await self._args(request)
        header = request.headers.get("Authorization", "")
        token = header[7:] if header.startswith("Bearer ") else args.pop("token", None)
        self._seen[method] += 1
        retry_after = self._scripted_limit(method)
        if retry_after is None and method == "chat.postMessage":
            retry_after = self._over_limit(token, str(args.get("channel") or ""))
        if retry_after is not None:
            self._note(Call(method, args, token, 429, False, "ratelimited"))
            return web.json_response(
                {"ok": False, "error": "ratelimited"},
                status=429,
                headers={"Retry-After": str(int(retry_after) if retry_after == int(retry_after) else retry_after)},
            )
        try:
            body = await self._answer(method, args, token, header)
        except _Error as exc:
            body = {"ok": False, "error": exc.error}
        ok = bool(body.get("ok"))
        if ok:
            self.counts[method] += 1
        self._note(Call(method, args, token, 200, ok, body.get("error"), body))
        return web.json_response(body)

    def _note(self, call: Call) -> None:
        if self.record:
            self.calls.append(call)

    def _over_limit(self, token: str | None, channel: str) -> float | None:
        """Retry-After when this post would go over a configured cap (sliding one-second windows)."""
        if self.workspace_cap is None and self.channel_cap is None:
            return None
        now = time.monotonic()
        team = self.tokens.get(token or "", "?")
        keys = [
            (f"team:{team}", self.workspace_cap),
            (f"channel:{team}:{self.conversation_of(channel)}", self.channel_cap),
        ]
        for key, cap in keys:
            if cap is None:
                continue
            recent = [t for t in self._window.get(key, []) if t > now - 1.0]
            self._window[key] = recent
            if len(recent) >= cap:
                return 1
        for key, cap in keys:
            if cap is not None:
                self._window[key].append(now)
        self.per_second[(team, int(time.time()))] += 1
        return None

    def _scripted_limit(self, method: str) -> float | None:
        queue = self._limits.get(method)
        if queue:
            return queue.pop(0)
        every = self._every.get(method)
        if every and self._seen[method] % every[0] == 0:
            return every[1]
        return None

    def _team_of(self, token: str | None) -> str:
        if not token:
            raise _Error("not_authed")
        team = self.tokens.get(token)
        if team is None:
            raise _Error("invalid_auth")
        return team

    async def _answer(self, method: str, args: dict[str, Any], token: str | None, header: str) -> dict[str, Any]:
        if method == "oauth.v2.access":
            return self._oauth(args, header)
        if method == "apps.connections.open":
            if token != self.app_token:
                raise _Error("invalid_auth")
            return {"ok": True, "url": f"ws://{self.host}:{self.port}/socket"}
        team = self._team_of(token)
        if method == "auth.test":
            return {
                "ok": True,
                "url": "https://baton-test.slack.com/",
                "team": "Baton Test",
                "user": "baton",
                "team_id": team,
                "user_id": self.bot_user_id,
                "bot_id": self.bot_id,
                "is_enterprise_install": False,
            }
        if method == "chat.postMessage":
            channel = args.get("channel")
            if not channel:
                raise _Error("channel_not_found")
            error = self.channel_errors.get(channel)
            if error is not None and not (error == "invalid_blocks" and not args.get("blocks")):
                raise _Error(error)
            if not args.get("text") and not args.get("blocks"):
                raise _Error("no_text")
            if len(args.get("blocks") or []) > 50:
                raise _Error("invalid_blocks")
            metadata = args.get("metadata")
            if metadata is not None and not (
                isinstance(metadata, dict)
                and metadata.get("event_type")
                and isinstance(metadata.get("event_payload"), dict)
            ):
                raise _Error("invalid_metadata_format")
            if self.post_delay:
                await asyncio.sleep(self.post_delay)
            ts = self._next_ts()
            conversation = self.conversation_of(channel)
            stored = {"type": "message", "text": args.get("text"), "ts": ts, "bot_id": self.bot_id}
            if metadata is not None:
                stored["metadata"] = metadata
            self.history.setdefault(conversation, []).append(stored)
            return {
                "ok": True,
                "channel": conversation,
                "ts": ts,
                "message": {"type": "message", "text": args.get("text"), "ts": ts, "bot_id": self.bot_id},
            }
        if method == "conversations.open":
            users = str(args.get("users") or "")
            if not users.startswith("U") or "," in users:
                raise _Error("user_not_found")
            return {"ok": True, "channel": {"id": self.conversation_of(users)}}
        if method == "conversations.history":
            conversation = str(args.get("channel") or "")
            if not conversation.startswith("D"):
                raise _Error("missing_scope")  # Baton asks for im:history only
            limit = min(int(args.get("limit") or 100), 999)
            with_metadata = str(args.get("include_all_metadata")).lower() in ("1", "true")
            messages = [
                m if with_metadata else {k: v for k, v in m.items() if k != "metadata"}
                for m in reversed(self.history.get(conversation, []))
            ][:limit]
            return {"ok": True, "messages": messages, "has_more": len(self.history.get(conversation, [])) > limit}
        if method == "chat.postEphemeral":
            if not args.get("channel") or not args.get("user"):
                raise _Error("channel_not_found")
            return {"ok": True, "message_ts": self._next_ts()}
        if method == "chat.update":
            if not args.get("channel") or not args.get("ts"):
                raise _Error("message_not_found")
            return {"ok": True, "channel": args["channel"], "ts": args["ts"], "text": args.get("text")}
        if method in ("views.open", "views.publish"):
            view = args.get("view")
            if not isinstance(view, dict) or not view.get("blocks"):
                raise _Error("invalid_arguments")
            if method == "views.open" and not args.get("trigger_id"):
                raise _Error("invalid_trigger_id")
            if method == "views.publish" and not args.get("user_id"):
                raise _Error("invalid_arguments")
            return {
                "ok": True,
                "view": {**view, "id": "V" + uuid.uuid4().hex[:10].upper(), "hash": uuid.uuid4().hex[:12]},
            }
        if method == "users.info":
            user = self.users.get(args.get("user", ""))
            if user is None:
                raise _Error("user_not_found")
            return {"ok": True, "user": user}
        if method == "users.list":
            limit = min(int(args.get("limit") or 200), 200)
            start = int(args.get("cursor") or 0)
            members = list(self.users.values())[start : start + limit]
            following = str(start + limit) if start + limit < len(self.users) else ""
            return {"ok": True, "members": members, "response_metadata": {"next_cursor": following}}
        raise _Error("unknown_method")

    def _oauth(self, args: dict[str, Any], header: str) -> dict[str, Any]:
        import base64

        client_id, secret = args.get("client_id"), args.get("client_secret")
        if header.startswith("Basic "):
            client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        if not client_id or self.oauth_clients.get(client_id) != secret:
            raise _Error("invalid_client_id")
        grant = self.oauth_grants.pop(args.get("code", ""), None)
        if grant is None:
            raise _Error("invalid_code")
        self.tokens[grant["access_token"]] = grant["team"]["id"]
        return grant

    def _next_ts(self) -> str:
        return f"{int(time.time())}.{next(self._ts):06d}"

    # -- Socket Mode ---------------------------------------------------------------------------

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=None)
        await ws.prepare(request)
        self._sockets.add(ws)
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": 1,
                "debug_info": {"host": "fake"},
                "connection_info": {"app_id": "A0BATON"},
            }
        )
        self.socket_connected.set()
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    data = json.loads(message.data)
                    future = self._acks.pop(data.get("envelope_id", ""), None)
                    if future is not None and not future.done():
                        future.set_result(data)
        finally:
            self._sockets.discard(ws)
        return ws

    async def send_envelope(self, kind: str, payload: dict[str, Any], *, timeout: float = 5.0) -> dict[str, Any]:
        """Push an envelope (events_api, interactive, slash_commands) down Socket Mode; return the app's ack."""
        await asyncio.wait_for(self.socket_connected.wait(), timeout)
        envelope_id = uuid.uuid4().hex
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._acks[envelope_id] = future
        envelope = {
            "envelope_id": envelope_id,
            "type": kind,
            "payload": payload,
            "accepts_response_payload": kind != "events_api",
            "retry_attempt": 0,
            "retry_reason": "",
        }
        for ws in list(self._sockets):
            await ws.send_json(envelope)
        return await asyncio.wait_for(future, timeout)


class _Error(Exception):
    def __init__(self, error: str) -> None:
        self.error = error


def main() -> None:
    """Run the fake as its own process (for the benchmarks): prints its port, then serves until killed.

    `--rate-limit-every N` answers every N-th chat.postMessage with 429
    (Retry-After: 1); `--workspace-cap` / `--channel-cap` enforce posts per
    sliding second. Recording is off; `_stats` gives counts (and, for posts
    whose metadata key starts with `--track`, when the first and last
    arrived), `_channel` how many posts a channel (or its DM) received.
    """
    parser = argparse.ArgumentParser()
    parser.add_argument("--token", default="xoxb-bench-token")
    parser.add_argument("--rate-limit-every", type=int, default=0)
    parser.add_argument("--retry-after", type=float, default=1)
    parser.add_argument("--workspace-cap", type=float, default=None)
    parser.add_argument("--channel-cap", type=float, default=None)
    parser.add_argument("--track", default="checkin:")
    args = parser.parse_args()

    async def serve() -> None:
        fake = FakeSlack(token=args.token, record=False)
        fake.workspace_cap, fake.channel_cap = args.workspace_cap, args.channel_cap
        if args.rate_limit_every:
            fake.rate_limit_every("chat.postMessage", args.rate_limit_every, retry_after=args.retry_after)
        posted: Counter[str] = Counter()
        keys: Counter[str] = Counter()
        channels: Counter[str] = Counter()
        tracked: list[float] = []
        original = fake._answer

        async def counting(method: str, call_args: dict[str, Any], token: str | None, header: str) -> dict[str, Any]:
            if method == "_stats":
                return {
                    "ok": True,
                    "posted": sum(posted.values()),
                    "duplicates": sum(n - 1 for n in posted.values() if n > 1),
                    "distinct": len(posted),
                    "rate_limited": fake._seen["chat.postMessage"] - sum(posted.values()),
                    "keys_twice": sum(n - 1 for n in keys.values() if n > 1),
                    "tracked": len(tracked),
                    "tracked_first_at": min(tracked, default=None),
                    "tracked_last_at": max(tracked, default=None),
                    "busiest_second": max(fake.per_second.values(), default=0),
                }
            if method == "_channel":
                user = str(call_args.get("channel") or "")
                return {"ok": True, "posts": channels[user] + channels["D" + user[1:]]}
            if method == "_reset":
                posted.clear()
                keys.clear()
                channels.clear()
                tracked.clear()
                fake._seen.clear()
                fake.per_second.clear()
                return {"ok": True}
            body = await original(method, call_args, token, header)
            if method == "chat.postMessage" and body.get("ok"):
                posted[f"{call_args.get('channel')}:{call_args.get('text')}"] += 1
                channels[str(call_args.get("channel"))] += 1
                key = ((call_args.get("metadata") or {}).get("event_payload") or {}).get("key")
                if key:
                    keys[key] += 1
                    if key.startswith(args.track):
                        tracked.append(time.monotonic())
            return body

        fake._answer = counting  # type: ignore[method-assign]
        await fake.start()
        print(fake.port, flush=True)
        await asyncio.Event().wait()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
