"""The Slack app manifest `baton slack manifest` prints, and the scopes the OAuth flow asks for.

Least privilege: Baton reads only its own DMs and mentions of itself, posts
as itself, and reads users with their email to match them to people.
`im:write` is there only to find the DM a message sent by user id went to,
so that after a crash Baton can check a message is there before sending it
again (a workspace installed without it gets at-least-once instead). To post check-ins to a team
channel, invite Baton to that channel (no `chat:write.public`).
"""

from __future__ import annotations

from typing import Any

COMMAND = "/baton"
EVENTS_PATH = "/slack/events"
INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"

BOT_SCOPES: tuple[str, ...] = (
    "app_mentions:read",  # app_mention events
    "chat:write",  # post replies and check-ins (DMs by user id, channels Baton was invited to)
    "commands",  # /baton
    "im:history",  # message.im events, and reading back a DM before re-sending a message after a crash
    "im:write",  # conversations.open: which DM a message sent by user id went to (for that read-back)
    "users:read",  # users.info: time zone and locale
    "users:read.email",  # users.info: the email that links a Slack user to a person
)
BOT_EVENTS: tuple[str, ...] = (
    "app_home_opened",
    "app_mention",
    "message.im",
    "app_uninstalled",  # no scope needed: forget the workspace's installation
    "user_status_changed",  # users:read: a status that says away counts as away (adapters/slack/status.py)
    "tokens_revoked",
)


def build_manifest(*, url: str | None = None, socket: bool = False) -> dict[str, Any]:
    """A ready app manifest: events and interactivity at `url`/slack/events, or over Socket Mode.

    Exactly one of `url` (https) and `socket` must be given.
    """
    if bool(url) == bool(socket):
        raise ValueError("give exactly one of url and socket")
    base = (url or "").rstrip("/")
    events_url = f"{base}{EVENTS_PATH}" if base else None
    command: dict[str, Any] = {
        "command": COMMAND,
        "description": "Talk to Baton: check-ins, leave, settings",
        "usage_hint": "help | checkin | leave | settings",
        "should_escape": False,
    }
    settings: dict[str, Any] = {
        "event_subscriptions": {"bot_events": list(BOT_EVENTS)},
        "interactivity": {"is_enabled": True},
        "org_deploy_enabled": False,
        "socket_mode_enabled": bool(socket),
        "token_rotation_enabled": False,
    }
    oauth: dict[str, Any] = {"scopes": {"bot": list(BOT_SCOPES)}}
    if events_url:
        command["url"] = events_url
        settings["event_subscriptions"]["request_url"] = events_url
        settings["interactivity"]["request_url"] = events_url
        oauth["redirect_urls"] = [f"{base}{REDIRECT_PATH}"]
    return {
        "_metadata": {"major_version": 1, "minor_version": 1},
        "display_information": {
            "name": "Baton",
            "description": "Weekly check-ins and a steady team rhythm, in Slack.",
            "long_description": (
                "Baton keeps a team's performance rhythm: a short weekly check-in in each person's own time zone, "
                "answered in a DM or in one form, with reminders that respect quiet hours and leave, and a digest "
                "for the manager when the week closes. Type help in the Messages tab, or use /baton help anywhere. "
                "The Home tab shows your next check-in and, for managers, the team's participation this week."
            ),
            "background_color": "#2c2d30",
        },
        "features": {
            "app_home": {
                "home_tab_enabled": True,
                "messages_tab_enabled": True,
                "messages_tab_read_only_enabled": False,
            },
            "bot_user": {"display_name": "Baton", "always_online": True},
            "slash_commands": [command],
        },
        "oauth_config": oauth,
        "settings": settings,
    }
