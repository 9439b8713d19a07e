"""Acknowledgements first (dialogs/engine/priority.py): background work steps aside while a platform waits.

Unit tests of `AckFirst` itself, then the three places that step aside or
mark an acknowledgement — the engine's turn batches, the outbox sender's
deliveries and the inbox keeping a delivery — on both databases.
"""

from __future__ import annotations

import asyncio

import pytest

from dialogs.engine.messages import Inbound, Sender
from dialogs.engine.priority import AckFirst
from tests.harness import Rig

HELD = 0.15  # seconds a step is watched to see it wait; generous, since what is asserted is that it does NOT finish


async def finishes(step: asyncio.Task[object], within: float = 5.0) -> bool:
    done, _ = await asyncio.wait({step}, timeout=within)
    return bool(done)


async def test_nothing_in_flight_means_no_wait() -> None:
    acks = AckFirst(most=60)
    step = asyncio.create_task(acks.after_acks())
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert step.done()


async def test_work_waits_for_acknowledgements_and_goes_as_soon_as_they_end() -> None:
    acks = AckFirst(most=60)
    with acks.acknowledging():
        with acks.acknowledging():  # two requests in flight
            step = asyncio.create_task(acks.after_acks())
            await asyncio.sleep(HELD)
            assert not step.done()
        await asyncio.sleep(HELD)
        assert not step.done(), "one acknowledgement is still in flight"
        assert acks.in_flight == 1
    assert await finishes(step, 1.0)
    assert acks.in_flight == 0


async def test_a_steady_stream_of_acknowledgements_never_starves_the_work() -> None:
    acks = AckFirst(most=0.05)
    with acks.acknowledging():  # never ends while the work waits
        steps = [asyncio.create_task(acks.after_acks()) for _ in range(3)]
        assert all([await finishes(step) for step in steps])


async def test_an_acknowledgement_that_fails_still_ends() -> None:
    acks = AckFirst(most=60)
    with pytest.raises(RuntimeError), acks.acknowledging():
        raise RuntimeError("the request failed")
    assert acks.in_flight == 0
    assert await finishes(asyncio.create_task(acks.after_acks()), 1.0)


async def test_a_turn_waits_while_a_delivery_is_being_acknowledged(rig: Rig) -> None:
    chat = rig.chat(next(iter(rig.people)))
    acks = rig.engine.acks
    acks.most = 60
    with acks.acknowledging():
        turn = asyncio.create_task(rig.engine.handle(chat.inbound(text="help", event_id="ack-first-1")))
        await asyncio.sleep(HELD)
        assert not turn.done(), "the turn ran while a platform waited for its acknowledgement"
    assert await finishes(turn)
    assert turn.result(), "the turn ran once the acknowledgement was out, and replied"


async def test_a_delivery_waits_while_a_delivery_is_being_acknowledged(rig: Rig) -> None:
    chat = rig.chat(next(iter(rig.people)))
    acks = rig.sender.acks
    assert acks is rig.engine.acks, "one AckFirst is shared by the whole process"
    acks.most = 60
    rig.engine.acks = AckFirst()  # nothing in flight for the engine: only the sender is held here
    before = len(rig.delivery.to(chat.person.id))

    async def turn_then_send() -> None:
        await rig.engine.handle(chat.inbound(text="help", event_id="ack-first-2"))
        await rig.sender.settle()  # the reply was handed to the sender at commit

    with acks.acknowledging():
        sent = asyncio.create_task(turn_then_send())
        await asyncio.sleep(HELD)
        assert len(rig.delivery.to(chat.person.id)) == before, "a reply was posted during an acknowledgement"
    assert await finishes(sent)
    assert len(rig.delivery.to(chat.person.id)) > before


async def test_keeping_a_delivery_counts_as_acknowledging(rig: Rig) -> None:
    from dialogs.engine.inbox import Inbox

    inbox = Inbox(rig.db, rig.clock, rig.sealer)
    seen: list[int] = []
    run = rig.db.run

    async def spying(work, **kwargs):
        seen.append(inbox.acks.in_flight)
        return await run(work, **kwargs)

    rig.db.run = spying  # type: ignore[method-assign]
    try:
        kept = await inbox.keep(Inbound(Sender("slack", "U1"), text="hello", event_id="Ev1"))
    finally:
        rig.db.run = run  # type: ignore[method-assign]
    assert kept.durable
    assert seen == [1], "the inbox write ran without marking an acknowledgement in flight"
    assert inbox.acks.in_flight == 0
