"""The manager and HR dashboard under /dashboard (being built; see issue 9)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from bot.app import Baton


def setup_dashboard(app: web.Application, baton: Baton) -> None:
    """Add the dashboard's routes. Placeholder until the dashboard lands."""
    return None
