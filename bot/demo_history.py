"""Eight weeks of believable history for the demo organisation, so a first run shows the product.

Check-ins with progress, blockers and pulses (one skipped for leave, one for a busy week), goals
updated week by week, kudos and feedback, a 360 about Tom closed above its thresholds through the
real sealed pool, two tool plans, one with its outcome, four ideas in different states (one anonymous), and three held 1:1s per pair with their notes
and action items (the next one's agenda already gathered). This week's check-in is left open for
whoever tries Baton, and nothing is queued in anyone's chat: each person is greeted on first visit.

Written straight into the tables a week of real use would fill, by the same functions the dialogs
use where a rule applies (goal status, the 360's anonymity rules at close).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from dialogs.checkin import DEFAULT_QUESTIONS
from dialogs.common import agenda, anonymity
from dialogs.common.cadence import slots
from dialogs.common.periods import Rhythm, period_of
from dialogs.engine.sealing import Sealer
from dialogs.goals import record_progress
from dialogs.review360 import OPEN, RATED, close_campaign
from dialogs.services.rhythm import previous_periods
from storage.models import (
    ActionItem,
    Campaign360,
    CheckinAnswer,
    CheckinRun,
    FeedbackEntry,
    Goal,
    Idea,
    Leave,
    Meeting,
    MeetingNote,
    OneOnOne,
    Person,
    Pool360,
    Rater360,
    Retro,
    RetroParticipant,
    RetroProposal,
    SealedDraft,
    TalkingPoint,
    Team,
    ToolPlan,
)

WEEKS = 8

# Per person, oldest week first: (what moved forward, what got in the way or "" for nothing, pulse 1–5,
# or None for a week skipped). The words are about the work.
CHECKINS: dict[str, list[tuple[str, str, int] | None]] = {
    "maya": [
        ("Kicked off the latency project with the team", "", 4),
        ("Interview loop for the SRE opening", "", 4),
        ("Quarterly planning draft shared for comments", "Planning doc waiting on finance numbers", 3),
        ("Agreed the on-call rota for December", "", 4),
        ("Two SRE finalists through the loop", "", 4),
        ("Latency review with the product leads", "", 4),
        ("Offer out for the SRE role", "", 5),
        ("Planning doc signed off", "", 4),
    ],
    "arjun": [
        ("Rewrote the paging runbook for ingest", "", 4),
        ("Closed four runbook gaps from the incident review", "", 4),
        ("Paired with Lucía on her first on-call shift", "Still no access to the production metrics board", 3),
        ("Alert thresholds tuned for the queue workers", "", 4),
        ("Closed three more runbook gaps", "", 4),
        ("Ran the failover drill", "", 5),
        ("Runbook index page for on-call", "", 4),
        ("Closed two runbook gaps; drill notes written up", "", 4),
    ],
    "lucia": [
        ("Outlined the onboarding guide", "Design review slots are booked two weeks out", 3),
        ("First chapter of the guide: local setup", "Design review slots still two weeks out", 3),
        ("Shadowed Arjun on call", "", 3),
        ("Guide chapter on deploys", "", 4),
        ("Guide chapter on observability", "", 4),
        ("Demoed the guide to the team", "", 5),
        ("Two chapters reviewed and merged", "", 4),
        ("Started the chapter on incident response", "", 4),
    ],
    "tom": [
        ("Migrated the billing service to the new pipeline", "", 4),
        ("Pipeline templates for the remaining services", "", 4),
        ("Started the search service migration", "Staging database is down half the day", 3),
        ("Search migration half done", "Still no stable staging; pull requests wait days for review", 2),
        ("Staging fallback set up with the platform team", "Pull requests wait three days for review", 3),
        None,  # on leave
        ("Search and notifications migrated", "", 3),
        ("Two more services on the new pipeline", "", 4),
    ],
    "aiko": [
        ("Quarantined the ten flakiest tests", "", 5),
        None,  # a busy release week
        ("Fixed the timing bugs behind six flaky tests", "", 5),
        ("CI retries now logged per test", "", 4),
        ("Flaky-test dashboard shared with the team", "", 4),
        ("Removed sleeps from the integration suite", "", 5),
        ("Five more flaky tests fixed", "", 4),
        ("CI green all week for the first time", "", 5),
    ],
}
PRIORITIES = "Keep the release train on schedule"

# (owner or None for the team, title, start, target, unit, values week by week)
GOALS: list[tuple[str | None, str, float, float, str, list[float]]] = [
    (None, "Cut checkout p95 latency", 420, 200, "ms", [410, 395, 380, 360, 345, 320, 300, 285]),
    ("arjun", "Close the runbook gaps from incident reviews", 0, 30, "gaps", [4, 8, 8, 11, 14, 17, 19, 21]),
    ("tom", "Move 12 services to the new deploy pipeline", 0, 12, "services", [1, 1, 2, 2, 2, 3, 4, 5]),
    ("lucia", "Write the onboarding guide", 0, 8, "chapters", [0, 1, 1, 2, 3, 3, 5, 5]),
    ("aiko", "Bring flaky tests down", 40, 5, "tests", [30, 30, 24, 22, 19, 15, 10, 8]),
]

# (week, from, to, kind, text, public)
FEEDBACK: list[tuple[int, str, str, str, str, bool]] = [
    (2, "lucia", "arjun", "kudos", "Your paging runbook got me through my first on-call night.", True),
    (
        3,
        "maya",
        "lucia",
        "downward",
        "Your outline made the guide's scope easy to agree. Sharing drafts a day before review would let "
        "people read first.",
        False,
    ),
    (
        4,
        "aiko",
        "tom",
        "peer",
        "Your review comments on the pipeline change were clear and kind. Smaller pull requests would get "
        "them reviewed faster.",
        False,
    ),
    (5, "maya", "tom", "kudos", "The staging fallback you set up kept the release on track.", True),
    (
        6,
        "tom",
        "maya",
        "upward",
        "The Monday priorities list helps. More of that when plans change mid-week, please.",
        False,
    ),
    (7, "arjun", "aiko", "kudos", "Thank you for the flaky-test hunt: CI was green all week.", True),
    (7, "tom", "lucia", "kudos", "The deploy chapter of the guide saved me an afternoon.", False),
]

# The 360 about Tom: each rater's group, ratings per influence (RATED order) and, for peers, comments.
REVIEW: list[tuple[str, str, tuple[int, ...], dict[str, str]]] = [
    ("maya", "manager", (4, 3, 3, 4, 4, 4), {"keep": "Careful, well-explained pipeline work."}),
    ("tom", "self", (4, 3, 2, 3, 4, 4), {"change": "Ask for reviews earlier instead of waiting."}),
    (
        "arjun",
        "peer",
        (4, 3, 3, 4, 5, 4),
        {
            "keep": "Writes migration notes everyone can follow.",
            "change": "Split big changes so they can be reviewed in a day.",
        },
    ),
    (
        "lucia",
        "peer",
        (5, 4, 3, 4, 4, 5),
        {
            "keep": "Patient when pairing on the pipeline.",
            "change": "Share the migration plan in stand-up, not only in the doc.",
        },
    ),
    (
        "aiko",
        "peer",
        (4, 3, 2, 4, 4, 4),
        {
            "keep": "Clear, kind review comments.",
            "change": "Flag blockers like staging on the first day, not the third.",
        },
    ),
]


async def seed_history(
    session: AsyncSession, team: Team, people: dict[str, Person], now: datetime, sealer: Sealer
) -> None:
    """Fill eight weeks before `now` for the demo team; `people` by first name in lower case (ASCII)."""
    rhythm = Rhythm.of(team)
    sends: dict[str, list[datetime]] = {}
    for key, person in people.items():
        if key in CHECKINS:
            current = rhythm.current_send(now, person.timezone)
            sends[key] = [current - timedelta(weeks=WEEKS - week) for week in range(WEEKS)]
    await _checkins(session, team, people, sends)
    first_send = min(sends["maya"])
    await _goals(session, team, people, first_send, now)
    _feedback(session, people, first_send)
    await _review(session, people, first_send + timedelta(weeks=3), sealer)
    _plans(session, people, first_send)
    await _one_on_ones(session, people, now)
    await _retro(session, team, people, first_send + timedelta(weeks=4), sealer)
    _ideas(session, team, people, now, sealer)


def _ideas(session: AsyncSession, team: Team, people: dict[str, Person], now: datetime, sealer: Sealer) -> None:
    """A handful of ideas to Maya in different states: one with its result, one being tried (sent anonymously,
    its way back sealed as a real one is), one acknowledged, one waiting for her."""
    from dialogs.common.anonymity import new_id
    from dialogs.ideas import relay_for

    today = now.date()
    maya = people["maya"].id or 0

    def ago(days: int) -> date:
        return today - timedelta(days=days)

    anonymous = new_id()
    session.add_all(
        [
            Idea(
                id=new_id(),
                owner_id=maya,
                team_id=team.id,
                text="Hand over on-call on Friday afternoons in pairs, so nobody starts the weekend alone with it",
                signed_by_id=people["tom"].id,
                state="result",
                decision="adopt",
                reason="Cheap to try and the last two incidents started with a thin handover",
                result="Handovers now take 20 minutes in pairs; no weekend page went unanswered since",
                received_on=ago(40),
                acknowledged_on=ago(39),
                decided_on=ago(35),
                done_on=ago(28),
                result_on=ago(14),
            ),
            Idea(
                id=anonymous,
                owner_id=maya,
                team_id=team.id,
                text="Fewer status meetings: write the weekly update in the channel and keep Thursdays for questions",
                relay=relay_for(sealer, people["arjun"].id or 0, anonymous),
                state="decided",
                decision="try",
                reason="Worth a month: we keep the Thursday slot and check in the next retro",
                received_on=ago(20),
                acknowledged_on=ago(19),
                decided_on=ago(12),
            ),
            Idea(
                id=new_id(),
                owner_id=maya,
                team_id=team.id,
                text="A shared glossary for the billing domain in the docs repository",
                signed_by_id=people["lucia"].id,
                state="acknowledged",
                received_on=ago(6),
                acknowledged_on=ago(5),
            ),
            Idea(
                id=new_id(),
                owner_id=maya,
                team_id=team.id,
                text="Record the architecture reviews for the colleagues in Tokyo",
                signed_by_id=people["aiko"].id,
                received_on=ago(2),
            ),
        ]
    )


# What the pairs talked about, by report: (shared notes, a point they discussed, an action: (text, owner key)).
ONE_ON_ONES = {
    "arjun": (
        "Agreed to split the billing export into two releases.",
        "Staging database keeps blocking the integration tests",
        ("Ask the platform team for a staging database slot", "maya"),
    ),
    "lucia": (
        "Lucía will pair with Tom on the on-call handbook.",
        "Interest in leading the next incident review",
        ("Draft the incident review template", "lucia"),
    ),
    "tom": ("Workload is fine again after the release.", "Conference budget for next year", None),
    "aiko": ("Reviewed the latency goal; the cache change is the next step.", "Time-zone overlap with the team", None),
}


async def _one_on_ones(session: AsyncSession, people: dict[str, Person], now: datetime) -> None:
    """Three held 1:1s per pair (every two weeks, Tuesdays 10:00 on Maya's clock), their notes and actions,
    one open action, one private note of Maya's, and the next 1:1's agenda already built."""
    maya = people["maya"]
    zone = ZoneInfo(maya.timezone)
    today = now.astimezone(zone).date()
    tuesday = today - timedelta(days=(today.weekday() - 1) % 7)
    for key, (notes, discussed, action) in ONE_ON_ONES.items():
        report = people[key]
        pair = OneOnOne(
            manager_id=maya.id or 0,
            report_id=report.id or 0,
            anchor=tuesday - timedelta(weeks=5),  # held 5, 3 and 1 weeks ago; the next in a week
            created_at=now - timedelta(weeks=7),
        )
        session.add(pair)
        await session.flush()
        held = slots(pair, maya.timezone, now - timedelta(weeks=8), now)
        for index, starts in enumerate(held[-3:]):
            meeting = Meeting(
                pair_id=pair.id or 0,
                planned_at=starts,
                starts_at=starts,
                status="held",
                shared_notes=notes if index == 2 else None,
                recorded_at=starts + timedelta(hours=1),
                agenda_at=starts - timedelta(days=1),
                asked_at=starts + timedelta(hours=1),
                created_at=starts - timedelta(days=2),
            )
            session.add(meeting)
            await session.flush()
            if index == 2:
                session.add(
                    TalkingPoint(
                        pair_id=pair.id or 0,
                        author_id=report.id,
                        text=discussed,
                        meeting_id=meeting.id,
                        discussed_at=starts + timedelta(minutes=10),
                        created_at=starts - timedelta(days=3),
                    )
                )
                if action is not None:
                    text, owner = action
                    session.add(
                        ActionItem(
                            owner_id=people[owner].id or 0,
                            created_by_id=maya.id,
                            text=text,
                            due_on=(starts + timedelta(days=7)).date(),
                            pair_id=pair.id,
                            meeting_id=meeting.id,
                            created_at=starts + timedelta(hours=1),
                        )
                    )
                if key == "arjun":
                    session.add(
                        MeetingNote(
                            meeting_id=meeting.id or 0,
                            author_id=maya.id or 0,
                            text="Ask how the on-call rotation feels next time.",
                            created_at=starts + timedelta(hours=1),
                        )
                    )
        await session.flush()
        if key == "arjun":  # one point people added, not discussed yet
            session.add(
                TalkingPoint(
                    pair_id=pair.id or 0,
                    author_id=report.id,
                    text="Career path after the migration",
                    created_at=now - timedelta(days=2),
                )
            )
        # A newcomer sees an agenda on the first run (`1:1 agenda`, the dashboard); the scheduler still
        # sends it the day before, adding anything new.
        await agenda.build(session, pair, await agenda.upcoming(session, pair, maya, now), now)


async def _checkins(
    session: AsyncSession, team: Team, people: dict[str, Person], sends: dict[str, list[datetime]]
) -> None:
    questions = [dict(q) for q in DEFAULT_QUESTIONS]
    for key, weeks in CHECKINS.items():
        person = people[key]
        periods = previous_periods(period_of(sends[key][-1], person.timezone), WEEKS)
        for week, (period, entry) in enumerate(zip(periods, weeks, strict=True)):
            sent = sends[key][week]
            run = CheckinRun(
                person_id=_id(person),
                team_id=team.id,
                period=period,
                questions=questions,
                status="answered" if entry else "skipped",
                started_at=sent + timedelta(hours=1),
                answered_at=sent + timedelta(hours=1, minutes=4) if entry else None,
            )
            session.add(run)
            if entry is None:
                if key == "tom":
                    day = sent.astimezone(ZoneInfo(person.timezone)).date()
                    session.add(
                        Leave(
                            person_id=_id(person),
                            start=day - timedelta(days=3),
                            end=day + timedelta(days=1),
                            created_at=sent - timedelta(weeks=2),
                        )
                    )
                continue
            await session.flush()
            progress, blocker, pulse = entry
            at = sent + timedelta(hours=1, minutes=4)
            session.add_all(
                [
                    CheckinAnswer(run_id=_id(run), question_id="progress", text=progress, updated_at=at),
                    CheckinAnswer(run_id=_id(run), question_id="blockers", text=blocker or "nothing", updated_at=at),
                    CheckinAnswer(run_id=_id(run), question_id="pulse", number=float(pulse), updated_at=at),
                    CheckinAnswer(run_id=_id(run), question_id="priorities", text=PRIORITIES, updated_at=at),
                    CheckinAnswer(run_id=_id(run), question_id="needs", text="nothing", updated_at=at),
                ]
            )


async def _goals(session: AsyncSession, team: Team, people: dict[str, Person], start: datetime, now: datetime) -> None:
    for owner, title, begin, target, unit, values in GOALS:
        goal = Goal(
            owner_id=_id(people[owner]) if owner else None,
            team_id=None if owner else team.id,
            title=title,
            start_value=begin,
            target_value=target,
            unit=unit,
            start_date=(start - timedelta(days=3)).date(),
            due_date=(now + timedelta(weeks=5)).date(),
            created_by_id=_id(people["maya"]),
            created_at=start - timedelta(days=3),
        )
        session.add(goal)
        await session.flush()
        for week, value in enumerate(values):
            at = start + timedelta(weeks=week, hours=1, minutes=5)
            recorder = _id(people[owner]) if owner else _id(people["maya"])
            await record_progress(
                session,
                goal,
                value,
                source="checkin",
                now=at,
                today=at.date(),
                recorded_by=recorder,
                close_when_reached=False,
            )


def _feedback(session: AsyncSession, people: dict[str, Person], start: datetime) -> None:
    for week, sender, recipient, kind, text, public in FEEDBACK:
        at = start + timedelta(weeks=week, days=-1, hours=3)
        session.add(
            FeedbackEntry(
                from_id=_id(people[sender]),
                to_id=_id(people[recipient]),
                kind=kind,
                text=text,
                public=public,
                created_at=at,
                thanked_at=at + timedelta(hours=5) if kind == "kudos" else None,
            )
        )


async def _review(session: AsyncSession, people: dict[str, Person], opened: datetime, sealer: Sealer) -> None:
    """A 360 about Tom, answered by five people and closed through the real pool: sealed submissions,
    opened only at close, and only what passes the anonymity rules written out."""
    closes = opened + timedelta(weeks=2)
    campaign = Campaign360(
        subject_id=_id(people["tom"]),
        created_by_id=_id(people["maya"]),
        status="open",
        opens_at=opened,
        closes_at=closes,
        created_at=opened,
    )
    session.add(campaign)
    await session.flush()
    assert campaign.id is not None
    where = anonymity.scope("360", campaign.id)
    for rater, group, ratings, comments in REVIEW:
        session.add(Rater360(campaign_id=campaign.id, rater_id=_id(people[rater]), group=group, answered=True))
        answers: dict[str, dict[str, Any]] = {
            influence: {"rating": rating} for (influence, _, _), rating in zip(RATED, ratings, strict=True)
        }
        answers |= {question: {"comment": text} for question, text in comments.items()}
        sealed = anonymity.seal_submission(
            sealer, where, {"group": group, "answers": answers}, slots=len(RATED) + len(OPEN) + 1
        )
        session.add(Pool360(id=anonymity.new_id(), campaign_id=campaign.id, sealed=sealed))
    await session.flush()
    await close_campaign(session, campaign, closes, sealer)


def _plans(session: AsyncSession, people: dict[str, Person], start: datetime) -> None:
    maya, tom = people["maya"], people["tom"]
    tried = start + timedelta(weeks=3, days=1)
    session.add(
        ToolPlan(
            asked_by_id=_id(maya),
            person_id=_id(tom),
            gap="Tom's pipeline migrations stall for days while he waits for the staging database to come back.",
            influence="resources",
            tool_id="remove-blocker",
            signals=["blockers_reported"],
            facts=["resources:no", "blockers_reported"],
            created_at=tried,
            follow_up_at=tried + timedelta(weeks=2),
            status="closed",
            outcome="partly",
            outcome_note="Staging is stable now; reviews are the next bottleneck.",
            outcome_at=tried + timedelta(weeks=2, hours=3),
        )
    )
    later = start + timedelta(weeks=6, days=1)
    session.add(
        ToolPlan(
            asked_by_id=_id(maya),
            person_id=_id(tom),
            gap="Pull requests wait three days for review, so migrations finish a week late.",
            influence="resources",
            tool_id="rebalance-workload",
            signals=["blockers_reported"],
            facts=["resources:no", "blockers_reported"],
            created_at=later,
            follow_up_at=later + timedelta(weeks=2),
        )
    )


def _id(row: Person | CheckinRun) -> int:
    assert row.id is not None, "flushed rows have ids"
    return row.id


async def people_by_key(session: AsyncSession, team: Team) -> dict[str, Person]:
    rows = await session.execute(select(Person).where(col(Person.team_id) == team.id))
    return {p.email.split("@")[0]: p for p in rows.scalars()}


# The finished retro: each person's (Discover story, signed?, Dream, Design); ballots as proposal texts.
RETRO_THEME = "how we handled the checkout release"
RETRO_ANSWERS = {
    "maya": (
        "We paired on the release checklist and the launch was calm.",
        False,
        "Releases would feel routine.",
        "Keep one shared release checklist for every launch.",
    ),
    "arjun": (
        "Pairing on the release checklist caught the config bug before customers saw it.",
        True,
        "Nobody would work late before a release.",
        "Pair for an hour on every release.",
    ),
    "lucia": (
        "The release checklist and pairing meant nobody stayed late.",
        False,
        "We would ship on Fridays without fear.",
        "Review the checklist in sprint planning.",
    ),
    "tom": ("Customers thanked us for fast support replies.", False, "Support would be quiet.", None),
    "aiko": (
        "The dashboards showed latency dropping during the release.",
        False,
        "We would see problems before customers do.",
        "Put the latency dashboard on the release checklist.",
    ),
}
RETRO_VOTES = {"arjun": [0, 1], "lucia": [0, 3], "tom": [0], "aiko": [3, 1]}  # indexes into the Design answers


async def _retro(
    session: AsyncSession, team: Team, people: dict[str, Person], opened: datetime, sealer: Sealer
) -> None:
    """A finished retro of the team, closed through the real functions: answers as sealed drafts opened only
    at the close (a theme from two people is dropped), sealed ballots counted at the vote's close, and the
    top two proposals as action items."""
    from dialogs.retro import answers_scope, ballots_scope, close_retro, close_vote

    closes = opened + timedelta(weeks=1)
    retro = Retro(
        team_id=team.id or 0,
        started_by_id=_id(people["maya"]),
        theme=RETRO_THEME,
        opens_at=opened,
        closes_at=closes,
        invited_at=opened,
        created_at=opened,
    )
    session.add(retro)
    await session.flush()
    assert retro.id is not None
    where = answers_scope(retro.id)
    for key, (story, signed, dream, design) in RETRO_ANSWERS.items():
        person_id = _id(people[key])
        session.add(RetroParticipant(retro_id=retro.id, person_id=person_id, answered=True, voted=key in RETRO_VOTES))
        drafted = {
            "discover": {"text": story, "signed": signed},
            "dream": {"text": dream},
            "design": {"text": design or ""},
        }
        for item, answer in drafted.items():
            sealed = sealer.seal(where, answer, size=anonymity.SLOT, context=f"draft:{person_id}:{item}")
            session.add(SealedDraft(person_id=person_id, scope=where, item=item, sealed=sealed))
    await session.flush()
    await close_retro(session, retro, closes, sealer)
    proposals = {
        p.text: p for p in await session.scalars(select(RetroProposal).where(col(RetroProposal.retro_id) == retro.id))
    }
    designs = [d for _, _, _, d in RETRO_ANSWERS.values() if d]
    ballots = ballots_scope(retro.id)
    for key, picks in RETRO_VOTES.items():
        person_id = _id(people[key])
        numbers = sorted(proposals[designs[i]].number for i in picks)
        sealed = sealer.seal(ballots, {"picks": numbers}, size=anonymity.SLOT, context=f"draft:{person_id}:ballot")
        session.add(SealedDraft(person_id=person_id, scope=ballots, item="ballot", sealed=sealed))
    await session.flush()
    voted = closes + timedelta(days=3)
    top = await close_vote(session, retro, voted, sealer)
    for proposal, owner in zip(top[:2], ("lucia", "arjun"), strict=False):
        commitment = ActionItem(
            owner_id=_id(people[owner]),
            created_by_id=_id(people["maya"]),
            text=proposal.text,
            due_on=voted.date() + timedelta(weeks=2),
            source="retro",
            created_at=voted,
        )
        session.add(commitment)
        await session.flush()
        proposal.chosen, proposal.action_item_id = True, commitment.id
        session.add(proposal)
    retro.status = "done"
    session.add(retro)
