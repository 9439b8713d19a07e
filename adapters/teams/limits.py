"""Teams' documented send limits, which bot/pacing.py keeps for every replica together.

Per bot and conversation Teams allows 7 sends per second, 8 per 2 s, 60 per
30 s and 1,800 per hour; per app and tenant about 50 requests per second
(Microsoft's rate-limit page). The tenant rate Baton uses is
`BATON_TEAMS_TENANT_RATE` (default 30, at most 50).
"""

from __future__ import annotations

CONVERSATION_WINDOWS: tuple[tuple[int, float], ...] = ((7, 1.0), (8, 2.0), (60, 30.0), (1800, 3600.0))
