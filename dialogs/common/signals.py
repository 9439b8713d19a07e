"""Signals: what Baton already knows about a person's work that hints at an influence.

Each signal names an influence, a weight added to that influence's score, a
line of evidence a manager can read, and (when strong) the diagnostic question
it settles, so the dialog need not ask it. Evidence counts things; it never
quotes what anyone wrote.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dialogs.common.wording import is_nothing
from storage.models import CheckinAnswer, CheckinRun, OutboxMessage, Person


@dataclass(frozen=True, slots=True)
class Signal:
    id: str  # from the catalogue's signal vocabulary
    influence: str
    weight: float
    evidence: str
    settles: bool = False  # strong enough to answer the influence's diagnostic question


SignalSource = Callable[[AsyncSession, Person, datetime], Awaitable[list[Signal]]]


async def checkin_signals(session: AsyncSession, person: Person, now: datetime) -> list[Signal]:
    """Blockers, pulse and participation over the person's last four check-ins."""
    runs = list(
        (
            await session.execute(
                select(CheckinRun).where(CheckinRun.person_id == person.id).order_by(CheckinRun.period.desc()).limit(4)
            )
        ).scalars()
    )
    signals: list[Signal] = []
    answered = [r for r in runs if r.status == "answered"]
    if answered:
        rows = await session.execute(select(CheckinAnswer).where(CheckinAnswer.run_id.in_([r.id for r in answered])))
        by_run: dict[int, dict[str, CheckinAnswer]] = {}
        for answer in rows.scalars():
            by_run.setdefault(answer.run_id, {})[answer.question_id] = answer
        blocked, pulses = 0, []
        for run in sorted(answered, key=lambda r: r.period):
            answers = by_run.get(run.id, {})
            for question in run.questions:
                answer = answers.get(question["id"])
                if answer is None:
                    continue
                if question.get("feeds") == "blockers" and not is_nothing(answer.text):
                    blocked += 1
                if question.get("feeds") == "pulse" and answer.number is not None:
                    pulses.append(answer.number)
        if blocked:
            signals.append(
                Signal(
                    "blockers_reported",
                    "resources",
                    min(0.15 * blocked, 0.45),
                    f"blockers reported in {blocked} of the last {len(answered)} check-ins",
                    settles=blocked >= 2,
                )
            )
        if pulses and pulses[-1] <= 2:
            signals.append(Signal("pulse_low", "motivations", 0.2, f"pulse {pulses[-1]:g} of 5 in the latest check-in"))
        if len(pulses) >= 3 and pulses[-1] <= pulses[0] - 1.5:
            trend = " → ".join(f"{p:g}" for p in pulses)
            signals.append(
                Signal("pulse_falling", "motivations", 0.3, f"pulse falling over {len(pulses)} check-ins ({trend})")
            )
    invited = await session.scalar(
        select(OutboxMessage.id)
        .where(
            OutboxMessage.person_id == person.id,
            OutboxMessage.kind == "checkin",
            OutboxMessage.due_at > now - timedelta(weeks=4),
        )
        .limit(1)
    )
    if (
        invited is not None
        and len(runs) >= 1
        and len(answered) <= 1
        and len([r for r in runs if r.status != "skipped"]) >= 3
    ):
        signals.append(
            Signal("participation_low", "feedback", 0.1, f"answered {len(answered)} of the last {len(runs)} check-ins")
        )
    return signals


# Role changes and time in role would point at Job Fit and Training, but Baton records when it
# learned of a person, not when they started in their role; those signals wait for that data.
SOURCES: list[SignalSource] = [checkin_signals]


async def gather(session: AsyncSession, person: Person, now: datetime) -> list[Signal]:
    """Every signal Baton can read about `person` now, strongest first."""
    found: list[Signal] = []
    for source in SOURCES:
        found.extend(await source(session, person, now))
    return sorted(found, key=lambda s: -s.weight)
