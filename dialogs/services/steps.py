"""What the scheduler's steps hand to the Conductor (dialogs/services/rhythm.py) to plan and queue.

One shape for every step, so the 1:1, retro and idea steps and the Conductor's own parts speak alike:
- `Due`: a message ready for the outbox (its payload rendered, its time planned);
- `Send`: a message still to plan (quiet hours, leave, the weekly budget) through `PlanFn`, then
  queued through `QueueFn`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dialogs.common.manners import Plan
from dialogs.engine.messages import Reply
from storage.models import Person


@dataclass(frozen=True, slots=True)
class Due:
    """One message for the Conductor's queue."""

    person_id: int
    key: str
    topic: str
    payload: dict[str, Any]
    due_at: datetime
    kind: str
    held: str | None = None  # why the budget or leave holds it ("budget", "leave"): recorded, not sent


@dataclass(frozen=True, slots=True)
class Send:
    """One message for the Conductor to plan and queue."""

    person: Person
    key: str
    topic: str
    reply: Reply
    when: datetime
    kind: str


PlanFn = Callable[[list[tuple[Person, datetime]], str], Awaitable[list[Plan]]]
QueueFn = Callable[[list[tuple[Send, Plan]]], Awaitable[int]]
