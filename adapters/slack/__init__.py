"""Slack: bolt over HTTP (`/slack/events`) or Socket Mode, Block Kit, App Home, exactly-once turns.

The package, one idea per module:

- `translate` — Slack payloads → `Inbound` (pure)
- `render` — `Reply` → Block Kit messages, form modals and the Home tab (pure)
- `identity` — Slack users → people (identity, users.info, email)
- `delivery` — the outbox's Slack channel: chat.postMessage with rate limits
- `installations` — OAuth: bolt's installation store in Baton's database
- `manifest` — the app manifest and its least-privilege scopes
- `adapter` — bolt's app and listeners, background turns, start and stop (`SlackAdapter`)

slack_bolt and slack_sdk are imported only inside this package.
"""

from __future__ import annotations

from adapters.slack.adapter import SlackAdapter, SlackOptions

__all__ = ["SlackAdapter", "SlackOptions"]
