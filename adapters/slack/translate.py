"""Slack payloads → the neutral `Inbound`. Pure functions: no I/O, and nothing from the SDK leaves.

One small function per payload kind, as the table at the bottom says. Each
returns None for what Baton ignores (bots, edits, other channels).

Delivery ids (`Inbound.event_id`), which the engine uses to drop repeats:
events use Slack's `event_id` (the same on every retry); a button uses the
message, the button and the person (`{message_ts}:{action_id}:{user}`), so a
double click is one turn but two different buttons are two; a modal uses its
view id; a slash command its trigger id.
"""

from __future__ import annotations

import json
import re
from typing import Any

from adapters.slack.render import FORM_ACTION
from dialogs.engine.messages import Inbound, Sender

PLATFORM = "slack"

_MARKUP = re.compile(r"<([^<>]*)>")
_LEADING_MENTIONS = re.compile(r"^\s*(?:<@[A-Z0-9]+(?:\|[^>]*)?>[\s,:]*)+")


def plain_text(slack_text: str) -> str:
    """What a person wrote, from Slack's message markup: `<@U1|ana>` → `@ana`, `<!channel>` → `@channel`,
    `<https://x|site>` → `site (https://x)`, and `&lt;` `&gt;` `&amp;` back to `<` `>` `&`."""

    def resolve(match: re.Match[str]) -> str:
        target, _, label = match.group(1).partition("|")
        if target.startswith("@"):
            return "@" + (label or target[1:])
        if target.startswith("#"):
            return "#" + (label or target[1:])
        if target.startswith("!"):
            word = target[1:].split("^", 1)[0]
            if word in ("here", "channel", "everyone"):
                return "@" + word
            if word == "subteam":
                return "@" + (label.lstrip("@") or "group")
            return label or word
        if target.startswith("mailto:"):
            return label or target[7:]
        return f"{label} ({target})" if label and label != target else target

    text = _MARKUP.sub(resolve, slack_text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def address(team: str | None, user: str, channel: str | None = None) -> dict[str, Any]:
    """Where replies go: a DM is reached by the user id itself (no conversations.open needed)."""
    return {"team": team, "channel": channel or user, "user": user}


def _team(body: dict[str, Any]) -> str | None:
    team = body.get("team_id") or body.get("team")
    if isinstance(team, dict):
        team = team.get("id")
    return team or (body.get("user") or {}).get("team_id")


def _inbound(body: dict[str, Any], user: str, *, channel: str | None = None, **fields: Any) -> Inbound:
    return Inbound(sender=Sender(PLATFORM, user), address=address(_team(body), user, channel), raw=body, **fields)


def from_message(body: dict[str, Any]) -> Inbound | None:
    """A direct message to Baton (`message.im`). Edits, bot messages and other channels are ignored;
    a message with a file attached counts for its text."""
    event = body.get("event") or {}
    user = event.get("user")
    if (
        event.get("channel_type") != "im"
        or event.get("subtype") not in (None, "file_share")
        or event.get("bot_id")
        or not user
    ):
        return None
    return _inbound(
        body,
        user,
        channel=event.get("channel"),
        text=plain_text(event.get("text") or ""),
        event_id=body.get("event_id"),
    )


def from_mention(body: dict[str, Any]) -> Inbound | None:
    """`@Baton help` in a channel. Baton answers in the person's DM: its answers are about them."""
    event = body.get("event") or {}
    user = event.get("user")
    if not user or event.get("bot_id"):
        return None
    text = _LEADING_MENTIONS.sub("", event.get("text") or "", count=1)
    return _inbound(body, user, text=plain_text(text).strip() or "help", event_id=body.get("event_id"))


def from_command(body: dict[str, Any]) -> Inbound | None:
    """`/baton <what>`: the same as typing <what> in the DM (`/baton` alone is help)."""
    user = body.get("user_id")
    if not user:
        return None
    text = plain_text(body.get("text") or "").strip() or "help"
    return _inbound(body, user, text=text, event_id=f"command:{body.get('trigger_id') or body.get('command_ts') or ''}")


def action_parts(action_id: str) -> tuple[str, str]:
    """`{reply.action}|{index}` → (reply.action, index)."""
    kind, _, index = action_id.rpartition("|")
    return (kind, index) if kind else (action_id, "")


def from_block_action(body: dict[str, Any]) -> Inbound | None:
    """A pressed button (or chosen option) → Inbound(action=reply.action, value=choice.value)."""
    actions = body.get("actions") or []
    user = (body.get("user") or {}).get("id")
    if not actions or not user:
        return None
    action = actions[0]
    action_id = action.get("action_id") or ""
    if action_id.startswith(FORM_ACTION + "|"):
        return None  # opens a modal; see from_view_submission for its answers
    value = action.get("value")
    if value is None and action.get("selected_option"):
        value = action["selected_option"].get("value")
    container = body.get("container") or {}
    if container.get("type") == "view" or not container.get("message_ts"):
        view = body.get("view") or {}
        where = f"{container.get('view_id') or view.get('id')}:{view.get('hash', '')}"
        channel = None
    else:
        where = container["message_ts"]
        channel = container.get("channel_id") or (body.get("channel") or {}).get("id")
    kind, _ = action_parts(action_id)
    return _inbound(body, user, channel=channel, action=kind, value=value or "", event_id=f"{where}:{action_id}:{user}")


def form_answers(view: dict[str, Any]) -> dict[str, str | None]:
    """{field id: answer} from a submitted modal's state (text, number or selected option)."""
    answers: dict[str, str | None] = {}
    for block_id, elements in ((view.get("state") or {}).get("values") or {}).items():
        element = elements.get("value") or next(iter(elements.values()), {})
        if element.get("type") in ("static_select", "radio_buttons"):
            answers[block_id] = (element.get("selected_option") or {}).get("value")
        else:
            answers[block_id] = element.get("value")
    return answers


def form_metadata(view: dict[str, Any]) -> dict[str, Any]:
    try:
        metadata = json.loads(view.get("private_metadata") or "{}")
    except ValueError:
        return {}
    return metadata if isinstance(metadata, dict) else {}


def from_view_submission(body: dict[str, Any]) -> Inbound | None:
    """A submitted form modal → Inbound(action from private_metadata, value = JSON answers)."""
    view = body.get("view") or {}
    user = (body.get("user") or {}).get("id")
    action = form_metadata(view).get("a")
    if not user or not action:
        return None
    return _inbound(
        body,
        user,
        action=action,
        value=json.dumps(form_answers(view), ensure_ascii=False),
        event_id=f"view:{view.get('id')}",
    )


# The table: Slack payload kind → translator.
TRANSLATORS = {
    "message": from_message,
    "app_mention": from_mention,
    "command": from_command,
    "block_actions": from_block_action,
    "view_submission": from_view_submission,
}


# -- the shape of a request, checked before anything reads it --------------------------------------------

_STRING_FIELDS = ("type", "user", "text", "channel", "channel_type", "subtype", "bot_id", "team", "ts", "tab")


def malformed(raw: bytes, content_type: str) -> str | None:
    """Why a (signed) request body is not one Slack sends, or None when its shape is usable.

    Slack's own requests always pass; this keeps a forged-but-signed or corrupted body from reaching code
    that expects Slack's shapes (a 400, never a 500 that Slack would retry)."""
    try:
        if content_type.startswith("application/json"):
            body = json.loads(raw or b"{}")
            if not isinstance(body, dict):
                return "the body is not a JSON object"
            event = body.get("event")
            if event is not None:
                if not isinstance(event, dict):
                    return "event is not an object"
                if any(k in event and not isinstance(event[k], str) for k in _STRING_FIELDS):
                    return "an event field has the wrong type"
            return None
        fields = dict(_form_fields(raw))
        payload = fields.get("payload")
        if payload is None:
            return None  # a slash command: form fields are strings by construction
        parsed = json.loads(payload)
        if not isinstance(parsed, dict) or not isinstance(parsed.get("type"), str):
            return "payload is not an object with a type"
        user = parsed.get("user")
        if user is not None and not (isinstance(user, dict) and isinstance(user.get("id", ""), str)):
            return "payload.user has the wrong type"
        actions = parsed.get("actions")
        if actions is not None and not (
            isinstance(actions, list)
            and all(
                isinstance(a, dict) and all(isinstance(a.get(k, ""), str) for k in ("action_id", "value", "block_id"))
                for a in actions
            )
        ):
            return "payload.actions has the wrong shape"
        for key in ("view", "container", "message", "team", "channel"):
            if key in parsed and parsed[key] is not None and not isinstance(parsed[key], dict):
                return f"payload.{key} is not an object"
        return None
    except RecursionError:
        return "the body is nested too deeply"
    except (ValueError, UnicodeDecodeError):
        return "the body is not valid JSON"


def _form_fields(raw: bytes) -> list[tuple[str, str]]:
    from urllib.parse import parse_qsl

    return parse_qsl(raw.decode("utf-8"), keep_blank_values=True)
