"""Neutral `Reply` → the body of a Bot Framework message: plain markdown text, or one Adaptive Card 1.5.

- Text alone stays a text message; a card adds nothing there.
- Choices become `Action.Submit` buttons (an `Input.ChoiceSet` beyond five),
  a rating becomes a row of number buttons, a free-text prompt an
  `Input.Text` with a Send button, a `Card` a title + FactSet + lines, and a
  `Form` one card with an input per field and one submit.
- Every string reaches Teams' markdown escaped: what a person wrote (an
  answer echoed in a review, a blocker in a digest) cannot turn into a link,
  a mention or formatting. Baton's own `*emphasis*` becomes bold.
- The whole message stays under Teams' 40 KB: long texts are shortened step
  by step, prefilled form answers are dropped rather than cut (an empty
  field keeps the stored answer), and as a last resort the reply is sent as
  shortened plain text.

Submit data is what `activities.submitted` reads back.
"""

from __future__ import annotations

import json
import re
from typing import Any

from dialogs.engine.messages import Choice, Form, Reply

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
SCHEMA_URL = "http://adaptivecards.io/schemas/adaptive-card.json"
VERSION = "1.5"
MAX_MESSAGE_BYTES = 40 * 1024  # Teams' cap on one message
BUDGET = MAX_MESSAGE_BYTES - 2 * 1024  # room for the envelope (from, recipient, conversation) added when sending
MAX_BUTTONS = 5  # more choices than this become a dropdown
# (longest text, most card lines) tried in turn until a card fits the budget
_SHORTEN_STEPS: tuple[tuple[int | None, int | None], ...] = (
    (None, None),
    (4000, 200),
    (2000, 120),
    (1000, 80),
    (400, 60),
    (150, 40),
)

_EMPHASIS = re.compile(r"(?<![\w*\\])\*([^*\n]{1,120}?)\*(?![\w*])")
_SPECIALS = re.compile(r"([\\`*_\[\]<>~|])")
_LINE_START = re.compile(r"^(\s*)([-+#>]|\d+[.)])(?=\s|$)", re.MULTILINE)


def escape_markdown(text: str) -> str:
    """Backslash-escape everything Teams' markdown would act on (links, emphasis, lists, HTML-ish tags)."""
    escaped = _SPECIALS.sub(r"\\\1", text)
    return _LINE_START.sub(
        lambda m: m.group(1) + "".join("\\" + ch if not ch.isdigit() else ch for ch in m.group(2)), escaped
    )


def to_markdown(text: str) -> str:
    """Baton's text as Teams markdown: all of it escaped, its `*emphasis*` turned into bold."""
    out, last = [], 0
    for match in _EMPHASIS.finditer(text):
        out.append(escape_markdown(text[last : match.start()]))
        out.append("**" + escape_markdown(match.group(1)) + "**")
        last = match.end()
    out.append(escape_markdown(text[last:]))
    return "".join(out)


def needs_card(reply: Reply) -> bool:
    return bool(reply.choices or reply.rating or reply.input or reply.card or reply.form)


def render(reply: Reply) -> dict[str, Any]:
    """The message activity body (`type`, `text` or `attachments`) for `reply`, under the size budget."""
    if not needs_card(reply):
        return _plain(reply.text)
    for limit, lines in _SHORTEN_STEPS:
        content = card(reply, limit=limit, max_lines=lines, prefill=limit is None)
        message = {"type": "message", "attachments": [{"contentType": CARD_CONTENT_TYPE, "content": content}]}
        if size_of(message) <= BUDGET:
            return message
    return _plain(as_text(reply))


def as_text(reply: Reply) -> str:
    """The reply as plain lines: the text, then the card's title, fields and lines (the last-resort fallback)."""
    parts = [reply.text]
    if reply.card is not None:
        parts.append(reply.card.title)
        parts += [f"{label}: {value}" for label, value in reply.card.fields]
        parts += list(reply.card.lines)
    return "\n".join(parts)


def size_of(message: dict[str, Any]) -> int:
    """Bytes on the wire, as the connector sends it (UTF-8 JSON)."""
    return len(json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode())


def card(
    reply: Reply, *, limit: int | None = None, max_lines: int | None = None, prefill: bool = True
) -> dict[str, Any]:
    """The Adaptive Card 1.5 for `reply`.

    `limit` shortens long texts, `max_lines` keeps that many card lines (and
    says how many more there were), `prefill=False` leaves form fields empty.
    """
    body: list[dict[str, Any]] = []
    actions: list[dict[str, Any]] = []
    body += _text_blocks(reply.text, limit)
    if reply.card is not None:
        body.append(_block(_cut(reply.card.title, 200), weight="bolder", size="medium", separator=True))
        if reply.card.fields:
            body.append(
                {
                    "type": "FactSet",
                    "facts": [
                        {"title": to_markdown(_cut(k, 100)), "value": to_markdown(_cut(v, limit or 1000))}
                        for k, v in reply.card.fields
                    ],
                }
            )
        lines = reply.card.lines if max_lines is None else reply.card.lines[:max_lines]
        for line in lines:
            body += _text_blocks(line, limit, first_spacing="none") if line else [_block(" ", spacing="small")]
        if len(lines) < len(reply.card.lines):
            body.append(
                _block(f"…and {len(reply.card.lines) - len(lines)} more lines", is_subtle=True, spacing="small")
            )
    if reply.form is not None:
        body += _form_inputs(reply.form, limit, prefill)
        actions.append(
            _submit(
                reply.form.submit_label,
                {"baton_kind": "form", "baton_action": reply.action},
                style="positive",
                inputs=True,
            )
        )
    elif reply.input is not None:
        text_input: dict[str, Any] = {
            "type": "Input.Text",
            "id": "baton_text",
            "isMultiline": reply.input.multiline,
            "maxLength": reply.input.max_length,
        }
        if reply.input.placeholder:
            text_input["placeholder"] = _cut(reply.input.placeholder, 200)
        body.append(text_input)
        actions.append(_submit("Send", {"baton_kind": "text"}, style="positive", inputs=True))
    if reply.rating is not None:
        rating = reply.rating
        numbers = [
            _submit(str(n), {"baton_kind": "choice", "baton_action": reply.action, "baton_value": str(n)})
            for n in range(rating.min, rating.max + 1)
        ]
        body.append({"type": "ActionSet", "actions": numbers[:10]})
        if rating.low_label or rating.high_label:
            legend = f"{rating.min} = {rating.low_label} · {rating.max} = {rating.high_label}"
            body.append(
                _block(to_markdown(_cut(legend, 200)), is_subtle=True, size="small", spacing="none", markdown=True)
            )
    if reply.choices:
        if len(reply.choices) > MAX_BUTTONS or (len(reply.choices) + len(actions) > 6):
            body.append(_choice_set(reply.choices))
            actions.append(
                _submit("Send", {"baton_kind": "pick", "baton_action": reply.action}, style="positive", inputs=True)
            )
        else:
            actions += [_choice_button(choice, reply.action) for choice in reply.choices]
    result: dict[str, Any] = {
        "type": "AdaptiveCard",
        "$schema": SCHEMA_URL,
        "version": VERSION,
        "fallbackText": to_markdown(_cut(reply.text, 500)),
        "body": body,
    }
    if actions:
        result["actions"] = actions
    return result


def _plain(text: str) -> dict[str, Any]:
    """A markdown text message, shortened (with an ellipsis) until it fits the budget."""
    limit: int | None = None
    while True:
        message = {"type": "message", "textFormat": "markdown", "text": to_markdown(_cut(text, limit))}
        size = size_of(message)
        if size <= BUDGET:
            return message
        current = limit or len(text)
        limit = max(1, min(current - 1, int(current * BUDGET / size * 0.95)))


def _text_blocks(text: str, limit: int | None, *, first_spacing: str | None = None) -> list[dict[str, Any]]:
    """One TextBlock per line (hosts differ in how they treat a newline inside one); blank lines become space."""
    text = _cut(text, limit) if limit else text
    blocks: list[dict[str, Any]] = []
    gap = False
    for line in text.split("\n"):
        if not line.strip():
            gap = True
            continue
        spacing = first_spacing if not blocks else ("medium" if gap else "none")
        blocks.append(_block(to_markdown(line), spacing=spacing, markdown=True))
        gap = False
    return blocks


def _block(
    text: str, *, markdown: bool = False, spacing: str | None = None, separator: bool = False, **style: Any
) -> dict[str, Any]:
    """A wrapping TextBlock. Unless `markdown` says the text is already escaped, it is escaped here."""
    block: dict[str, Any] = {"type": "TextBlock", "text": text if markdown else escape_markdown(text), "wrap": True}
    if spacing:
        block["spacing"] = spacing
    if separator:
        block["separator"] = True
    if style.get("weight"):
        block["weight"] = style["weight"]
    if style.get("size"):
        block["size"] = style["size"]
    if style.get("is_subtle"):
        block["isSubtle"] = True
    return block


def _submit(title: str, data: dict[str, Any], *, style: str | None = None, inputs: bool = False) -> dict[str, Any]:
    action: dict[str, Any] = {
        "type": "Action.Submit",
        "title": _cut(title, 80),
        "data": {k: v for k, v in data.items() if v is not None},
    }
    if style:
        action["style"] = style
    if not inputs:
        action["associatedInputs"] = "none"  # a button must not also send a half-typed answer
    return action


def _choice_button(choice: Choice, action: str | None) -> dict[str, Any]:
    style = {"primary": "positive", "danger": "destructive"}.get(choice.style or "")
    return _submit(
        choice.label, {"baton_kind": "choice", "baton_action": action, "baton_value": choice.value}, style=style
    )


def _choice_set(choices: tuple[Choice, ...]) -> dict[str, Any]:
    return {
        "type": "Input.ChoiceSet",
        "id": "baton_choice",
        "style": "compact",
        "isRequired": True,
        "errorMessage": "Pick one of the options.",
        "placeholder": "Choose…",
        "choices": [{"title": _cut(c.label, 200), "value": c.value} for c in choices[:100]],
    }


def _form_inputs(form: Form, limit: int | None, prefill: bool) -> list[dict[str, Any]]:
    elements: list[dict[str, Any]] = [_block(_cut(form.title, 200), weight="bolder", size="medium", separator=True)]
    for field in form.fields:
        label = _cut(field.label, limit or 300)
        common: dict[str, Any] = {"id": f"field_{field.id}", "label": label}
        if not field.optional:
            common |= {"isRequired": True, "errorMessage": "This question needs an answer."}
        value = field.value if prefill else None
        if field.kind == "text":
            element = {"type": "Input.Text", **common, "isMultiline": True, "maxLength": field.max_length}
            if value is not None:
                element["value"] = value
        elif field.kind == "number":
            element = {"type": "Input.Number", **common}
            number = _number(value)
            if number is not None:
                element["value"] = number
        else:
            options = [str(n) for n in range(1, 6)] if field.kind == "rating" else list(field.options)
            element = {
                "type": "Input.ChoiceSet",
                **common,
                "style": "expanded" if field.kind == "rating" else "compact",
                "choices": [{"title": _cut(o, 200), "value": o} for o in options],
            }
            if value is not None and value in options:
                element["value"] = value
        elements.append(element)
    return elements


def _number(value: str | None) -> float | int | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    if number != number or number in (float("inf"), float("-inf")):
        return None
    return int(number) if number.is_integer() else number


def _cut(text: str, limit: int | None) -> str:
    if limit is None or len(text) <= limit:
        return text
    return text[: max(1, limit - 1)].rstrip() + "…"
