"""Group commit in the dialog engine, and the lookup coalescer, on both databases.

Turns from different people that arrive together share one transaction
(`Engine._batch`). These tests drive many people at once with `asyncio.gather`
and check what each person got and what the database kept, and they record
which people every turn transaction held, so that they prove the batch path was
taken (fewer transactions than turns) without measuring time.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from sqlalchemy import delete, select
from sqlalchemy.exc import OperationalError

from dialogs import all_dialogs
from dialogs.engine import Dialog, Engine, State
from dialogs.engine.errors import UnknownPerson
from dialogs.engine.messages import Inbound, Reply, Sender
from dialogs.engine.turns import MAX_BATCH, SMALL_BATCH
from storage import queries
from storage.coalesce import Coalescer
from storage.db import DatabaseUnavailable
from storage.models import CheckinAnswer, CheckinRun, DialogState, OutboxMessage, Person, ProcessedEvent
from tests.harness import Rig

APOLOGY = re.compile(r"^Sorry, something went wrong on my side .*\(ref ([0-9A-F]{6})\)")


class Echo(Dialog):
    """A test dialog: `echo` asks for a line; each line is kept in the state and said back with the person's name.

    For the people in `broken_for`, hearing a line writes a row and then raises
    `broken_with` — a bug in the middle of a turn that has already written.
    """

    name = "echo"
    commands = ("echo",)
    summary = "Test only."

    def __init__(self) -> None:
        self.first = "listen"
        self.states = {"listen": State(lambda turn: Reply(f"Go ahead, {turn.person.name}."), on_text=self.heard)}
        self.broken_for: set[int] = set()
        self.broken_with: type[Exception] = RuntimeError

    async def heard(self, turn, text: str):
        turn.data["heard"] = [*turn.data.get("heard", []), text]
        turn.say(f"{turn.person.name} said: {text}")
        if turn.person.id in self.broken_for:
            await queries.insert_ignore(
                turn.session, ProcessedEvent, key=f"side-effect:{turn.person.id}", created_at=turn.now
            )
            raise self.broken_with("a bug in the echo dialog")
        return None  # stay: every further line is heard too


@dataclass
class Transaction:
    """One turn transaction the engine attempted: a batch or a lone turn, whom it held, and whether it raised."""

    kind: str
    people: list[int]
    events: list[str | None]
    raised: bool = False


@dataclass
class Recorder:
    """Wraps one engine's `_batch` and `_turn` (on the instance) to log every turn transaction."""

    engine: Engine
    log: list[Transaction] = field(default_factory=list)

    def __post_init__(self) -> None:
        batch, turn = self.engine._batch, self.engine._turn

        async def batched(session, waiting):
            entry = Transaction("batch", [w.person_id for w in waiting], [w.inbound.event_id for w in waiting])
            return await self._run(entry, batch(session, waiting))

        async def alone(session, person_id, inbound):
            entry = Transaction("turn", [person_id], [inbound.event_id])
            return await self._run(entry, turn(session, person_id, inbound))

        self.engine._batch, self.engine._turn = batched, alone  # type: ignore[method-assign]

    async def _run(self, entry: Transaction, work):
        self.log.append(entry)
        try:
            return await work
        except BaseException:
            entry.raised = True
            raise

    def batches(self) -> list[Transaction]:
        return [t for t in self.log if t.kind == "batch"]


def use_engine(rig: Rig, *extra: Dialog) -> tuple[Engine, Recorder]:
    """A fresh engine with every dialog plus `extra`, wired to the rig's sender, with its transactions recorded."""
    engine = Engine(rig.db, [*all_dialogs(), *extra], clock=rig.clock, sealer=rig.sealer)
    engine.on_queued, engine.on_claimed = rig.sender.wake, rig.sender.deliver_soon
    rig.engine = engine
    return engine, Recorder(engine)


async def add_people(rig: Rig, count: int) -> list[Person]:
    """`count` new members of the demo team, reporting to Maya."""
    team_id, manager_id = rig.people["tom@demo.baton"].team_id, rig.people["maya@demo.baton"].id

    async def work(session) -> list[str]:
        session.add_all(
            Person(
                email=f"load{i:03d}@load.test",
                name=f"Load Person {i:03d}",
                timezone="Europe/Berlin",
                team_id=team_id,
                manager_id=manager_id,
                created_at=rig.clock.now(),
            )
            for i in range(count)
        )
        return [f"load{i:03d}@load.test" for i in range(count)]

    emails = await rig.db.run(work)
    await rig.reload_people()
    return [rig.people[email] for email in emails]


def message(person: Person | int, text: str, *, event_id: str | None = None) -> Inbound:
    """What `person` (or a person id) typed in the local chat, with a fresh delivery id unless one is given."""
    person_id = person if isinstance(person, int) else person.id
    return Inbound(
        sender=Sender(platform="local", user_id=str(person_id)),
        address={"person": person_id},
        text=text,
        event_id=event_id or uuid.uuid4().hex,
    )


def _all(model):
    """Work for `Database.run` that reads every row of `model`."""

    async def work(session):
        return list(await session.scalars(select(model)))

    return work


async def states(rig: Rig) -> dict[int, DialogState]:
    return {state.person_id: state for state in await rig.db.run(_all(DialogState))}


async def outbox(rig: Rig) -> list[OutboxMessage]:
    return await rig.db.run(_all(OutboxMessage))


async def processed(rig: Rig) -> set[str]:
    return {row.key for row in await rig.db.run(_all(ProcessedEvent))}


async def delivered(rig: Rig) -> None:
    """Let every reply handed to the sender (or still pending) reach the recording channel."""
    await rig.sender.settle()
    while await rig.sender.drain_once():
        pass


def texts(replies: list[Reply]) -> list[str]:
    return [r.text for r in replies]


# -- 1. many people at once ------------------------------------------------------------------------


async def test_many_people_at_once_each_get_their_own_reply_once_in_few_transactions(rig: Rig) -> None:
    """More people than fit one batch write at the same moment, twice.

    Each gets exactly their own reply (help fitted to their role, then a
    prompt with their name), each state is saved once per turn (version + 1),
    the outbox holds exactly one row per reply, addressed to its person, and
    the turns went through batches of at most MAX_BATCH people — fewer
    transactions than turns, no person twice in one.
    """
    engine, recorder = use_engine(rig, Echo())
    people = [*rig.people.values(), *await add_people(rig, MAX_BATCH + 6)]
    count = len(people)

    help_replies = await asyncio.gather(*(engine.handle(message(p, "help")) for p in people))
    after_help = await states(rig)
    echo_replies = await asyncio.gather(*(engine.handle(message(p, "echo")) for p in people))
    after_echo = await states(rig)
    await delivered(rig)

    role = {"maya@demo.baton": "as a manager", "sam@demo.baton": "as an admin"}
    for person, helped, echoed in zip(people, help_replies, echo_replies, strict=True):
        assert len(helped) == 1 and role.get(person.email, "as a team member") in helped[0].text
        assert texts(echoed) == [f"Go ahead, {person.name}."]
        assert texts(rig.delivery.to(person.id)) == [helped[0].text, f"Go ahead, {person.name}."]
        assert after_help[person.id].version == 1 and after_help[person.id].dialog is None
        assert after_echo[person.id].version == 2 and after_echo[person.id].dialog == "echo"

    rows = await outbox(rig)
    assert Counter((row.person_id, row.payload["text"]) for row in rows) == Counter(
        (person.id, reply.text)
        for person, *turns in zip(people, help_replies, echo_replies, strict=True)
        for [reply] in turns
    )

    assert all(not t.raised for t in recorder.log)
    assert len(recorder.log) < 2 * count, f"{len(recorder.log)} transactions for {2 * count} turns: nothing was batched"
    assert max(len(t.people) for t in recorder.batches()) > 1
    assert all(len(t.people) <= MAX_BATCH and len(set(t.people)) == len(t.people) for t in recorder.log)
    assert sorted(p for t in recorder.log for p in t.people) == sorted(2 * [p.id for p in people])


async def test_while_an_acknowledgement_waits_sqlite_batches_stay_small(rig: Rig) -> None:
    """On SQLite a batch holds the one write lock that keeping a delivery needs before its acknowledgement,
    so while one is in flight batches take at most SMALL_BATCH turns; PostgreSQL keeps its full batches."""
    engine, recorder = use_engine(rig, Echo())
    engine.acks.most = 0.001  # hold nothing back: only the batch size is looked at here
    people = [*rig.people.values(), *await add_people(rig, MAX_BATCH + 6)]

    with engine.acks.acknowledging():
        replies = await asyncio.gather(*(engine.handle(message(p, "help")) for p in people))
    assert all(len(r) == 1 for r in replies)
    largest = max(len(t.people) for t in recorder.log)
    if rig.db.is_sqlite:
        assert 1 < largest <= SMALL_BATCH
    else:
        assert largest > SMALL_BATCH

    recorder.log.clear()
    await asyncio.gather(*(engine.handle(message(p, "help")) for p in people))  # nobody waits for an ack now
    assert max(len(t.people) for t in recorder.log) > SMALL_BATCH


# -- 2. one failing turn in a batch ----------------------------------------------------------------


async def test_one_failing_turn_costs_the_others_nothing_and_keeps_nothing_of_its_own(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    """A handler bug for one person in a batch of many.

    The batch rolls back and every turn runs again alone: the others' lines are
    kept and said back exactly once (one outbox row, one delivery each); the
    failing person alone gets the apology with a reference that is in the log;
    nothing of their turn survives — state version and data unchanged, the row
    the handler wrote gone, the delivery key not recorded, so sending the same
    event again once the bug is gone is processed normally.
    """
    echo = Echo()
    engine, recorder = use_engine(rig, echo)
    people = await add_people(rig, 24)
    broken = people[7]
    await asyncio.gather(*(engine.handle(message(p, "echo")) for p in people))
    await delivered(rig)
    before = len(rig.delivery.sent)
    echo.broken_for = {broken.id}
    recorder.log.clear()

    events = {p.id: f"line-{p.id}" for p in people}
    with caplog.at_level(logging.ERROR):
        results = await asyncio.gather(
            *(engine.handle(message(p, f"hello from {p.name}", event_id=events[p.id])) for p in people)
        )
    await delivered(rig)

    failed_batches = [t for t in recorder.batches() if t.raised]
    assert failed_batches and broken.id in failed_batches[0].people and len(failed_batches[0].people) == len(people)
    saved = await states(rig)
    rows = await outbox(rig)
    for person, replies in zip(people, results, strict=True):
        if person is broken:
            continue
        assert texts(replies) == [f"{person.name} said: hello from {person.name}"]
        assert texts(rig.delivery.to(person.id))[-1] == f"{person.name} said: hello from {person.name}"
        assert sum(1 for m in rig.delivery.sent[before:] if m.person_id == person.id) == 1
        assert saved[person.id].version == 2 and saved[person.id].data["heard"] == [f"hello from {person.name}"]
        assert sum(1 for row in rows if row.key.startswith(f"reply:local:{person.id}:{events[person.id]}:")) == 1

    [apology] = results[people.index(broken)]
    match = APOLOGY.match(apology.text)
    assert match, apology.text
    assert match.group(1) in caplog.text and "RuntimeError" in caplog.text
    assert [m.reply.text for m in rig.delivery.sent[before:] if m.person_id == broken.id] == [apology.text]
    assert not any(APOLOGY.match(m.reply.text) for m in rig.delivery.sent[before:] if m.person_id != broken.id)
    assert saved[broken.id].version == 1 and "heard" not in saved[broken.id].data and saved[broken.id].state == "listen"
    keys = await processed(rig)
    assert f"side-effect:{broken.id}" not in keys
    assert rig.sealer.tag(f"local:{broken.id}:{events[broken.id]}") not in keys
    assert {rig.sealer.tag(f"local:{p.id}:{events[p.id]}") for p in people if p is not broken} <= keys
    assert not any(row.key.startswith(f"reply:local:{broken.id}:{events[broken.id]}:") for row in rows)

    echo.broken_for.clear()
    again = await engine.handle(message(broken, f"hello from {broken.name}", event_id=events[broken.id]))
    assert texts(again) == [f"{broken.name} said: hello from {broken.name}"]
    assert (await states(rig))[broken.id].version == 2


def _deadlock(text: str) -> Exception:
    return OperationalError("UPDATE something", {}, Exception(f"deadlock detected: {text}"))


@pytest.mark.parametrize("error", [TimeoutError, _deadlock], ids=["timeout", "database-deadlock"])
async def test_a_transient_looking_error_in_one_turn_costs_the_others_nothing(rig: Rig, error) -> None:
    """A handler that fails for one person with an error the database layer retries as transient (a
    timeout, or a deadlock in the dialog's own query).

    Run alone, such a turn fails only its own sender (DatabaseUnavailable after
    the retries, or an apology). In a batch it must not take everyone else's
    answer with it: the others' lines are recorded and said back.
    """
    echo = Echo()
    engine, _ = use_engine(rig, echo)
    people = await add_people(rig, 8)
    await asyncio.gather(*(engine.handle(message(p, "echo")) for p in people))
    echo.broken_for, echo.broken_with = {people[0].id}, error

    results = await asyncio.gather(
        *(engine.handle(message(p, f"line of {p.name}")) for p in people), return_exceptions=True
    )

    assert isinstance(results[0], DatabaseUnavailable) or APOLOGY.match(texts(results[0])[0])
    saved = await states(rig)
    for person, outcome in zip(people[1:], results[1:], strict=True):
        assert not isinstance(outcome, BaseException), (
            f"{person.name} lost their turn to someone else's error: {outcome!r}"
        )
        assert texts(outcome) == [f"{person.name} said: line of {person.name}"]
        assert saved[person.id].data["heard"] == [f"line of {person.name}"]


async def test_a_failure_after_the_commit_still_answers_every_caller(rig: Rig) -> None:
    """If handing the committed replies to the sender blows up, every `handle` still returns (nobody waits
    forever holding their lock), the replies stay queued for the sender's next pass, and the next turn runs."""
    engine, _ = use_engine(rig)
    people = await add_people(rig, 5)

    def broken(rows) -> None:
        raise RuntimeError("a bug in the hand-over")

    engine.on_claimed = broken
    results = await asyncio.wait_for(asyncio.gather(*(engine.handle(message(p, "help")) for p in people)), 10)
    assert all(len(replies) == 1 for replies in results)
    assert {row.person_id for row in await outbox(rig)} >= {p.id for p in people}
    engine.on_claimed = rig.sender.deliver_soon
    assert len(await asyncio.wait_for(engine.handle(message(people[0], "help")), 10)) == 1


# -- 3. retried deliveries under load --------------------------------------------------------------


async def test_retried_deliveries_inside_batches_are_recorded_once(rig: Rig) -> None:
    """Platform retries amid many people's turns.

    One person's event comes again after it was handled; another's arrives
    twice at the same moment; everyone else sends two new lines at once, so
    both repeats meet other people in a batch. Each repeat returns [] and
    changes nothing: one line heard, one version step, one outbox row, one
    delivery — and everyone else's lines are all kept, in order.
    """
    engine, recorder = use_engine(rig, Echo())
    people = await add_people(rig, 12)
    retried, doubled, others = people[0], people[1], people[2:]
    await asyncio.gather(*(engine.handle(message(p, "echo")) for p in people))
    first = await engine.handle(message(retried, "only once", event_id="evt-retried"))
    assert texts(first) == [f"{retried.name} said: only once"]
    recorder.log.clear()

    calls = [
        engine.handle(message(retried, "only once", event_id="evt-retried")),
        engine.handle(message(doubled, "twice at once", event_id="evt-doubled")),
        engine.handle(message(doubled, "twice at once", event_id="evt-doubled")),
    ]
    calls += [engine.handle(message(p, f"{p.name} one")) for p in others]
    calls += [engine.handle(message(p, f"{p.name} two")) for p in others]
    results = await asyncio.gather(*calls)
    await delivered(rig)

    assert results[0] == []
    assert sorted(len(r) for r in results[1:3]) == [0, 1]
    assert texts([r for pair in results[1:3] for r in pair]) == [f"{doubled.name} said: twice at once"]
    for person, one, two in zip(others, results[3 : 3 + len(others)], results[3 + len(others) :], strict=True):
        assert texts(one) == [f"{person.name} said: {person.name} one"]
        assert texts(two) == [f"{person.name} said: {person.name} two"]

    saved = await states(rig)
    assert saved[retried.id].version == 2 and saved[retried.id].data["heard"] == ["only once"]
    assert saved[doubled.id].version == 2 and saved[doubled.id].data["heard"] == ["twice at once"]
    assert all(
        saved[p.id].version == 3 and saved[p.id].data["heard"] == [f"{p.name} one", f"{p.name} two"] for p in others
    )
    rows = await outbox(rig)
    for person, key in ((retried, "evt-retried"), (doubled, "evt-doubled")):
        assert sum(1 for row in rows if row.key.startswith(f"reply:local:{person.id}:{key}:")) == 1
    assert texts(rig.delivery.to(retried.id)).count(f"{retried.name} said: only once") == 1
    assert texts(rig.delivery.to(doubled.id)).count(f"{doubled.name} said: twice at once") == 1

    repeats = [t for t in recorder.batches() if "evt-retried" in t.events or "evt-doubled" in t.events]
    assert sum(t.events.count("evt-retried") for t in repeats) == 1
    assert sum(t.events.count("evt-doubled") for t in repeats) == 2, "the second copy did not meet others in a batch"
    assert all(len(t.people) > 1 and not t.raised for t in repeats)


async def test_the_same_event_id_from_different_senders_is_three_deliveries_each_answered_once(rig: Rig) -> None:
    """Three people whose deliveries carry the same event id (ids unique only per conversation, as
    Teams message ids are), in one batch, then each sent again.

    Delivery keys name the sender, so each person's message is its own
    delivery: all three are answered, each reply is really in the outbox for
    that person, and each repeat is dropped as a retry.
    """
    engine, recorder = use_engine(rig, Echo())
    people = await add_people(rig, 3)
    results = await asyncio.gather(*(engine.handle(message(p, "echo", event_id="shared-id")) for p in people))

    assert recorder.batches() and len(recorder.batches()[0].people) == 3
    rows = [(row.person_id, row.payload["text"]) for row in await outbox(rig)]
    returned = [(p.id, reply.text) for p, replies in zip(people, results, strict=True) for reply in replies]
    assert sorted(returned) == sorted(rows), "handle returned replies that were never queued"
    assert all(len(replies) == 1 for replies in results)
    assert sum(1 for state in (await states(rig)).values() if state.dialog == "echo") == 3
    again = await asyncio.gather(*(engine.handle(message(p, "echo", event_id="shared-id")) for p in people))
    assert again == [[], [], []] and len(await outbox(rig)) == 3


# -- 4. people who are gone ------------------------------------------------------------------------


async def test_a_person_gone_mid_batch_gets_unknown_person_and_the_others_are_answered(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sender whose person was deleted after the engine cached them, and a person id that never existed.

    Both calls raise UnknownPerson, from their own `handle` only; everyone else
    in that batch is answered, and the batch itself did not fail. Nothing is
    recorded for the missing ones (no state, no delivery key), and the stale
    sender cache entry is dropped, so the next message looks the sender up again.
    """
    engine, recorder = use_engine(rig)
    people = await add_people(rig, 10)
    gone = people[4]
    await asyncio.gather(*(engine.handle(message(p, "help")) for p in people))

    async def remove(session) -> None:
        for model in (OutboxMessage, DialogState):
            await session.execute(delete(model).where(model.person_id == gone.id))
        await session.execute(delete(Person).where(Person.id == gone.id))

    await rig.db.run(remove)
    recorder.log.clear()
    lookups: list[list[tuple[str, str]]] = []
    sender_ids = queries.sender_ids

    async def counted(session, senders):
        lookups.append(list(senders))
        return await sender_ids(session, senders)

    monkeypatch.setattr(queries, "sender_ids", counted)
    never = 987_654
    calls = [engine.handle(message(p, "help", event_id=f"gone-test-{p.id}")) for p in people]
    calls.append(engine.handle(message(never, "help", event_id="gone-test-never"), person_id=never))
    *results, stranger = await asyncio.gather(*calls, return_exceptions=True)
    assert lookups == [], "every sender was cached, yet a lookup ran"

    assert isinstance(stranger, UnknownPerson)
    for person, outcome in zip(people, results, strict=True):
        if person is gone:
            assert isinstance(outcome, UnknownPerson)
        else:
            assert not isinstance(outcome, BaseException) and "as a team member" in outcome[0].text
    assert [t for t in recorder.log if gone.id in t.people] == [recorder.log[0]]
    assert recorder.log[0].kind == "batch" and not recorder.log[0].raised and never in recorder.log[0].people

    saved, keys = await states(rig), await processed(rig)
    assert gone.id not in saved and never not in saved
    assert not any(key.endswith((f":gone-test-{gone.id}", ":gone-test-never")) for key in keys)
    assert all(saved[p.id].version == 2 for p in people if p is not gone)

    with pytest.raises(UnknownPerson):
        await engine.handle(message(gone, "help"))
    assert lookups == [[("local", str(gone.id))]]


# -- 5. one person, several messages at once -------------------------------------------------------


async def test_one_persons_concurrent_messages_run_in_order_and_never_share_a_batch(rig: Rig) -> None:
    """Three lines from one person sent at once, among other people's.

    All three are processed, in the order sent (version + 3, lines heard in
    order, replies returned to the right call), each in a transaction of its
    own for that person — never two of theirs in one batch.
    """
    engine, recorder = use_engine(rig, Echo())
    people = await add_people(rig, 6)
    busy = people[0]
    await asyncio.gather(*(engine.handle(message(p, "echo")) for p in people))
    recorder.log.clear()

    lines = ["one", "two", "three"]
    calls = [engine.handle(message(busy, line)) for line in lines]
    calls += [engine.handle(message(p, "hi")) for p in people[1:]]
    results = await asyncio.gather(*calls)

    assert [texts(r) for r in results[:3]] == [[f"{busy.name} said: {line}"] for line in lines]
    saved = await states(rig)
    assert saved[busy.id].version == 4 and saved[busy.id].data["heard"] == lines
    assert all(saved[p.id].data["heard"] == ["hi"] and saved[p.id].version == 2 for p in people[1:])
    holding = [t for t in recorder.log if busy.id in t.people]
    assert len(holding) == 3 and all(t.people.count(busy.id) == 1 for t in holding)
    assert any(t.kind == "batch" and len(t.people) > 1 for t in holding), (
        "the first line did not share a batch with others"
    )


# -- 6. the coalescer ------------------------------------------------------------------------------


class Fetches:
    """A fetch function for a Coalescer that records its calls; it can be held open or made to fail."""

    def __init__(self) -> None:
        self.calls: list[list[int]] = []
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.release.set()
        self.failures = 0  # how many of the next fetches raise

    async def __call__(self, keys: list[int]) -> dict[int, str]:
        self.calls.append(list(keys))
        self.started.set()
        await self.release.wait()
        if self.failures:
            self.failures -= 1
            raise LookupError("the database said no")
        return {key: f"value-{key}" for key in keys if key % 10 != 0}  # multiples of ten are not found


async def test_coalescer_answers_concurrent_gets_with_one_fetch() -> None:
    """Forty gets at once (a key asked for twice among them) make one fetch holding each key once; absent keys are None."""
    fetch = Fetches()
    coalescer: Coalescer[int, str] = Coalescer(fetch)
    keys = [*range(1, 40), 7]
    values = await asyncio.gather(*(coalescer.get(key) for key in keys))
    assert fetch.calls == [list(range(1, 40))]
    assert values == [None if key % 10 == 0 else f"value-{key}" for key in keys]


async def test_coalescer_splits_a_crowd_into_fetches_of_at_most_max_keys() -> None:
    """Seven keys with max_keys=3 take three fetches (3, 3, 1), in arrival order, and every key is answered."""
    fetch = Fetches()
    coalescer: Coalescer[int, str] = Coalescer(fetch, max_keys=3)
    values = await asyncio.gather(*(coalescer.get(key) for key in range(1, 8)))
    assert fetch.calls == [[1, 2, 3], [4, 5, 6], [7]]
    assert values == [f"value-{key}" for key in range(1, 8)]


async def test_coalescer_failure_reaches_every_waiter_and_the_next_get_works() -> None:
    """A fetch that raises fails every get that shared it, with that error; a key asked for meanwhile
    is still fetched next, and a later get fetches afresh and succeeds."""
    fetch = Fetches()
    fetch.failures, _ = 1, fetch.release.clear()
    coalescer: Coalescer[int, str] = Coalescer(fetch)
    failing = asyncio.gather(*(coalescer.get(key) for key in (1, 2, 3)), return_exceptions=True)
    await fetch.started.wait()
    meanwhile = asyncio.ensure_future(coalescer.get(4))
    await asyncio.sleep(0)
    fetch.release.set()
    assert [type(r) for r in await failing] == [LookupError] * 3
    assert await asyncio.wait_for(meanwhile, 5) == "value-4"
    assert await coalescer.get(2) == "value-2"
    assert fetch.calls == [[1, 2, 3], [4], [2]]


async def test_coalescer_keys_asked_during_a_fetch_go_into_the_next_one() -> None:
    """While a fetch is in flight, new keys (and a key already in it) wait for one next fetch, not the running one."""
    fetch = Fetches()
    fetch.release.clear()
    coalescer: Coalescer[int, str] = Coalescer(fetch)
    early = [asyncio.ensure_future(coalescer.get(key)) for key in (1, 2)]
    await fetch.started.wait()
    late = [asyncio.ensure_future(coalescer.get(key)) for key in (3, 2, 4)]
    await asyncio.sleep(0)
    assert fetch.calls == [[1, 2]]
    fetch.release.set()
    assert await asyncio.gather(*early, *late) == ["value-1", "value-2", "value-3", "value-2", "value-4"]
    assert fetch.calls == [[1, 2], [3, 2, 4]]


async def test_coalescer_one_caller_giving_up_does_not_cancel_the_others() -> None:
    """Two gets share a key; cancelling one leaves the fetch running and the other still gets the value."""
    fetch = Fetches()
    fetch.release.clear()
    coalescer: Coalescer[int, str] = Coalescer(fetch)
    quitter = asyncio.ensure_future(coalescer.get(5))
    stayer = asyncio.ensure_future(coalescer.get(5))
    await fetch.started.wait()
    quitter.cancel()
    fetch.release.set()
    assert await stayer == "value-5"
    assert quitter.cancelled() and fetch.calls == [[5]]


# -- 7. check-ins answered by many people at once --------------------------------------------------


async def test_many_check_ins_answered_at_once_land_in_the_right_runs(rig: Rig) -> None:
    """Twenty people's check-ins, each started by typing checkin, answered question by question, everyone at once.

    Every answer is stored exactly once, with its own author's text, in its own
    author's run (no mix-up through the batch's shared prefetch); every run is
    answered and every person thanked. The check-in's `prefetch` served whole
    batches, and every turn it served got its own person's run.
    """
    rig.clock.set(datetime(2026, 11, 20, 15, 5, tzinfo=UTC))  # Friday 16:05 in Berlin: week 47 is open
    engine, recorder = use_engine(rig)
    people = await add_people(rig, 20)
    checkin = engine.dialogs["checkin"]
    original, served, wrong = checkin.prefetch, [], []

    async def prefetch(session, turns) -> None:
        await original(session, turns)
        served.append(len(turns))
        wrong.extend(t.person.id for t in turns if t.memo.get("run") is None or t.memo["run"].person_id != t.person.id)

    checkin.prefetch = prefetch  # type: ignore[method-assign]
    opened = await asyncio.gather(*(engine.handle(message(p, "checkin")) for p in people))
    assert all(texts(replies)[-1].startswith("Question 1 of 5") for replies in opened), [texts(r) for r in opened]

    def answer(person: Person, question: int) -> str:
        return str(person.id % 5 + 1) if question == 3 else f"answer {question} from {person.name} ({person.id})"

    sent: list[tuple[Inbound, list[Reply]]] = []
    for question in range(1, 6):
        inbounds = [message(p, answer(p, question)) for p in people]
        last = await asyncio.gather(*(engine.handle(inbound) for inbound in inbounds))
        sent += zip(inbounds, last, strict=True)
        for person, replies in zip(people, last, strict=True):
            if question < 5:
                assert texts(replies)[-1].startswith(f"Question {question + 1} of 5"), (person.name, texts(replies))

    assert all(any("Thanks, that's your check-in for week 47" in t for t in texts(r)) for r in last)
    queued = {row.key: (row.person_id, row.payload["text"]) for row in await outbox(rig)}
    for inbound, replies in sent:
        person_id = inbound.address["person"]
        assert [queued.get(f"reply:{inbound.key}:{i}") for i in range(len(replies) + 1)] == [
            *((person_id, reply.text) for reply in replies),
            None,
        ]
    runs = {run.person_id: run for run in await rig.db.run(_all(CheckinRun))}
    answers = await rig.db.run(_all(CheckinAnswer))
    assert len(runs) == len(people) and len(answers) == 5 * len(people)
    by_run: dict[int, dict[str, tuple[str | None, float | None]]] = {}
    for row in answers:
        assert row.question_id not in by_run.setdefault(row.run_id, {}), "an answer was stored twice"
        by_run[row.run_id][row.question_id] = (row.text, row.number)
    for person in people:
        run = runs[person.id]
        assert (run.period, run.status) == ("2026-W47", "answered")
        assert by_run[run.id] == {
            "progress": (answer(person, 1), None),
            "blockers": (answer(person, 2), None),
            "pulse": (None, float(answer(person, 3))),
            "priorities": (answer(person, 4), None),
            "needs": (answer(person, 5), None),
        }
    assert wrong == []
    assert max(served) == len(people), f"prefetch never served a whole batch: {served}"
    assert all(not t.raised for t in recorder.log)
