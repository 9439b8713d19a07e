"""The platform-neutral dialog engine.

A dialog is a small state machine with named states. Each state has a prompt
(what Baton asks on entering it) and handlers for typed text and pressed
buttons. A handler returns the name of the next state, `None` to stay, or
`END`. If a handler raises, the transaction rolls back and the previous state
is kept — nothing half-done is saved.

Every turn runs as: take the person's lock → open a transaction → record the
delivery key (drops retries) → load the state (row-locked on PostgreSQL) →
run the handler → save the state with version + 1 → queue the replies in the
outbox → commit. So a restart or another replica continues where the last
committed turn left off, and a scheduled prompt never races a reply.

Turns from different people that arrive while a transaction is in flight
share the next one (group commit): one statement records all their delivery
keys, one loads all their states, one saves them and one queues every reply,
so the database's fixed cost per transaction is paid once per batch, not once
per message. If any turn in a batch fails, nothing of the batch is kept and
each of its turns runs again on its own, so one person's failure never costs
another person their answer, and the apology reaches only the one it concerns.
"""

from __future__ import annotations

import asyncio
import dataclasses
import difflib
import inspect
import logging
import secrets
import time
import traceback
import unicodedata
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from dialogs.clock import Clock, SystemClock
from dialogs.errors import UnknownPerson, UserFacingError
from dialogs.locks import KeyedLocks
from dialogs.messages import Choice, Inbound, Reply
from storage import queries
from storage.coalesce import Coalescer
from storage.db import Conflict, Database, DatabaseUnavailable
from storage.models import DialogState, InboxEvent, OutboxMessage, Person

log = logging.getLogger(__name__)

END = "__end__"
MAX_TEXT = 4000  # characters accepted in one message; longer text is refused, politely and whole
CANCEL_WORDS = frozenset({"cancel", "stop", "quit", "exit"})
COMMAND_ACTION = "cmd"  # Reply.action of buttons whose value is a command to run
CLAIM_LEASE = timedelta(minutes=2)  # a reply handed straight to the sender is retaken by any sender after this
MAX_BATCH = 64  # turns sharing one transaction at most (group commit)

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
    """

    prompt: PromptFn
    on_text: TextHandler | None = None
    on_choice: TextHandler | None = None
    max_length: int = 2000


class Dialog:
    """Base of every dialog. Subclasses set the class attributes and `states`."""

    name: ClassVar[str]
    commands: ClassVar[tuple[str, ...]] = ()
    summary: ClassVar[str] = ""
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
        return (
            self.audience == "everyone"
            or (self.audience == "manager" and (role.manager or role.admin))
            or (self.audience == "admin" and role.admin)
        )


@dataclass(frozen=True, slots=True)
class Role:
    manager: bool
    admin: bool


@dataclass
class Turn:
    """What a handler works with during one turn. Valid only inside that turn."""

    engine: Engine
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

    @property
    def data(self) -> dict[str, Any]:
        """The dialog's collected data; saved with the state after the turn."""
        return self.state.data

    @property
    def local_now(self) -> datetime:
        """Now, in the person's own time zone."""
        return self.now.astimezone(zone(self.person.timezone))

    def say(self, reply: Reply | str) -> None:
        """Add a message to this turn's replies (sent after the turn commits)."""
        self.replies.append(Reply(reply) if isinstance(reply, str) else reply)

    def tell(self, person: Person | int, reply: Reply | str, *, key: str) -> None:
        """Send a message to someone else (e.g. a manager), queued in this turn's transaction under `key`."""
        self.extra.append((person, Reply(reply) if isinstance(reply, str) else reply, key))

    def post(self, channel: str, address: dict[str, Any], reply: Reply, *, key: str) -> None:
        """Post to a shared place (a team channel on `channel`), queued in this turn's transaction under `key`."""
        self.posts.append((channel, dict(address), reply, key))


def zone(name: str) -> ZoneInfo:
    """The ZoneInfo for an IANA name, falling back to UTC for an unknown one."""
    try:
        return ZoneInfo(name)
    except Exception:  # ZoneInfoNotFoundError, ValueError for odd strings
        return ZoneInfo("UTC")


def clean_text(text: str) -> str:
    """Normalise what a person typed without changing what they meant.

    NFC (not NFKC: a person's ① or ﬁ stays theirs), control characters other
    than newline and tab removed, surrounding whitespace trimmed.
    """
    text = unicodedata.normalize("NFC", text)
    text = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch)[0] != "C" or ch == "\u200d")
    return text.strip()


class Engine:
    """Routes inbound events to dialogs and runs turns. One per process."""

    def __init__(self, db: Database, dialogs: Iterable[Dialog], *, clock: Clock | None = None) -> None:
        self.db = db
        self.clock = clock or SystemClock()
        self.dialogs: dict[str, Dialog] = {}
        self.commands: dict[str, Dialog] = {}
        for dialog in dialogs:
            self.dialogs[dialog.name] = dialog
            for word in dialog.commands:
                self.commands[word] = dialog
        self._locks = KeyedLocks()
        self.on_queued: Callable[[], None] = lambda: None  # set by the outbox sender to wake up
        # Set by the outbox sender: replies to a person's own message are queued already claimed and
        # handed over right after the turn commits, saving the sender a claim. None: queue as pending.
        self.on_claimed: Callable[[list[dict[str, Any]]], None] | None = None
        # Short-lived, per-process caches of facts that rarely change; each turn still re-reads the person.
        self._senders: dict[tuple[str, str], tuple[int, float]] = {}
        self._managers: dict[int, tuple[bool, float]] = {}
        self._sender_lookup: Coalescer[tuple[str, str], int] = Coalescer(self._find_senders)
        # Group commit: turns waiting for the next transaction, and the task that runs them.
        self._waiting: list[_Waiting] = []
        self._committer: asyncio.Task[None] | None = None

    # -- inbound ---------------------------------------------------------------------------

    async def handle(self, inbound: Inbound, *, person_id: int | None = None) -> list[Reply]:
        """Run one turn for `inbound`; return the replies queued for the sender (empty for a duplicate).

        Raises UnknownPerson when the sender maps to nobody, and
        DatabaseUnavailable when nothing could be recorded; the adapter then
        tells the person what to do. Handler bugs do not raise: the person
        gets an apology with a reference id and the log gets the details.
        An adapter that already knows the sender's `person_id` passes it.
        """
        if person_id is None:
            person_id = await self._person_id(inbound)
        try:
            # The person's lock keeps their turns in order; a scheduled prompt waits for it too.
            async with self._locks(person_id):
                waiting = _Waiting(person_id, inbound, asyncio.get_running_loop().create_future())
                self._waiting.append(waiting)
                if self._committer is None or self._committer.done():
                    self._committer = asyncio.get_running_loop().create_task(
                        self._commit_waiting(), name="engine-turns"
                    )
                return await asyncio.shield(waiting.done)  # a caller that gives up does not cancel the turn
        except UnknownPerson:
            self._senders.pop((inbound.sender.platform, inbound.sender.user_id), None)
            raise

    async def _commit_waiting(self) -> None:
        """Run the waiting turns, a batch per transaction, until none are left.

        Whatever happens, every caller gets an outcome: an unexpected error
        settles its batch with that error, and cancellation (shutdown) cancels
        every waiting turn rather than leaving its caller — and the person's
        lock — waiting forever.
        """
        batch: list[_Waiting] = []
        try:
            while self._waiting:
                batch, rest, people = [], [], set()
                for waiting in self._waiting:  # one turn per person and batch, in arrival order
                    if len(batch) < MAX_BATCH and waiting.person_id not in people:
                        batch.append(waiting)
                        people.add(waiting.person_id)
                    else:
                        rest.append(waiting)
                self._waiting = rest
                try:
                    await self._commit(batch)
                except Exception as exc:  # a bug here, not in a dialog: the callers hear of it
                    self.report(exc, where="engine batch")
                    for waiting in batch:
                        _settle(waiting.done, exc)
        except asyncio.CancelledError:
            for waiting in [*batch, *self._waiting]:
                waiting.done.cancel()
            self._waiting = []
            raise

    async def _commit(self, batch: list[_Waiting]) -> None:
        if len(batch) == 1:
            await self._alone(batch[0])
            return
        try:
            outcomes, claimed = await self.db.run(lambda s: self._batch(s, batch))
        except DatabaseUnavailable as exc:  # the batch's own statements kept failing: the database is down
            for waiting in batch:
                _settle(waiting.done, exc)
            return
        except Exception:  # some turn failed, and the whole batch rolled back: run each on its own
            for waiting in batch:
                await self._alone(waiting)
            return
        self._hand_over(claimed)
        for waiting, outcome in zip(batch, outcomes, strict=True):
            _settle(waiting.done, outcome)

    def _hand_over(self, claimed: list[dict[str, Any]]) -> None:
        """Give replies queued already claimed to the sender; if that fails they go out after their lease."""
        if not claimed or self.on_claimed is None:
            return
        try:
            self.on_claimed(claimed)
        except Exception as exc:  # noqa: BLE001 - the rows are committed; the lease brings them back
            self.report(exc, where="handing replies to the sender")

    async def _alone(self, waiting: _Waiting) -> None:
        """One turn in a transaction of its own; a failing dialog gets the error hook and an apology."""
        person_id, inbound = waiting.person_id, waiting.inbound
        try:
            replies, claimed = await self.db.run(lambda s: self._turn(s, person_id, inbound))
        except (UnknownPerson, DatabaseUnavailable) as exc:
            _settle(waiting.done, exc)
            return
        except Exception as exc:  # the single error hook for dialog code
            ref = self.report(exc, person_id=person_id)
            apology = Reply(
                f"Sorry, something went wrong on my side and I couldn't record that (ref {ref}). "
                "Please send it again in a moment."
            )

            async def apologise(session: AsyncSession) -> list[dict[str, Any]]:
                await _forget_kept(session, [inbound])  # the person is told to send it again: nothing to replay
                return await self._queue_replies(session, [(person_id, inbound, [apology], f"error:{ref}")])

            try:
                handed = await self.db.run(apologise)
            except Exception as again:  # noqa: BLE001 - the database failed as well: the caller says so
                _settle(
                    waiting.done,
                    again if isinstance(again, DatabaseUnavailable) else DatabaseUnavailable(type(again).__name__),
                )
                return
            self._hand_over(handed)
            _settle(waiting.done, [apology])
            return
        self._hand_over(claimed)
        _settle(waiting.done, replies)

    async def _person_id(self, inbound: Inbound) -> int:
        """The person behind the sender, from a five-minute cache or the database. Raises UnknownPerson.

        Senders looked up at the same moment share one query; an account not
        linked yet is then looked for by its email, on its own.
        """
        key = (inbound.sender.platform, inbound.sender.user_id)
        cached = self._senders.get(key)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        person_id = await self._sender_lookup.get(key)
        if person_id is None and inbound.sender.email:
            async with self.db.session() as session:
                person = await queries.resolve_sender(session, key[0], key[1], inbound.sender.email)
                person_id = person.id if person else None
        if person_id is None:
            raise UnknownPerson(inbound.sender.platform)
        if len(self._senders) > 10_000:
            self._senders.clear()
        self._senders[key] = (person_id, time.monotonic() + 300)
        return person_id

    async def _find_senders(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
        async with self.db.session() as session:
            return await queries.sender_ids(session, keys)

    def report(self, exc: BaseException, **context: Any) -> str:
        """Log an unexpected error with a short reference id; return the id.

        Only the exception type and the code locations are logged — never the
        exception's message, which may carry what a person typed.
        """
        ref = secrets.token_hex(3).upper()
        frames = " < ".join(
            f"{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno} {frame.name}"
            for frame in reversed(traceback.extract_tb(exc.__traceback__))
        )
        log.error("error ref=%s type=%s context=%s at %s", ref, type(exc).__name__, context, frames)
        return ref

    async def _turn(
        self, session: AsyncSession, person_id: int, inbound: Inbound
    ) -> tuple[list[Reply], list[dict[str, Any]]]:
        now = self.clock.now()
        await _forget_kept(session, [inbound])
        if inbound.key and not await queries.mark_event_processed(session, inbound.key, now):
            return [], []  # a retry or a double submit: handled already
        turn = await self._open(session, person_id, inbound, now)
        await self._route(turn)
        await self._save_all([turn])
        claimed = await self._queue_replies(session, [(person_id, inbound, turn.replies, None)])
        await self._queue_extra(turn)
        return turn.replies, claimed

    async def _batch(
        self, session: AsyncSession, batch: list[_Waiting]
    ) -> tuple[list[list[Reply] | BaseException], list[dict[str, Any]]]:
        """Many people's turns in one transaction, with one statement per step that all of them share."""
        now = self.clock.now()
        found = await session.scalars(select(Person).where(Person.id.in_([w.person_id for w in batch])))
        people = {person.id: person for person in found}
        outcomes: list[list[Reply] | BaseException] = [[] for _ in batch]
        keys: dict[int, str] = {}
        for index, waiting in enumerate(batch):
            if waiting.person_id not in people:
                outcomes[index] = UnknownPerson("removed")
            elif waiting.inbound.key:
                keys[index] = waiting.inbound.key
        await _forget_kept(session, [waiting.inbound for waiting in batch])
        # Keys name the sender, and a batch holds one turn per person, so no key appears twice here.
        fresh = await queries.mark_events_processed(session, list(keys.values()), now)
        live = [
            index
            for index, waiting in enumerate(batch)
            if waiting.person_id in people and (index not in keys or keys[index] in fresh)
        ]  # the rest are retries or double submits, handled already: no replies
        states = await _load_states(session, [batch[index].person_id for index in live], now)
        managers = await self._are_managers(session, [batch[index].person_id for index in live])
        turns: list[tuple[int, Turn]] = []
        for index in live:
            waiting = batch[index]
            person = people[waiting.person_id]
            role = Role(manager=managers[waiting.person_id], admin=person.is_admin)
            turns.append((index, Turn(self, session, person, role, now, states[waiting.person_id], waiting.inbound)))
        by_dialog: dict[str, list[Turn]] = {}
        for _, turn in turns:
            if turn.state.dialog in self.dialogs:
                by_dialog.setdefault(turn.state.dialog, []).append(turn)
        try:
            for name, group in by_dialog.items():
                await self.dialogs[name].prefetch(session, group)
            for _, turn in turns:
                await self._route(turn)
        except Exception as exc:
            # One dialog failed — even with an error that looks transient (a timeout, a deadlock in its own
            # query): retrying the batch could fail everyone with it, so the batch rolls back and its turns
            # run alone, each with its own retries. Only the batch's shared statements retry the batch.
            raise _DialogFailed from exc
        await self._save_all([turn for _, turn in turns])
        claimed = await self._queue_replies(
            session, [(turn.person.id, batch[index].inbound, turn.replies, None) for index, turn in turns]
        )
        for index, turn in turns:
            await self._queue_extra(turn)
            outcomes[index] = turn.replies
        return outcomes, claimed

    async def _save_all(self, turns: list[Turn]) -> None:
        """Save the turns' states in one statement, each checked against the version it was loaded with."""
        if not turns:
            return
        column = DialogState.__table__.c  # type: ignore[attr-defined]
        statement = (
            update(DialogState.__table__)  # type: ignore[arg-type]
            .where(column.person_id == bindparam("p_id"), column.version == bindparam("p_version"))
            .values(
                dialog=bindparam("p_dialog", type_=column.dialog.type),
                state=bindparam("p_state", type_=column.state.type),
                data=bindparam("p_data", type_=column.data.type),
                prompt_id=bindparam("p_prompt", type_=column.prompt_id.type),
                version=bindparam("p_next", type_=column.version.type),
                updated_at=bindparam("p_now", type_=column.updated_at.type),
            )
        )
        rows = [
            {
                "p_id": t.state.person_id,
                "p_version": t.state.version,
                "p_dialog": t.state.dialog,
                "p_state": t.state.state,
                "p_data": dict(t.state.data),
                "p_prompt": t.state.prompt_id,
                "p_next": t.state.version + 1,
                "p_now": t.now,
            }
            for t in turns
        ]
        result = await turns[0].session.execute(statement, rows)
        # The states were loaded row-locked (PostgreSQL) or under the write lock (SQLite), so a mismatch
        # means a bug, not a race. One row always reports its count; many only where the driver can.
        if (len(rows) == 1 or result.supports_sane_multi_rowcount()) and result.rowcount != len(rows):
            raise Conflict("dialog_state")

    async def _queue_replies(
        self, session: AsyncSession, items: list[tuple[int, Inbound, Sequence[Reply], str | None]]
    ) -> list[dict[str, Any]]:
        """Queue replies to the senders of (person id, inbound, replies, key base) items, in one statement.

        Replies answer a person's own message, so when a sender waits they are
        born claimed and come back for immediate delivery after the commit.
        """
        now = self.clock.now()
        claim = self.on_claimed is not None
        rows: list[dict[str, Any]] = []
        for person_id, inbound, replies, key in items:
            base = key or (f"reply:{inbound.key}" if inbound.key else f"reply:{secrets.token_hex(8)}")
            for index, reply in enumerate(replies):
                rows.append(
                    {
                        "key": f"{base}:{index}"[:255],
                        "person_id": person_id,
                        "channel": inbound.sender.platform,
                        "address": dict(inbound.address),
                        "payload": reply.to_dict(),
                        "kind": "reply",
                        "unsolicited": False,
                        "due_at": now,
                        "status": "sending" if claim else "pending",
                        "attempts": 1 if claim else 0,
                        "claimed_until": now + CLAIM_LEASE if claim else None,
                        "created_at": now,
                    }
                )
        queued = {
            row.key: row.id for row in await queries.insert_ignore_many(session, OutboxMessage, rows, "id", "key")
        }
        if not claim:
            if queued:
                self.on_queued()
            return []
        return [
            {
                "id": queued[row["key"]],
                "key": row["key"],
                "person_id": row["person_id"],
                "channel": row["channel"],
                "address": row["address"],
                "payload": row["payload"],
            }
            for row in rows
            if row["key"] in queued
        ]

    async def _open(self, session: AsyncSession, person_id: int, inbound: Inbound | None, now: datetime) -> Turn:
        """Load the person and their state, row-locked where the backend can."""
        person = await session.get(Person, person_id)
        if person is None:
            raise UnknownPerson("removed")
        state = (await _load_states(session, [person_id], now))[person_id]
        role = Role(manager=(await self._are_managers(session, [person_id]))[person_id], admin=person.is_admin)
        return Turn(self, session, person, role, now, state, inbound)

    async def _are_managers(self, session: AsyncSession, person_ids: list[int]) -> dict[int, bool]:
        """Whether each person manages someone: from a one-minute cache, the rest in one query."""
        clock = time.monotonic()
        known = {
            p: cached[0] for p in person_ids if (cached := self._managers.get(p)) is not None and cached[1] > clock
        }
        missing = [p for p in person_ids if p not in known]
        if missing:
            managing = await queries.managers_among(session, missing)
            for person_id in missing:
                known[person_id] = person_id in managing
                self._managers[person_id] = (known[person_id], clock + 60)
            if len(self._managers) > 50_000:
                self._managers.clear()
        return known

    async def _queue_extra(self, turn: Turn) -> None:
        for target, reply, key in turn.extra:
            target_id = target if isinstance(target, int) else target.id
            assert target_id is not None
            channel, address = await queries.preferred_address(turn.session, target_id)
            await queries.enqueue(
                turn.session,
                key=key,
                person_id=target_id,
                channel=channel,
                address=address,
                payload=reply.to_dict(),
                due_at=turn.now,
                now=turn.now,
                kind="notice",
            )
        for channel, address, reply, key in turn.posts:
            await queries.enqueue(
                turn.session,
                key=key,
                person_id=None,
                channel=channel,
                address=address,
                payload=reply.to_dict(),
                due_at=turn.now,
                now=turn.now,
                kind="post",
            )
        if turn.extra or turn.posts:
            self.on_queued()

    # -- routing ---------------------------------------------------------------------------

    async def _route(self, turn: Turn) -> None:
        inbound = turn.inbound
        assert inbound is not None
        if inbound.action:
            await self._route_action(turn, inbound.action, inbound.value or "")
            return
        text = clean_text(inbound.text or "")
        if not text:
            turn.say("I can only read text for now. Type *help* to see what I can do.")
            return
        if len(text) > MAX_TEXT:
            turn.say(
                f"That message is {len(text):,} characters; I can keep at most {MAX_TEXT:,} in one go. "
                "Could you split it or shorten it? Nothing was recorded yet."
            )
            return
        word, _, rest = text.partition(" ")
        word = word.casefold()
        if turn.state.dialog and word in CANCEL_WORDS and not rest:
            await self._cancel(turn)
            return
        if word == "help" and not rest:
            turn.say(self.help_reply(turn))
            if turn.state.dialog:
                await self._reprompt(turn)
            return
        if turn.state.dialog:
            await self._dispatch_text(turn, text)
            return
        await self._command(turn, word, rest.strip())

    async def _route_action(self, turn: Turn, action: str, value: str) -> None:
        if action == COMMAND_ACTION:  # a button that stands for a typed command, e.g. from help
            word, _, args = value.partition(" ")
            await self._command(turn, word.casefold(), args.strip())
            return
        kind, _, rest = action.partition(":")
        dialog, prompt_id = kind, rest
        state = self._current_state(turn)
        if turn.state.dialog != dialog or turn.state.prompt_id != prompt_id or state is None:
            turn.say(
                "That button belongs to an earlier message that has already been answered or has expired, so I left things as they were."
            )
            return
        if state.on_choice is None:
            turn.say("That question needs a typed answer.")
            return
        await self._apply(turn, await self._call(turn, state.on_choice, value))

    async def _dispatch_text(self, turn: Turn, text: str) -> None:
        state = self._current_state(turn)
        if state is None:  # a dialog renamed or removed by an upgrade: start afresh, don't trap the person
            self._clear(turn)
            await self._command(turn, text.partition(" ")[0].casefold(), text.partition(" ")[2])
            return
        if len(text) > state.max_length:
            turn.say(
                f"That answer is {len(text):,} characters; this question takes up to {state.max_length:,}. "
                "Could you shorten it? Nothing was recorded yet."
            )
            return
        if state.on_text is not None:
            await self._apply(turn, await self._call(turn, state.on_text, text))
            return
        prompt = await self._render(turn, state)
        value = match_choice(text, prompt.choices, prompt.rating)
        if value is None or state.on_choice is None:
            turn.say("Please pick one of the options above, or type *cancel* to stop here.")
            return
        await self._apply(turn, await self._call(turn, state.on_choice, value))

    async def _command(self, turn: Turn, word: str, args: str) -> None:
        if word == "help":
            turn.say(self.help_reply(turn))
            return
        dialog = self.commands.get(word)
        if dialog is None:
            turn.say(self.unknown_reply(turn, word))
            return
        if not dialog.available_to(turn.role):
            who = "managers" if dialog.audience == "manager" else "admins"
            turn.say(f"*{word}* is for {who}. Type *help* to see what you can do.")
            return
        self._clear(turn)
        turn.state.dialog = dialog.name
        try:
            nxt = await dialog.begin(turn, args)
        except UserFacingError as exc:
            self._clear(turn)
            turn.say(exc.message)
            return
        if nxt is None or nxt == END:
            self._clear(turn)
            return
        await self._enter(turn, nxt)

    async def _call(self, turn: Turn, handler: TextHandler, value: str) -> Transition:
        try:
            return await handler(turn, value)
        except UserFacingError as exc:
            turn.say(exc.message)
            return None

    async def _apply(self, turn: Turn, transition: Transition) -> None:
        if transition is None:
            return
        if transition == END:
            self._clear(turn)
            return
        await self._enter(turn, transition)

    async def _enter(self, turn: Turn, state_name: str) -> None:
        dialog = self.dialogs[turn.state.dialog or ""]
        if state_name not in dialog.states:
            raise KeyError(f"{dialog.name} has no state {state_name}")
        turn.state.state = state_name
        turn.state.prompt_id = secrets.token_hex(4)
        turn.say(await self._render(turn, dialog.states[state_name]))

    async def _reprompt(self, turn: Turn) -> None:
        state = self._current_state(turn)
        if state is not None:
            turn.say(await self._render(turn, state))

    async def _render(self, turn: Turn, state: State) -> Reply:
        reply = state.prompt(turn)
        if inspect.isawaitable(reply):
            reply = await reply
        if reply.choices or reply.rating or reply.form:
            reply = dataclasses.replace(reply, action=reply.action or f"{turn.state.dialog}:{turn.state.prompt_id}")
        return reply

    async def _cancel(self, turn: Turn) -> None:
        dialog = self.dialogs.get(turn.state.dialog or "")
        self._clear(turn)
        what = dialog.summary.rstrip(".").lower() if dialog and dialog.summary else "that"
        turn.say(f"Stopped ({what}). What you answered before stopping is kept. Type *help* for more.")

    def _current_state(self, turn: Turn) -> State | None:
        dialog = self.dialogs.get(turn.state.dialog or "")
        return dialog.states.get(turn.state.state or "") if dialog else None

    @staticmethod
    def _clear(turn: Turn) -> None:
        turn.state.dialog = None
        turn.state.state = None
        turn.state.prompt_id = None
        turn.state.data = {}

    # -- proactive -------------------------------------------------------------------------

    async def start(
        self,
        person_id: int,
        dialog_name: str,
        *,
        key: str,
        args: str = "",
        due_at: datetime | None = None,
        kind: str = "prompt",
        unsolicited: bool = True,
        busy_after: timedelta = timedelta(hours=1),
    ) -> bool:
        """Start a dialog on Baton's own initiative (a check-in, a nudge) under an idempotency key.

        Exactly once per `key`: a second call with the same key — another tick,
        another replica, a restart — changes nothing and returns False. If the
        person is mid-way through another dialog touched within `busy_after`,
        Baton does not interrupt: it sends the opening as an invitation with a
        button instead.
        """
        async with self._locks(person_id):
            return await self.db.run(
                lambda s: self._start(s, person_id, dialog_name, key, args, due_at, kind, unsolicited, busy_after)
            )

    async def _start(
        self,
        session: AsyncSession,
        person_id: int,
        dialog_name: str,
        key: str,
        args: str,
        due_at: datetime | None,
        kind: str,
        unsolicited: bool,
        busy_after: timedelta,
    ) -> bool:
        now = self.clock.now()
        if not await queries.mark_event_processed(session, f"start:{key}", now):
            return False
        turn = await self._open(session, person_id, None, now)
        dialog = self.dialogs[dialog_name]
        busy = (
            turn.state.dialog is not None
            and turn.state.dialog != dialog_name
            and now - turn.state.updated_at < busy_after
        )
        if busy:
            turn.say(
                Reply(
                    f"When you're ready: {dialog.summary.rstrip('.').lower()}.",
                    choices=(Choice("Start", dialog.commands[0], "primary"),),
                    action=COMMAND_ACTION,
                )
            )
        else:
            await self._command(turn, dialog.commands[0], args)
            await self._save_all([turn])
        channel, address = await queries.preferred_address(session, person_id)
        when = due_at or now
        for index, reply in enumerate(turn.replies):
            await queries.enqueue(
                session,
                key=f"{key}:{index}",
                person_id=person_id,
                channel=channel,
                address=address,
                payload=reply.to_dict(),
                due_at=when,
                now=now,
                kind=kind,
                unsolicited=unsolicited,
            )
        self.on_queued()
        return True

    # -- help --------------------------------------------------------------------------------

    def help_reply(self, turn: Turn) -> Reply:
        """What this person can ask Baton, with buttons for the main commands."""
        available = [d for d in self.dialogs.values() if d.commands and d.available_to(turn.role)]
        lines = [f"• *{d.commands[0]}* — {d.summary}" for d in available]
        lines.append("• *cancel* — stop whatever we're in the middle of")
        who = "a manager" if turn.role.manager else "an admin" if turn.role.admin else "a team member"
        return Reply(
            text=f"Here's what I can do for you as {who}:\n" + "\n".join(lines),
            choices=tuple(Choice(d.commands[0].capitalize(), d.commands[0]) for d in available[:5]),
            action=COMMAND_ACTION,
        )

    def unknown_reply(self, turn: Turn, word: str) -> Reply:
        words = [w for w, d in self.commands.items() if d.available_to(turn.role)] + ["help"]
        close = difflib.get_close_matches(word, words, n=1, cutoff=0.6)
        hint = f"Did you mean *{close[0]}*? " if close else ""
        return Reply(f"Sorry, I didn't understand that. {hint}Type *help* to see what I can do.")


def match_choice(text: str, choices: Sequence[Choice], rating: Any) -> str | None:
    """The choice value a typed answer stands for: a label, a value, or a 1-based number."""
    folded = text.casefold().strip(" .!")
    for choice in choices:
        if folded in (choice.label.casefold(), choice.value.casefold()):
            return choice.value
    if folded.isdigit():
        number = int(folded)
        if rating is not None and rating.min <= number <= rating.max:
            return str(number)
        if not rating and 1 <= number <= len(choices):
            return choices[number - 1].value
    return None


async def _forget_kept(session: AsyncSession, inbounds: list[Inbound]) -> None:
    """Delete the inbox rows of deliveries the adapter kept (storage/inbox.py), in the turn's transaction."""
    keys = [inbound.key for inbound in inbounds if inbound.durable and inbound.key]
    if keys:
        await session.execute(delete(InboxEvent).where(InboxEvent.key.in_(keys)))


class _DialogFailed(Exception):
    """A dialog raised inside a batch; never retried as a batch (see `_commit_waiting`)."""


@dataclass(slots=True)
class _Waiting:
    """A turn waiting for the next transaction, and where its outcome goes."""

    person_id: int
    inbound: Inbound
    done: asyncio.Future[list[Reply]]


def _settle(done: asyncio.Future[list[Reply]], outcome: list[Reply] | BaseException) -> None:
    if done.done():
        return
    if isinstance(outcome, BaseException):
        done.set_exception(outcome)
    else:
        done.set_result(outcome)


async def _load_states(session: AsyncSession, person_ids: list[int], now: datetime) -> dict[int, DialogState]:
    """Many people's dialog states, locked in id order (so batches never deadlock), created empty where missing."""
    if not person_ids:
        return {}
    statement = (
        select(DialogState)
        .where(DialogState.person_id.in_(person_ids))
        .order_by(DialogState.person_id)
        .with_for_update()
    )
    states = {state.person_id: state for state in await session.scalars(statement)}
    missing = [person_id for person_id in person_ids if person_id not in states]
    if missing:
        await queries.insert_ignore_many(
            session, DialogState, [{"person_id": p, "data": {}, "version": 0, "updated_at": now} for p in missing]
        )
        states.update(
            (state.person_id, state)
            for state in await session.scalars(statement.where(DialogState.person_id.in_(missing)))
        )
    for state in states.values():
        # Work on detached copies: the versioned UPDATE is the only write.
        session.expunge(state)
        state.data = dict(state.data or {})
    return states
