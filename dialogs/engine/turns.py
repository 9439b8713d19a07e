"""Running turns: one transaction per turn, shared by the turns that arrive together.

Every turn runs as: take the person's lock → open a transaction → record the
delivery key (drops retries) → load the state (row-locked on PostgreSQL) →
route it to the dialog's handler (`routing.py`) → save the state with
version + 1 → queue the replies in the outbox → commit. So a restart or
another replica continues where the last committed turn left off, and a
scheduled prompt never races a reply.

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
import logging
import secrets
import time
import traceback
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from dialogs.engine.clock import Clock, SystemClock
from dialogs.engine.contract import Dialog, Role, Turn
from dialogs.engine.errors import UnknownPerson
from dialogs.engine.locks import KeyedLocks
from dialogs.engine.messages import Inbound, Reply
from dialogs.engine.priority import AckFirst
from dialogs.engine.routing import Router
from dialogs.engine.sealing import Sealer, seal_payload
from storage import queries
from storage.coalesce import Coalescer
from storage.db import Conflict, Database, DatabaseUnavailable
from storage.models import DialogState, InboxEvent, OutboxMessage, Person

log = logging.getLogger(__name__)

CLAIM_LEASE = timedelta(minutes=2)  # a reply handed straight to the sender is retaken by any sender after this
MAX_BATCH = 64  # turns sharing one transaction at most (group commit)
SMALL_BATCH = 8  # at most, on SQLite, while a delivery waits to be kept for its acknowledgement


class Engine:
    """Runs turns for inbound events, in shared transactions. One per process."""

    def __init__(
        self, db: Database, dialogs: Iterable[Dialog], *, clock: Clock | None = None, sealer: Sealer | None = None
    ) -> None:
        self.db = db
        # Delivery keys name their sender, so only their keyed hash is stored; dialogs seal what must stay unread.
        self.sealer = sealer or Sealer.ephemeral()
        self.clock = clock or SystemClock()
        self.router = Router(dialogs)
        self.dialogs = self.router.dialogs  # by name
        self.commands = self.router.commands  # by command word
        self._locks = KeyedLocks()
        self.on_queued: Callable[[], None] = lambda: None  # set by the outbox sender to wake up
        # Set by the outbox sender: replies to a person's own message are queued already claimed and
        # handed over right after the turn commits, saving the sender a claim. None: queue as pending.
        self.on_claimed: Callable[[list[dict[str, Any]]], None] | None = None
        # Set by the wiring for metrics: the seconds each turn of a committed transaction waited and ran.
        self.on_committed: Callable[[list[float]], None] = lambda seconds: None
        # Short-lived, per-process caches of facts that rarely change; each turn still re-reads the person.
        self._senders: dict[tuple[str, str], tuple[int, float]] = {}
        self._managers: dict[int, tuple[bool, float]] = {}
        self._sender_lookup: Coalescer[tuple[str, str], int] = Coalescer(self._find_senders)
        # Group commit: turns waiting for the next transaction, and the task that runs them.
        self._waiting: list[_Waiting] = []
        self._committer: asyncio.Task[None] | None = None
        self._checkpoint = False  # set when a turn asked for the WAL to be checkpointed after its commit
        # When what a turn tells someone else may reach them (their quiet hours and leave), with a note for
        # the sender when it waits. Set by the wiring (dialogs.common.manners.plan_notices); default: at once.
        self.plan_notices: PlanNotices = _at_once
        self.acks = AckFirst()  # shared by the wiring (bot/core.py): Slack's acknowledgements go first

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
                waiting = _Waiting(person_id, inbound, asyncio.get_running_loop().create_future(), time.monotonic())
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
                await self.acks.after_acks()  # turns that arrive meanwhile join this batch
                batch, rest, people = [], [], set()
                # On SQLite a batch holds the one write lock, which keeping a delivery needs before its
                # acknowledgement: while one waits, batches stay small so the lock comes round sooner.
                most = SMALL_BATCH if self.db.is_sqlite and self.acks.in_flight else MAX_BATCH
                for waiting in self._waiting:  # one turn per person and batch, in arrival order
                    if len(batch) < most and waiting.person_id not in people:
                        batch.append(waiting)
                        people.add(waiting.person_id)
                    else:
                        rest.append(waiting)
                self._waiting = rest
                try:
                    await self._commit(batch)
                except Exception as exc:  # noqa: BLE001 - a bug here, not in a dialog: the callers hear of it
                    self.report(exc, where="engine batch")
                    for waiting in batch:
                        _settle(waiting.done, exc)
                else:
                    now = time.monotonic()
                    self.on_committed([now - waiting.arrived for waiting in batch])
                if self._checkpoint:  # a turn removed something that must not linger in the WAL
                    self._checkpoint = False
                    await self.db.checkpoint()
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
        except Exception:  # noqa: BLE001 - some turn failed, and the whole batch rolled back: run each on its own
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
        except Exception as exc:  # noqa: BLE001 - the single error hook for dialog code
            ref = self.report(exc, person_id=person_id)
            apology = Reply(
                f"Sorry, something went wrong on my side and I couldn't record that (ref {ref}). "
                "Please send it again in a moment."
            )

            async def apologise(session: AsyncSession) -> list[dict[str, Any]]:
                await _forget_kept(
                    session, [inbound], self.sealer
                )  # the person is told to send it again: nothing to replay
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

    async def handled(self, key: str) -> bool:
        """Whether a delivery with this key already made a turn (a repeated button press, say)."""
        tag = self.sealer.tag(key)
        return await self.db.run(lambda session: queries.event_processed(session, tag))

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
            email = inbound.sender.email

            async def resolve(session: AsyncSession) -> int | None:
                person = await queries.resolve_sender(session, key[0], key[1], email)
                return person.id if person else None

            person_id = await self.db.run(resolve)
        if person_id is None:
            raise UnknownPerson(inbound.sender.platform)
        if len(self._senders) > 10_000:
            self._senders.clear()
        self._senders[key] = (person_id, time.monotonic() + 300)
        return person_id

    async def _find_senders(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
        # Through run(): a dropped connection is retried, and an outage is DatabaseUnavailable (a 503 the
        # sender retries), never a raw driver error.
        return await self.db.run(lambda session: queries.sender_ids(session, keys))

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
        await _forget_kept(session, [inbound], self.sealer)
        if inbound.key and not await queries.mark_event_processed(session, self.sealer.tag(inbound.key), now):
            return [], []  # a retry or a double submit: handled already
        turn = await self._open(session, person_id, inbound, now)
        await self.router.route(turn)
        self._checkpoint |= turn.checkpoint
        await self._save_all([turn])
        await self._queue_extra(turn)  # first: it may add a note on when a colleague gets a message
        claimed = await self._queue_replies(
            session, [(person_id, inbound, turn.replies, None)], private={person_id} if turn.private else set()
        )
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
                keys[index] = self.sealer.tag(waiting.inbound.key)
        await _forget_kept(session, [waiting.inbound for waiting in batch], self.sealer)
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
            state = states[waiting.person_id]
            turns.append((index, Turn(session, person, role, now, state, waiting.inbound, sealer=self.sealer)))
        by_dialog: dict[str, list[Turn]] = {}
        for _, turn in turns:
            if turn.state.dialog in self.dialogs:
                by_dialog.setdefault(turn.state.dialog, []).append(turn)
        try:
            for name, group in by_dialog.items():
                await self.dialogs[name].prefetch(session, group)
            for _, turn in turns:
                await self.router.route(turn)
                self._checkpoint |= turn.checkpoint
        except Exception as exc:
            # One dialog failed — even with an error that looks transient (a timeout, a deadlock in its own
            # query): retrying the batch could fail everyone with it, so the batch rolls back and its turns
            # run alone, each with its own retries. Only the batch's shared statements retry the batch.
            raise _DialogFailed from exc
        await self._save_all([turn for _, turn in turns])
        for index, turn in turns:
            await self._queue_extra(turn)  # first: it may add a note on when a colleague gets a message
            outcomes[index] = turn.replies
        claimed = await self._queue_replies(
            session,
            [(turn.person.id, batch[index].inbound, turn.replies, None) for index, turn in turns],
            private={turn.person.id for _, turn in turns if turn.private},
        )
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
                parked=bindparam("p_parked", type_=column.parked.type),
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
                "p_parked": list(t.state.parked),
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
        self,
        session: AsyncSession,
        items: list[tuple[int, Inbound, Sequence[Reply], str | None]],
        *,
        private: set[int] | None = None,
    ) -> list[dict[str, Any]]:
        """Queue replies to the senders of (person id, inbound, replies, key base) items, in one statement.

        Replies answer a person's own message, so when a sender waits they are
        born claimed and come back for immediate delivery after the commit.
        Replies to the people in `private` are stored sealed; the sender gets them opened.
        """
        now = self.clock.now()
        claim = self.on_claimed is not None
        rows: list[dict[str, Any]] = []
        plain: dict[str, dict[str, Any]] = {}  # key → the payload of a reply stored sealed
        for person_id, inbound, replies, key in items:
            base = key or (f"reply:{inbound.key}" if inbound.key else f"reply:{secrets.token_hex(8)}")
            for index, reply in enumerate(replies):
                row_key = f"{base}:{index}"[:255]
                payload = reply.to_dict()
                if private and person_id in private:
                    # a private turn's keys are random too: the delivery key names its sender
                    row_key = f"reply:{secrets.token_hex(16)}:{index}"
                    plain[row_key] = payload
                    payload = seal_payload(self.sealer, payload, row_key)
                rows.append(
                    {
                        "key": row_key,
                        "person_id": person_id,
                        "channel": inbound.sender.platform,
                        "address": dict(inbound.address),
                        "payload": payload,
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
                "payload": plain.get(row["key"], row["payload"]),
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
        return Turn(session, person, role, now, state, inbound, sealer=self.sealer)

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
        """Queue what the turn told other people — at a time their manners allow — and its channel posts."""
        targets = [target if isinstance(target, int) else target.id for target, _, _ in turn.extra]
        timing = await self.plan_notices(turn.session, {t for t in targets if t is not None}, turn.now)
        notes: set[str] = set()
        for target_id, (_, reply, key) in zip(targets, turn.extra, strict=True):
            assert target_id is not None
            due_at, note = timing.get(target_id, (turn.now, None))
            channel, address = await queries.preferred_address(turn.session, target_id)
            queued = await queries.enqueue(
                turn.session,
                key=key,
                person_id=target_id,
                channel=channel,
                address=address,
                payload=reply.to_dict(),
                due_at=due_at,
                now=turn.now,
                kind="notice",
                unsolicited=True,  # not a reply to its recipient: quiet hours and leave apply, and it counts
            )
            if queued is not None and note and target_id != turn.person.id:
                notes.add(note)
        for note in sorted(notes):
            _add_note(turn, note)
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


PlanNotices = Callable[[AsyncSession, set[int], datetime], Awaitable[dict[int, tuple[datetime, str | None]]]]


async def _at_once(
    session: AsyncSession, person_ids: set[int], now: datetime
) -> dict[int, tuple[datetime, str | None]]:
    return {}


async def _forget_kept(session: AsyncSession, inbounds: list[Inbound], sealer: Sealer) -> None:
    """Delete the inbox rows of deliveries the adapter kept (engine/inbox.py), in the turn's transaction."""
    kept = [inbound.key for inbound in inbounds if inbound.durable and inbound.key]
    keys = [sealer.tag(key) for key in kept] + kept  # rows kept before keys were hashed carry the key itself
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
    arrived: float  # time.monotonic() when the turn was handed over


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
            session,
            DialogState,
            [{"person_id": p, "data": {}, "parked": [], "version": 0, "updated_at": now} for p in missing],
        )
        states.update(
            (state.person_id, state)
            for state in await session.scalars(statement.where(DialogState.person_id.in_(missing)))
        )
    for state in states.values():
        # Work on detached copies: the versioned UPDATE is the only write.
        session.expunge(state)
        state.data = dict(state.data or {})
        state.parked = list(state.parked or [])
    return states


def _add_note(turn: Turn, note: str) -> None:
    """Append "Lucía gets it at 08:00 their time …" to the reply that names her (the confirmation), else say it."""
    name = note.split(" ", 1)[0]
    for index in range(len(turn.replies) - 1, -1, -1):
        reply = turn.replies[index]
        if name in reply.text and not reply.choices and reply.form is None:
            turn.replies[index] = replace(reply, text=f"{reply.text} {note}")
            return
    turn.say(note)
