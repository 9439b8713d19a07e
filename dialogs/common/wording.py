"""Small helpers for the words people type and the words Baton shows back."""

from __future__ import annotations

NONE_WORDS = frozenset({"", "-", "–", "no", "none", "nothing", "nope", "n/a", "na", "nothing really", "all good"})


def is_nothing(text: str | None) -> bool:
    """True when a free-text answer means 'nothing' (no blocker, no request)."""
    return text is None or text.strip().strip(".!").casefold() in NONE_WORDS


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
