"""The Slack delivery for the outbox: chat.postMessage through one shared AsyncWebClient.

Rate limits are the outbox's (bot/pacing.py), shared by every replica; this
module only names them (`limits`): a configurable rate per workspace, and per
channel about one message a second — bursts of three, sixty a minute. Before
each post it waits for its `pace.turn()`; a 429 pauses the whole workspace
for its Retry-After, for every replica, and hands the row back to the
outbox with that delay. Errors map onto `DeliveryError`: Slack's permanent ones (the person
left, the channel is gone, the token was revoked…) are marked with their
reason and not retried; everything else is retried with backoff.

Exactly once, across crashes: every post carries its outbox key as message
metadata. A row delivered before (its lease ran out after a kill -9, or a
network error left it unknown whether Slack got it) is looked for in the DM's
recent history first (`conversations.history` with `include_all_metadata`);
found means sent, and it is not posted again. Posts to a shared channel have
no such read-back (it would need `channels:history`): at least once there.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.render import Message, render, text_only
from dialogs.engine.delivery import UNPACED, DeliveryError, Limits, Outgoing, Pace

log = logging.getLogger(__name__)

PERMANENT_ERRORS = frozenset(
    {
        "account_inactive",
        "user_not_found",
        "user_disabled",
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "cannot_dm_bot",
        "messages_tab_disabled",
        "restricted_action",
        "restricted_action_read_only_channel",
        "restricted_action_thread_only_channel",
        "restricted_action_non_threadable_channel",
        "team_access_not_granted",
        "ekm_access_denied",
        "invalid_auth",
        "not_authed",
        "token_revoked",
        "token_expired",
        "no_permission",
        "missing_scope",
        "not_allowed_token_type",
        "org_login_required",
        "team_not_found",
        "msg_too_long",
        "invalid_arguments",
        "too_many_attachments",
        "duplicate_channel_not_found",
        "as_user_not_supported",
    }
)
BLOCK_ERRORS = frozenset({"invalid_blocks", "invalid_blocks_format"})
CHANNEL_WINDOWS = ((3, 1.0), (60, 60.0))  # Slack: "1 per second per channel, short bursts tolerated"
METADATA_TYPE = "baton_outbox"  # the event_type of the metadata every post carries: {"key": "<outbox key>#<part>"}
READ_BACK = 50  # recent DM messages looked through before re-sending one delivered before


TokenLookup = Callable[[str | None, str | None], Awaitable[str | None]]


class SlackDelivery:
    """Delivers outbox rows of channel "slack".

    `address` is {"team", "channel", "user"}: messages to a person go to
    `channel` (a DM id, or the user id, which Slack resolves to the app's DM);
    posts to a shared place (person_id None) go to `channel`. `token_for(team,
    enterprise)` gives the workspace's bot token (None: not installed there).
    """

    channel = "slack"

    def __init__(
        self,
        client: AsyncWebClient,
        token_for: TokenLookup,
        *,
        workspace_rate: float = 10.0,
        workspace_burst: int = 1,  # evenly: never more than `workspace_rate` in any second
        channel_windows: tuple[tuple[int, float], ...] = CHANNEL_WINDOWS,
        ready: Callable[[], bool] = lambda: True,
    ) -> None:
        self.client = client
        self.token_for = token_for
        self.workspace_rate, self.workspace_burst = workspace_rate, workspace_burst
        self.channel_windows = channel_windows
        self.ready = ready
        self._progress: dict[int, int] = {}  # outbox id → parts already posted (replies over 50 blocks)
        self._dms: dict[str, str] = {}  # user id → the app's DM with them (for the read-back)

    def limits(self, address: dict[str, Any]) -> Limits | None:
        team = address.get("team") or "-"
        target = address.get("channel") or address.get("user") or "-"
        return Limits(
            f"slack:{team}",
            self.workspace_rate,
            f"slack:{team}:{target}",
            self.channel_windows,
            self.workspace_burst,
        )

    async def deliver(self, message: Outgoing, pace: Pace = UNPACED) -> None:
        if not self.ready():
            raise DeliveryError("slack client not running", retry_after=2.0)
        address = message.address
        target = address.get("channel") or (address.get("user") if message.person_id is not None else None)
        if not target:
            raise DeliveryError("no Slack channel or user in the address", permanent=True)
        team = address.get("team")
        token = await self.token_for(team, address.get("enterprise"))
        if not token:
            raise DeliveryError(f"Baton is not installed in Slack workspace {team}", permanent=True)
        parts = render(message.reply, form_ref=str(message.id))
        start = self._progress.get(message.id, 0)
        if message.attempt > 1 and start == 0 and message.person_id is not None:
            start = await self._posted_before(token, target, message.key, len(parts))
            if start == len(parts):
                log.info("outbox message %s was already in the DM; not sent again", message.id)
                return
        try:
            for index in range(start, len(parts)):
                await pace.turn()
                await self._post(token, target, pace, parts[index], message, index)
                if len(parts) > 1:
                    # a reply over 50 blocks is several posts: a retry resumes after the last one sent
                    self._progress[message.id] = index + 1
        except DeliveryError as exc:
            if exc.permanent:
                self._progress.pop(message.id, None)
            raise
        self._progress.pop(message.id, None)

    async def _posted_before(self, token: str, target: str, key: str, parts: int) -> int:
        """How many of this message's parts the DM already holds (0 when that can't be told: post then)."""
        try:
            conversation = target if target.startswith("D") else await self._dm_of(token, target)
            if conversation is None:
                return 0
            response = await self.client.conversations_history(
                token=token, channel=conversation, limit=READ_BACK, include_all_metadata=True
            )
        except (SlackApiError, SlackClientError, TimeoutError, OSError, RuntimeError) as exc:
            log.warning("could not check the DM before re-sending (%s); sending", type(exc).__name__)
            return 0
        found = set()
        for posted in response.get("messages") or []:
            metadata = posted.get("metadata") or {}
            if metadata.get("event_type") == METADATA_TYPE:
                found.add((metadata.get("event_payload") or {}).get("key"))
        done = 0
        while done < parts and f"{key}#{done}" in found:
            done += 1
        return done

    async def _dm_of(self, token: str, user: str) -> str | None:
        if not user.startswith("U") and not user.startswith("W"):
            return None  # a shared channel: no read-back (see the module docstring)
        if user not in self._dms:
            response = await self.client.conversations_open(token=token, users=user)
            channel = (response.get("channel") or {}).get("id")
            if not channel:
                return None
            if len(self._dms) >= 10_000:
                self._dms.clear()
            self._dms[user] = channel
        return self._dms[user]

    async def _post(
        self, token: str, target: str, pace: Pace, part: Message, message: Outgoing, index: int = 0
    ) -> None:
        try:
            await self._call(token, target, part, f"{message.key}#{index}")
        except SlackApiError as exc:
            error, status = _error_of(exc)
            if status == 429 or error == "ratelimited":
                retry_after = _retry_after(exc)
                await pace.pause(retry_after)
                raise DeliveryError("ratelimited", retry_after=retry_after, rate_limited=True) from None
            if error in BLOCK_ERRORS and part.blocks:
                log.error("slack refused the blocks of outbox message %s (%s); sending text only", message.id, error)
                await self._post(token, target, pace, text_only(message.reply), message, index)
                return
            if error in PERMANENT_ERRORS:
                raise DeliveryError(error, permanent=True) from None
            raise DeliveryError(error or f"HTTP {status}") from None
        except (TimeoutError, SlackClientError, OSError, RuntimeError) as exc:
            # SlackRequestError, a dropped connection, a timeout, the session closing at shutdown
            # (aiohttp's RuntimeError): whether Slack got it is unknown; retry
            raise DeliveryError(f"network: {type(exc).__name__}") from None

    async def _call(self, token: str, target: str, part: Message, key: str) -> None:
        kwargs: dict[str, Any] = {
            "token": token,
            "channel": target,
            "text": part.text,
            "unfurl_links": False,
            "unfurl_media": False,
            "metadata": {"event_type": METADATA_TYPE, "event_payload": {"key": key}},
        }
        if part.blocks:
            kwargs["blocks"] = part.blocks
        await self.client.chat_postMessage(**kwargs)


def _error_of(exc: SlackApiError) -> tuple[str | None, int]:
    response = exc.response
    status = getattr(response, "status_code", 0) or 0
    try:
        error = response.get("error") if response is not None else None
    except (AttributeError, KeyError, TypeError, ValueError):  # a non-JSON body
        error = None
    return error, status


def _retry_after(exc: SlackApiError, default: float = 1.0) -> float:
    headers = getattr(exc.response, "headers", None) or {}
    for key, value in dict(headers).items():
        if key.lower() == "retry-after":
            try:
                return max(0.0, float(value[0] if isinstance(value, list) else value))
            except (TypeError, ValueError):
                break
    return default
