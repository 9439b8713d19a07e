"""Which handler a message reaches: commands, buttons, typed answers, `help` and `cancel`.

The router works on one `Turn` and never touches the database itself: it
reads the saved state, calls the dialog's handler, and moves the state on.
A button carries its dialog and the id of the prompt it was shown with, so a
press on an older message finds a different prompt id and is answered as
expired instead of being applied to the wrong question.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import secrets
import unicodedata
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from dialogs.engine.contract import COMMAND_ACTION, END, Dialog, State, TextHandler, Transition, Turn
from dialogs.engine.errors import UserFacingError
from dialogs.engine.messages import Choice, Rating, Reply
from storage.queries import as_int

if TYPE_CHECKING:
    from storage.models import DialogState

MAX_TEXT = 4000  # characters accepted in one message; longer text is refused, politely and whole
CANCEL_WORDS = frozenset({"cancel", "stop", "quit", "exit"})
RESUME_WORDS = frozenset({"resume", "continue"})
GREETINGS = frozenset({"hi", "hello", "hey", "hiya", "hallo", "hola", "good morning", "morning"})
THANKS = frozenset({"thanks", "thank you", "thx", "ty", "cheers", "thanks a lot", "great, thanks", "ok thanks"})
SPELLINGS = {"check-in": "checkin", "check in": "checkin", "check-ins": "checkin"}  # what people type for a command
TRY_LABELS = {"checkin": "Check-in", "kudos": "Give kudos", "goals": "My goals"}  # the greeting's buttons
PARK_LIMIT = 3  # conversations kept aside at once; the oldest is let go beyond this
ROUTER_ACTION = "router"  # the router's own buttons: "was that your answer, or a command?"


class Router:
    """Routes one turn's inbound message to the right dialog handler."""

    def __init__(self, dialogs: Iterable[Dialog]) -> None:
        self.dialogs: dict[str, Dialog] = {}
        self.commands: dict[str, Dialog] = {}
        for dialog in dialogs:
            self.dialogs[dialog.name] = dialog
            for word in dialog.commands:
                self.commands[word] = dialog

    async def route(self, turn: Turn) -> None:
        """Handle `turn.inbound`: a button, a command, or an answer to the question on screen."""
        inbound = turn.inbound
        assert inbound is not None
        if inbound.action:
            await self._route_action(turn, inbound.action, inbound.value or "")
            return
        text = clean_text(inbound.text or "")
        if not text:
            turn.say("I can only read text for now. Type *help* to see what I can do.")
            return
        if len(text) > MAX_TEXT:
            turn.say(
                f"That message is {len(text):,} characters; I can keep at most {MAX_TEXT:,} in one go. "
                "Could you split it or shorten it? Nothing was recorded yet."
            )
            return
        word, _, rest = _spelled(text).partition(" ")  # only the command word: an answer is kept as typed
        word = word.casefold()
        if word in CANCEL_WORDS and not rest:
            self._cancel(turn)
            return
        if word == "help" and not rest:
            turn.say(self.help_reply(turn))
            if turn.state.dialog:
                await self._reprompt(turn)
            return
        if word in RESUME_WORDS and not rest:
            await self._resume(turn)
            return
        if turn.state.dialog:
            await self._dispatch_text(turn, text, word)
            return
        small = _small_talk(text)
        if small is not None:
            turn.say(self.greeting(turn) if small == "hello" else Reply("You're welcome! Type *help* any time."))
            return
        await self.command(turn, word, rest.strip())

    async def command(self, turn: Turn, word: str, args: str) -> None:
        """Start the dialog `word` names (or answer `help`, or say the word is unknown)."""
        if word == "help":
            turn.say(self.help_reply(turn))
            return
        if word in RESUME_WORDS:
            await self._resume(turn)
            return
        dialog = self.commands.get(word)
        if dialog is None:
            turn.say(self.unknown_reply(turn, word))
            return
        if not dialog.available_to(turn.role):
            who = "managers" if dialog.audience == "manager" else "admins"
            turn.say(f"*{word}* is for {who}. Type *help* to see what you can do.")
            return
        _clear(turn)
        turn.state.dialog = dialog.name
        try:
            nxt = await dialog.begin(turn, args)
        except UserFacingError as exc:
            _clear(turn)
            turn.say(exc.message)
            return
        if nxt is None or nxt == END:
            _clear(turn)
            return
        await self._enter(turn, nxt)

    async def _route_action(self, turn: Turn, action: str, value: str) -> None:
        if action == COMMAND_ACTION:  # a button that stands for a typed command, e.g. from help
            word, _, args = value.partition(" ")
            await self.command(turn, word.casefold(), args.strip())
            return
        dialog, _, prompt_id = action.partition(":")
        if dialog == ROUTER_ACTION:
            await self._meant(turn, prompt_id, value)
            return
        if (turn.state.dialog, turn.state.prompt_id) != (dialog, prompt_id):
            self._unpark(turn, dialog, prompt_id)  # a button of a conversation set aside takes it back
        state = self._current_state(turn)
        if turn.state.dialog != dialog or turn.state.prompt_id != prompt_id or state is None:
            turn.say(
                "That button belongs to an earlier message that has already been answered or has expired, "
                "so I left things as they were."
            )
            return
        if state.on_choice is None:
            turn.say("That question needs a typed answer.")
            return
        await self._apply(turn, await _call(turn, state.on_choice, value))

    async def _dispatch_text(self, turn: Turn, text: str, word: str) -> None:
        """Typed text while a dialog waits; `word` is its first word as a command would be spelled."""
        state = self._current_state(turn)
        if state is None:  # a dialog renamed or removed by an upgrade: start afresh, don't trap the person
            _clear(turn)
            await self.command(turn, word, _spelled(text).partition(" ")[2].strip())
            return
        if len(text) > state.max_length:
            turn.say(
                f"That answer is {len(text):,} characters; this question takes up to {state.max_length:,}. "
                "Could you shorten it? Nothing was recorded yet."
            )
            return
        turn.state.data.pop("_typed", None)  # typed on instead of saying what an earlier message meant
        command = self.commands.get(word)
        if command is not None and not command.available_to(turn.role):
            command = None
        if command is None and state.on_text is not None:  # the common case: an answer, no prompt to render
            await self._apply(turn, await _call(turn, state.on_text, text))
            return
        prompt = await self._render(turn, state)
        free = state.on_text is not None and (prompt.input is not None or not (prompt.choices or prompt.rating))
        if command is not None and free:  # "goals" where any text is an answer: an answer, or the command? Ask once.
            turn.state.data["_typed"] = text
            turn.say(
                Reply(
                    f"Did you mean that as your answer, or as the *{word}* command?",
                    choices=(Choice("As my answer", "answer"), Choice(f"Run {word}", "command")),
                    action=action_for(ROUTER_ACTION, turn.state.prompt_id),
                )
            )
            return
        if command is not None and match_choice(text, prompt.choices, prompt.rating) is None:
            await self._park_and_run(turn, _spelled(text))  # a command where only a choice fits: run it
            return
        if state.on_text is not None:
            await self._apply(turn, await _call(turn, state.on_text, text))
            return
        value = match_choice(text, prompt.choices, prompt.rating)
        if value is None and _small_talk(text) == "thanks":
            turn.say("You're welcome! When you're ready, pick one of the options above, or type *cancel*.")
            return
        if value is None or state.on_choice is None:
            turn.say(
                "Please pick one of the options above, type *cancel* to stop here, "
                "or any command (I'll keep this for later)."
            )
            return
        await self._apply(turn, await _call(turn, state.on_choice, value))

    # -- parking: a command typed mid-way sets the conversation aside, nothing is lost ----------------------

    async def _meant(self, turn: Turn, prompt_id: str, value: str) -> None:
        """The answer to "did you mean that as your answer, or as the command?"."""
        typed = turn.state.data.pop("_typed", None)
        state = self._current_state(turn)
        if typed is None or state is None or turn.state.prompt_id != prompt_id:
            turn.say("That question has already been answered, so I left things as they were.")
            return
        if value == "command":
            await self._park_and_run(turn, _spelled(typed))
        elif state.on_text is not None:
            await self._apply(turn, await _call(turn, state.on_text, typed))

    async def _park_and_run(self, turn: Turn, text: str) -> None:
        word, _, args = text.partition(" ")
        if self.commands.get(word.casefold()) is self.dialogs.get(turn.state.dialog or "") and not args.strip():
            turn.say("We're in the middle of that already. Here's where we are:")
            await self._reprompt(turn)
            return
        what = self._what(turn.state.dialog)
        self._park(turn)
        turn.say(f"I've set {what} aside, as far as you got. Type *resume* to go back to it.")
        await self.command(turn, word.casefold(), args.strip())

    def _park(self, turn: Turn) -> None:
        if not turn.state.dialog:
            return
        entry = {
            "dialog": turn.state.dialog,
            "state": turn.state.state,
            "data": {k: v for k, v in turn.state.data.items() if k != "_typed"},
            "prompt_id": turn.state.prompt_id,
        }
        others = [p for p in turn.state.parked if p.get("dialog") != entry["dialog"]]
        turn.state.parked = [*others[-(PARK_LIMIT - 1) :], entry]
        _clear(turn)

    def _unpark(self, turn: Turn, dialog: str, prompt_id: str) -> bool:
        found = [p for p in turn.state.parked if (p.get("dialog"), p.get("prompt_id")) == (dialog, prompt_id)]
        if not found:
            return False
        turn.state.parked = [p for p in turn.state.parked if p is not found[0]]
        self._park(turn)
        entry = found[0]
        turn.state.dialog, turn.state.state = entry["dialog"], entry["state"]
        turn.state.data, turn.state.prompt_id = dict(entry["data"]), entry["prompt_id"]
        return True

    async def _resume(self, turn: Turn) -> None:
        """Take back the conversation set aside last (the current one, if any, is set aside in its place)."""
        while turn.state.parked:
            entry = turn.state.parked[-1]
            if self._unpark(turn, entry["dialog"], entry["prompt_id"]) and self._current_state(turn) is not None:
                turn.say(f"Back to {self._what(turn.state.dialog)}:")
                await self._reprompt(turn)
                return
            _clear(turn)  # a dialog an upgrade removed: let it go
        if turn.state.dialog:
            turn.say("Nothing else is waiting. Here's where we are:")
            await self._reprompt(turn)
        else:
            turn.say("There's nothing to go back to. Type *help* to see what I can do.")

    def _what(self, name: str | None) -> str:
        dialog = self.dialogs.get(name or "")
        return (dialog.title or f"the {dialog.name} conversation") if dialog else "that"

    async def _apply(self, turn: Turn, transition: Transition) -> None:
        if transition is None:
            return
        if transition == END:
            ended = turn.state.dialog
            _clear(turn)
            if not turn.replies:  # a "Done" button, say: every press gets a visible answer
                command = (
                    self.dialogs[ended].commands[0]
                    if ended in self.dialogs and self.dialogs[ended].commands
                    else "help"
                )
                turn.say(f"OK. Type *{command}* any time to come back to it.")
            if turn.state.parked:
                waiting = self._what(turn.state.parked[-1]["dialog"])
                turn.say(
                    Reply(
                        f"{waiting[0].upper()}{waiting[1:]} is still waiting where you left it.",
                        choices=(Choice("Resume", "resume"),),
                        action=COMMAND_ACTION,
                    )
                )
            return
        await self._enter(turn, transition)

    async def _enter(self, turn: Turn, state_name: str) -> None:
        dialog = self.dialogs[turn.state.dialog or ""]
        if state_name not in dialog.states:
            raise KeyError(f"{dialog.name} has no state {state_name}")
        turn.state.state = state_name
        turn.state.prompt_id = secrets.token_hex(4)
        turn.say(await self._render(turn, dialog.states[state_name]))

    async def _reprompt(self, turn: Turn) -> None:
        state = self._current_state(turn)
        if state is not None:
            turn.say(await self._render(turn, state))

    @staticmethod
    async def _render(turn: Turn, state: State) -> Reply:
        rendered = state.prompt(turn)
        reply = await rendered if inspect.isawaitable(rendered) else rendered
        if reply.choices or reply.rating or reply.form:
            reply = dataclasses.replace(
                reply, action=reply.action or action_for(turn.state.dialog, turn.state.prompt_id)
            )
        return reply

    def _cancel(self, turn: Turn) -> None:
        if not turn.state.dialog:
            waiting = " (what you set aside stays there: type *resume* for it)" if turn.state.parked else ""
            turn.say(f"There's nothing to cancel right now{waiting}. Type *help* to see what I can do.")
            return
        dialog = self.dialogs.get(turn.state.dialog or "")
        _clear(turn)
        what = dialog.summary.rstrip(".").lower() if dialog and dialog.summary else "that"
        waiting = (
            f" {self._what(turn.state.parked[-1]['dialog']).capitalize()} is still set aside: type *resume* for it."
            if turn.state.parked
            else " Type *help* for more."
        )
        turn.say(f"Stopped ({what}). What you answered before stopping is kept.{waiting}")

    def _current_state(self, turn: Turn) -> State | None:
        dialog = self.dialogs.get(turn.state.dialog or "")
        return dialog.states.get(turn.state.state or "") if dialog else None

    def help_reply(self, turn: Turn) -> Reply:
        """What this person can ask Baton, with buttons for the main commands."""
        available = [d for d in self.dialogs.values() if d.commands and d.available_to(turn.role)]
        lines = [f"• *{d.commands[0]}* — {d.summary}" for d in available]
        lines.append("• *cancel* — stop whatever we're in the middle of")
        who = "a manager" if turn.role.manager else "an admin" if turn.role.admin else "a team member"
        return Reply(
            text=f"Here's what I can do for you as {who}:\n" + "\n".join(lines),
            choices=tuple(Choice(d.commands[0].capitalize(), d.commands[0]) for d in available[:5]),
            action=COMMAND_ACTION,
        )

    def greeting(self, turn: Turn) -> Reply:
        """What Baton is, and three things to try: for "hi", and for someone Baton meets for the first time."""
        first = turn.person.name.split(" ")[0] or turn.person.name
        tries = [w for w in ("checkin", "kudos", "goals") if w in self.commands]
        return Reply(
            f"Hi {first}! I'm Baton. I keep your team's weekly rhythm: a short check-in each week, "
            "feedback and kudos, and goals. Three things to try:",
            choices=(*(Choice(TRY_LABELS.get(w, w.capitalize()), w) for w in tries), Choice("Help", "help")),
            action=COMMAND_ACTION,
        )

    def unknown_reply(self, turn: Turn, word: str) -> Reply:
        """An unknown command word: say so, and suggest the closest known one."""
        words = [w for w, d in self.commands.items() if d.available_to(turn.role)] + ["help"]
        close = difflib.get_close_matches(word, words, n=1, cutoff=0.6)
        hint = f"Did you mean *{close[0]}*? " if close else ""
        return Reply(f"Sorry, I didn't understand that. {hint}Type *help* to see what I can do.")


async def _call(turn: Turn, handler: TextHandler, value: str) -> Transition:
    try:
        return await handler(turn, value)
    except UserFacingError as exc:
        turn.say(exc.message)
        return None


def action_for(dialog: str | None, prompt_id: str | None) -> str:
    """The action of a prompt's buttons: which dialog, and which question on screen (`dialog:prompt`)."""
    return f"{dialog}:{prompt_id}"


def live_actions_of(state: DialogState | None) -> frozenset[str]:
    """The button actions that still do something for a person in `state`: the question on screen, the
    conversations set aside (their buttons take them back), the router's "answer or command?", and
    command buttons. Every other dialog button is answered or superseded."""
    live = {COMMAND_ACTION}
    if state is None:
        return frozenset(live)
    if state.dialog and state.prompt_id:
        live.add(action_for(state.dialog, state.prompt_id))
        if "_typed" in state.data:
            live.add(action_for(ROUTER_ACTION, state.prompt_id))
    live.update(action_for(p["dialog"], p["prompt_id"]) for p in state.parked if p.get("dialog") and p.get("prompt_id"))
    return frozenset(live)


def _clear(turn: Turn) -> None:
    turn.state.dialog = None
    turn.state.state = None
    turn.state.prompt_id = None
    turn.state.data = {}


def _spelled(text: str) -> str:
    """'Check-in', 'check in please' → 'checkin …': the spellings people use for a command word."""
    folded = text.casefold()
    for spelling, word in SPELLINGS.items():
        if folded == spelling or folded.startswith(spelling + " "):
            return word + text[len(spelling) :]
    return text


def _small_talk(text: str) -> str | None:
    """'hello' for a greeting, 'thanks' for thanks, None for anything else."""
    folded = " ".join(text.casefold().strip(" .!?,:)(").split())
    if folded in GREETINGS:
        return "hello"
    if folded in THANKS or folded.rstrip("!. ") in THANKS:
        return "thanks"
    return None


def clean_text(text: str) -> str:
    """Normalise what a person typed without changing what they meant.

    NFC (not NFKC: a person's ① or ﬁ stays theirs), control characters other
    than newline and tab removed, surrounding whitespace trimmed.
    """
    text = unicodedata.normalize("NFC", text)
    text = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch)[0] != "C" or ch == "\u200d")
    return text.strip()


def match_choice(text: str, choices: Sequence[Choice], rating: Rating | None) -> str | None:
    """The choice value a typed answer stands for: a label, a value, or a 1-based number."""
    folded = text.casefold().strip(" .!")
    for choice in choices:
        if folded in (choice.label.casefold(), choice.value.casefold()):
            return choice.value
    number = as_int(folded, 0, 999_999_999)
    if number is not None:
        if rating is not None and rating.min <= number <= rating.max:
            return str(number)
        if not rating and 1 <= number <= len(choices):
            return choices[number - 1].value
    return None
