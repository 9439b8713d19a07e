"""Bot Framework JWT validation for incoming activities: at the edge, async, with cached keys.

Every request to `/api/messages` must carry `Authorization: Bearer <JWT>`
issued by `https://api.botframework.com` for Baton's app id (`aud`), signed
with a key listed in the Bot Framework's OpenID metadata, endorsed for the
activity's channel, and whose `serviceurl` claim equals the activity's
`serviceUrl`. Anything else is `Unauthorized` (an HTTP 401) — including
garbage that is not a JWT at all, where botbuilder's own validator raises
a bare exception and a stock bot answers 500.

It fetches the keys with the adapter's aiohttp session, keeps them for a
day, and re-reads them early (at most every five minutes) only when a token
names a key it has not seen, which is how key rotation shows up.

Why not the Agents SDK's `JwtTokenValidator` (1.9): its key fetch runs off
the event loop (measured: the loop kept ticking through a 1 s JWKS fetch),
but it accepts a token with no `exp`, checks the issuer only when
`VALIDATE_ISSUER` is set (by default a token from `https://evil.example`
signed by an Entra key passes), never checks the `serviceurl` claim (its
CloudAdapter only logs a mismatch and then replies there with the bot's own
token), ignores the keys' channel endorsements, and hard-codes the JWKS
URLs, so neither a sovereign cloud's metadata nor a test's can be named.
Each of those would need code around it; this validator already has none
of those gaps, and tests/test_teams.py holds it to them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import jwt

from adapters.teams.options import BOT_FRAMEWORK_ISSUER

log = logging.getLogger(__name__)

ALLOWED_ALGORITHMS = ("RS256", "RS384", "RS512")
CLOCK_SKEW = 300  # seconds of leeway on exp/nbf, as the Bot Framework documents
MAX_TOKEN = 16 * 1024


class Unauthorized(Exception):
    """The request does not carry a valid Bot Framework token; the reason is safe to log."""


class KeysUnavailable(Exception):
    """The signing keys could not be fetched, so no token can be checked right now."""


@dataclass(frozen=True, slots=True)
class SigningKey:
    key: Any
    endorsements: frozenset[str]


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    """A token whose signature, issuer, audience and lifetime were checked."""

    claims: dict[str, Any]
    endorsements: frozenset[str]


class TokenValidator:
    """Checks Bot Framework tokens for one app id. One per process; safe to share between requests."""

    def __init__(
        self,
        *,
        app_id: str,
        openid_url: str,
        session: Callable[[], aiohttp.ClientSession],
        clock: Callable[[], float] = time.monotonic,
        refresh_every: float = 24 * 3600,
        refetch_unknown_after: float = 300,
    ) -> None:
        self.app_id = app_id
        self.openid_url = openid_url
        self._session = session
        self._clock = clock
        self._refresh_every = refresh_every
        self._refetch_unknown_after = refetch_unknown_after
        self._keys: dict[str, SigningKey] | None = None
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()
        self.fetches = 0  # how often the metadata was read (for tests and metrics)

    async def verify(self, header: str | None) -> VerifiedToken:
        """Check the `Authorization` header value. Raises Unauthorized or KeysUnavailable."""
        if not header:
            raise Unauthorized("no Authorization header")
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("not a bearer token")
        if len(token) > MAX_TOKEN:
            raise Unauthorized("token too long")
        try:
            head = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthorized("malformed token") from None
        algorithm, kid = head.get("alg"), head.get("kid")
        if algorithm not in ALLOWED_ALGORITHMS:
            raise Unauthorized("signing algorithm not allowed")
        if not isinstance(kid, str) or not kid:
            raise Unauthorized("token names no signing key")
        key = await self._key(kid)
        if key is None:
            raise Unauthorized("token signed by a key that is not in the OpenID metadata")
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[algorithm],
                audience=self.app_id,
                issuer=BOT_FRAMEWORK_ISSUER,
                leeway=CLOCK_SKEW,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"token rejected ({type(exc).__name__})") from None
        return VerifiedToken(claims, key.endorsements)

    @staticmethod
    def check_activity(token: VerifiedToken, activity: dict[str, Any]) -> None:
        """The token must be for this activity: same service URL, key endorsed for its channel."""
        if token.claims.get("serviceurl") != activity.get("serviceUrl"):
            raise Unauthorized("serviceurl claim does not match the activity's serviceUrl")
        channel = activity.get("channelId")
        if channel and token.endorsements and channel not in token.endorsements:
            raise Unauthorized("signing key is not endorsed for this channel")

    async def _key(self, kid: str) -> SigningKey | None:
        now = self._clock()
        if self._keys is None or now - self._fetched_at > self._refresh_every:
            await self._refresh(max_age=self._refresh_every)
        assert self._keys is not None
        key = self._keys.get(kid)
        if key is None and now - self._fetched_at > self._refetch_unknown_after:
            await self._refresh(max_age=self._refetch_unknown_after)  # maybe a rotated key
            key = self._keys.get(kid)
        return key

    async def _refresh(self, *, max_age: float) -> None:
        async with self._lock:
            if self._keys is not None and self._clock() - self._fetched_at <= max_age:
                return  # another request refreshed while this one waited
            try:
                keys = await self._fetch()
            except Exception as exc:  # noqa: BLE001 - any failure to fetch keys: keep the cached ones or refuse
                if self._keys is None:
                    log.warning("teams: could not read the Bot Framework signing keys (%s)", type(exc).__name__)
                    raise KeysUnavailable(type(exc).__name__) from None
                log.warning("teams: could not refresh the signing keys (%s); keeping the old ones", type(exc).__name__)
                self._fetched_at = self._clock()  # don't hammer the metadata endpoint
                return
            self._keys, self._fetched_at = keys, self._clock()
            self.fetches += 1

    async def _fetch(self) -> dict[str, SigningKey]:
        session = self._session()
        timeout = aiohttp.ClientTimeout(total=10)
        async with session.get(self.openid_url, timeout=timeout) as response:
            response.raise_for_status()
            metadata = await response.json(content_type=None)
        jwks_uri = metadata.get("jwks_uri") if isinstance(metadata, dict) else None
        if not isinstance(jwks_uri, str):
            raise ValueError("OpenID metadata has no jwks_uri")
        async with session.get(jwks_uri, timeout=timeout) as response:
            response.raise_for_status()
            document = await response.json(content_type=None)
        keys: dict[str, SigningKey] = {}
        for entry in document.get("keys", []) if isinstance(document, dict) else []:
            if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
                continue
            try:
                parsed = jwt.PyJWK(entry)
            except jwt.PyJWTError:
                continue  # a key type this validator cannot use; others may still do
            endorsements = entry.get("endorsements") or []
            keys[entry["kid"]] = SigningKey(parsed.key, frozenset(e for e in endorsements if isinstance(e, str)))
        if not keys:
            raise ValueError("JWKS holds no usable keys")
        return keys
