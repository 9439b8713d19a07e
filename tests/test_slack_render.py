"""Slack translation both ways, without a server: recorded-shape payloads → Inbound, Reply → Block Kit within Slack's limits."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from adapters.slack import render, translate
from adapters.slack.installations import SignedStateStore
from dialogs.engine.messages import Card, Choice, Form, FormField, Rating, Reply, TextInput

DATA = Path(__file__).parent / "data" / "slack"


def load(name: str) -> dict:
    return json.loads((DATA / name).read_text())


def texts(blocks: list[dict]) -> list[str]:
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if node.get("type") in ("mrkdwn", "plain_text"):
                found.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(blocks)
    return found


# -- inbound -------------------------------------------------------------------------------------


def test_a_dm_becomes_text_with_slacks_event_id_and_a_dm_address() -> None:
    inbound = translate.from_message(load("event_message_im.json"))
    assert inbound is not None
    assert (inbound.sender.platform, inbound.sender.user_id, inbound.text) == ("slack", "U0MAYA", "help")
    assert inbound.address == {"team": "T0BATON", "channel": "D0MAYA", "user": "U0MAYA"}
    assert inbound.event_id == "Ev0MAYA0001" and inbound.action is None
    assert "help" not in repr(inbound)  # user text never in repr (logs)


@pytest.mark.parametrize(
    "change", [{"subtype": "message_changed"}, {"bot_id": "B1"}, {"channel_type": "channel"}, {"user": None}]
)
def test_edits_bots_and_other_channels_are_ignored(change: dict) -> None:
    payload = load("event_message_im.json")
    payload["event"].update(change)
    assert translate.from_message(payload) is None


def test_slack_markup_becomes_what_the_person_wrote() -> None:
    assert translate.plain_text(
        "hi <@U1|ana> in <#C1|general>: <!channel> &lt;b&gt; &amp; <https://x.io|site> <mailto:a@b.c|a@b.c> <!subteam^S1|@devs>"
    ) == ("hi @ana in #general: @channel <b> & site (https://x.io) a@b.c @devs")
    assert translate.plain_text("&amp;lt;") == "&lt;"  # unescaped once, exactly


def test_a_mention_loses_the_bots_name_and_answers_in_the_dm() -> None:
    inbound = translate.from_mention(load("event_app_mention.json"))
    assert inbound is not None and inbound.text == "help"
    assert inbound.address == {"team": "T0BATON", "channel": "U0MAYA", "user": "U0MAYA"}
    payload = load("event_app_mention.json")
    payload["event"]["text"] = "<@UBATON>"
    assert translate.from_mention(payload).text == "help"


def test_the_slash_command_is_typed_text_keyed_by_its_trigger() -> None:
    fields = load("slash_command.json")
    fields["text"] = "leave  "
    inbound = translate.from_command(fields)
    assert inbound is not None and inbound.text == "leave"
    assert inbound.event_id == f"command:{fields['trigger_id']}"
    fields["text"] = ""
    assert translate.from_command(fields).text == "help"


def test_a_button_carries_the_replys_action_and_the_choices_value() -> None:
    payload = load("block_actions.json")
    payload["actions"][0].update(action_id="checkin:ab12cd34|3", value="4")
    inbound = translate.from_block_action(payload)
    assert inbound is not None and (inbound.action, inbound.value) == ("checkin:ab12cd34", "4")
    assert inbound.address == {"team": "T0BATON", "channel": "D0MAYA", "user": "U0MAYA"}
    again = translate.from_block_action(payload)
    payload["actions"][0].update(action_id="checkin:ab12cd34|2", value="3")
    other = translate.from_block_action(payload)
    assert (
        inbound.event_id == again.event_id == "1763629400.000400:checkin:ab12cd34|3:U0MAYA"
    )  # a double click is one turn
    assert other.event_id != inbound.event_id  # another button is another turn


def test_a_home_tab_button_is_keyed_by_the_view_version() -> None:
    payload = load("block_actions.json")
    payload["container"] = {"type": "view", "view_id": "V0HOME"}
    payload["view"] = {"id": "V0HOME", "hash": "h1", "type": "home"}
    first = translate.from_block_action(payload)
    payload["view"]["hash"] = "h2"  # republished since
    second = translate.from_block_action(payload)
    assert first.address["channel"] == "U0MAYA" and first.event_id != second.event_id


def test_the_form_button_is_left_to_the_modal() -> None:
    payload = load("block_actions.json")
    payload["actions"][0]["action_id"] = "baton_form|checkin:ab12"
    assert translate.from_block_action(payload) is None


def test_a_submitted_modal_becomes_one_inbound_with_json_answers() -> None:
    payload = load("view_submission.json")
    payload["view"]["private_metadata"] = json.dumps({"a": "checkin:ab12cd34", "c": "D0MAYA"})
    payload["view"]["state"]["values"] = {
        "progress": {"value": {"type": "plain_text_input", "value": "a <b> & c"}},
        "pulse": {"value": {"type": "static_select", "selected_option": {"value": "2"}}},
        "count": {"value": {"type": "number_input", "value": "3.5"}},
        "team": {"value": {"type": "static_select", "selected_option": None}},
    }
    inbound = translate.from_view_submission(payload)
    assert inbound is not None and inbound.action == "checkin:ab12cd34" and inbound.event_id == "view:V0FORM0001"
    assert json.loads(inbound.value) == {"progress": "a <b> & c", "pulse": "2", "count": "3.5", "team": None}
    payload["view"]["private_metadata"] = "not json"
    assert translate.from_view_submission(payload) is None


# -- outbound ------------------------------------------------------------------------------------


def test_everything_shown_as_mrkdwn_is_escaped() -> None:
    reply = Reply(
        "Answer from <!channel> & <@U1>",
        card=Card("Digest <b>", (("Blockers <x>", "<!here> & more"),), ("• <https://evil|click>",)),
        rating=Rating(1, 5, "<low>", "high & mighty"),
        input=TextInput("<type>"),
        action="checkin:ab",
    )
    (message,) = render.render(reply)
    assert message.text == "Answer from &lt;!channel&gt; &amp; &lt;@U1&gt;"
    mrkdwn = [t for t in texts(message.blocks)]
    joined = "\n".join(mrkdwn)
    assert "<!" not in joined and "<@" not in joined and "<https" not in joined and "<b>" not in message.text
    assert "&lt;!here&gt; &amp; more" in joined and "1 = &lt;low&gt; · 5 = high &amp; mighty" in joined


def test_buttons_carry_action_and_value_with_unique_action_ids_within_limits() -> None:
    reply = Reply(
        "Pick",
        rating=Rating(1, 5),
        choices=(Choice("Skip question", "__skip__"), Choice("A" * 100, "long"), Choice("Done", "done", "primary")),
        action="checkin:ab12cd34",
    )
    (message,) = render.render(reply)
    buttons = [e for b in message.blocks if b["type"] == "actions" for e in b["elements"]]
    ids = [b["action_id"] for b in buttons]
    assert len(ids) == len(set(ids)) == 8 and all(i.startswith("checkin:ab12cd34|") for i in ids)
    assert [b["value"] for b in buttons] == ["1", "2", "3", "4", "5", "__skip__", "long", "done"]
    assert max(len(b["text"]["text"]) for b in buttons) == 75 and buttons[6]["text"]["text"].endswith("…")
    assert buttons[7]["style"] == "primary"


def test_long_text_is_split_into_sections_of_at_most_3000_characters() -> None:
    paragraphs = "\n\n".join(f"Paragraph {n}: " + "word & " * 120 for n in range(20))
    (message,) = render.render(Reply(paragraphs))
    sections = [b["text"]["text"] for b in message.blocks]
    assert len(sections) > 5 and all(len(s) <= 3000 for s in sections)
    assert render.unescape(" ".join(sections)).split() == paragraphs.split()  # nothing lost or doubled
    assert all(s.startswith("Paragraph") for s in sections)  # cut at paragraph breaks
    assert len(message.text) <= 3000


def test_an_unbroken_text_is_cut_outside_entities() -> None:
    pieces = render.split_text(render.escape("&" * 5000), 3000)
    assert all(len(p) <= 3000 and p.count("&") == p.count("&amp;") for p in pieces)
    assert "".join(pieces) == "&amp;" * 5000


def test_a_reply_of_more_than_50_blocks_becomes_several_messages() -> None:
    reply = Reply("\n\n".join("x" * 2900 for _ in range(120)), choices=(Choice("OK", "ok"),), action="cmd")
    messages = render.render(reply)
    assert len(messages) == 3 and all(len(m.blocks) <= 50 for m in messages)
    assert sum(len(m.blocks) for m in messages) == 121
    assert messages[-1].blocks[-1]["type"] == "actions" and messages[1].text == "(continued)"


def test_a_card_becomes_a_header_fields_and_lines() -> None:
    card = Card("Check-ins, week 47 — Platform", tuple((f"Field {n}", str(n)) for n in range(12)), ("• Tom: pulse 4",))
    (message,) = render.render(Reply("Your team's check-ins are in.", card=card))
    kinds = [b["type"] for b in message.blocks]
    assert kinds == ["section", "header", "section", "section", "section"]
    assert [len(b.get("fields", [])) for b in message.blocks[2:4]] == [10, 2]
    assert message.blocks[1]["text"]["text"] == "Check-ins, week 47 — Platform"


def test_a_form_reply_gets_a_button_that_finds_the_form_again() -> None:
    form = Form("Check-in, week 47", (FormField("progress", "What moved?", "text"),), "Send check-in")
    reply = Reply(
        "All at once.", form=form, choices=(Choice("One at a time instead", "__one__"),), action="checkin:ab12"
    )
    (message,) = render.render(reply, form_ref="42")
    first = message.blocks[1]["elements"][0]
    assert first["text"]["text"] == "Open check-in, week 47" and first["value"] == "42"
    assert first["action_id"] == "baton_form|checkin:ab12"


def test_a_form_becomes_a_modal_within_slacks_limits() -> None:
    form = Form(
        "A very long check-in title for week 47",
        (
            FormField("progress", "What *moved* forward?", "text", value="Shipped <it> & more", optional=False),
            FormField("pulse", "How was the week?", "rating", value="4"),
            FormField("team", "Which team?", "choice", options=("Core", "Edge"), value="Edge"),
            FormField("hours", "Hours spent", "number", value="7.5"),
        ),
        "Send the whole check-in now",
    )
    view = render.modal(form, action="checkin:ab12", channel="D0MAYA")
    assert (
        len(view["title"]["text"]) <= 24 and len(view["submit"]["text"]) <= 24 and view["callback_id"] == "baton_form"
    )
    assert json.loads(view["private_metadata"]) == {"a": "checkin:ab12", "c": "D0MAYA"}
    progress, pulse, team, hours = view["blocks"]
    assert progress["label"]["text"] == "What moved forward?" and progress["optional"] is False
    assert progress["element"]["initial_value"] == "Shipped <it> & more"  # an editable answer is never escaped
    assert pulse["element"]["initial_option"]["value"] == "4" and len(pulse["element"]["options"]) == 5
    assert [o["value"] for o in team["element"]["options"]] == ["Core", "Edge"] and team["element"]["initial_option"][
        "value"
    ] == "Edge"
    assert hours["element"]["type"] == "number_input" and hours["element"]["initial_value"] == "7.5"


def test_the_home_view_shows_a_reply_within_100_blocks() -> None:
    reply = Reply(
        "Hi Maya.",
        card=Card(
            "Your check-ins", (("Next check-in", "Friday"),), tuple(f"• Person {n}: answered" for n in range(300))
        ),
        choices=(Choice("Answer my check-in", "checkin", "primary"),),
        action="cmd",
    )
    view = render.home_view(reply)
    assert view["type"] == "home" and len(view["blocks"]) <= 100
    assert view["blocks"][0] == {"type": "header", "text": {"type": "plain_text", "text": "Your check-ins"}}
    assert "Hi Maya." in texts(view["blocks"])


def test_the_pressed_button_replaces_the_buttons() -> None:
    (message,) = render.render(Reply("Ready?", choices=(Choice("Start", "checkin"),), action="cmd"))
    after = render.pressed(message.blocks, "Q&amp;A <b>")
    assert [b["type"] for b in after] == ["section", "context"]
    assert after[-1]["elements"][0]["text"] == "✓ Q&amp;A &lt;b&gt;"


def test_the_fast_serialiser_agrees_with_slack_sdk_errors_included() -> None:
    blocks = [
        SectionBlock(text=MarkdownTextObject(text="hi")),
        HeaderBlock(text=PlainTextObject(text="Head")),
        ActionsBlock(
            elements=[ButtonElement(text=PlainTextObject(text="x"), action_id="a|1", value="v", style="danger")]
        ),
        View(type="home", blocks=[SectionBlock(text=MarkdownTextObject(text="x"))]),
    ]
    for block in blocks:
        assert render.to_dict(block) == block.to_dict()
    too_long = SectionBlock(text=MarkdownTextObject(text="x" * 3001))
    with pytest.raises(SlackObjectFormationError):
        too_long.to_dict()
    with pytest.raises(SlackObjectFormationError):
        render.to_dict(too_long)


def test_oauth_state_is_signed_and_expires() -> None:
    store = SignedStateStore("secret", expiration_seconds=600)
    state = asyncio.run(store.async_issue())
    assert asyncio.run(store.async_consume(state)) is True
    assert asyncio.run(SignedStateStore("other").async_consume(state)) is False
    assert asyncio.run(store.async_consume(state[:-1] + ("0" if state[-1] != "0" else "1"))) is False
    old = "1000.abc"
    assert asyncio.run(store.async_consume(f"{old}.{store._sign(old)}")) is False
