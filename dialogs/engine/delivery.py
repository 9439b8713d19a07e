"""The delivery contract between the outbox sender and the platforms.

A platform adapter implements `Delivery` for its channel and raises
`DeliveryError` when a send fails; the sender (bot/outbox.py) hands it one
claimed row at a time as an `Outgoing`, with a `Pace` to wait on before
each post. The adapter says which platform `Limits` a message counts
against; the sender keeps them, shared by every replica (bot/pacing.py).
This lives below the adapters so they can implement it without importing
the application.
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
    waited: bool = False  # held back after it was queued (quiet hours, leave): due well after it was written


@dataclass(frozen=True, slots=True)
class Limits:
    """The platform's budgets one post counts against.

    `shared` names a budget of the whole app in one place (a Slack workspace, a Teams tenant) — the same
    string on every replica — at `rate` posts per second with bursts of `burst`. `conversation` names the
    one chat the post goes to, allowed at most n posts in any s seconds for each (n, s) in `windows`.
    """

    shared: str
    rate: float
    conversation: str
    windows: tuple[tuple[int, float], ...]
    burst: int = 1


class Pace(Protocol):
    """What a delivery waits on: one `turn()` before each post; `pause()` when the platform said 429."""

    async def turn(self) -> None:
        """Wait for this post's slot. Raises DeliveryError (rate_limited) when it is too far away to wait."""
        ...

    async def pause(self, seconds: float) -> None:
        """The platform asked for a pause: nothing more in this budget for `seconds`, from any replica."""
        ...


class Unpaced:
    """No waiting: for a message sent outside the outbox (and deliveries that need no pacing)."""

    async def turn(self) -> None:
        return None

    async def pause(self, seconds: float) -> None:
        return None


UNPACED = Unpaced()


class Delivery(Protocol):
    """Sends outgoing messages on one channel; raises DeliveryError on failure."""

    channel: str

    def limits(self, address: dict[str, Any]) -> Limits | None:
        """The budgets a post to `address` counts against; None: not paced."""
        ...

    async def deliver(self, message: Outgoing, pace: Pace = UNPACED) -> None: ...


class LocalDelivery:
    """The local web chat and terminal read sent rows themselves; delivering is marking them sent."""

    channel = "local"

    def limits(self, address: dict[str, Any]) -> Limits | None:
        return None

    async def deliver(self, message: Outgoing, pace: Pace = UNPACED) -> None:
        return None
