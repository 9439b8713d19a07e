"""Neutral replies → Block Kit, built with `slack_sdk.models` so that Slack's limits are checked.

Everything Baton shows in mrkdwn is escaped (`&`, `<`, `>`): Baton's own text
never carries links or mentions, so whatever a person typed comes back as
text and can neither ping `<!channel>` nor forge a link. `plain_text`
objects (button labels, headers, modal labels, prefilled answers) are shown
literally by Slack and never parsed for mentions, so they are not escaped —
escaping them would show `&amp;` to the reader or corrupt a prefilled answer.

Long content is split: sections hold at most 3,000 characters, a message at
most 50 blocks (a longer reply becomes several messages), a Home tab or modal
at most 100 blocks.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.basic_objects import JsonObject
from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    InputBlock,
    MarkdownTextObject,
    NumberInputElement,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from dialogs.engine.messages import Card, Form, FormField, Reply

SECTION_TEXT = 3000
FIELD_TEXT = 2000
FIELDS_PER_SECTION = 10
HEADER_TEXT = 150
BUTTON_TEXT = 75
BUTTON_VALUE = 2000
ACTION_ID = 255
BUTTONS_PER_BLOCK = 25
MESSAGE_BLOCKS = 50
VIEW_BLOCKS = 100
VIEW_TITLE = 24
FALLBACK_TEXT = 3000  # the notification text; Slack allows more, nobody reads more
INPUT_MAX = 3000

FORM_ACTION = "baton_form"  # action_id prefix of the button that opens a form as a modal
FORM_CALLBACK = "baton_form"  # callback_id of that modal


@dataclass(frozen=True, slots=True)
class Message:
    """One chat.postMessage worth of content: the notification `text` and the `blocks`."""

    text: str
    blocks: list[dict[str, Any]]


def escape(text: str) -> str:
    """Slack's three control characters as entities, so text shows as typed and never links or pings."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


_BOLD = re.compile(r"\*(\S(?:[^*\n]*\S)?)\*")


def plain(text: str) -> str:
    """Baton's light mrkdwn (`*bold*`) dropped, for places that show plain text."""
    return _BOLD.sub(r"\1", text)


def clip(text: str, limit: int) -> str:
    """`text` cut to `limit` characters with an ellipsis, never inside an entity like `&amp;`."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    amp = cut.rfind("&", max(0, len(cut) - 5))
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut.rstrip() + "…"


def split_text(text: str, limit: int = SECTION_TEXT) -> list[str]:
    """Already-escaped `text` in pieces of at most `limit` characters.

    Cuts at a paragraph break, else a line break, else a space, else anywhere
    outside an entity — so each piece reads on its own.
    """
    pieces: list[str] = []
    rest = text
    while len(rest) > limit:
        window = rest[:limit]
        cut = max(window.rfind("\n\n"), 0)
        if cut < limit // 2:
            cut = max(window.rfind("\n"), window.rfind(" "))
        if cut < limit // 4:
            cut = limit
            amp = window.rfind("&", limit - 5)
            if amp != -1 and ";" not in window[amp:]:
                cut = amp
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip("\n ")
    if rest or not pieces:
        pieces.append(rest)
    return [p for p in pieces if p] or [""]


# -- fast, exact serialisation of slack_sdk models ---------------------------------------------
#
# `JsonObject.to_dict()` finds its validators with `dir()` on every call, which made rendering
# the slowest step of sending ten thousand check-ins (2.5 ms a message). `to_dict` below runs the
# same validators and produces the same dictionary, with the validator names looked up once per
# class. Classes that override `to_dict` (Option) keep their own. test_slack_render checks that
# both agree, errors included.


@cache
def _validators(cls: type) -> tuple[str, ...]:
    return tuple(
        name
        for name in dir(cls)
        if not name.startswith("__") and callable(getattr(cls, name, None)) and hasattr(getattr(cls, name), "validator")
    )


def _compatible(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_compatible(v) for v in value]
    if isinstance(value, JsonObject):
        return to_dict(value)
    to_dict_method = getattr(value, "to_dict", None)
    if callable(to_dict_method):
        return {k: _compatible(v) for k, v in to_dict_method().items()}
    return value


def to_dict(obj: JsonObject) -> dict[str, Any]:
    """`obj.to_dict()`, validated by the model's own validators; raises SlackObjectFormationError."""
    cls = type(obj)
    if cls.to_dict is not JsonObject.to_dict:
        return {k: _compatible(v) for k, v in obj.to_dict().items()}
    for name in _validators(cls):
        getattr(obj, name)()
    result = {}
    for key in sorted(obj.attributes):
        value = getattr(obj, key, None)
        if value is None or (hasattr(value, "__len__") and len(value) == 0):
            continue
        result[key] = _compatible(value)
    return result


# -- messages ------------------------------------------------------------------------------------


def _section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=text))


def _text_blocks(text: str) -> list[Block]:
    return [_section(piece) for piece in split_text(escape(text)) if piece.strip()]


def _card_blocks(card: Card) -> list[Block]:
    blocks: list[Block] = [HeaderBlock(text=PlainTextObject(text=clip(plain(card.title), HEADER_TEXT) or "·"))]
    fields = [
        MarkdownTextObject(text=clip(f"*{escape(plain(label))}*\n{escape(value)}", FIELD_TEXT))
        for label, value in card.fields
    ]
    for start in range(0, len(fields), FIELDS_PER_SECTION):
        blocks.append(SectionBlock(fields=fields[start : start + FIELDS_PER_SECTION]))
    if card.lines:
        blocks.extend(_text_blocks("\n".join(card.lines)))
    return blocks


def _buttons(reply: Reply, form_ref: str | None) -> list[ButtonElement]:
    action = reply.action or "none"
    buttons: list[ButtonElement] = []
    if reply.form is not None:
        title = reply.form.title
        label = f"Open {title[:1].lower()}{title[1:]}" if title else "Open the form"
        buttons.append(
            ButtonElement(
                text=PlainTextObject(text=clip(plain(label), BUTTON_TEXT)),
                action_id=clip(f"{FORM_ACTION}|{action}", ACTION_ID),
                value=form_ref or "none",
                style="primary",
            )
        )
    index = 0
    if reply.rating is not None:
        for number in range(reply.rating.min, reply.rating.max + 1):
            buttons.append(
                ButtonElement(text=PlainTextObject(text=str(number)), action_id=f"{action}|{index}", value=str(number))
            )
            index += 1
    for choice in reply.choices:
        buttons.append(
            ButtonElement(
                text=PlainTextObject(text=clip(plain(choice.label), BUTTON_TEXT)),
                action_id=f"{action}|{index}",
                value=choice.value,
                style=choice.style,
            )
        )
        index += 1
    return buttons


def _action_blocks(reply: Reply, form_ref: str | None) -> list[Block]:
    blocks: list[Block] = []
    buttons = _buttons(reply, form_ref)
    for start in range(0, len(buttons), BUTTONS_PER_BLOCK):
        blocks.append(ActionsBlock(elements=buttons[start : start + BUTTONS_PER_BLOCK]))
    hints = []
    rating = reply.rating
    if rating is not None and (rating.low_label or rating.high_label):
        hints.append(f"{rating.min} = {rating.low_label or 'low'} · {rating.max} = {rating.high_label or 'high'}")
    if reply.input is not None and reply.input.placeholder and not reply.form:
        hints.append(f"✎ {reply.input.placeholder}")
    if hints:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=clip(escape(h), SECTION_TEXT)) for h in hints]))
    return blocks


def reply_blocks(reply: Reply, *, form_ref: str | None = None) -> list[Block]:
    """The blocks for a reply, unlimited in number (callers split them)."""
    blocks = _text_blocks(reply.text)
    if reply.card is not None:
        blocks.extend(_card_blocks(reply.card))
    blocks.extend(_action_blocks(reply, form_ref))
    return blocks


def render(reply: Reply, *, form_ref: str | None = None) -> list[Message]:
    """A reply as one message, or several when it needs more than 50 blocks.

    `form_ref` is what the "Open …" button of a form carries back (the outbox
    row id), so a click can find the form again. Buttons carry `reply.action`
    in their action_id (`{action}|{index}`, unique within the message) and the
    choice's value as their value. A reply the models reject (a limit Baton's
    own content should never reach) falls back to escaped text alone.
    """
    fallback = clip(escape(reply.text), FALLBACK_TEXT) or " "
    try:
        blocks = [to_dict(block) for block in reply_blocks(reply, form_ref=form_ref)]
    except SlackObjectFormationError:
        blocks = [to_dict(_section(piece)) for piece in split_text(escape(reply.text))]
    if not blocks:
        blocks = [to_dict(_section(fallback))]
    messages = []
    for start in range(0, len(blocks), MESSAGE_BLOCKS):
        text = fallback if start == 0 else "(continued)"
        messages.append(Message(text, blocks[start : start + MESSAGE_BLOCKS]))
    return messages


def text_only(reply: Reply) -> Message:
    """The reply as plain escaped text, for when Slack refuses the blocks."""
    return Message(clip(escape(reply.text), FALLBACK_TEXT) or " ", [])


def notice(text: str) -> Message:
    """A short message from the adapter itself (already done, please retry…)."""
    return Message(escape(text), [to_dict(_section(escape(text)))])


def pressed(original: list[dict[str, Any]], label: str) -> list[dict[str, Any]]:
    """The blocks of a message whose button was pressed: its buttons replaced by what was pressed.

    `original` comes from the interaction payload (Slack's copy of what Baton
    sent); `label` is the pressed button's text as Slack sent it back (escaped).
    """
    kept = [block for block in original if block.get("type") != "actions"]
    kept.append(to_dict(ContextBlock(elements=[MarkdownTextObject(text=clip(f"✓ {escape(unescape(label))}", 300))])))
    return kept[:MESSAGE_BLOCKS]


# -- forms as modals -----------------------------------------------------------------------------


def _form_element(field: FormField) -> Any:
    if field.kind == "text":
        initial = field.value[:INPUT_MAX] if field.value else None
        limit = min(max(field.max_length, 1), INPUT_MAX)
        return PlainTextInputElement(action_id="value", multiline=True, max_length=limit, initial_value=initial)
    if field.kind == "number":
        return NumberInputElement(action_id="value", is_decimal_allowed=True, initial_value=field.value or None)
    if field.kind == "rating":
        labels = [str(n) for n in range(1, 6)]
        placeholder = "1 (low) to 5 (high)"
    else:
        labels = list(field.options)[:100]
        placeholder = "Choose one"
    options = [Option(value=label[:150], label=clip(label, 75)) for label in labels]
    initial = next(
        (o for o, label in zip(options, labels, strict=False) if field.value is not None and label == field.value), None
    )
    return StaticSelectElement(action_id="value", placeholder=placeholder, options=options, initial_option=initial)


def modal(form: Form, *, action: str | None, channel: str | None = None, intro: str | None = None) -> dict[str, Any]:
    """A form as a modal view. The submission carries `action` (and `channel`) in private_metadata."""
    blocks: list[Block] = []
    if intro:
        blocks.extend(_text_blocks(intro)[:1])
    for field in form.fields[: VIEW_BLOCKS - len(blocks)]:
        blocks.append(
            InputBlock(
                block_id=field.id[:255],
                label=PlainTextObject(text=clip(plain(field.label), 2000)),
                element=_form_element(field),
                optional=field.optional,
            )
        )
    metadata = json.dumps({"a": action, "c": channel}, separators=(",", ":"))
    view = View(
        type="modal",
        callback_id=FORM_CALLBACK,
        title=PlainTextObject(text=clip(plain(form.title), VIEW_TITLE) or "Baton"),
        submit=PlainTextObject(text=clip(plain(form.submit_label), VIEW_TITLE) or "Submit"),
        close=PlainTextObject(text="Cancel"),
        private_metadata=metadata,
        blocks=blocks,
    )
    return to_dict(view)


# -- App Home ------------------------------------------------------------------------------------


def home_view(reply: Reply) -> dict[str, Any]:
    """A reply as the App Home tab: a header (the card title), the text, fields, lines and buttons.

    Within 100 blocks: when the content needs more, it is cut and the buttons stay.
    """
    blocks: list[Block] = []
    card = reply.card
    if card is not None:
        blocks.extend(_card_blocks(card)[:1])  # the header first
    blocks.extend(_text_blocks(reply.text))
    if card is not None:
        rest = _card_blocks(card)[1:]
        if rest:
            blocks.append(DividerBlock())
            blocks.extend(rest)
    actions = _action_blocks(reply, None)[:VIEW_BLOCKS]
    blocks = blocks[: VIEW_BLOCKS - len(actions)] + actions
    try:
        return to_dict(View(type="home", blocks=blocks or [_section("·")]))
    except SlackObjectFormationError:
        fallback = [_section(piece) for piece in split_text(escape(reply.text))][:VIEW_BLOCKS]
        return to_dict(View(type="home", blocks=fallback or [_section("·")]))
