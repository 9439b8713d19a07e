"""The outbox's Teams channel: every message Baton sends in Teams — replies included — goes out here."""

from __future__ import annotations

from typing import Any

from adapters.teams.cards import render
from adapters.teams.connector import Connector
from adapters.teams.limits import CONVERSATION_WINDOWS
from dialogs.engine.delivery import UNPACED, DeliveryError, Limits, Outgoing, Pace


class TeamsDelivery:
    """Sends outbox rows on channel `teams` to the conversation reference stored with each row."""

    channel = "teams"

    def __init__(self, connector: Connector, *, tenant_rate: float = 30.0) -> None:
        self.connector = connector
        self.tenant_rate = tenant_rate

    def limits(self, address: dict[str, Any]) -> Limits | None:
        conversation = address.get("conversation") or {}
        tenant = conversation.get("tenantId") or "-"
        return Limits(f"teams:{tenant}", self.tenant_rate, f"teams:{conversation.get('id')}", CONVERSATION_WINDOWS)

    async def deliver(self, message: Outgoing, pace: Pace = UNPACED) -> None:
        if not message.address:
            raise DeliveryError("no Teams conversation reference stored for this person", permanent=True)
        await self.connector.send(message.address, render(message.reply), attempt=message.attempt, pace=pace)
