"""The one wiring of engine, outbox sender and inbox, used by the server, the terminal and the tests.

Replies a turn queues are handed straight to the sender after the commit;
anything else queued wakes it up. `Core` is also the `Host` every adapter
receives (adapters/contract.py): the few parts of the application an adapter
may use.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta

from bot.outbox import OutboxSender
from dialogs.common.manners import plan_notices
from dialogs.engine.clock import Clock, SystemClock
from dialogs.engine.contract import Dialog
from dialogs.engine.delivery import Delivery, LocalDelivery
from dialogs.engine.inbox import Inbox
from dialogs.engine.sealing import Sealer
from dialogs.engine.turns import Engine
from storage.db import Database


@dataclass
class Core:
    """The running parts every way of talking to Baton shares."""

    db: Database
    clock: Clock
    engine: Engine
    sender: OutboxSender
    inbox: Inbox
    sealer: Sealer

    @classmethod
    def assemble(
        cls,
        db: Database,
        dialogs: Iterable[Dialog],
        *,
        sealer: Sealer,
        clock: Clock | None = None,
        deliveries: Iterable[Delivery] = (),
        lease: timedelta = timedelta(minutes=2),
    ) -> Core:
        """Engine, sender and inbox over `db`, wired to each other.

        The local channel (web chat, terminal) is always there: its readers take sent rows themselves.
        `deliveries` add channels, or replace the local one (tests record it).
        """
        clock = clock or SystemClock()
        engine = Engine(db, dialogs, clock=clock, sealer=sealer)
        sender = OutboxSender(db, [LocalDelivery(), *deliveries], clock=clock, lease=lease, sealer=sealer)
        inbox = Inbox(db, clock, sealer)
        # Background work steps aside while Slack waits for an acknowledgement (dialogs/engine/priority.py).
        engine.acks = sender.acks = inbox.acks
        engine.plan_notices = plan_notices
        engine.on_queued = sender.wake
        engine.on_claimed = sender.deliver_soon
        inbox.on_queued = sender.wake
        return cls(db, clock, engine, sender, inbox, sealer)

    def wake_sender(self) -> None:
        self.sender.wake()

    def on_delivered(self, listener: Callable[[set[int]], None]) -> None:
        self.sender.listeners.append(listener)

    async def settle(self) -> None:
        await self.sender.settle()
