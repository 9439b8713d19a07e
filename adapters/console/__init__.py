"""`baton chat --as EMAIL`: the same conversations in a terminal. Translation only.

Choices print as numbered lines; typing a number presses that button. Messages
Baton sends on its own (from `serve` or from here) are printed as they arrive.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from collections.abc import Awaitable, Callable
from typing import TextIO

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.contract import Host
from dialogs.engine.delivery import Delivery
from dialogs.engine.feed import DeliveredFeed
from dialogs.engine.messages import Inbound, Reply, Sender
from storage import queries
from storage.db import DatabaseUnavailable
from storage.models import Person

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
    """One person's terminal conversation, as an adapter: no routes, the core's local channel, a poller."""

    platform = "local"

    def __init__(self, host: Host, person_id: int, out: TextIO, *, drain: Callable[[], Awaitable[int]]) -> None:
        self.host = host
        self.person_id = person_id
        self.out = out
        self.drain = drain  # delivers what is due now (the terminal runs its own sender, without `serve`)
        self.feed = DeliveredFeed(host.db, person_id, sealer=host.sealer)
        self.last_choices: Reply | None = None
        self.form: Reply | None = None  # a form being filled in, one field per line
        self.form_answers: dict[str, str] = {}
        self._printing = asyncio.Lock()  # the poller and a reply must not print the same rows twice
        self._poller: asyncio.Task[None] | None = None

    def routes(self, app: web.Application) -> None:
        return None  # a terminal has no HTTP side

    def deliveries(self) -> list[Delivery]:
        return []  # the local channel is the core's own: the feed reads sent rows itself

    async def start(self) -> None:
        """Print the last few messages, then poll for what Baton sends on its own."""
        history = await self.feed.history(limit=5)
        for _message_id, _sent_at, reply in history:
            self.print_reply(reply)
        if history and history[-1][2].form is None:
            self.form = None  # an older form further up has been answered or left
        self._poller = asyncio.create_task(self._poll(), name="console-poll")

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(POLL_SECONDS)
            try:
                await self.drain()
                await self.show_new()
            except DatabaseUnavailable:
                continue

    async def show_new(self) -> None:
        async with self._printing:
            for _message_id, _sent_at, reply in await self.feed.fresh():
                self.print_reply(reply)

    def print_reply(self, reply: Reply) -> None:
        if reply.choices or reply.rating:
            self.last_choices = reply
        print("baton> " + format_reply(reply).replace("\n", "\n       "), file=self.out, flush=True)
        if reply.form and reply.action:  # a terminal asks a form's questions one after another
            self.form, self.form_answers = reply, {}
            self._ask_field()

    def _ask_field(self) -> None:
        assert self.form is not None and self.form.form is not None
        field = self.form.form.fields[len(self.form_answers)]
        options = f" ({' / '.join(field.options)})" if field.options else " (1–5)" if field.kind == "rating" else ""
        skip = " — Enter a dash to leave it empty" if field.optional else ""
        number = f"{len(self.form_answers) + 1}/{len(self.form.form.fields)}"
        print(f"  [{number}] {field.label.replace('*', '')}{options}{skip}", file=self.out, flush=True)

    def _form_line(self, text: str, sender: Sender, event_id: str) -> Inbound | None:
        """One line of a form: the next field's answer; the last one sends them all as one answer."""
        form = self.form
        assert form is not None and form.form is not None and form.action is not None
        if text.isdigit() and not self.form_answers and 1 <= int(text) <= len(form.choices):
            self.form = None  # a button instead, e.g. "One at a time instead"
            value = form.choices[int(text) - 1].value
            return Inbound(sender, {"person": self.person_id}, action=form.action, value=value, event_id=event_id)
        field = form.form.fields[len(self.form_answers)]
        self.form_answers[field.id] = "" if text == "-" else text
        if len(self.form_answers) < len(form.form.fields):
            self._ask_field()
            return None
        answers = {k: v for k, v in self.form_answers.items() if v}
        self.form, self.form_answers = None, {}
        value = json.dumps(answers)
        return Inbound(sender, {"person": self.person_id}, action=form.action, value=value, event_id=event_id)

    def to_inbound(self, line: str) -> Inbound | None:
        """Translate a typed line; a number answers the last message's buttons."""
        text = line.strip()
        event_id = f"{self.person_id}:console:{uuid.uuid4().hex}"
        sender = Sender(platform="local", user_id=str(self.person_id))
        if self.form is not None:
            return self._form_line(text, sender, event_id)
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
        inbound = self.to_inbound(line)
        if inbound is None:  # a form's answer, kept until its last field
            return
        try:
            await self.host.engine.handle(inbound)
        except DatabaseUnavailable:
            print(
                "baton> I can't reach my database right now, so nothing was recorded. Please try again.",
                file=self.out,
                flush=True,
            )
            return
        await self.drain()
        await self.show_new()


async def run_console(
    host: Host,
    email: str,
    *,
    drain: Callable[[], Awaitable[int]],
    stdin: TextIO = sys.stdin,
    out: TextIO = sys.stdout,
) -> int:
    """Chat as `email` until end of input; `drain` delivers what is due. Returns an exit status."""

    async def find(session: AsyncSession) -> Person | None:
        return await queries.person_by_email(session, email)

    person = await host.db.run(find)
    if person is None or person.id is None:
        print(
            f"Nobody with the email {email} is in this organisation. `baton org export` lists everyone.",
            file=sys.stderr,
        )
        return 2
    console = Console(host, person.id, out, drain=drain)
    print(
        f"Chatting with Baton as {person.name} <{person.email}>. Type help, or press Ctrl-D to leave.",
        file=out,
        flush=True,
    )
    await console.start()
    try:
        while True:
            line = await asyncio.to_thread(stdin.readline)
            if not line:
                break
            if line.strip():
                await console.send(line)
    finally:
        await console.stop()
    return 0
