"""A real 1:1 agenda card, crowded and hostile, through the Slack and Teams renderers: within each platform's
limits, and every button comes back as a command the 1:1 dialog answers."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from adapters.slack import render as slack
from adapters.slack import translate
from adapters.teams.activities import submitted
from dialogs.engine.contract import COMMAND_ACTION
from dialogs.engine.messages import Reply
from dialogs.oneonone import AGENDA_BUTTONS, MAX_POINT
from storage.models import ActionItem, TalkingPoint
from tests.harness import Rig
from tests.test_oneonone import FIRST, pair_of_after_tick, tick
from tests.test_slack_render import load
from tests.test_teams_cards import check

HOSTILE = "<!channel> **x** [link](http://evil) & "
POINTS, ACTIONS = 23, 6


async def crowded_card(rig: Rig) -> Reply:
    """Arjun's scheduled agenda: 23 talking points of the longest length and 6 action items."""
    pair = await pair_of_after_tick(rig)
    arjun = rig.people["arjun@demo.baton"]

    async def seed(session: Any) -> None:
        for n in range(POINTS):
            text = f"Topic {n + 1} {HOSTILE}" + "é" * MAX_POINT
            session.add(
                TalkingPoint(
                    pair_id=pair.id,
                    author_id=arjun.id,
                    source="typed",
                    text=text[:MAX_POINT],
                    created_at=rig.clock.now(),
                )
            )
        for n in range(ACTIONS):
            session.add(
                ActionItem(
                    owner_id=arjun.id, text=f"Chore {n} {HOSTILE}" * 10, pair_id=pair.id, created_at=rig.clock.now()
                )
            )

    await rig.db.run(seed)
    rig.clock.set(FIRST - timedelta(hours=24))
    await tick(rig)
    [card] = [r for r in rig.delivery.to(arjun.id) if r.card and r.card.title.startswith("1:1 with")]
    assert card.action == COMMAND_ACTION
    assert len(card.choices) == AGENDA_BUTTONS + 2  # ten items, "More items", "Add a talking point"
    return card


async def answers_as_the_1on1(rig: Rig, value: str) -> None:
    """`value`, pressed, is a command the 1:1 dialog takes (not an unknown word, an error or an expired button)."""
    word = value.split()[0]
    assert rig.engine.commands[word].name == "oneonone", value
    chat = rig.chat("arjun@demo.baton")
    chat.replies()
    await chat.send(value)
    said = " ".join(r.text for r in chat.replies())
    for wrong in ("I know *1:1*", "went wrong", "isn't one of yours", "no longer", "already been answered"):
        assert wrong not in said, (value, said)
    await chat.send("cancel")
    chat.replies()


async def test_a_crowded_agenda_renders_within_slacks_limits_and_every_button_routes_back(rig: Rig) -> None:
    card = await crowded_card(rig)
    pages = [card]
    while (more := next((c.value for c in pages[-1].choices if c.label == "More items"), None)) is not None:
        chat = rig.chat("arjun@demo.baton")
        chat.replies()
        await chat.send(more)
        pages.append(chat.expect("Agenda for your 1:1 with Maya", "items"))
    assert len(pages) == -(-(POINTS + ACTIONS) // AGENDA_BUTTONS)
    for reply in pages:
        messages = slack.render(reply)
        buttons = []
        for message in messages:
            assert len(message.blocks) <= slack.MESSAGE_BLOCKS and len(message.text) <= slack.FALLBACK_TEXT
            for block in message.blocks:
                if block["type"] == "section" and "text" in block:
                    assert len(block["text"]["text"]) <= slack.SECTION_TEXT
                    assert "<!channel>" not in block["text"]["text"]
                if block["type"] == "header":
                    assert len(block["text"]["text"]) <= slack.HEADER_TEXT
                if block["type"] == "actions":
                    assert len(block["elements"]) <= slack.BUTTONS_PER_BLOCK
                    buttons += block["elements"]
        assert [b["value"] for b in buttons] == [c.value for c in reply.choices]  # not the text-only fallback
        for button in buttons:
            assert len(button["text"]["text"]) <= slack.BUTTON_TEXT and len(button["value"]) <= slack.BUTTON_VALUE
            payload = load("block_actions.json")
            payload["actions"][0].update(action_id=button["action_id"], value=button["value"])
            inbound = translate.from_block_action(payload)
            assert inbound is not None and inbound.value == button["value"]
            if reply is card:  # the scheduled card's buttons are commands, whatever is on screen
                assert inbound.action == COMMAND_ACTION
                await answers_as_the_1on1(rig, button["value"])


async def test_a_crowded_agenda_renders_as_a_valid_teams_card_and_every_choice_routes_back(rig: Rig) -> None:
    card = await crowded_card(rig)
    message = check(card)  # under 40 KB, valid Adaptive Card 1.5
    content = message["attachments"][0]["content"]
    (choice_set,) = [e for e in content["body"] if e["type"] == "Input.ChoiceSet"]
    values = [c["value"] for c in choice_set["choices"]]
    assert values == [c.value for c in card.choices]
    (send,) = [a for a in content["actions"] if a["data"].get("baton_kind") == "pick"]
    for value in values:
        assert submitted(send["data"] | {"baton_choice": value}) == {"action": COMMAND_ACTION, "value": value}
        await answers_as_the_1on1(rig, value)
