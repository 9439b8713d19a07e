"""botbuilder's CloudAdapter, wired so that nothing in it is rebuilt per activity.

The stock `ConfigurationBotFrameworkAuthentication` validates tokens with a
blocking key fetch, raises a bare exception on a malformed token (a 500),
and builds a new ConnectorClient with its credentials and retry policy for
every activity. Here the adapter is given an `AuthenticateRequestResult`
that Baton's own validator produced at the edge, a connector factory that
hands out one ConnectorClient per service URL for the life of the process,
and no user-token client (Baton does no OAuth sign-in cards). Baton never
sends through the turn context — every message goes through the outbox —
except the invoke response to an `Action.Execute`, which never leaves the
process.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from botbuilder.core import InvokeResponse, TurnContext
from botbuilder.integration.aiohttp import CloudAdapter
from botbuilder.schema import Activity, ActivityTypes
from botframework.connector.aio import ConnectorClient
from botframework.connector.auth import (
    AuthenticateRequestResult,
    BotFrameworkAuthentication,
    ClaimsIdentity,
    ConnectorFactory,
    MicrosoftAppCredentials,
)

from adapters.teams.auth import KeysUnavailable, TokenValidator, Unauthorized
from adapters.teams.options import BOT_FRAMEWORK_ISSUER, TeamsOptions

TurnLogic = Callable[[TurnContext], Awaitable[None]]


class BadActivity(ValueError):
    """The body is JSON but not a Bot Framework activity (a field of the wrong shape)."""


class _ReusedConnectors(ConnectorFactory):
    """One ConnectorClient per service URL, built on first use and kept (Teams has a handful of them)."""

    def __init__(self, options: TeamsOptions, capacity: int = 64) -> None:
        self.options = options
        self.capacity = capacity
        self.clients: dict[str, ConnectorClient] = {}

    async def create(self, service_url: str, audience: str) -> ConnectorClient:
        client = self.clients.get(service_url)
        if client is None:
            if len(self.clients) >= self.capacity:
                self.clients.clear()
            credentials = (
                MicrosoftAppCredentials(self.options.app_id or "", self.options.password or "", self.options.tenant_id)
                if self.options.authenticated
                else MicrosoftAppCredentials.empty()
            )
            client = self.clients[service_url] = ConnectorClient(credentials, base_url=service_url)
        return client


class _EdgeAuthentication(BotFrameworkAuthentication):
    """Hands CloudAdapter the result of Baton's own validation; used only if someone calls `process()` directly."""

    def __init__(self, validator: TokenValidator | None, factory: _ReusedConnectors) -> None:
        self.validator = validator
        self.factory = factory

    async def authenticate_request(self, activity: Activity, auth_header: str) -> AuthenticateRequestResult:
        claims: dict[str, Any] = {}
        if self.validator is not None:
            try:
                token = await self.validator.verify(auth_header)
                self.validator.check_activity(
                    token, {"serviceUrl": activity.service_url, "channelId": activity.channel_id}
                )
            except (Unauthorized, KeysUnavailable):
                raise PermissionError("unauthorized") from None  # CloudAdapter turns this into a 401
            claims = token.claims
        return result_for(claims, self.factory)

    async def authenticate_streaming_request(
        self, auth_header: str, channel_id_header: str
    ) -> AuthenticateRequestResult:
        raise PermissionError("Baton does not accept streaming connections")

    def create_connector_factory(self, claims_identity: ClaimsIdentity) -> ConnectorFactory:
        return self.factory

    async def create_user_token_client(self, claims_identity: ClaimsIdentity) -> None:
        return None

    def get_originating_audience(self) -> str:
        return BOT_FRAMEWORK_ISSUER


def result_for(claims: dict[str, Any], factory: ConnectorFactory) -> AuthenticateRequestResult:
    result = AuthenticateRequestResult()
    result.claims_identity = ClaimsIdentity(claims, True)
    result.audience = BOT_FRAMEWORK_ISSUER
    result.connector_factory = factory
    return result


class Bridge:
    """Runs one authenticated activity through CloudAdapter's turn pipeline."""

    def __init__(self, options: TeamsOptions, validator: TokenValidator | None) -> None:
        self.factory = _ReusedConnectors(options)
        self.adapter = CloudAdapter(_EdgeAuthentication(validator, self.factory))

    async def run(self, body: dict[str, Any], claims: dict[str, Any], logic: TurnLogic) -> tuple[int, Any] | None:
        """Process `body` (already authenticated); return (status, body) of an invoke response, or None."""
        try:
            activity = Activity().deserialize(body)
        except Exception as exc:  # noqa: BLE001 - msrest's DeserializationError for fields of the wrong shape
            raise BadActivity(type(exc).__name__) from None
        response = await self.adapter.process_activity(result_for(claims, self.factory), activity, logic)
        if response is None:
            return None
        return int(response.status), response.body

    @staticmethod
    async def answer_invoke(context: TurnContext, status: int, body: Any) -> None:
        """Set the HTTP answer to an invoke (it is returned by `run`, not sent anywhere)."""
        await context.send_activity(
            Activity(type=ActivityTypes.invoke_response, value=InvokeResponse(status=status, body=body))
        )

    async def close(self) -> None:
        for client in self.factory.clients.values():
            try:
                await client.close()
            except Exception:  # noqa: BLE001 - closing is best effort at shutdown
                pass
        self.factory.clients.clear()
