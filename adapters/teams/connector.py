"""Baton's side of the Bot Connector REST API: one aiohttp session, one cached bot token, paced sends.

Pacing is the outbox's (bot/pacing.py, shared by every replica): a send waits
for its `pace.turn()`, and a 429 pauses the tenant for every replica.

`POST {serviceUrl}/v3/conversations/{id}/activities` sends a message from a
stored conversation reference; `GET .../members/{id}` reads a member's email
and UPN. This keeps one connection pool for the process, never blocks the
event loop, and paces and retries every send. The Agents SDK's
ConnectorClient (1.9) opens a new aiohttp session per turn (two, with the
user-token client) and raises on a 429 without retrying or reading
Retry-After, so Baton keeps its own (README, "Teams").

The bot token comes from the Microsoft identity platform (or the Azure
host's managed identity) the way the configured mode says
(credentials.py), fetched with the same session, cached until five
minutes before it expires and shared by every send. In emulator mode there
is no token.

Failures are mapped onto `DeliveryError`: 429/412/5xx and network errors are
retried later (Retry-After when given, else jittered exponential backoff);
403 (uninstalled, blocked) and 404 (conversation gone) are permanent, with a
reason that names the status and the service's error code, never a message
body.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import random
import time
from typing import Any
from urllib.parse import quote

import aiohttp

from adapters.teams.credentials import Credential, CredentialError
from adapters.teams.options import TeamsOptions
from dialogs.engine.delivery import UNPACED, DeliveryError, Pace

log = logging.getLogger(__name__)

RETRYABLE = frozenset({412, 429, 500, 502, 503, 504})
TOKEN_MARGIN = 300.0  # renew the bot token this many seconds before it expires
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=15, connect=5)


def retry_delay(attempt: int, *, base: float = 1.0, cap: float = 300.0) -> float:
    """Jittered exponential backoff: between half and all of min(cap, base·2^attempt) seconds, never zero."""
    ceiling = min(cap, base * 2 ** max(0, attempt))
    return ceiling * random.uniform(0.5, 1.0)


def retry_after_seconds(header: str | None) -> float | None:
    """A Retry-After header (seconds or an HTTP date) in seconds from now; None when absent or unreadable."""
    if not header:
        return None
    header = header.strip()
    try:
        return max(0.0, float(header))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class BotToken:
    """The bot's access token for the Bot Connector, cached until shortly before it expires.

    `credential` says how to get one (credentials.py); None is emulator mode, where sends carry no token.
    """

    def __init__(
        self, credential: Credential | None, session: Any, clock: Any = time.monotonic, *, resource: str | None = None
    ) -> None:
        self.credential = credential
        self.resource = resource  # None: the Bot Connector's
        self._session = session
        self._clock = clock
        self._token: str | None = None
        self._expires = float("-inf")
        self._lock = asyncio.Lock()
        self.fetches = 0

    async def get(self) -> str | None:
        """The token, or None in emulator mode. Raises DeliveryError (transient) when it cannot be had."""
        if self.credential is None:
            return None
        if self._token and self._clock() < self._expires:
            return self._token
        async with self._lock:
            if self._token and self._clock() < self._expires:
                return self._token
            try:
                session = self._session()
                fresh = await (
                    self.credential.fetch(session, self.resource) if self.resource else self.credential.fetch(session)
                )
            except CredentialError as exc:
                log.warning("teams: could not get a bot token: %s", exc)
                raise DeliveryError(f"could not get a bot token ({exc})") from None
            self._token = fresh.token
            self._expires = self._clock() + max(30.0, fresh.lifetime - TOKEN_MARGIN)
            self.fetches += 1
            return self._token

    def forget(self) -> None:
        """Drop the cached token (the connector said 401)."""
        self._token, self._expires = None, float("-inf")


class Connector:
    """Talks to the Bot Connector service. One per process; `close()` at shutdown."""

    def __init__(self, options: TeamsOptions, credential: Credential | None = None) -> None:
        self.options = options
        self.token = BotToken(credential, self.session)
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        """The process-wide HTTP session, created on first use inside the running loop."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=200, limit_per_host=100, ttl_dns_cache=300, enable_cleanup_closed=True
                ),
                timeout=REQUEST_TIMEOUT,
                json_serialize=lambda data: json.dumps(data, ensure_ascii=False, separators=(",", ":")),
                headers={"User-Agent": "Baton (Bot Framework connector client)"},
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()

    async def send(
        self, reference: dict[str, Any], body: dict[str, Any], *, attempt: int = 1, pace: Pace = UNPACED
    ) -> str | None:
        """Send one message activity to the conversation of `reference`, when `pace` says; return the new
        activity id.

        Raises DeliveryError, permanent or with `retry_after`, on failure.
        """
        service_url, conversation = _target(reference)
        await pace.turn()
        activity = {
            **body,
            "from": reference.get("bot") or {},
            "recipient": reference.get("user") or {},
            "conversation": conversation,
        }
        if reference.get("channelId"):
            activity["channelId"] = reference["channelId"]
        url = f"{service_url}/v3/conversations/{quote(str(conversation['id']), safe='')}/activities"
        status, headers, data = await self._request("POST", url, activity)
        if 200 <= status < 300:
            return data.get("id") if isinstance(data, dict) else None
        failure = self._failure(status, headers, data, attempt)
        if status == 429:
            await pace.pause(failure.retry_after if failure.retry_after is not None else 1.0)
        raise failure

    async def member(self, reference: dict[str, Any], user_id: str) -> dict[str, Any] | None:
        """The conversation member `user_id` (with email / userPrincipalName in Teams), or None when unknown."""
        try:
            service_url, conversation = _target(reference)
        except DeliveryError:
            return None
        url = f"{service_url}/v3/conversations/{quote(str(conversation['id']), safe='')}/members/{quote(user_id, safe='')}"
        try:
            status, _, data = await self._request("GET", url, None)
        except DeliveryError:
            return None
        return data if status == 200 and isinstance(data, dict) else None

    async def _request(self, method: str, url: str, payload: dict[str, Any] | None) -> tuple[int, Any, Any]:
        headers = {}
        token = await self.token.get()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            async with self.session().request(method, url, json=payload, headers=headers) as response:
                raw = await response.read()
                status, response_headers = response.status, response.headers
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise DeliveryError(f"Teams unreachable ({type(exc).__name__})") from None
        if status == 401 and token:
            self.token.forget()
        try:
            data = json.loads(raw) if raw else None
        except ValueError:
            data = None
        return status, response_headers, data

    def _failure(self, status: int, headers: Any, data: Any, attempt: int) -> DeliveryError:
        code = _error_code(data)
        detail = f"{status}{' ' + code if code else ''}"
        if status in RETRYABLE or status == 401:
            asked = retry_after_seconds(headers.get("Retry-After")) if headers is not None else None
            delay = asked + random.uniform(0, min(1.0, asked * 0.1)) if asked is not None else retry_delay(attempt)
            what = "throttled by Teams" if status == 429 else "Teams could not take it now"
            if status == 401:
                what = "Teams refused the bot token"
            return DeliveryError(f"{what} ({detail})", retry_after=delay, rate_limited=status == 429)
        if status == 403:
            return DeliveryError(
                f"Teams refused ({detail}): Baton was uninstalled or blocked in this chat", permanent=True
            )
        if status == 404:
            return DeliveryError(
                f"conversation not found ({detail}): the chat is gone or Baton was removed", permanent=True
            )
        return DeliveryError(f"Teams rejected the message ({detail})", permanent=True)


def _target(reference: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    service_url = reference.get("serviceUrl")
    conversation = reference.get("conversation")
    if not isinstance(service_url, str) or not service_url.startswith(("https://", "http://")):
        raise DeliveryError("no usable Teams conversation reference stored (serviceUrl)", permanent=True)
    if not isinstance(conversation, dict) or not conversation.get("id"):
        raise DeliveryError("no usable Teams conversation reference stored (conversation)", permanent=True)
    return service_url.rstrip("/"), conversation


def _error_code(data: Any) -> str | None:
    """The Bot Framework error code (`{"error": {"code": ...}}`), cut short; never the message text."""
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict) and isinstance(error.get("code"), str):
            return error["code"][:60]
    return None
