"""Time, injectable: production uses the system clock, tests move a fake one by hand; and time zones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FakeClock:
    """A clock that stands still until told to move."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def set(self, when: datetime) -> None:
        self._now = when.astimezone(UTC)

    def advance(self, **delta: float) -> datetime:
        self._now += timedelta(**delta)
        return self._now


class FileClock:
    """Reads the time from a file holding an ISO timestamp; the system clock when the file is absent.

    For tests that drive real `serve` processes through a simulated week
    (BATON_CLOCK_FILE). Never set it in production.
    """

    def __init__(self, path: str) -> None:
        from pathlib import Path

        self.path = Path(path)

    def now(self) -> datetime:
        try:
            text = self.path.read_text().strip()
        except OSError:
            return datetime.now(UTC)
        moment = datetime.fromisoformat(text)
        return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


@lru_cache(maxsize=1024)
def tz(name: str) -> ZoneInfo:
    """The zone for an IANA name; UTC when the name is unknown (never raise on a person's setting)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # unknown zones, odd strings, directories of the zone database
        return ZoneInfo("UTC")
