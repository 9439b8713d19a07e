"""The two neutral types that cross the adapter boundary: `Inbound` in, `Reply` out.

Both are plain, frozen data. Adapters translate platform payloads into
`Inbound` and render `Reply` into Block Kit, Adaptive Cards, HTML or terminal
lines; nothing in `dialogs/` knows which. User-written text is excluded from
`repr()` so that logging one of these by mistake leaks nothing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Platform = Literal["local", "slack", "teams"]


@dataclass(frozen=True, slots=True)
class Sender:
    """Who wrote, as the platform knows them. `email`, `timezone` etc. are hints, maybe None."""

    platform: str
    user_id: str
    email: str | None = None
    name: str | None = None
    timezone: str | None = None
    locale: str | None = None


@dataclass(frozen=True, slots=True)
class Inbound:
    """One thing a person did: typed `text`, or pressed a button (`action` + `value`).

    `address` is where replies go (a plain, storable conversation reference);
    `event_id` is the platform's delivery id, used to drop retries and double
    submits. `raw` keeps the platform payload for the adapter's own use.
    """

    sender: Sender
    address: dict[str, Any] = field(default_factory=dict)
    text: str | None = field(default=None, repr=False)
    action: str | None = None
    value: str | None = field(default=None, repr=False)
    event_id: str | None = None
    raw: dict[str, Any] | None = field(default=None, repr=False, compare=False)
    # The adapter kept this delivery in the inbox before acknowledging it; the turn's transaction removes it.
    durable: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON for the inbox (without `raw`, which only the adapter's own code reads)."""
        return {
            "sender": asdict(self.sender),
            "address": dict(self.address),
            "text": self.text,
            "action": self.action,
            "value": self.value,
            "event_id": self.event_id,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, durable: bool = False) -> Inbound:
        return cls(
            Sender(**data["sender"]),
            dict(data.get("address") or {}),
            data.get("text"),
            data.get("action"),
            data.get("value"),
            data.get("event_id"),
            durable=durable,
        )

    @property
    def key(self) -> str | None:
        """This delivery's identity for dropping retries: platform, sender and event id (ids are only
        unique per conversation on some platforms, so two people's events never share a key)."""
        if not self.event_id:
            return None
        return f"{self.sender.platform}:{self.sender.user_id}:{self.event_id}"[:255]


@dataclass(frozen=True, slots=True)
class Choice:
    """A button. `value` is what comes back in `Inbound.value` when it is pressed."""

    label: str
    value: str
    style: Literal["primary", "danger"] | None = None


@dataclass(frozen=True, slots=True)
class Rating:
    """A scale of buttons from `min` to `max`; the pressed number comes back as the value."""

    min: int = 1
    max: int = 5
    low_label: str = ""
    high_label: str = ""


@dataclass(frozen=True, slots=True)
class TextInput:
    """Baton expects typed text next; adapters may show a text box with this hint."""

    placeholder: str = ""
    max_length: int = 2000
    multiline: bool = True


@dataclass(frozen=True, slots=True)
class Card:
    """Structured content: a title, label/value fields and plain lines."""

    title: str
    fields: tuple[tuple[str, str], ...] = ()
    lines: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FormField:
    """One input of a form: `kind` is text, rating (1–5), choice or number."""

    id: str
    label: str
    kind: Literal["text", "rating", "choice", "number"]
    options: tuple[str, ...] = ()
    optional: bool = True
    value: str | None = None  # the current answer, to prefill
    max_length: int = 2000


@dataclass(frozen=True, slots=True)
class Form:
    """Several questions answered in one go (a Slack modal, an Adaptive Card, a web form).

    The answers come back as one `Inbound` with `action` = the reply's action
    and `value` = a JSON object {field id: answer string}; a surface that cannot
    show forms sends the person through the questions one at a time instead.
    """

    title: str
    fields: tuple[FormField, ...]
    submit_label: str = "Submit"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form (the outbox, the web chat's page)."""
        return {
            "title": self.title,
            "submit_label": self.submit_label,
            "fields": [
                {
                    "id": f.id,
                    "label": f.label,
                    "kind": f.kind,
                    "options": list(f.options),
                    "optional": f.optional,
                    "value": f.value,
                    "max_length": f.max_length,
                }
                for f in self.fields
            ],
        }


@dataclass(frozen=True, slots=True)
class Reply:
    """One message from Baton.

    `action` is the token that `choices` and `rating` answer to; it names the
    dialog and the prompt so that a press on an old message is recognised.
    Every field but `text` is optional; `text` alone must make sense, since it
    is the fallback on surfaces that cannot show the rest.
    """

    text: str
    choices: tuple[Choice, ...] = ()
    rating: Rating | None = None
    input: TextInput | None = None
    card: Card | None = None
    action: str | None = None
    form: Form | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form, as stored in the outbox.

        Written out by hand: `dataclasses.asdict` deep-copies recursively and was
        the slowest step of queuing ten thousand check-ins.
        """
        rating, text_input, card = self.rating, self.input, self.card
        return {
            "text": self.text,
            "choices": [{"label": c.label, "value": c.value, "style": c.style} for c in self.choices],
            "rating": None
            if rating is None
            else {"min": rating.min, "max": rating.max, "low_label": rating.low_label, "high_label": rating.high_label},
            "input": None
            if text_input is None
            else {
                "placeholder": text_input.placeholder,
                "max_length": text_input.max_length,
                "multiline": text_input.multiline,
            },
            "card": None
            if card is None
            else {"title": card.title, "fields": [list(f) for f in card.fields], "lines": list(card.lines)},
            "action": self.action,
            "form": None if self.form is None else self.form.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Reply:
        """Inverse of `to_dict`; unknown keys are ignored so old outbox rows still load."""
        card = data.get("card")
        return cls(
            text=data["text"],
            choices=tuple(Choice(**c) for c in data.get("choices") or ()),
            rating=Rating(**data["rating"]) if data.get("rating") else None,
            input=TextInput(**data["input"]) if data.get("input") else None,
            card=Card(
                title=card["title"],
                fields=tuple(tuple(f) for f in card.get("fields") or ()),
                lines=tuple(card.get("lines") or ()),
            )
            if card
            else None,
            action=data.get("action"),
            form=Form(
                title=data["form"]["title"],
                fields=tuple(
                    FormField(**{**f, "options": tuple(f.get("options") or ())}) for f in data["form"]["fields"]
                ),
                submit_label=data["form"].get("submit_label", "Submit"),
            )
            if data.get("form")
            else None,
        )
