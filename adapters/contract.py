"""The one shape every platform adapter has, and the little of the application it may use.

An adapter translates: platform payloads in, `Inbound` to the engine;
`Outgoing` rows from the outbox out, platform messages to the person. The
application (bot/) builds each adapter with its options and a `Host`, adds
its routes, registers its deliveries with the outbox sender, and starts and
stops it with the server. An adapter never sees the application object, the
configuration or another adapter.

    class EchoAdapter:
        platform = "echo"

        def __init__(self, host: Host) -> None:
            self.host = host

        def routes(self, app: web.Application) -> None:
            app.router.add_post("/echo", self.receive)

        def deliveries(self) -> list[Delivery]:
            return [EchoDelivery()]

        async def start(self) -> None: ...
        async def stop(self) -> None: ...

An adapter with a connection of its own (Slack's Socket Mode) may also offer
`async def problem(self) -> str | None`: why it cannot take work right now,
which makes /readyz answer 503.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from aiohttp import web

from dialogs.engine.clock import Clock
from dialogs.engine.delivery import Delivery
from dialogs.engine.inbox import Inbox
from dialogs.engine.sealing import Sealer
from dialogs.engine.turns import Engine
from storage.db import Database


class Host(Protocol):
    """What an adapter may use of the running application."""

    @property
    def db(self) -> Database:
        """The database (for the adapter's own platform tables and the neutral services)."""
        ...

    @property
    def clock(self) -> Clock: ...

    @property
    def engine(self) -> Engine:
        """Runs turns (`handle`) and reports errors without content (`report`)."""
        ...

    @property
    def inbox(self) -> Inbox:
        """Keeps a delivery durably before an early acknowledgement (`keep`); replayed if a crash beats its turn."""
        ...

    @property
    def sealer(self) -> Sealer:
        """Opens private replies a local channel reads back from the outbox (dialogs/engine/sealing.py)."""
        ...

    def wake_sender(self) -> None:
        """Something was queued outside a turn: ask the outbox sender to look now."""
        ...

    def on_delivered(self, listener: Callable[[set[int]], None]) -> None:
        """Call `listener` with the ids of people who were just delivered something (local channel readers)."""
        ...

    async def settle(self) -> None:
        """Wait until replies handed straight to the sender have gone out (before closing a session)."""
        ...


class Adapter(Protocol):
    """A platform: its routes, its deliveries, its start and stop."""

    platform: str  # the channel name its deliveries and inbound events carry ("slack", "teams", "local")

    def routes(self, app: web.Application) -> None:
        """Add the adapter's HTTP routes to `app` (none for a terminal or Socket Mode)."""
        ...

    def deliveries(self) -> Sequence[Delivery]:
        """The outbox channels this adapter sends on."""
        ...

    async def start(self) -> None:
        """Open sessions and background work; called after the database is migrated."""
        ...

    async def stop(self) -> None:
        """Finish what is in flight (bounded), then close; called before the database closes."""
        ...
