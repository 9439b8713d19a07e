"""`settings`: a person's own time zone, quiet hours, and how they like to be recognised."""

from __future__ import annotations

import re
from zoneinfo import available_timezones

from dialogs.common.manners import HELD_DAYS, held_summary
from dialogs.engine import END, Dialog, State, Transition, Turn
from dialogs.engine.errors import UserFacingError
from dialogs.engine.messages import Choice, Reply, TextInput

# How a person likes to be recognised (Person.recognition; "either" is stored as None):
# (button, how the menu describes it, the confirmation).
RECOGNITION = {
    "private": ("In private", "in private", "kudos for you will come to you alone."),
    "public": ("In public", "in public", "kudos for you may also be posted in your team's channel."),
    "either": ("Either is fine", "either way", "whoever gives you kudos can choose where."),
}
QUIET = re.compile(r"^\s*(\d{1,2})[:.h]?(\d{2})?\s*[-–—to ]+\s*(\d{1,2})[:.h]?(\d{2})?\s*$")


def parse_quiet_hours(text: str) -> tuple[str, str]:
    """'21:00-07:30', '21-7', '22h to 6h' → ('21:00', '07:30'). Raises UserFacingError if unreadable."""
    match = QUIET.match(text)
    if not match:
        raise UserFacingError("I couldn't read that. Please write it like *21:00-07:30*.")
    h1, m1, h2, m2 = match.groups()
    start, end = (int(h1), int(m1 or 0)), (int(h2), int(m2 or 0))
    if not all(0 <= h <= 23 and 0 <= m <= 59 for h, m in (start, end)):
        raise UserFacingError("Hours go from 00 to 23 and minutes from 00 to 59. Please try again, e.g. *21:00-07:30*.")
    return f"{start[0]:02d}:{start[1]:02d}", f"{end[0]:02d}:{end[1]:02d}"


def find_timezone(text: str) -> str | None:
    """The IANA zone a person meant ('europe/berlin', 'Berlin', 'Tokyo'), or None."""
    wanted = text.strip().replace(" ", "_").casefold()
    zones = available_timezones()
    exact = {z.casefold(): z for z in zones}
    if wanted in exact:
        return exact[wanted]
    by_city = [z for z in zones if z.rsplit("/", 1)[-1].casefold() == wanted and "/" in z and not z.startswith("Etc/")]
    return sorted(by_city)[0] if len(by_city) >= 1 else None


class SettingsDialog(Dialog):
    name = "settings"
    title = "your settings"
    commands = ("settings",)
    summary = "Change your time zone, quiet hours and how you like to be recognised."

    def __init__(self) -> None:
        self.first = "menu"
        self.states = {
            "menu": State(self.menu_prompt, on_choice=self.on_menu),
            "timezone": State(self.timezone_prompt, on_text=self.on_timezone, max_length=64),
            "quiet": State(self.quiet_prompt, on_text=self.on_quiet, on_choice=self.on_quiet, max_length=32),
            "recognition": State(self.recognition_prompt, on_choice=self.on_recognition),
        }

    async def menu_prompt(self, turn: Turn) -> Reply:
        p = turn.person
        held = await held_summary(turn.session, p.id, turn.now) if p.id is not None else None
        return Reply(
            f"Your time zone is *{p.timezone}* and your quiet hours are *{p.quiet_start}–{p.quiet_end}* "
            f"(I send nothing on my own then). You like recognition *{RECOGNITION[p.recognition or 'either'][1]}*. "
            + (f"Held for you in the last {HELD_DAYS} days: {held}. " if held else "")
            + "What would you like to change?",
            choices=(
                Choice("Time zone", "timezone"),
                Choice("Quiet hours", "quiet"),
                Choice("Recognition", "recognition"),
                Choice("Done", "done"),
            ),
        )

    async def on_menu(self, turn: Turn, value: str) -> Transition:
        if value == "done":
            turn.say("All set.")
            return END
        return value if value in ("timezone", "quiet", "recognition") else None

    def timezone_prompt(self, turn: Turn) -> Reply:
        return Reply(
            "Which time zone are you in? A city or an IANA name works, e.g. *Europe/Berlin* or *Tokyo*.",
            input=TextInput(placeholder="Europe/Berlin", max_length=64, multiline=False),
        )

    async def on_timezone(self, turn: Turn, text: str) -> Transition:
        found = find_timezone(text)
        if found is None:
            raise UserFacingError(
                "I don't know that time zone. Try a city like *Lisbon* or a name like *America/New_York*."
            )
        turn.person.timezone = found
        turn.session.add(turn.person)
        turn.say(f"Done: your time zone is now *{found}*.")
        return "menu"

    def quiet_prompt(self, turn: Turn) -> Reply:
        return Reply(
            "When should I stay quiet? Write it like *21:00-07:30*, or pick one.",
            choices=(Choice("20:00–08:00", "20:00-08:00"), Choice("22:00–07:00", "22:00-07:00")),
            input=TextInput(placeholder="21:00-07:30", max_length=32, multiline=False),
        )

    async def on_quiet(self, turn: Turn, text: str) -> Transition:
        start, end = parse_quiet_hours(text)
        turn.person.quiet_start, turn.person.quiet_end = start, end
        turn.session.add(turn.person)
        turn.say(f"Done: quiet hours are now *{start}–{end}* your time.")
        return "menu"

    def recognition_prompt(self, turn: Turn) -> Reply:
        return Reply(
            "When someone gives you kudos, how would you like it? In private comes only to you; "
            "in public may also be posted in your team's channel, if it has one.",
            choices=tuple(Choice(label, value) for value, (label, _, _) in RECOGNITION.items()),
        )

    async def on_recognition(self, turn: Turn, value: str) -> Transition:
        if value not in RECOGNITION:
            return None
        turn.person.recognition = None if value == "either" else value
        turn.session.add(turn.person)
        turn.say(f"Done: {RECOGNITION[value][2]}")
        return "menu"
