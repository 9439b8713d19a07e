"""A fake channel for dialog tests, in the send()/expect() style.

`Rig` wires the real engine and the real outbox sender to a real database (the same
`Core.assemble` the server uses); the
only stand-in is the channel at the end, which records what was delivered.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from bot.core import Core
from bot.demo import seed_demo
from bot.outbox import OutboxSender
from dialogs import all_dialogs
from dialogs.engine import Dialog, Engine
from dialogs.engine.clock import FakeClock
from dialogs.engine.delivery import UNPACED, DeliveryError, Limits, Outgoing, Pace
from dialogs.engine.messages import Inbound, Reply, Sender
from dialogs.engine.sealing import Sealer
from storage.db import Database
from storage.models import Person


class RecordingDelivery:
    """The local channel, recording every delivery; can be told to fail."""

    channel = "local"

    def __init__(self) -> None:
        self.sent: list[Outgoing] = []
        self.failures: list[DeliveryError] = []  # raised, in order, by the next deliveries

    def limits(self, address: dict[str, Any]) -> Limits | None:
        return None

    async def deliver(self, message: Outgoing, pace: Pace = UNPACED) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(message)

    def to(self, person_id: int) -> list[Reply]:
        return [m.reply for m in self.sent if m.person_id == person_id]


# The secret every Rig seals with; a server a test starts beside a Rig gets it as BATON_SECRET_KEY.
SECRET = secrets.token_urlsafe(48)


@dataclass
class Rig:
    db: Database
    clock: FakeClock
    engine: Engine
    sender: OutboxSender
    delivery: RecordingDelivery
    sealer: Sealer
    people: dict[str, Person] = field(default_factory=dict)

    @classmethod
    async def create(cls, db: Database, clock: FakeClock, *, demo: bool = True) -> Rig:
        delivery = RecordingDelivery()
        core = Core.assemble(db, all_dialogs(), sealer=Sealer(SECRET.encode()), clock=clock, deliveries=[delivery])
        rig = cls(db, clock, core.engine, core.sender, delivery, core.sealer)
        if demo:
            await seed_demo(db, clock)
        await rig.reload_people()
        return rig

    async def reload_people(self) -> None:
        async def load(session) -> list[Person]:
            return list((await session.execute(select(Person))).scalars())

        self.people = {p.email: p for p in await self.db.run(load)}

    def chat(self, email: str) -> Chat:
        return Chat(self, self.people[email])

    def restart(self, dialogs: list[Dialog] | None = None) -> Rig:
        """A new engine and sender on the same database (and the same secret), as after a process restart;
        `dialogs` as a server with other settings would offer them (all_dialogs(...))."""
        offered = all_dialogs() if dialogs is None else dialogs
        core = Core.assemble(self.db, offered, sealer=self.sealer, clock=self.clock, deliveries=[self.delivery])
        return Rig(self.db, self.clock, core.engine, core.sender, self.delivery, self.sealer, self.people)


class Chat:
    """One person talking to Baton: `await send(...)`, then `expect(...)` each reply in order."""

    def __init__(self, rig: Rig, person: Person) -> None:
        self.rig = rig
        self.person = person
        self._seen = len(rig.delivery.to(person.id))
        self._queue: list[Reply] = []
        self.last_prompt: Reply | None = None

    def inbound(
        self,
        *,
        text: str | None = None,
        action: str | None = None,
        value: str | None = None,
        event_id: str | None = None,
    ) -> Inbound:
        return Inbound(
            sender=Sender(platform="local", user_id=str(self.person.id)),
            address={"person": self.person.id},
            text=text,
            action=action,
            value=value,
            event_id=event_id or uuid.uuid4().hex,
        )

    async def send(self, text: str, *, event_id: str | None = None) -> None:
        await self.rig.engine.handle(self.inbound(text=text, event_id=event_id))
        await self.rig.sender.drain_once()

    async def press(self, label: str, *, on: Reply | None = None, event_id: str | None = None) -> None:
        """Press the button labelled `label` (or with that value) on `on`, default the last prompt with buttons."""
        self._pull()
        for pending in self._queue:
            self._note(pending)
        reply = on or self.last_prompt
        assert reply is not None and reply.action, "no message with buttons to press"
        values = {c.label: c.value for c in reply.choices} | {c.value: c.value for c in reply.choices}
        if reply.rating:
            values |= {str(n): str(n) for n in range(reply.rating.min, reply.rating.max + 1)}
        assert label in values, f"no button {label!r} among {sorted(values)}"
        await self.rig.engine.handle(self.inbound(action=reply.action, value=values[label], event_id=event_id))
        await self.rig.sender.drain_once()

    def _pull(self) -> None:
        delivered = self.rig.delivery.to(self.person.id)
        self._queue.extend(delivered[self._seen :])
        self._seen = len(delivered)

    def replies(self) -> list[Reply]:
        """Every reply not yet expected, oldest first; consumes them."""
        self._pull()
        fresh, self._queue = self._queue, []
        for reply in fresh:
            self._note(reply)
        return fresh

    def _note(self, reply: Reply) -> None:
        if reply.choices or reply.rating:
            self.last_prompt = reply

    def expect(self, *fragments: str) -> Reply:
        """Consume replies up to the first whose text contains every fragment; fail naming what arrived."""
        self._pull()
        for index, reply in enumerate(self._queue):
            self._note(reply)
            if all(f.casefold() in reply.text.casefold() for f in fragments):
                del self._queue[: index + 1]
                return reply
        seen = [r.text for r in self._queue]
        self._queue.clear()
        raise AssertionError(f"expected a reply containing {fragments!r}; got {seen!r}")

    def expect_nothing(self) -> None:
        fresh = self.replies()
        assert not fresh, f"expected no reply; got {[r.text for r in fresh]!r}"
