"""What a dialog author needs: `Dialog`, `State`, `Turn`, `Role` and `END`.

A dialog is a small state machine with named states. Each state has a prompt
(what Baton asks on entering it) and handlers for typed text and pressed
buttons. A handler returns the name of the next state, `None` to stay, or
`END`. If a handler raises, the turn's transaction rolls back and the
previous state is kept: nothing half-done is saved. The state, its collected
data and the id of the prompt on screen are saved after every turn, so a
restart or another replica continues the conversation, and a button from an
older prompt is answered as expired.

    class LeaveDialog(Dialog):
        name = "leave"
        commands = ("leave",)
        summary = "Tell me when you're away."

        def __init__(self) -> None:
            self.states = {"when": State(prompt=self.ask_when, on_text=self.on_when)}
            self.first = "when"

Routing (`routing.py`) decides which handler a message reaches; running turns
in transactions, many at once, is `turns.py`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy.ext.asyncio import AsyncSession

from dialogs.engine.clock import tz
from dialogs.engine.messages import Inbound, Reply
from dialogs.engine.sealing import Sealer
from storage.models import DialogState, Person

END = "__end__"
COMMAND_ACTION = "cmd"  # Reply.action of buttons whose value is a command to run

Transition = str | None
TextHandler = Callable[["Turn", str], Awaitable[Transition]]
PromptFn = Callable[["Turn"], Reply | Awaitable[Reply]]


@dataclass(frozen=True, slots=True)
class State:
    """One named step of a dialog.

    `prompt` builds the question shown on entering the state; it must only read.
    `on_text` receives typed text, `on_choice` a pressed button's value. A state
    with only `on_choice` also accepts typed text equal to a choice's label or
    value (or its number), so the terminal and a user typing "skip" both work.
    `max_length` bounds a typed answer; a longer one is refused whole, politely.
    """

    prompt: PromptFn
    on_text: TextHandler | None = None
    on_choice: TextHandler | None = None
    max_length: int = 2000


@dataclass(frozen=True, slots=True)
class Role:
    """What the person in a turn may do: manage a team, administer Baton."""

    manager: bool
    admin: bool


class Dialog:
    """Base of every dialog. Subclasses set the class attributes, `states` and `first`."""

    name: ClassVar[str]  # persisted with the state: renaming a dialog abandons conversations in it
    commands: ClassVar[tuple[str, ...]] = ()  # the words that start it; the first is the one `help` shows
    summary: ClassVar[str] = ""
    title: ClassVar[str] = ""  # how Baton names a conversation in it: "your check-in"
    audience: ClassVar[str] = "everyone"  # "everyone", "manager" or "admin"
    states: dict[str, State]
    first: str

    async def begin(self, turn: Turn, args: str) -> Transition:
        """Entry point for a command; `args` is the text after the command word. Returns the first state."""
        return self.first

    async def prefetch(self, session: AsyncSession, turns: list[Turn]) -> None:
        """Optional: load what these turns (all mid-way through this dialog, in one batch) will read,
        in one query, into each `turn.memo`. Handlers must still work when it did nothing."""

    def available_to(self, role: Role) -> bool:
        """Whether a person with `role` may start this dialog."""
        if self.audience == "manager":
            return role.manager or role.admin
        if self.audience == "admin":
            return role.admin
        return True


@dataclass
class Turn:
    """What a handler works with during one turn. Valid only inside that turn.

    `inbound` is None for a turn Baton starts on its own. Everything a turn
    says, tells or posts is queued in the outbox inside the turn's own
    transaction, so it is sent if and only if the turn commits.
    """

    session: AsyncSession
    person: Person
    role: Role
    now: datetime
    state: DialogState
    inbound: Inbound | None
    replies: list[Reply] = field(default_factory=list)
    extra: list[tuple[Person | int, Reply, str]] = field(default_factory=list)
    posts: list[tuple[str, dict[str, Any], Reply, str]] = field(default_factory=list)
    memo: dict[str, Any] = field(default_factory=dict)  # rows the dialog fetched for this turn; never saved
    # Seals what the database must never hold readable (anonymous answers): dialogs/engine/sealing.py.
    sealer: Sealer = field(default_factory=Sealer.ephemeral, repr=False)
    checkpoint: bool = False  # set by a dialog that removed sealed data: the WAL is checkpointed after the commit
    # Set by a dialog whose replies must not be readable in the outbox beside their recipient (an anonymous
    # sender's confirmation, their own ideas): they are stored sealed (sealing.seal_payload).
    private: bool = False

    @property
    def data(self) -> dict[str, Any]:
        """The dialog's collected data; saved with the state after the turn."""
        data: dict[str, Any] = self.state.data
        return data

    @property
    def local_now(self) -> datetime:
        """Now, in the person's own time zone."""
        return self.now.astimezone(tz(self.person.timezone))

    def say(self, reply: Reply | str) -> None:
        """Add a message to this turn's replies (sent after the turn commits)."""
        self.replies.append(Reply(reply) if isinstance(reply, str) else reply)

    def tell(self, person: Person | int, reply: Reply | str, *, key: str) -> None:
        """Send a message to someone else (e.g. a manager), queued in this turn's transaction under `key`."""
        self.extra.append((person, Reply(reply) if isinstance(reply, str) else reply, key))

    def post(self, channel: str, address: dict[str, Any], reply: Reply, *, key: str) -> None:
        """Post to a shared place (a team channel on `channel`), queued in this turn's transaction under `key`."""
        self.posts.append((channel, dict(address), reply, key))
