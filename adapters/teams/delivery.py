"""The outbox's Teams channel: every message Baton sends in Teams — replies included — goes out here."""

from __future__ import annotations

from adapters.teams.cards import render
from adapters.teams.connector import Connector
from dialogs.engine.delivery import DeliveryError, Outgoing


class TeamsDelivery:
    """Sends outbox rows on channel `teams` to the conversation reference stored with each row."""

    channel = "teams"

    def __init__(self, connector: Connector) -> None:
        self.connector = connector

    async def deliver(self, message: Outgoing) -> None:
        if not message.address:
            raise DeliveryError("no Teams conversation reference stored for this person", permanent=True)
        await self.connector.send(message.address, render(message.reply), attempt=message.attempt)
