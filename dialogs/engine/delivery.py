"""The delivery contract between the outbox sender and the platforms.

A platform adapter implements `Delivery` for its channel and raises
`DeliveryError` when a send fails; the sender (bot/outbox.py) hands it one
claimed row at a time as an `Outgoing`. This lives below the adapters so
they can implement it without importing the application.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from dialogs.engine.messages import Reply


class DeliveryError(Exception):
    """A delivery failed. `permanent` ones are not retried; `retry_after` (seconds) overrides backoff.

    `rate_limited` means the platform (or Baton's own pacing) asked to wait: that is
    not a failed attempt, so it never makes the sender give up.
    """

    def __init__(
        self, reason: str, *, permanent: bool = False, retry_after: float | None = None, rate_limited: bool = False
    ) -> None:
        super().__init__(reason)
        self.reason = reason[:200]
        self.permanent = permanent
        self.retry_after = retry_after
        self.rate_limited = rate_limited


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One claimed outbox row, as a delivery sees it."""

    id: int
    key: str
    person_id: int | None  # None: a post to a shared place such as a team channel (see `address`)
    channel: str
    address: dict[str, Any]
    reply: Reply
    kind: str
    attempt: int
    unsolicited: bool = False


class Delivery(Protocol):
    """Sends outgoing messages on one channel; raises DeliveryError on failure."""

    channel: str

    async def deliver(self, message: Outgoing) -> None: ...


class LocalDelivery:
    """The local web chat and terminal read sent rows themselves; delivering is marking them sent."""

    channel = "local"

    async def deliver(self, message: Outgoing) -> None:
        return None
