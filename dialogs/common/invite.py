"""A pair's 1:1 as an iCalendar invitation (RFC 5545): a recurring event people add themselves.

Baton books nothing in anyone's calendar; it offers this file in chat and on the dashboard. The event
carries the names and the rhythm only, never the agenda. Its UID is stable per pair, so importing an
updated invitation after a change of rhythm replaces the old series rather than adding a second one.
"""

from __future__ import annotations

import hmac
from datetime import datetime, timedelta

from dialogs.common.cadence import DAYS
from dialogs.common.periods import hhmm, local_datetime
from dialogs.engine.clock import tz
from dialogs.engine.sealing import Sealer
from storage.models import OneOnOne, Person

RRULE_DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


def ics(pair: OneOnOne, manager: Person, report: Person, *, now: datetime, host: str = "baton") -> bytes:
    """The pair's recurring 1:1, starting at the rhythm's anchor, in the manager's time zone."""
    import icalendar

    zone = tz(manager.timezone)
    start = local_datetime(pair.anchor, hhmm(pair.at), zone).astimezone(zone)
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//Baton//1:1//EN")
    calendar.add("version", "2.0")
    calendar.add("method", "PUBLISH")
    event = icalendar.Event()
    event.add("uid", f"one-on-one-{pair.id}@{host}")
    event.add("dtstamp", now)
    event.add("sequence", max(0, int((now - pair.created_at).total_seconds() // 60)))  # later files win
    event.add("summary", f"1:1 {manager.name} / {report.name}")
    event.add("dtstart", start)
    event.add("dtend", start + timedelta(minutes=pair.minutes))
    event.add("rrule", {"freq": "weekly", "interval": pair.every_weeks, "byday": RRULE_DAYS[pair.weekday]})
    event.add(
        "description",
        f"Every {pair.every_weeks} week(s) on {DAYS[pair.weekday]}. Baton sends the agenda the day before; "
        "type *1:1* to see it or add a talking point.",
    )
    calendar.add_component(event)
    calendar.add_missing_timezones()
    return bytes(calendar.to_ical())


INVITE_PATH = "/1on1/invite"  # GET INVITE_PATH/{token}.ics — the link chat offers; no sign-in, names and times only


def invite_token(sealer: Sealer, pair: OneOnOne) -> str:
    """The capability in a chat link to the invitation: the pair and a keyed hash of it under Baton's
    secret. The rhythm is part of it, so a link to an old rhythm stops working when the rhythm changes."""
    return f"{pair.id}-{sealer.tag(f'1on1-invite:{pair.id}:{rhythm_version(pair)}')[:32]}"


def invite_link(public_url: str, sealer: Sealer, pair: OneOnOne) -> str:
    return f"{public_url.rstrip('/')}{INVITE_PATH}/{invite_token(sealer, pair)}.ics"


def rhythm_version(pair: OneOnOne) -> str:
    return f"{pair.every_weeks}.{pair.minutes}.{pair.weekday}.{pair.at}.{pair.anchor.isoformat()}"


def token_pair(token: str) -> int | None:
    """The pair id a token names (to be checked with `check_token`), or None for something else."""
    head, _, _ = token.partition("-")
    return int(head) if head.isascii() and head.isdigit() and len(head) < 10 else None  # fits the id column


def check_token(sealer: Sealer, token: str, pair: OneOnOne) -> bool:
    return hmac.compare_digest(token.encode(), invite_token(sealer, pair).encode())
