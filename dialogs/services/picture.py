"""A team's rhythm as one picture: every step Baton will take for the team in the coming fortnight.

Check-in invitations and reminders, the manager's digest, each pair's 1:1 agenda, the 1:1 itself and
"How did it go?", goal nudges, 360 reminders and closes, feedback-request reminders — each with who
receives it and when, in each recipient's own time zone and in UTC, and the flows between them
(check-in → digest → 1:1 agenda → 1:1 → actions → nudges).

Every time is computed by the functions the scheduler itself runs (`Rhythm`, `weekly_times`,
`cadence.slots`, `AGENDA_BEFORE`, `ASK_AFTER`, `plan_unsolicited` …), from the same rows, so the picture
and what Baton does cannot disagree: change the rhythm and both change. Platform-neutral: the dashboard
draws it as SVG, the command line prints it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from dialogs.common.cadence import (
    ACTION_NUDGE_RULE,
    AGENDA_BEFORE,
    ASK_AFTER,
    DEFAULT_WEEKDAY,
    Cadence,
    first_anchor,
    slots,
)
from dialogs.common.manners import WEEKLY_BUDGET, Plan, Recipient, budgeted, leave_days, plan_unsolicited
from dialogs.common.periods import Rhythm, period_of, week_label, weekly_times
from dialogs.engine.clock import tz
from dialogs.feedback import REMIND_BEFORE
from dialogs.goals import DUE_SOON_DAYS, STALE_DAYS, due_nudges, nudge_key
from dialogs.review360 import REMIND_WITHIN
from dialogs.services.oneonones import ASK_KIND, agenda_time
from storage.models import (
    ActionItem,
    Campaign360,
    CheckinRun,
    FeedbackRequest,
    Meeting,
    OneOnOne,
    OutboxMessage,
    Person,
    Rater360,
    Retro,
    RetroParticipant,
    Team,
)

HORIZON = timedelta(weeks=2)  # at least a fortnight; longer when a pair meets less often
LANES = ("performer", "manager", "pair")
LANE_NAMES = {"performer": "Team members", "manager": "Managers", "pair": "1:1 pairs (both)"}
_JUST_BEFORE = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class Moment:
    """One recipient's share of a step: when the rhythm wants it (`wanted`) and when it really goes (`at`,
    aware UTC, after quiet hours and leave). `held` says why it will not go at all ("leave", "answered")."""

    person_id: int
    name: str
    zone: str
    wanted: datetime
    at: datetime
    moved: str | None = None  # "quiet hours", "leave": why `at` is later than `wanted`
    held: str | None = None

    @property
    def local(self) -> datetime:
        return self.at.astimezone(tz(self.zone))

    def when(self) -> str:
        """'Fri 27 Nov 16:00 (Asia/Tokyo; 07:00 UTC)'."""
        local, utc = self.local, self.at.astimezone(tz("UTC"))
        day = "" if local.date() == utc.date() else f"{utc:%a} "
        return f"{local:%a} {local.day} {local:%b %H:%M} ({self.zone}; {day}{utc:%H:%M} UTC)"

    def status(self) -> str:
        if self.held:
            return f"not sent: {self.held}"
        if self.moved:
            wanted = self.wanted.astimezone(tz(self.zone))
            return f"moved from {wanted:%H:%M} by {self.moved}"
        return ""


@dataclass(frozen=True, slots=True)
class Step:
    """Something Baton does for the team: `moments` per recipient, or a standing `rule` without fixed times."""

    id: str
    kind: str  # checkin, reminder, digest, agenda, one-on-one, ask, goal-nudge, action-nudge, 360-reminder, 360-close, feedback-reminder, feedback-expired
    title: str
    lane: str  # one of LANES
    moments: tuple[Moment, ...] = ()
    budgeted: bool = False
    condition: str | None = None  # "only if not answered yet"
    rule: str | None = None  # a standing rule, in words, when the times depend on what people do
    scheduled: bool = True  # False: a 1:1 pair shown with the defaults, not set up yet
    short: str = ""  # a label of a few words for a drawing ("1:1 Arjun"); the title when empty

    @property
    def label(self) -> str:
        return self.short or self.title

    @property
    def first(self) -> datetime | None:
        return min((m.at for m in self.moments), default=None)

    @property
    def last(self) -> datetime | None:
        return max((m.at for m in self.moments), default=None)

    def describe(self) -> str:
        """The step in one sentence: what, to whom, when in each recipient's time."""
        parts = [self.title]
        if not self.scheduled:
            parts.append("(not yet scheduled: Baton's defaults)")
        if self.condition:
            parts.append(f"— {self.condition}")
        if self.budgeted:
            parts.append(f"— counts against the weekly budget of {WEEKLY_BUDGET}")
        text = " ".join(parts)
        if self.moments:
            who = "; ".join(
                f"{m.name} {m.when()}" + (f", {m.status()}" if m.status() else "")
                for m in sorted(self.moments, key=lambda m: (m.at, m.name))
            )
            text += f": {who}"
        if self.rule:
            text += f": {self.rule}"
        return text + "."


@dataclass(frozen=True, slots=True)
class Flow:
    """What one step feeds into another ("answers feed the digest")."""

    source: str
    target: str
    label: str


@dataclass(frozen=True, slots=True)
class Picture:
    team_id: int
    team: str
    start: datetime
    end: datetime
    rhythm: Rhythm
    steps: tuple[Step, ...] = ()
    flows: tuple[Flow, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def timed(self) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.moments)

    @property
    def rules(self) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if not s.moments)

    def step(self, step_id: str) -> Step:
        return next(s for s in self.steps if s.id == step_id)

    def describe(self) -> str:
        """Every step and flow in words: what a screen reader (and a test) reads instead of the drawing."""
        lines = [
            f"{self.team}'s rhythm from {self.start:%a %d %b %Y %H:%M} to {self.end:%a %d %b %Y %H:%M} UTC, "
            "each time in the recipient's own time zone."
        ]
        lines += [f"{n}. {s.describe()}" for n, s in enumerate(self.steps, 1)]
        names = {s.id: s.title for s in self.steps}
        lines += [f"{names[f.source]} → {names[f.target]}: {f.label}." for f in self.flows]
        lines += list(self.notes)
        return " ".join(lines)


@dataclass
class _Builder:
    session: AsyncSession
    now: datetime
    start: datetime
    end: datetime
    people: dict[int, Person]
    leaves: dict[int, list[tuple[date, date]]]
    steps: list[Step] = field(default_factory=list)
    flows: list[Flow] = field(default_factory=list)

    def moment(self, person: Person, wanted: datetime, kind: str) -> Moment:
        """`person`'s moment for a message of `kind` the rhythm wants at `wanted`: quiet hours and leave as the
        scheduler applies them (`plan_unsolicited`); the budget is not predicted (the step says it counts)."""
        assert person.id is not None
        recipient = Recipient(person.id, person.timezone, person.quiet_start, person.quiet_end)
        plan: Plan = plan_unsolicited(recipient, wanted, leaves=self.leaves.get(person.id, []), kind=kind)
        if plan.due_at is None:
            return Moment(person.id, person.name, person.timezone, wanted, wanted, held=_HELD.get(plan.reason or ""))
        moved = plan.reason if plan.due_at > wanted else None
        return Moment(person.id, person.name, person.timezone, wanted, plan.due_at, moved)

    def meeting(self, person: Person, when: datetime) -> Moment:
        """A moment that is not a message (the 1:1 itself): no manners apply."""
        assert person.id is not None
        return Moment(person.id, person.name, person.timezone, when, when)

    def add(self, step: Step) -> None:
        if step.moments or step.rule:
            self.steps.append(step)

    def flow(self, source: str, target: str, label: str) -> None:
        ids = {s.id for s in self.steps}
        if source in ids and target in ids and (source, target) not in {(f.source, f.target) for f in self.flows}:
            self.flows.append(Flow(source, target, label))


_HELD = {"leave": "on leave that day", "budget": "weekly budget spent"}


def weekly_between(start: datetime, end: datetime, zone: str, weekday: int, at: str) -> list[datetime]:
    """Every occurrence in [start, end) of a weekly wall-clock time in `zone`, read off `weekly_times` (the
    scheduler's own reading) week by week."""
    found: set[datetime] = set()
    probe = start
    while probe < end + timedelta(weeks=1):
        found.update(t for t in weekly_times(probe, zone, weekday, at) if start <= t < end)
        probe += timedelta(weeks=1)
    return sorted(found)


async def picture_of(session: AsyncSession, team: Team, now: datetime) -> Picture:
    """The rhythm of `team` from `now` for a fortnight, or for the longest 1:1 period of its pairs."""
    assert team.id is not None
    rhythm = Rhythm.of(team)
    members = list(
        (
            await session.execute(
                select(Person)
                .where(col(Person.team_id) == team.id, col(Person.active).is_(True))
                .order_by(col(Person.name))
            )
        ).scalars()
    )
    member_ids = {p.id for p in members if p.id is not None}
    manager_ids = {p.manager_id for p in members if p.manager_id is not None}
    pairs = list(
        (
            await session.execute(
                select(OneOnOne).where(col(OneOnOne.report_id).in_(member_ids), col(OneOnOne.active).is_(True))
            )
        ).scalars()
    )
    people = {p.id: p for p in members if p.id is not None}
    wanted_ids = (manager_ids | {p.manager_id for p in pairs}) - set(people)
    if wanted_ids:
        rows = await session.execute(select(Person).where(col(Person.id).in_(wanted_ids)))
        people |= {p.id: p for p in rows.scalars() if p.id is not None}
    longest = max([HORIZON, *(timedelta(weeks=p.every_weeks) for p in pairs)])
    start, end = now, now + longest
    leaves = await leave_days(session, list(people), start.date() - timedelta(days=1), end.date() + timedelta(days=1))
    b = _Builder(session, now, start, end, people, leaves)
    notes: list[str] = []

    digests = await _checkins_and_digests(b, team, rhythm, members, manager_ids, notes)
    meetings = {
        (m.pair_id, m.planned_at): m
        for m in (
            await session.execute(
                select(Meeting).where(
                    col(Meeting.pair_id).in_([p.id for p in pairs]),
                    col(Meeting.planned_at) >= start - timedelta(days=7),
                )
            )
        ).scalars()
    }
    await _one_on_ones(b, members, pairs, digests, meetings)
    await _goal_nudges(b, member_ids)
    await _reviews(b, member_ids)
    await _retros(b, team)
    await _feedback(b, member_ids)
    ordered = sorted(b.steps, key=lambda s: (s.first is None, s.first or end, s.id))
    return Picture(team.id, team.name, start, end, rhythm, tuple(ordered), tuple(b.flows), tuple(notes))


async def _checkins_and_digests(
    b: _Builder, team: Team, rhythm: Rhythm, members: list[Person], manager_ids: set[int], notes: list[str]
) -> dict[int, list[tuple[datetime, str]]]:
    """Invitations, reminders and digests; returns each manager's digest times with their step ids."""
    invitations: dict[str, list[Moment]] = defaultdict(list)
    reminders: dict[tuple[str, int], list[Moment]] = defaultdict(list)
    for person in members:
        # The scheduler's reading (Conductor._invite): weekly_times for the team's weekday and time.
        for send in weekly_between(b.start, b.end, person.timezone, team.checkin_weekday, team.checkin_time):
            period = period_of(send, person.timezone)
            moment = b.moment(person, send, "checkin")
            invitations[period].append(moment)
            if moment.held:
                continue
            # Conductor._remind: the n-th reminder `reminder_after` × n after the invitation went, while the
            # period is still the open one.
            for n in range(1, rhythm.reminder_count + 1):
                at = moment.at + rhythm.reminder_after * n
                if at < rhythm.next_send(moment.at, person.timezone) and at < b.end:
                    reminders[(period, n)].append(b.moment(person, at, "reminder"))
    answered = await _answered(b.session, [p.id for p in members if p.id is not None], set(invitations))
    for period, moments in sorted(invitations.items()):
        moments = [
            Moment(m.person_id, m.name, m.zone, m.wanted, m.at, m.moved, "already answered")
            if (m.person_id, period) in answered and not m.held
            else m
            for m in moments
        ]
        b.add(
            Step(
                f"checkin:{period}",
                "checkin",
                f"Check-in invitation, {week_label(period)}",
                "performer",
                tuple(moments),
                short="Check-in",
            )
        )
    for (period, n), moments in sorted(reminders.items()):
        moments = [m for m in moments if (m.person_id, period) not in answered]
        label = "Reminder" if rhythm.reminder_count == 1 else f"Reminder {n}"
        step_id = f"reminder:{period}:{n}"
        b.add(
            Step(
                step_id,
                "reminder",
                f"Check-in {label.lower()}, {week_label(period)}",
                "performer",
                tuple(moments),
                budgeted=budgeted("reminder"),
                condition="only to those who have not answered or snoozed",
                short=label,
            )
        )
        b.flow(f"checkin:{period}", step_id, "unanswered invitations are reminded")

    digests: dict[int, list[tuple[datetime, str]]] = defaultdict(list)
    by_period: dict[str, list[Moment]] = defaultdict(list)
    for manager_id in sorted(manager_ids):
        manager = b.people.get(manager_id)
        if manager is None or not manager.active:
            continue
        digest_rhythm, other = await _digest_rhythm(b.session, manager, team)
        if other is not None:
            notes.append(f"{manager.name}'s digest follows {other}'s rhythm (the team of their first report).")
        for send in weekly_between(
            b.start, b.end, manager.timezone, digest_rhythm.digest_weekday, digest_rhythm.digest_at
        ):
            covered = period_of(
                digest_rhythm.open_send(send - timedelta(seconds=1), manager.timezone), manager.timezone
            )
            moment = b.moment(manager, send, "digest")
            by_period[covered].append(moment)
            digests[manager_id].append((moment.at, f"digest:{covered}"))
    for period, moments in sorted(by_period.items()):
        b.add(
            Step(
                f"digest:{period}",
                "digest",
                f"Digest of {week_label(period)}'s check-ins (the period closes)",
                "manager",
                tuple(moments),
                short="Digest",
            )
        )
        b.flow(f"checkin:{period}", f"digest:{period}", "answers, pulse and blockers feed the digest")
    return digests


async def _answered(session: AsyncSession, person_ids: list[int], periods: set[str]) -> set[tuple[int, str]]:
    """(person, period) check-ins already answered or skipped: the scheduler sends those no invitation."""
    if not person_ids or not periods:
        return set()
    rows = await session.execute(
        select(col(CheckinRun.person_id), col(CheckinRun.period)).where(
            col(CheckinRun.person_id).in_(person_ids),
            col(CheckinRun.period).in_(periods),
            col(CheckinRun.status).in_(("answered", "skipped")),
        )
    )
    return {(person_id, period) for person_id, period in rows}


async def _digest_rhythm(session: AsyncSession, manager: Person, team: Team) -> tuple[Rhythm, str | None]:
    """The rhythm the scheduler uses for `manager`'s digest (Conductor._digests): the team of their first
    active report by name that has one, else their own. The other team's name when it is not `team`."""
    reports = (
        await session.execute(
            select(col(Person.team_id))
            .where(col(Person.manager_id) == manager.id, col(Person.active).is_(True))
            .order_by(col(Person.name))
        )
    ).scalars()
    team_id = next((t for t in reports if t), manager.team_id or 0)
    if team_id == team.id:
        return Rhythm.of(team), None
    other = await session.get(Team, team_id)
    return Rhythm.of(other), other.name if other else "Baton's default"


async def _one_on_ones(
    b: _Builder,
    members: list[Person],
    pairs: list[OneOnOne],
    digests: dict[int, list[tuple[datetime, str]]],
    meetings: dict[tuple[int, datetime], Meeting],
) -> None:
    """Each pair's agenda, 1:1 and "How did it go?"; pairs without a row are shown with `Cadence()`.
    A slot the scheduler already moved (leave) shows where it moved to; one called off is left out."""
    known = {(p.manager_id, p.report_id) for p in pairs}
    shown: list[tuple[OneOnOne, bool]] = [(p, True) for p in pairs]
    for person in members:
        manager = b.people.get(person.manager_id) if person.manager_id else None
        if manager is None or not manager.active or (manager.id, person.id) in known:
            continue
        assert manager.id is not None and person.id is not None
        today = b.now.astimezone(tz(manager.timezone)).date()
        defaults = Cadence()
        shown.append(
            (
                OneOnOne(
                    manager_id=manager.id,
                    report_id=person.id,
                    every_weeks=defaults.every_weeks,
                    minutes=defaults.minutes,
                    weekday=defaults.weekday,
                    at=defaults.at,
                    anchor=first_anchor(DEFAULT_WEEKDAY, today),
                    created_at=b.now,
                ),
                False,
            )
        )
    actions = False
    for pair, scheduled in shown:
        manager, report = b.people.get(pair.manager_id), b.people.get(pair.report_id)
        if manager is None or report is None:
            continue
        first = report.name.split(" ")[0]
        for planned in slots(pair, manager.timezone, b.start, b.end):
            meeting = meetings.get((pair.id or 0, planned)) if pair.id is not None else None
            if meeting is not None and meeting.status not in ("planned", "held"):
                continue
            slot = meeting.starts_at if meeting is not None else planned
            key = f"{pair.manager_id}-{pair.report_id}:{slot:%Y%m%dT%H%M}"
            day = slot.astimezone(tz(manager.timezone))
            label = f"{manager.name.split(' ')[0]} and {first}, {day:%a} {day.day} {day:%b}"
            agenda_at = slot - AGENDA_BEFORE
            if agenda_at >= b.start and (meeting is None or meeting.agenda_at is None):
                b.add(
                    Step(
                        f"agenda:{key}",
                        "agenda",
                        f"1:1 agenda ({label})",
                        "pair",
                        tuple(_agenda_moment(b, p, slot) for p in (manager, report)),
                        scheduled=scheduled,
                        short=f"Agenda {first}",
                    )
                )
            b.add(
                Step(
                    f"one-on-one:{key}",
                    "one-on-one",
                    f"1:1, {pair.minutes} minutes ({label})",
                    "pair",
                    (b.meeting(manager, slot), b.meeting(report, slot)),
                    scheduled=scheduled,
                    short=f"1:1 {first}",
                )
            )
            ask_at = slot + timedelta(minutes=pair.minutes) + ASK_AFTER  # agenda.ask_time, without a row
            askers = [manager, report] if pair.ask_report else [manager]
            if ask_at < b.end:
                b.add(
                    Step(
                        f"ask:{key}",
                        "ask",
                        f'"How did it go?" ({label})',
                        "pair",
                        tuple(b.moment(p, ask_at, ASK_KIND) for p in askers),
                        condition="records what was agreed as action items",
                        scheduled=scheduled,
                        short=f"How did it go? {first}",
                    )
                )
            # The digest that last came before the agenda feeds it.
            before = [(at, step) for at, step in digests.get(pair.manager_id, []) if at <= agenda_at]
            if before:
                b.flow(max(before)[1], f"agenda:{key}", "blockers, pulse and asks become talking points")
            b.flow(f"agenda:{key}", f"one-on-one:{key}", "the agenda for the 1:1")
            b.flow(f"one-on-one:{key}", f"ask:{key}", "after the 1:1")
            actions = True
    owners = await _overdue_owners(b, {p.id for p in members if p.id is not None} | set(digests))
    if actions or owners:
        b.add(
            Step(
                "action-nudges",
                "action-nudge",
                "Action-item nudges",
                "performer",
                budgeted=budgeted("nudge"),
                rule=f"an overdue action item is nudged to its owner {ACTION_NUDGE_RULE}, until done"
                + (f"; overdue now: {', '.join(owners)}" if owners else ""),
            )
        )
        for step in list(b.steps):
            if step.kind == "ask":
                b.flow(step.id, "action-nudges", "agreed actions are nudged when overdue")


def _agenda_moment(b: _Builder, person: Person, slot: datetime) -> Moment:
    """When the scheduler sends `person` the agenda of the 1:1 at `slot` (`agenda_time`: the day before,
    out of their quiet hours), shown against the day-before time it stands for."""
    moment = b.moment(person, agenda_time(slot, person), "agenda")
    wanted = slot - AGENDA_BEFORE
    if moment.at != wanted and moment.moved is None and moment.held is None:
        return replace(moment, wanted=wanted, moved="quiet hours")
    return replace(moment, wanted=wanted)


async def _overdue_owners(b: _Builder, person_ids: set[int]) -> list[str]:
    today = b.now.date()
    rows = await b.session.execute(
        select(col(ActionItem.owner_id)).where(
            col(ActionItem.owner_id).in_(person_ids),
            col(ActionItem.done_at).is_(None),
            col(ActionItem.due_on) < today,
        )
    )
    counts: dict[int, int] = defaultdict(int)
    for (owner,) in rows:
        counts[owner] += 1
    return [f"{b.people[o].name} ({n})" for o, n in sorted(counts.items()) if o in b.people]


async def _goal_nudges(b: _Builder, member_ids: set[int]) -> None:
    """Goal nudges due at the next tick (`due_nudges`, skipping keys already queued) and the standing rule."""
    found = [(g, p, r) for g, p, r, _ in await due_nudges(b.session, b.now) if p.id in member_ids]
    keys = [nudge_key(g, r, b.now) for g, _, r in found]
    queued = (
        set((await b.session.execute(select(col(OutboxMessage.key)).where(col(OutboxMessage.key).in_(keys)))).scalars())
        if keys
        else set()
    )
    moments = [b.moment(p, b.now, "nudge") for (g, p, r), key in zip(found, keys, strict=True) if key not in queued]
    b.add(
        Step(
            "goal-nudges:now",
            "goal-nudge",
            "Goal nudges due now",
            "performer",
            tuple(moments),
            budgeted=budgeted("nudge"),
        )
    )
    b.add(
        Step(
            "goal-nudges",
            "goal-nudge",
            "Goal nudges",
            "performer",
            budgeted=budgeted("nudge"),
            rule=f"a goal without a date or target, one due within {DUE_SOON_DAYS} days and behind, or one not "
            f"updated for {STALE_DAYS} days gets a nudge to its owner (a stale one at most once a week)",
        )
    )
    b.flow("action-nudges", "goal-nudges", "nudges share the weekly budget")


async def _reviews(b: _Builder, member_ids: set[int]) -> None:
    """Open 360s about team members: reminders to raters who have not answered, and the close."""
    campaigns = list(
        (
            await b.session.execute(
                select(Campaign360).where(
                    col(Campaign360.status) == "open",
                    col(Campaign360.subject_id).in_(member_ids),
                    col(Campaign360.closes_at) < b.end,
                )
            )
        ).scalars()
    )
    for campaign in campaigns:
        assert campaign.closes_at is not None
        subject = b.people.get(campaign.subject_id)
        if subject is None:
            continue
        raters = list(
            (
                await b.session.execute(
                    select(Rater360).where(
                        col(Rater360.campaign_id) == campaign.id,
                        col(Rater360.answered).is_(False),
                        col(Rater360.declined).is_(False),
                    )
                )
            ).scalars()
        )
        missing = {r.rater_id for r in raters} - set(b.people)
        if missing:
            rows = await b.session.execute(select(Person).where(col(Person.id).in_(missing)))
            b.people |= {p.id: p for p in rows.scalars() if p.id is not None}
        remind_at = max(b.now, campaign.closes_at - REMIND_WITHIN)
        about = subject.name.split(" ")[0]
        if remind_at < campaign.closes_at:
            b.add(
                Step(
                    f"360-reminder:{campaign.id}",
                    "360-reminder",
                    f"360 reminder (about {about})",
                    "performer",
                    tuple(
                        b.moment(b.people[r.rater_id], remind_at, "reminder") for r in raters if r.rater_id in b.people
                    ),
                    budgeted=budgeted("reminder"),
                    condition="to raters who have not answered or declined",
                )
            )
        readers = [subject] + ([b.people[subject.manager_id]] if subject.manager_id in b.people else [])
        b.add(
            Step(
                f"360-close:{campaign.id}",
                "360-close",
                f"360 closes; results (about {about})",
                "manager",
                tuple(b.moment(p, campaign.closes_at, "report") for p in readers),
            )
        )
        b.flow(f"360-reminder:{campaign.id}", f"360-close:{campaign.id}", "answers count until the close")


async def _retros(b: _Builder, team: Team) -> None:
    """The team's running retro: the reminder to those who have not answered, the close with the results, the
    vote's close, and "Has it helped?" after each commitment's date — at the times retros.py uses."""
    from dialogs.retro import VOTE_WINDOW
    from dialogs.services.retros import OWED
    from dialogs.services.retros import REMIND_WITHIN as RETRO_REMIND

    retros = list(
        (
            await b.session.execute(
                select(Retro).where(
                    col(Retro.team_id) == team.id, col(Retro.status).in_(("collecting", "voting", "choosing"))
                )
            )
        ).scalars()
    )
    for retro in retros:
        rows = await b.session.execute(select(RetroParticipant).where(col(RetroParticipant.retro_id) == retro.id))
        participants = [(r, b.people[r.person_id]) for r in rows.scalars() if r.person_id in b.people]
        theme = retro.theme if len(retro.theme) <= 40 else retro.theme[:39] + "…"
        if retro.status == "collecting":
            remind_at = max(b.now, retro.closes_at - RETRO_REMIND)
            if remind_at < retro.closes_at < b.end + RETRO_REMIND:
                b.add(
                    Step(
                        f"retro-reminder:{retro.id}",
                        "retro-reminder",
                        f"Retro reminder (“{theme}”)",
                        "performer",
                        tuple(b.moment(p, remind_at, "reminder") for r, p in participants if not r.answered),
                        budgeted=budgeted("reminder"),
                        condition="to those who have not answered",
                    )
                )
            if retro.closes_at < b.end:
                b.add(
                    Step(
                        f"retro-close:{retro.id}",
                        "retro-close",
                        f"Retro closes: themes, quotes and the vote (“{theme}”)",
                        "performer",
                        tuple(b.moment(p, retro.closes_at, OWED) for _, p in participants),
                    )
                )
                b.flow(f"retro-reminder:{retro.id}", f"retro-close:{retro.id}", "answers count until the close")
        vote_closes = retro.vote_closes_at or retro.closes_at + VOTE_WINDOW
        if retro.status in ("collecting", "voting") and vote_closes < b.end:
            starter = b.people.get(retro.started_by_id)
            b.add(
                Step(
                    f"retro-vote:{retro.id}",
                    "retro-vote",
                    f"Retro vote closes: the starter chooses owners and dates (“{theme}”)",
                    "manager",
                    (b.moment(starter, vote_closes, OWED),) if starter is not None else (),
                    condition="the top proposals become action items",
                )
            )
            b.flow(f"retro-close:{retro.id}", f"retro-vote:{retro.id}", "the Design proposals go to the vote")


async def _feedback(b: _Builder, member_ids: set[int]) -> None:
    """Open feedback requests to or from team members: the reminder before the deadline and the expiry note."""
    requests = list(
        (
            await b.session.execute(
                select(FeedbackRequest).where(
                    col(FeedbackRequest.status) == "open",
                    col(FeedbackRequest.deadline) < b.end,
                    col(FeedbackRequest.responder_id).in_(member_ids)
                    | col(FeedbackRequest.requester_id).in_(member_ids),
                )
            )
        ).scalars()
    )
    wanted = {r.responder_id for r in requests} | {r.requester_id for r in requests}
    missing = wanted - set(b.people)
    if missing:
        rows = await b.session.execute(select(Person).where(col(Person.id).in_(missing)))
        b.people |= {p.id: p for p in rows.scalars() if p.id is not None}
    for request in requests:
        responder, requester = b.people.get(request.responder_id), b.people.get(request.requester_id)
        if responder is None or requester is None:
            continue
        if not request.reminded and request.deadline > b.now:
            moment = b.moment(responder, max(b.now, request.deadline - REMIND_BEFORE), "reminder")
            if moment.held or moment.at < request.deadline:  # one that could only come too late is not sent
                b.add(
                    Step(
                        f"feedback-reminder:{request.id}",
                        "feedback-reminder",
                        f"Feedback request reminder (asked by {requester.name.split(' ')[0]})",
                        "performer",
                        (moment,),
                        budgeted=budgeted("reminder"),
                    )
                )
        b.add(
            Step(
                f"feedback-expired:{request.id}",
                "feedback-expired",
                f"Feedback request deadline (to {responder.name.split(' ')[0]})",
                "performer",
                (b.moment(requester, max(b.now, request.deadline), "notice"),),
                condition="the requester hears if it was not answered",
            )
        )
        b.flow(f"feedback-reminder:{request.id}", f"feedback-expired:{request.id}", "until the deadline")


def by_day(picture: Picture) -> list[tuple[date, list[tuple[Step, Moment]]]]:
    """The timed steps' moments grouped by UTC day, in time order (what the command line prints)."""
    days: dict[date, list[tuple[Step, Moment]]] = defaultdict(list)
    for step in picture.timed:
        for moment in step.moments:
            days[moment.at.astimezone(tz("UTC")).date()].append((step, moment))
    return [(day, sorted(items, key=lambda i: (i[1].at, i[0].id, i[1].name))) for day, items in sorted(days.items())]
