"""Incoming Bot Framework activities → Baton's neutral `Inbound`, and the plain conversation reference.

`parse` checks an activity's shape with the Microsoft 365 Agents SDK's
pydantic model and hands back the plain JSON dict the model accepted; the
rest of this module works on that dict, so no SDK object leaves it. The card submit format is the one `cards.py` writes:
`{"baton_kind": "choice", "baton_action": ..., "baton_value": ...}` plus the
card's inputs (`baton_text`, `baton_choice`, `field_<id>`), merged by Teams.
"""

from __future__ import annotations

import json
import logging
import re
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from microsoft_agents.activity import Activity
from pydantic import ValidationError
from pydantic_core import PydanticSerializationError

from dialogs.engine.messages import Inbound, Sender

PLATFORM = "teams"
FIELD_PREFIX = "field_"
EXECUTE_INVOKE = "adaptiveCard/action"
# ChannelAccount / ConversationAccount fields: what a stored reference keeps of each.
_ACCOUNT_KEYS = ("id", "name", "aadObjectId", "role")
_CONVERSATION_KEYS = ("isGroup", "conversationType", "id", "name", "aadObjectId", "role", "tenantId")
_MENTION = re.compile(r"<at>[^<]{0,200}</at>\s*", re.IGNORECASE)
# Fields whose content is the sender's own data: kept as sent, never cleaned.
_FREE_FORM = frozenset({"value", "channelData", "entities", "attachments", "properties", "text", "summary"})


class BadActivity(ValueError):
    """The body is JSON but not a Bot Framework activity; the message names the field, never its content."""


class _NoActivityDumps(logging.Filter):
    """The SDK logs every failed `Activity` validation at ERROR with pydantic's text, which quotes the input:
    what a person wrote would land in the logs. `parse` reports the failure itself, without the content."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Validation error for Activity")


_SDK_ACTIVITY_LOG = logging.getLogger("microsoft_agents.activity.activity")
if not any(isinstance(f, _NoActivityDumps) for f in _SDK_ACTIVITY_LOG.filters):
    _SDK_ACTIVITY_LOG.addFilter(_NoActivityDumps())


def parse(body: dict[str, Any]) -> dict[str, Any]:
    """The activity in `body`, checked against the Agents SDK's `Activity` model, as plain JSON (camelCase).

    Channels and testers send explicit `null` or `""` for optional fields
    (`locale`, `replyToId`, `conversation.name`, ...), which the model
    refuses although they mean "absent"; those are dropped first (outside
    the sender's own data). Unknown top-level fields are dropped, as the
    model drops them. Raises BadActivity for anything else of the wrong shape.
    """
    cleaned = {key: _without_blanks(key, value) for key, value in body.items() if value is not None and value != ""}
    try:
        return Activity.model_validate(cleaned).model_dump(by_alias=True, exclude_none=True, mode="json")
    except ValidationError as exc:
        where = ".".join(str(part) for part in exc.errors()[0]["loc"]) if exc.errors() else "?"
        raise BadActivity(f"field {where[:60]} has the wrong shape") from None
    except (TypeError, ValueError, RecursionError, PydanticSerializationError) as exc:
        # The SDK's own checks raise TypeError (an empty channelId); dumping fails on absurdly deep channelData.
        raise BadActivity(f"not an activity ({type(exc).__name__})") from None


def _without_blanks(key: str, value: Any) -> Any:
    if key in _FREE_FORM or not isinstance(value, dict):
        return value
    return {k: v for k, v in value.items() if v is not None and v != ""}


def reference_of(activity: dict[str, Any]) -> dict[str, Any]:
    """The activity's conversation reference as plain JSON, in the shape botbuilder stored and the SDK reads.

    What `Activity.get_conversation_reference()` gives, dumped by alias (a
    test holds the two together), without building SDK objects on every
    message; references botbuilder-era Baton stored have the same keys.
    Stored in `Identity.address` and used for every later send.
    """
    reference: dict[str, Any] = {}
    if activity.get("type") != "conversationUpdate" and activity.get("channelId") not in ("directline", "webchat"):
        _put(reference, "activityId", activity.get("id"))
    _put(reference, "user", _account(activity.get("from"), _ACCOUNT_KEYS))
    _put(reference, "bot", _account(activity.get("recipient"), _ACCOUNT_KEYS))
    _put(reference, "conversation", _account(activity.get("conversation"), _CONVERSATION_KEYS))
    for key in ("channelId", "locale", "serviceUrl"):
        _put(reference, key, activity.get(key))
    return reference


def fingerprint(reference: dict[str, Any]) -> tuple[Any, ...]:
    """What decides where a message goes; a reference that differs only elsewhere needs no rewrite."""
    return (
        reference.get("serviceUrl"),
        (reference.get("conversation") or {}).get("id"),
        (reference.get("bot") or {}).get("id"),
        (reference.get("user") or {}).get("id"),
    )


def is_personal(activity: dict[str, Any]) -> bool:
    """A one-to-one chat with Baton (the Emulator sends no conversation type: treated as personal)."""
    conversation = activity.get("conversation") or {}
    return conversation.get("conversationType") in (None, "personal") and not conversation.get("isGroup")


def external_id(activity: dict[str, Any]) -> str | None:
    """The sender's stable id: the Azure AD object id in Teams, the channel account id elsewhere."""
    sender = activity.get("from") or {}
    value = sender.get("aadObjectId") or sender.get("id")
    return str(value)[:255] if value else None


def sender_of(activity: dict[str, Any]) -> Sender:
    account = activity.get("from") or {}
    return Sender(
        platform=PLATFORM,
        user_id=external_id(activity) or "",
        name=account.get("name") if isinstance(account.get("name"), str) else None,
        timezone=timezone_of(activity),
        locale=locale_of(activity),
    )


def timezone_of(activity: dict[str, Any]) -> str | None:
    """The IANA zone the client reported (`localTimezone`, or the clientInfo entity), if it is a real one."""
    candidates = [activity.get("localTimezone")]
    for entity in activity.get("entities") or ():
        if isinstance(entity, dict) and entity.get("type") == "clientInfo":
            candidates.append(entity.get("timezone"))
    for candidate in candidates:
        if isinstance(candidate, str) and _known_zone(candidate):
            return candidate
    return None


def locale_of(activity: dict[str, Any]) -> str | None:
    locale = activity.get("locale")
    if not locale:
        for entity in activity.get("entities") or ():
            if isinstance(entity, dict) and entity.get("type") == "clientInfo":
                locale = entity.get("locale")
    return locale[:16] if isinstance(locale, str) and locale else None


def tenant_of(reference: dict[str, Any]) -> str:
    return str((reference.get("conversation") or {}).get("tenantId") or "-")


def inbound_of(activity: dict[str, Any], reference: dict[str, Any]) -> Inbound | None:
    """The `Inbound` for a message or a card action; None for anything Baton does not act on."""
    kind = activity.get("type")
    if kind == "message":
        value = activity.get("value")
        if isinstance(value, dict):
            fields = submitted(value)
        elif value is not None:
            return None  # a submit from some other card: not ours to interpret
        else:
            text = activity.get("text")
            fields = {"text": _MENTION.sub("", text) if isinstance(text, str) else ""}
    elif kind == "invoke" and activity.get("name") == EXECUTE_INVOKE:
        action = (activity.get("value") or {}).get("action") or {}
        data = action.get("data")
        fields = submitted(data) if isinstance(data, dict) else None
    else:
        return None
    if fields is None:
        return None
    return Inbound(
        sender=sender_of(activity),
        address=reference,
        event_id=str(activity["id"])[:200] if activity.get("id") else None,
        raw=activity,
        **fields,
    )


def submitted(data: dict[str, Any]) -> dict[str, str | None] | None:
    """Translate a card submit's data into Inbound fields (`text`, or `action` + `value`); None if not Baton's."""
    kind = data.get("baton_kind")
    action = data.get("baton_action") if isinstance(data.get("baton_action"), str) else None
    if kind in ("choice", "pick"):
        raw = data.get("baton_value") if kind == "choice" else data.get("baton_choice")
        value = _answer(raw)
        if value is None or value == "":
            return None
        return {"action": action, "value": value} if action else {"text": value}
    if kind == "text":
        return {"text": _answer(data.get("baton_text")) or ""}
    if kind == "form":
        answers = {key[len(FIELD_PREFIX) :]: _answer(raw) for key, raw in data.items() if key.startswith(FIELD_PREFIX)}
        value = json.dumps({key: answer for key, answer in answers.items() if answer is not None}, ensure_ascii=False)
        return {"action": action, "value": value} if action else None
    return None


def members_added(activity: dict[str, Any]) -> bool:
    """A conversationUpdate that adds someone (Baton or the user), or an app installation."""
    kind = activity.get("type")
    if kind == "conversationUpdate":
        return bool(activity.get("membersAdded"))
    if kind == "installationUpdate":
        return str(activity.get("action") or "").startswith("add")
    return False


def installer_of(activity: dict[str, Any]) -> dict[str, Any]:
    """The activity with `from` set to the person who added Baton (not Baton itself)."""
    bot_id = (activity.get("recipient") or {}).get("id")
    sender = activity.get("from") or {}
    if sender.get("id") and sender.get("id") != bot_id:
        return activity
    for member in activity.get("membersAdded") or ():
        if isinstance(member, dict) and member.get("id") and member.get("id") != bot_id:
            return {**activity, "from": member}
    return activity


def _answer(raw: Any) -> str | None:
    if raw is None:
        return None
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, float) and raw.is_integer():
        return str(int(raw))
    return str(raw) if isinstance(raw, (str, int, float)) else None


def _account(raw: Any, keys: tuple[str, ...]) -> dict[str, Any] | None:
    if not isinstance(raw, dict):
        return None
    return {key: raw[key] for key in keys if raw.get(key) is not None}


def _put(target: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        target[key] = value


@lru_cache(maxsize=1024)
def _known_zone(name: str) -> bool:
    if not 2 <= len(name) <= 64 or name.startswith(("/", ".")) or ".." in name:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # unknown zones, odd strings, directories of the zone database
        return False
    return True
