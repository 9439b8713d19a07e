"""`baton chat --as EMAIL`: the same conversations in a terminal. Translation only.

Choices print as numbered lines; typing a number presses that button. Messages
Baton sends on its own (from `serve` or from here) are printed as they arrive.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from typing import TextIO

from bot.outbox import DeliveredFeed, LocalDelivery, OutboxSender
from dialogs import all_dialogs
from dialogs.engine import Engine
from dialogs.messages import Inbound, Reply, Sender
from storage import queries
from storage.db import Database, DatabaseUnavailable

POLL_SECONDS = 1.0
LETTERS = "abcdefghij"


def format_reply(reply: Reply) -> str:
    """The plain-text rendering: text, then a card's fields and lines, then numbered choices or a scale."""
    lines = [reply.text.replace("*", "")]
    if reply.card:
        lines.append(f"┌ {reply.card.title}")
        lines += [f"│ {label}: {value}" for label, value in reply.card.fields]
        lines += [f"│ {line}" for line in reply.card.lines]
    if reply.rating:
        r = reply.rating
        scale = " ".join(f"[{n}]" for n in range(r.min, r.max + 1))
        labels = [f"{n} = {label}" for n, label in ((r.min, r.low_label), (r.max, r.high_label)) if label]
        ends = f"  ({', '.join(labels)})" if labels else ""
        lines.append(f"  {scale}{ends}")
    # Beside a scale, numbers mean the scale: the buttons get letters instead.
    marks = LETTERS if reply.rating else [str(n) for n in range(1, len(reply.choices) + 1)]
    lines += [f"  {mark}) {choice.label}" for mark, choice in zip(marks, reply.choices, strict=False)]
    return "\n".join(lines)


class Console:
    """One person's terminal conversation."""

    def __init__(self, db: Database, person_id: int, out: TextIO) -> None:
        self.db = db
        self.person_id = person_id
        self.out = out
        self.engine = Engine(db, all_dialogs())
        self.sender = OutboxSender(db, [LocalDelivery()])
        self.engine.on_queued = self.sender.wake
        self.engine.on_claimed = self.sender.deliver_soon
        self.feed = DeliveredFeed(db, person_id)
        self.last_choices: Reply | None = None
        self._printing = asyncio.Lock()  # the poller and a reply must not print the same rows twice

    async def show_new(self) -> None:
        async with self._printing:
            for _message_id, _sent_at, reply in await self.feed.fresh():
                self.print_reply(reply)

    def print_reply(self, reply: Reply) -> None:
        if reply.choices or reply.rating:
            self.last_choices = reply
        print("baton> " + format_reply(reply).replace("\n", "\n       "), file=self.out, flush=True)

    def to_inbound(self, line: str) -> Inbound:
        """Translate a typed line; a number answers the last message's buttons."""
        text = line.strip()
        event_id = f"{self.person_id}:console:{uuid.uuid4().hex}"
        sender = Sender(platform="local", user_id=str(self.person_id))
        last = self.last_choices
        if (
            last is not None
            and last.rating
            and last.action
            and len(text) == 1
            and text.lower() in LETTERS[: len(last.choices)]
        ):
            value = last.choices[LETTERS.index(text.lower())].value
            return Inbound(sender, {"person": self.person_id}, action=last.action, value=value, event_id=event_id)
        if last is not None and text.isdigit() and last.action:
            number = int(text)
            if last.rating and last.rating.min <= number <= last.rating.max:
                return Inbound(
                    sender, {"person": self.person_id}, action=last.action, value=str(number), event_id=event_id
                )
            if not last.rating and 1 <= number <= len(last.choices):
                value = last.choices[number - 1].value
                return Inbound(sender, {"person": self.person_id}, action=last.action, value=value, event_id=event_id)
        return Inbound(sender, {"person": self.person_id}, text=text, event_id=event_id)

    async def send(self, line: str) -> None:
        try:
            await self.engine.handle(self.to_inbound(line))
        except DatabaseUnavailable:
            print(
                "baton> I can't reach my database right now, so nothing was recorded. Please try again.",
                file=self.out,
                flush=True,
            )
            return
        await self.sender.drain_once()
        await self.show_new()


async def run_console(db: Database, email: str, stdin: TextIO = sys.stdin, out: TextIO = sys.stdout) -> int:
    """Chat as `email` until end of input. Returns an exit status."""
    await db.migrate()

    async def find(session):  # noqa: ANN001, ANN202
        return await queries.person_by_email(session, email)

    person = await db.run(find)
    if person is None:
        print(
            f"Nobody with the email {email} is in this organisation. `baton org export` lists everyone.",
            file=sys.stderr,
        )
        return 2
    console = Console(db, person.id, out)
    print(
        f"Chatting with Baton as {person.name} <{person.email}>. Type help, or press Ctrl-D to leave.",
        file=out,
        flush=True,
    )
    for _message_id, _sent_at, reply in await console.feed.history(limit=5):
        console.print_reply(reply)

    async def poll() -> None:
        while True:
            await asyncio.sleep(POLL_SECONDS)
            try:
                await console.sender.drain_once()
                await console.show_new()
            except DatabaseUnavailable:
                continue

    poller = asyncio.create_task(poll())
    try:
        while True:
            line = await asyncio.to_thread(stdin.readline)
            if not line:
                break
            if line.strip():
                await console.send(line)
    finally:
        poller.cancel()
    return 0
