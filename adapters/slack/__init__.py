"""Slack: bolt over HTTP (`/slack/events`) or Socket Mode, Block Kit, App Home, exactly-once turns.

The package, one idea per module:

- `translate` — Slack payloads → `Inbound` (pure)
- `render` — `Reply` → Block Kit messages, form modals and the Home tab (pure)
- `identity` — Slack users → people (identity, users.info, email)
- `delivery` — the outbox's Slack channel: chat.postMessage with rate limits
- `installations` — OAuth: bolt's installation store in Baton's database
- `manifest` — the app manifest and its least-privilege scopes
- `adapter` — bolt's app and listeners, background turns, lifecycle

slack_bolt and slack_sdk are imported only inside this package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from adapters.slack.adapter import SlackAdapter
    from bot.app import Baton

SLACK_KEY = web.AppKey("slack", object)


def setup_slack(app: web.Application, baton: Baton) -> SlackAdapter:
    """Add Slack's routes and lifecycle to `app` and register the Slack delivery with the outbox sender."""
    from adapters.slack.adapter import SlackAdapter

    adapter = SlackAdapter(baton)
    adapter.routes(app)
    app.cleanup_ctx.append(adapter.lifecycle)
    baton.sender.register(adapter.delivery)
    app[SLACK_KEY] = adapter
    return adapter


def slack_of(app: web.Application) -> SlackAdapter:
    """The Slack adapter set up on `app` (tests and benchmarks look inside)."""
    return app[SLACK_KEY]  # type: ignore[return-value]
