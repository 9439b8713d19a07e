"""A fake Microsoft Graph on loopback: automatic replies per user, behind a Graph app token.

`GET /v1.0/users/{id}/mailboxSettings/automaticRepliesSetting` answers what `replies[id]` holds, in Graph's
wire format (UTC date-times with seven fractional digits), 404 for a user with no mailbox, 403 when
`forbidden` (the app lacks MailboxSettings.Read) or the token is not one for Graph, 429 with Retry-After when
`throttle` is set. Every request is recorded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiohttp import web


def when(moment: datetime) -> dict[str, str]:
    return {"dateTime": moment.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": "UTC"}


@dataclass
class FakeGraph:
    token: str  # the bearer token Graph accepts (what the fake token endpoint issues for Graph's scope)
    replies: dict[str, dict[str, Any]] = field(default_factory=dict)
    forbidden: bool = False
    throttle: int = 0  # answer this many requests with 429 first
    requests: list[tuple[str, str | None]] = field(default_factory=list)

    async def start(self) -> FakeGraph:
        app = web.Application()
        app.router.add_get("/v1.0/users/{user}/mailboxSettings/automaticRepliesSetting", self._replies)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1.0"

    async def stop(self) -> None:
        await self._runner.cleanup()

    async def _replies(self, request: web.Request) -> web.Response:
        user = request.match_info["user"]
        self.requests.append((user, request.headers.get("Prefer")))
        if self.throttle:
            self.throttle -= 1
            return web.json_response({"error": {"code": "TooManyRequests"}}, status=429, headers={"Retry-After": "1"})
        if request.headers.get("Authorization") != f"Bearer {self.token}" or self.forbidden:
            return web.json_response(
                {"error": {"code": "ErrorAccessDenied", "message": "Access is denied."}}, status=403
            )
        if user not in self.replies:
            return web.json_response({"error": {"code": "ResourceNotFound"}}, status=404)
        body = {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#automaticRepliesSetting"}
        body |= {"externalAudience": "all", "internalReplyMessage": "<p>Away</p>"} | self.replies[user]
        return web.json_response(body)
