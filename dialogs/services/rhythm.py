"""The weekly rhythm: what is due at a tick, written to the outbox under unique keys.

A tick may fire twice, run on two replicas at once, or come late after
downtime: every effect is keyed in the database (person, period, purpose), so
each still happens once. Sends older than the grace window are not made up.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from statistics import mean
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from dialogs.checkin import DEFAULT_QUESTIONS, invitation, reminder
from dialogs.common.manners import (
    WEEKLY_BUDGET,
    Plan,
    Recipient,
    budget_used,
    budgeted,
    leave_days,
    plan_unsolicited,
)
from dialogs.common.periods import Rhythm, checkin_day, period_of, week_label, weekly_times
from dialogs.common.wording import is_nothing, shorten
from dialogs.engine.clock import tz
from dialogs.engine.messages import Card, Choice, Reply
from dialogs.engine.sealing import Sealer
from dialogs.services.ideas import idea_step
from dialogs.services.steps import Due, PlanFn, QueueFn, Send
from storage.db import Database
from storage.models import CheckinAnswer, CheckinRun, CheckinTemplate, OutboxMessage, Person, Team
from storage.queries import preferred_addresses

log = logging.getLogger(__name__)

DEFAULT_GRACE = timedelta(hours=12)


@dataclass
class TickReport:
    """What one tick queued (attempted writes; the keys make repeats no-ops)."""

    invited: int = 0
    reminded: int = 0
    resent: int = 0
    digests: int = 0
    follow_ups: int = 0
    reviews: int = 0  # 360 results and reminders
    nudges: int = 0  # goal nudges
    feedback: int = 0  # feedback request reminders and expiries
    one_on_ones: int = 0  # agendas, "how did it go?", moves for leave, action item nudges
    retros: int = 0  # retro invitations, reminders, results, vote closes and follow-ups
    held: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # reason → count
    deferred: int = 0  # queued for the end of someone's quiet hours rather than now

    @property
    def total(self) -> int:
        return (
            self.invited
            + self.reminded
            + self.resent
            + self.digests
            + self.follow_ups
            + self.reviews
            + self.nudges
            + self.feedback
            + self.one_on_ones
            + self.retros
        )


def _held(plan: Plan) -> str | None:
    return plan.reason if plan.due_at is None else None


class Conductor:
    """Runs the check-in rhythm for the whole organisation. One per process; `tick()` is safe to repeat."""

    def __init__(
        self,
        db: Database,
        *,
        sealer: Sealer,
        grace: timedelta = DEFAULT_GRACE,
        budget: int = WEEKLY_BUDGET,
        tools_available: bool = False,
        catalogue_file: str | None = None,
    ) -> None:
        self.db = db
        self.sealer = sealer  # opens anonymous answers when their campaign closes
        self.grace = grace
        self.budget = budget
        self.tools_available = tools_available
        self.catalogue_file = catalogue_file
        self._one_on_ones_minute: datetime | None = None  # the last minute the 1:1 step ran in this process

    async def tick(self, now: datetime, *, team_id: int | None = None, force: bool = False) -> TickReport:
        """Queue everything due at `now`. `force` sends the open period's invitations now (send-now)."""
        report = TickReport()
        report.invited = await self.db.run(lambda s: self._invite(s, now, report, team_id=team_id, force=force))
        if not force:
            report.resent = await self.db.run(lambda s: self._resend_snoozed(s, now, report))
            report.reminded = await self.db.run(lambda s: self._remind(s, now, report))
            report.digests = await self.db.run(lambda s: self._digests(s, now, report))
            report.follow_ups = await self.db.run(lambda s: self._follow_ups(s, now, report))
            report.reviews = await self.db.run(lambda s: self._reviews(s, now, report))
            if report.reviews:  # a close deleted sealed pools and drafts: leave none of their pages in the WAL
                await self.db.checkpoint()
            report.nudges = await self.db.run(lambda s: self._goal_nudges(s, now, report))
            report.feedback = await self.db.run(lambda s: self._feedback(s, now))
            minute = now.replace(second=0, microsecond=0)
            if minute != self._one_on_ones_minute:  # 1:1s keep minutes, not seconds: once a minute is enough
                report.one_on_ones = await self.db.run(lambda s: self._one_on_ones(s, now, report))
                self._one_on_ones_minute = minute
            report.retros = await self.db.run(lambda s: self._retros(s, now, report))
            if report.retros:  # a close may have deleted sealed drafts: leave none of their pages in the WAL
                await self.db.checkpoint()
            await self.db.run(
                lambda s: idea_step(
                    s,
                    now,
                    self.sealer,
                    lambda w, k: self._plans(s, w, now, report, kind=k),
                    lambda d: self._queue(s, d, now),
                )
            )
        return report

    async def _feedback(self, session: AsyncSession, now: datetime) -> int:
        from dialogs.feedback import feedback_step

        async def queue(person_id: int, key: str, topic: str, reply: Reply, due_at: datetime, kind: str) -> int:
            return await self._queue(session, [Due(person_id, key, topic, reply.to_dict(), due_at, kind)], now)

        return await feedback_step(session, now, queue)

    def _step(self, session: AsyncSession, now: datetime, report: TickReport) -> tuple[PlanFn, QueueFn]:
        """How a step's `Send`s are planned (manners) and queued, in this tick's transaction."""

        async def plan(wanted: list[tuple[Person, datetime]], kind: str) -> list[Plan]:
            return await self._plans(session, wanted, now, report, kind=kind)

        async def queue(planned: list[tuple[Send, Plan]]) -> int:
            dues = [
                Due(s.person.id or 0, s.key, s.topic, s.reply.to_dict(), p.due_at or now, s.kind, _held(p))
                for s, p in planned
                if p.due_at is not None or budgeted(s.kind)  # owed ones are only ever moved, never held
            ]
            return await self._queue(session, dues, now)

        return plan, queue

    async def _one_on_ones(self, session: AsyncSession, now: datetime, report: TickReport) -> int:
        from dialogs.services.oneonones import one_on_one_step

        return await one_on_one_step(session, now, *self._step(session, now, report))

    async def _retros(self, session: AsyncSession, now: datetime, report: TickReport) -> int:
        from dialogs.services.retros import retro_step

        plan, queue = self._step(session, now, report)
        return await retro_step(session, now, plan, queue, self.sealer)

    # -- goal nudges ------------------------------------------------------------------------------

    async def _goal_nudges(self, session: AsyncSession, now: datetime, report: TickReport) -> int:
        """Stale, due-soon-and-behind and unspecific goals get a nudge — within quiet hours, leave and the budget."""
        from dialogs.goals import due_nudges, nudge_key, nudge_reply

        found = await due_nudges(session, now)
        if not found:
            return 0
        existing = set(
            (
                await session.execute(
                    select(OutboxMessage.key).where(
                        OutboxMessage.key.in_([nudge_key(g, r, now) for g, _, r, _ in found])
                    )
                )
            ).scalars()
        )
        fresh = [
            (g, p, r, u) for g, p, r, u in found if nudge_key(g, r, now) not in existing
        ]  # don't spend budget twice
        if not fresh:
            return 0
        plans = await self._plans(session, [(p, now) for _, p, _, _ in fresh], now, report, kind="nudge")
        dues = []
        for (goal, owner, reason, latest), plan in zip(fresh, plans, strict=True):
            today = now.astimezone(tz(owner.timezone)).date()
            reply = nudge_reply(goal, reason, latest, today, discuss=owner.manager_id is not None)
            key = nudge_key(goal, reason, now)
            dues.append(Due(owner.id, key, f"goal-{reason}", reply.to_dict(), plan.due_at or now, "nudge", _held(plan)))
        return await self._queue(session, dues, now)

    # -- anonymous 360s ------------------------------------------------------------------------

    async def _reviews(self, session: AsyncSession, now: datetime, report: TickReport) -> int:
        """Close due 360s and send their results to the subject and their manager; remind late raters."""
        from dialogs.review360 import close_campaign, due_360, reminder_360, report_reply

        to_close, to_remind = await due_360(session, now)
        dues: list[Due] = []
        for campaign in to_close:
            results = await close_campaign(session, campaign, now, self.sealer)
            subject = await session.get(Person, campaign.subject_id)
            if subject is None:
                continue
            readers = [(subject, True)]
            manager = await session.get(Person, subject.manager_id) if subject.manager_id else None
            if manager is not None:
                readers.append((manager, False))
            for reader, own in readers:
                reply = report_reply(results, subject, for_subject=own, tools=self.tools_available)
                # Results are owed, not a nudge: never held by the budget; quiet hours and leave still apply.
                [plan] = await self._plans(session, [(reader, now)], now, report, kind="report")
                dues.append(
                    Due(
                        reader.id,
                        f"360-report:{campaign.id}:{reader.id}",
                        "360-report",
                        reply.to_dict(),
                        plan.due_at or now,
                        "report",
                    )
                )
        if to_remind:
            subjects = {c.subject_id for c, _ in to_remind}
            people = {
                p.id: p
                for p in (
                    await session.execute(
                        select(Person).where(Person.id.in_(subjects | {r.rater_id for _, r in to_remind}))
                    )
                ).scalars()
            }
            plans = await self._plans(
                session, [(people[r.rater_id], now) for _, r in to_remind], now, report, kind="reminder"
            )
            for (campaign, rater), plan in zip(to_remind, plans, strict=True):
                reply = reminder_360(campaign, people[campaign.subject_id], rater.group)
                dues.append(
                    Due(
                        rater.rater_id,
                        f"360-reminder:{campaign.id}:{rater.rater_id}",
                        "360-reminder",
                        reply.to_dict(),
                        plan.due_at or now,
                        "reminder",
                        _held(plan),
                    )
                )
        return await self._queue(session, dues, now)

    # -- "which tool helps?" follow-ups --------------------------------------------------------

    async def _follow_ups(self, session: AsyncSession, now: datetime, report: TickReport) -> int:
        from dialogs.tools import catalogue, due_follow_ups, follow_up_reply

        due = await due_follow_ups(session, now)
        if not due:
            return 0
        cat = catalogue(self.catalogue_file)
        plans = await self._plans(session, [(asker, now) for _, asker, _ in due], now, report, kind="follow-up")
        dues = []
        for (tool_plan, asker, about), plan in zip(due, plans, strict=True):
            tool = cat.get(tool_plan.tool_id)
            name, question = (tool.name, tool.follow_up) if tool else (tool_plan.tool_id, "Did it help?")
            reply = follow_up_reply(tool_plan, name, question, about)
            key = f"tool-followup:{tool_plan.id}"
            dues.append(
                Due(asker.id, key, "tool-followup", reply.to_dict(), plan.due_at or now, "follow-up", _held(plan))
            )
            if plan.due_at is not None:  # held ones are asked again at a later tick, which releases them
                tool_plan.status = "asked"
                session.add(tool_plan)
        return await self._queue(session, dues, now)

    # -- invitations -------------------------------------------------------------------------

    async def _invite(
        self, session: AsyncSession, now: datetime, report: TickReport, *, team_id: int | None, force: bool
    ) -> int:
        statement = (
            select(
                Person.id,
                Person.name,
                Person.timezone,
                Person.quiet_start,
                Person.quiet_end,
                Team.id.label("team_id"),
                Team.checkin_weekday,
                Team.checkin_time,
            )
            .join(Team, Team.id == Person.team_id)
            .where(Person.active.is_(True))
        )
        if team_id is not None:
            statement = statement.where(Team.id == team_id)
        candidates = []
        teams: dict[int, Rhythm] = {}
        for row in await session.execute(statement):
            if force:  # send-now: the period a check-in started now is for, never one that has closed
                if row.team_id not in teams:
                    teams[row.team_id] = Rhythm.of(await session.get(Team, row.team_id))
                candidates.append((row, teams[row.team_id].current_send(now, row.timezone)))
                continue
            last, this, _ = weekly_times(now, row.timezone, row.checkin_weekday, row.checkin_time)
            send = this if this <= now else last
            if send <= now < send + self.grace:
                candidates.append((row, send))
        if not candidates:
            return 0
        periods = [period_of(send, row.timezone) for row, send in candidates]
        done = await self._done(session, [(row.id, p) for (row, _), p in zip(candidates, periods, strict=True)])
        if done:
            kept = [(c, p) for c, p in zip(candidates, periods, strict=True) if (c[0].id, p) not in done]
            candidates, periods = [c for c, _ in kept], [p for _, p in kept]
        if not candidates:
            return 0
        counts = await self._question_counts(session, {row.team_id for row, _ in candidates})
        dues = []
        wanted = [(row, now if force else send) for row, send in candidates]
        plans = await self._plans(session, wanted, now, report, kind="checkin")
        for (row, _send), period, plan in zip(candidates, periods, plans, strict=True):
            if plan.due_at is None:
                continue
            reply = invitation(row.name.split(" ")[0], period, counts.get(row.team_id, len(DEFAULT_QUESTIONS)))
            dues.append(
                Due(row.id, f"checkin:{row.id}:{period}", f"checkin:{period}", reply.to_dict(), plan.due_at, "checkin")
            )
        return await self._queue(session, dues, now)

    async def _done(self, session: AsyncSession, wanted: list[tuple[int, str]]) -> set[tuple[int, str]]:
        """Which (person, period) check-ins are already answered or skipped (answered early, say)."""
        periods = {period for _, period in wanted}
        rows = await session.execute(
            select(CheckinRun.person_id, CheckinRun.period).where(
                CheckinRun.period.in_(periods), CheckinRun.status.in_(("answered", "skipped"))
            )
        )
        return {(person_id, period) for person_id, period in rows}

    async def _question_counts(self, session: AsyncSession, team_ids: set[int]) -> dict[int, int]:
        rows = await session.execute(
            select(CheckinTemplate.team_id, CheckinTemplate.questions).where(CheckinTemplate.team_id.in_(team_ids))
        )
        return {team: len(questions) for team, questions in rows}

    async def _plans(
        self,
        session: AsyncSession,
        wanted: list[tuple[Any, datetime]],
        now: datetime,
        report: TickReport,
        *,
        kind: str,
    ) -> list[Plan]:
        """Apply quiet hours, leave and (for nudges and reminders only) the weekly budget to each
        (person row, wanted time). A plan without `due_at` is held, with its reason."""
        ids = [row.id for row, _ in wanted]
        first = min(when for _, when in wanted).date() - timedelta(days=1)
        leaves = await leave_days(session, ids, first, first + timedelta(days=60))
        used = await budget_used(session, ids, now) if budgeted(kind) else {}  # only nudges need the count
        plans: list[Plan] = []
        for row, when in wanted:
            plan = plan_unsolicited(
                Recipient(row.id, row.timezone, row.quiet_start, row.quiet_end),
                max(when, now),
                leaves=leaves.get(row.id, []),
                used=used.get(row.id, 0),
                budget=self.budget,
                scheduled=when,
                kind=kind,
            )
            if plan.due_at is None:
                report.held[plan.reason or "?"] += 1
            else:
                used[row.id] = used.get(row.id, 0) + 1
                report.deferred += plan.due_at > max(when, now)
            plans.append(plan)
        return plans

    async def _queue(self, session: AsyncSession, dues: list[Due], now: datetime) -> int:
        """Insert every due message in one statement; keys already present are skipped."""
        if not dues:
            return 0
        addresses = await preferred_addresses(session, {d.person_id for d in dues})
        insert = pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert
        holdable = any(budgeted(due.kind) for due in dues)
        rows = []
        for due in dues:
            channel, address = addresses.get(due.person_id, ("local", {}))
            rows.append(
                {
                    "key": due.key,
                    "person_id": due.person_id,
                    "channel": channel,
                    "address": address,
                    "payload": due.payload,
                    "kind": due.kind,
                    "topic": due.topic,
                    "unsolicited": True,
                    "due_at": due.due_at,
                    "status": "held" if due.held else "pending",
                    "attempts": 0,
                    "created_at": now,
                }
                | ({"last_error": due.held} if holdable else {})
            )
        statement = insert(OutboxMessage)
        if holdable:
            # A key seen before is skipped — unless it was held and may go now: then it is released.
            statement = statement.on_conflict_do_update(
                index_elements=["key"],
                set_={"status": "pending", "due_at": statement.excluded.due_at, "last_error": None},
                where=(col(OutboxMessage.status) == "held") & (statement.excluded.status == "pending"),
            )
        else:  # what the budget never holds (invitations, digests, results) can only be skipped
            statement = statement.on_conflict_do_nothing(index_elements=["key"])
        await session.execute(statement, rows)
        return len(rows)

    # -- snoozes and reminders ---------------------------------------------------------------

    async def _resend_snoozed(self, session: AsyncSession, now: datetime, report: TickReport) -> int:
        rows = await session.execute(
            select(CheckinRun, Person)
            .join(Person, Person.id == CheckinRun.person_id)
            .where(CheckinRun.snoozed_until.is_not(None), CheckinRun.snoozed_until <= now, CheckinRun.status == "open")
        )
        dues = []
        rhythms: dict[int | None, Rhythm] = {}
        for run, person in rows:
            run.snoozed_until = None
            session.add(run)
            if run.team_id not in rhythms:
                rhythms[run.team_id] = Rhythm.of(await session.get(Team, run.team_id) if run.team_id else None)
            if period_of(rhythms[run.team_id].open_send(now, person.timezone), person.timezone) != run.period:
                continue  # a newer invitation has gone out since: that one supersedes the snoozed one
            reply = invitation(person.name.split(" ")[0], run.period, len(run.questions))
            key = f"checkin-snooze:{person.id}:{run.period}:{run.snoozes}"
            dues.append(Due(person.id, key, f"checkin-snooze:{run.period}", reply.to_dict(), now, "checkin"))
        return await self._queue(session, dues, now)

    async def _remind(self, session: AsyncSession, now: datetime, report: TickReport) -> int:
        invites = await session.execute(
            select(OutboxMessage.person_id, OutboxMessage.topic, OutboxMessage.sent_at)
            .where(
                OutboxMessage.kind == "checkin", OutboxMessage.topic.like("checkin:%"), OutboxMessage.status == "sent"
            )
            .where(OutboxMessage.sent_at > now - timedelta(days=8))
        )
        latest: dict[tuple[int, str], datetime] = {}
        for person_id, topic, sent_at in invites:
            latest[(person_id, topic.split(":", 1)[1])] = sent_at
        if not latest:
            return 0
        person_ids = {p for p, _ in latest}
        runs = {
            (r.person_id, r.period): r
            for r in (await session.execute(select(CheckinRun).where(CheckinRun.person_id.in_(person_ids)))).scalars()
        }
        sent_reminders: dict[tuple[int, str], int] = defaultdict(int)
        for person_id, topic in await session.execute(
            select(OutboxMessage.person_id, OutboxMessage.topic).where(
                OutboxMessage.person_id.in_(person_ids), OutboxMessage.topic.like("checkin-reminder:%")
            )
        ):
            sent_reminders[(person_id, topic.split(":", 1)[1])] += 1
        people = {
            p.id: (p, t)
            for p, t in await session.execute(
                select(Person, Team).join(Team, Team.id == Person.team_id).where(Person.id.in_(person_ids))
            )
        }
        wanted = []
        for (person_id, period), sent_at in latest.items():
            run = runs.get((person_id, period))
            if run is not None and (run.status in ("answered", "skipped") or run.snoozes > 0):
                continue  # done, or they chose their own time
            if person_id not in people:
                continue
            person, team = people[person_id]
            rhythm = Rhythm.of(team)
            count = sent_reminders[(person_id, period)]
            if count >= rhythm.reminder_count:
                continue
            at = sent_at + rhythm.reminder_after * (count + 1)
            still_open = now < rhythm.next_send(sent_at, person.timezone)
            # Not made up after downtime beyond the grace window, like every scheduled send.
            if (
                at <= now < at + self.grace
                and still_open
                and period_of(rhythm.open_send(now, person.timezone), person.timezone) == period
            ):
                wanted.append((person, period, count + 1))
        if not wanted:
            return 0
        plans = await self._plans(session, [(p, now) for p, _, _ in wanted], now, report, kind="reminder")
        dues = [
            Due(
                p.id,
                f"checkin-reminder:{p.id}:{period}:{n}",
                f"checkin-reminder:{period}",
                reminder(p.name.split(" ")[0], period).to_dict(),
                plan.due_at or now,
                "reminder",
                _held(plan),
            )
            for (p, period, n), plan in zip(wanted, plans, strict=True)
        ]
        return await self._queue(session, dues, now)

    # -- digests -----------------------------------------------------------------------------

    async def _digests(self, session: AsyncSession, now: datetime, report: TickReport) -> int:
        # Every manager's active reports in one query (not one a manager a tick), by name.
        reports_of: dict[int, list[Person]] = defaultdict(list)
        for person in (
            await session.execute(
                select(Person)
                .where(col(Person.active).is_(True), col(Person.manager_id).is_not(None))
                .order_by(col(Person.name))
            )
        ).scalars():
            reports_of[person.manager_id or 0].append(person)
        if not reports_of:
            return 0
        managers = list(
            (
                await session.execute(
                    select(Person).where(col(Person.active).is_(True), col(Person.id).in_(list(reports_of)))
                )
            ).scalars()
        )
        due: list[tuple[Person, list[Person], Team | None, str, datetime]] = []
        for manager in managers:
            reports = reports_of[manager.id or 0]
            team = await session.get(Team, next((r.team_id for r in reports if r.team_id), manager.team_id or 0))
            rhythm = Rhythm.of(team)
            last, this, _ = weekly_times(now, manager.timezone, rhythm.digest_weekday, rhythm.digest_at)
            send = this if this <= now else last
            if not send <= now < send + self.grace:
                continue
            covered = period_of(rhythm.open_send(send - timedelta(seconds=1), manager.timezone), manager.timezone)
            due.append((manager, reports, team, covered, send))
        # A digest already queued is not built again at every tick of its grace window.
        queued = set(
            (
                await session.execute(
                    select(col(OutboxMessage.key)).where(
                        col(OutboxMessage.key).in_([f"digest:{m.id}:{covered}" for m, _, _, covered, _ in due])
                    )
                )
            ).scalars()
        )
        wanted: list[tuple[Person, Due]] = []
        for manager, reports, team, covered, send in due:
            if f"digest:{manager.id}:{covered}" in queued:
                continue
            reply = await self.digest(session, manager, reports, team, covered)
            wanted.append(
                (
                    manager,
                    Due(
                        manager.id,
                        f"digest:{manager.id}:{covered}",
                        f"digest:{covered}",
                        reply.to_dict(),
                        send,
                        "digest",
                    ),
                )
            )
        if not wanted:
            return 0
        plans = await self._plans(session, [(m, due.due_at) for m, due in wanted], now, report, kind="digest")
        kept = [
            Due(d.person_id, d.key, d.topic, d.payload, plan.due_at, d.kind)
            for (_, d), plan in zip(wanted, plans, strict=True)
            if plan.due_at is not None  # owed: only ever moved, never held
        ]
        return await self._queue(session, kept, now)

    async def _goal_lines(self, session: AsyncSession, reports: list[Person]) -> list[str]:
        return await _goal_lines_for(session, reports)

    async def digest(
        self, session: AsyncSession, manager: Person, reports: list[Person], team: Team | None, period: str
    ) -> Reply:
        """The manager's digest for `period`: who answered, pulse and trend, blockers, requests."""
        periods = previous_periods(period, 4)
        ids = [r.id for r in reports]
        runs = list(
            (
                await session.execute(
                    select(CheckinRun).where(CheckinRun.person_id.in_(ids), CheckinRun.period.in_(periods))
                )
            ).scalars()
        )
        answers: dict[int, dict[str, CheckinAnswer]] = defaultdict(dict)
        if runs:
            for answer in (
                await session.execute(select(CheckinAnswer).where(CheckinAnswer.run_id.in_([r.id for r in runs])))
            ).scalars():
                answers[answer.run_id][answer.question_id] = answer
        by_key = {(r.person_id, r.period): r for r in runs}

        def feed(run: CheckinRun, kind: str) -> list[CheckinAnswer]:
            return [
                answers[run.id][q["id"]] for q in run.questions if q.get("feeds") == kind and q["id"] in answers[run.id]
            ]

        def pulse(run: CheckinRun | None) -> float | None:
            values = [a.number for a in feed(run, "pulse") if a.number is not None] if run else []
            return values[0] if values else None

        # Away on the week's check-in day (typed leave, their calendar, a public holiday): no invitation went
        # out, so the digest says so rather than "not answered".
        day = checkin_day(period, team.checkin_weekday if team else 4)
        away = await leave_days(session, [r.id for r in reports if r.id is not None], day, day)
        answered, people_lines, blockers, requests, follow_ups = 0, [], [], [], []
        for person in reports:
            run = by_key.get((person.id, period))
            first = person.name.split(" ")[0]
            if (run is None or run.status == "open") and person.id in away:
                people_lines.append(f"• {first}: away")
                continue
            if run is None or run.status == "open":
                people_lines.append(f"• {first}: not answered yet")
                continue
            if run.status == "skipped":
                people_lines.append(f"• {first}: skipped this week")
                continue
            answered += 1
            now_pulse = pulse(run)
            before = pulse(by_key.get((person.id, periods[-2]))) if len(periods) > 1 else None
            arrow = (
                ""
                if now_pulse is None or before is None
                else " ↑"
                if now_pulse > before
                else " ↓"
                if now_pulse < before
                else " →"
            )
            people_lines.append(
                f"• {first}: pulse {now_pulse:g}{arrow}" if now_pulse is not None else f"• {first}: answered"
            )
            for answer in feed(run, "blockers"):
                if not is_nothing(answer.text):
                    blockers.append(f"• {first}: {shorten(answer.text or '', 280)}")
                    follow_ups.append(person)
            for answer in feed(run, "requests"):
                if not is_nothing(answer.text):
                    requests.append(f"• {first}: {shorten(answer.text or '', 280)}")
            if now_pulse is not None and now_pulse <= 2 and person not in follow_ups:
                follow_ups.append(person)
        trend = []
        for p in periods:
            values = [v for v in (pulse(by_key.get((r.id, p))) for r in reports) if v is not None]
            trend.append(f"{mean(values):.1f}" if values else "–")
        goal_lines = await self._goal_lines(session, reports)
        lines = (
            people_lines
            + (["", "Blockers:", *blockers] if blockers else [])
            + (["", "Asks for you:", *requests] if requests else [])
            + (["", "Goals off track:", *goal_lines] if goal_lines else [])
        )
        fields = (
            ("Answered", f"{answered} of {len(reports)}"),
            ("Team pulse, last 4 weeks", " → ".join(trend)),
        )
        choices: tuple[Choice, ...] = tuple(
            Choice(f"Reply to {p.name.split(' ')[0]}'s check-in", f"feedback {p.email} checkin")
            for p in reports
            if (by_key.get((p.id, period)) is not None and by_key[(p.id, period)].status == "answered")
        )[:3]
        blocked = [
            p for p in follow_ups if any(not is_nothing(a.text) for a in feed(by_key[(p.id, period)], "blockers"))
        ]
        choices += tuple(
            Choice(
                f"Discuss {p.name.split(' ')[0]}'s blocker in your 1:1",
                f"1:1 discuss checkin:{by_key[(p.id, period)].id}:{feed(by_key[(p.id, period)], 'blockers')[0].question_id}",
            )
            for p in blocked[:2]
        )
        if self.tools_available and follow_ups:
            choices += tuple(
                Choice(f"Which tool helps? ({p.name.split(' ')[0]})", f"tools {p.email}") for p in follow_ups[:3]
            )
        team_name = f" — {team.name}" if team else ""
        return Reply(
            f"Your team's check-ins for {week_label(period)} are in.",
            card=Card(f"Check-ins, {week_label(period)}{team_name}", fields, tuple(lines)),
            choices=choices,
            action="cmd" if choices else None,
        )


async def _goal_lines_for(session: AsyncSession, reports: list[Person]) -> list[str]:
    from dialogs.goals import latest_updates
    from storage.models import Goal

    goals = list(
        (
            await session.execute(
                select(Goal).where(
                    Goal.owner_id.in_([r.id for r in reports]), Goal.status == "active", Goal.rag.in_(["amber", "red"])
                )
            )
        ).scalars()
    )
    latest = await latest_updates(session, [g.id for g in goals])
    names = {r.id: r.name.split(" ")[0] for r in reports}
    return [
        f"• {names[g.owner_id]}: {shorten(g.title, 80)} — {latest[g.id].progress:.0%}, {g.rag}"
        for g in goals
        if g.id in latest
    ]


def previous_periods(period: str, count: int) -> list[str]:
    """`count` ISO weeks ending with `period`, oldest first."""
    year, week = period.split("-W")
    monday = datetime.strptime(f"{year}-W{int(week):02d}-1", "%G-W%V-%u")
    weeks = []
    for back in range(count - 1, -1, -1):
        y, w, _ = (monday - timedelta(weeks=back)).isocalendar()
        weeks.append(f"{y}-W{w:02d}")
    return weeks
