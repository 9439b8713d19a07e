"""Anonymous 360s: campaigns, answering in chat, and results nobody can trace back to a rater.

How anonymity is built, not promised:
- While someone answers, their answers live only in their own dialog state. On
  submit they move to `pool_360` — no rater, no time, random ids — and the
  dialog state is emptied. `rater_360` records only that they answered.
- At close the pool is written to `answer_360` in shuffled order, with fresh
  random ids and only the close day, and the pool is emptied. Both tables
  order rows by their random keys, never by arrival.
- Results per rater group are released only when at least `threshold` (never
  below 3) of that group answered; each question's score also needs that many
  ratings. Hidden groups are omitted, never folded into a total. The manager's
  and the subject's own answers are attributed, and raters are told so.
- Differencing guard: a group is withheld when its raters differ from the same
  group of an earlier campaign for the same subject by fewer than `threshold`
  people, since subtracting one result from the other would expose them.
- Comments are shuffled and shown only when the group has at least
  `comment_threshold` of them. Nothing about answers reaches a log line.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from statistics import mean

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from dialogs.common import anonymity
from dialogs.common.anonymity import shuffled
from dialogs.engine import COMMAND_ACTION, END, Dialog, State, Transition, Turn
from dialogs.engine.errors import UserFacingError
from dialogs.engine.messages import Card, Choice, Rating, Reply, TextInput
from dialogs.engine.sealing import Sealer
from storage import queries
from storage.models import Answer360, Campaign360, Person, Pool360, Rater360

FLOOR = 3
ANONYMOUS_GROUPS = ("peer", "report")
GROUP_NAMES = {"manager": "Manager", "self": "Self-assessment", "peer": "Peers", "report": "Direct reports"}
WINDOWS = {"1w": timedelta(weeks=1), "2w": timedelta(weeks=2)}
REMIND_WITHIN = timedelta(days=2)  # raters who have not answered are reminded once the close is this near
MAX_COMMENT = anonymity.MAX_WRITTEN

# Statements about the work, one per influence, rated 1 (strongly disagree) to 5 (strongly agree):
# (influence, about someone else, in the subject's own words).
RATED: tuple[tuple[str, str, str], ...] = (
    (
        "expectations",
        "{name} is clear about what their work should achieve and what good looks like.",
        "I'm clear about what my work should achieve and what good looks like.",
    ),
    (
        "feedback",
        "{name} gets and uses feedback on their work early enough to adjust.",
        "I get and use feedback on my work early enough to adjust.",
    ),
    (
        "resources",
        "{name} has what their work needs — tools, time, information, access.",
        "I have what my work needs — tools, time, information, access.",
    ),
    (
        "motivations",
        "{name}'s good work is noticed and the work feels worthwhile.",
        "My good work is noticed and the work feels worthwhile.",
    ),
    (
        "training",
        "{name} has the skills the work asks of them, and keeps building them.",
        "I have the skills the work asks of me, and keep building them.",
    ),
    ("job_fit", "{name}'s tasks make good use of their strengths.", "My tasks make good use of my strengths."),
)
OPEN: tuple[tuple[str, str, str], ...] = (
    ("keep", "What should {name} keep doing in their work?", "What should I keep doing in my work?"),
    (
        "change",
        "What one change would make {name}'s work more effective?",
        "What one change would make my work more effective?",
    ),
)
OPEN_LABELS = {"keep": "Keep doing", "change": "One change"}
SHOWN_COMMENTS = 12  # per group in the chat report; the dashboard shows them all


def question_label(question_id: str) -> str:
    """What a comment answered, in a word or two: an influence's name, "Keep doing" or "One change"."""
    return INFLUENCE_NAMES.get(question_id) or OPEN_LABELS.get(question_id) or question_id


INFLUENCE_NAMES = {
    "expectations": "Expectations",
    "feedback": "Feedback",
    "resources": "Resources",
    "motivations": "Motivations",
    "training": "Training & Development",
    "job_fit": "Job Fit",
}


async def propose_raters(session: AsyncSession, subject: Person) -> list[tuple[Person, str]]:
    """The subject's manager, peers in their team (at most 12), direct reports, and the subject (self)."""
    raters: list[tuple[Person, str]] = []
    if subject.manager_id:
        manager = await session.get(Person, subject.manager_id)
        if manager is not None and manager.active:
            raters.append((manager, "manager"))
    if subject.team_id:
        peers = await session.execute(
            select(Person)
            .where(col(Person.team_id) == subject.team_id, col(Person.id) != subject.id, col(Person.active).is_(True))
            .where(col(Person.id) != (subject.manager_id or 0))
            .order_by(Person.name)
            .limit(12)
        )
        raters += [(p, "peer") for p in peers.scalars()]
    reports = await queries.reports_of(session, _id(subject))
    raters += [(p, "report") for p in reports if all(p.id != r.id for r, _ in raters)]
    raters.append((subject, "self"))
    return raters


def pooling_note(group: str, threshold: int, subject_first: str) -> str:
    """What a rater is told about how their answers will be shown, before they submit."""
    if group == "manager":
        return f"As {subject_first}'s manager, your answers are shown as *the manager's* — they are not anonymous."
    if group == "self":
        return "This is your self-assessment: it is shown as yours, next to what others said."
    return (
        f"Your answers join the *{GROUP_NAMES[group].lower()}* group. They are shown only when at least {threshold} "
        f"people in that group answer, pooled with theirs, and never with your name."
    )


def _id(row: Person | Campaign360) -> int:
    """The primary key of a row that has been flushed (mypy sees the optional default of the model)."""
    assert row.id is not None
    return row.id


# -- results -----------------------------------------------------------------------------------


@dataclass
class GroupResult:
    group: str
    raters: int
    released: bool
    reason: str | None = None
    scores: dict[str, float] = field(default_factory=dict)  # influence → mean rating
    comments: list[tuple[str, str]] = field(default_factory=list)  # (question label, comment), shuffled


@dataclass
class Results:
    campaign_id: int
    groups: list[GroupResult]

    @property
    def released(self) -> list[GroupResult]:
        return [g for g in self.groups if g.released]

    def lowest(self, count: int = 2) -> list[str]:
        """The influences with the lowest score across released groups other than self."""
        pooled: dict[str, list[float]] = defaultdict(list)
        for group in self.released:
            if group.group != "self":
                for influence, score in group.scores.items():
                    pooled[influence].append(score)
        averaged = sorted(((mean(v), k) for k, v in pooled.items()))
        return [k for _, k in averaged[:count]]


@dataclass(frozen=True)
class Item:
    """One answer to one question, with its group and nothing else."""

    group: str
    question_id: str
    rating: int | None
    comment: str | None


@dataclass
class History:
    """What earlier closed 360s about the same subject showed, for the differencing guards."""

    raters: dict[str, list[set[int]]] = field(default_factory=dict)  # group → answered raters of each shown group
    # group → (answered raters, question → ratings shown) of each earlier campaign
    counts: dict[str, list[tuple[set[int], dict[str, int]]]] = field(default_factory=dict)


def decide(campaign: Campaign360, answered: dict[str, set[int]], history: History, items: list[Item]) -> Results:
    """Apply every anonymity rule to `items`; the results name, per group, what may be shown.

    Used at close on the opened pool (and what it releases is all that is ever
    written), and again on the released answers when results are read: applying
    the rules to what they released changes nothing.
    """
    by_group: dict[str, list[Item]] = defaultdict(list)
    for item in items:
        by_group[item.group].append(item)
    results = []
    for group in ("manager", "self", "peer", "report"):
        count = len(answered.get(group, ()))
        if count == 0:
            continue
        result = GroupResult(group, count, released=True)
        anonymous = group in ANONYMOUS_GROUPS
        if anonymous:
            if count < campaign.threshold:
                result.released, result.reason = False, f"fewer than {campaign.threshold} answered"
            elif any(0 < len(answered[group] ^ other) < campaign.threshold for other in history.raters.get(group, [])):
                result.released = False
                result.reason = "too close to an earlier 360's group: comparing the two could expose individuals"
        if result.released:
            minimum = campaign.threshold if anonymous else 1
            ratings: dict[str, list[int]] = defaultdict(list)
            comments: dict[str, list[str]] = defaultdict(list)
            for item in by_group.get(group, []):
                if item.rating is not None:
                    ratings[item.question_id].append(item.rating)
                if item.comment:
                    comments[item.question_id].append(item.comment)
            result.scores = {
                question: round(mean(values), 2)
                for question, values in ratings.items()
                if len(values) >= minimum
                and not (
                    anonymous and _differs_by_few(campaign, answered[group], history, group, question, len(values))
                )
            }
            # Each rater answers a question once, so a question's comments come from as many commenters:
            # three comments by one peer on three questions never make a group's comments show.
            needed = campaign.comment_threshold if anonymous else 1
            result.comments = shuffled(
                [
                    (question_label(question), comment)
                    for question, written in comments.items()
                    if len(written) >= needed
                    for comment in written
                ]
            )
        results.append(result)
    return Results(_id(campaign), results)


def _differs_by_few(
    campaign: Campaign360, raters: set[int], history: History, group: str, question: str, count: int
) -> bool:
    """Whether this question's rating count is within `threshold` of one an earlier 360 showed, from overlapping
    raters: subtracting the two averages would then isolate the few ratings that differ."""
    for earlier_raters, shown in history.counts.get(group, []):
        before = shown.get(question)
        if before is not None and raters & earlier_raters and 0 < abs(count - before) < campaign.threshold:
            return True
    return False


def released_items(results: Results, items: list[Item]) -> list[Item]:
    """Of `items`, only what `results` shows: ratings of shown questions, comments of groups whose comments show."""
    shown = {group.group: group for group in results.released}
    commented = {name: {label for label, _ in group.comments} for name, group in shown.items()}
    kept = []
    for item in items:
        group = shown.get(item.group)
        if group is None:
            continue
        rating = item.rating if item.question_id in group.scores else None
        comment = item.comment if question_label(item.question_id) in commented[item.group] else None
        if rating is not None or comment:
            kept.append(Item(item.group, item.question_id, rating, comment))
    return kept


async def compute_results(session: AsyncSession, campaign: Campaign360) -> Results:
    """Scores and comments per group, with every anonymity rule applied. Reads only released answers."""
    rows = await session.scalars(select(Answer360).where(col(Answer360.campaign_id) == campaign.id))
    items = [Item(row.group, row.question_id, row.rating, row.comment) for row in rows]
    return decide(campaign, await answered_raters(session, campaign), await _history(session, campaign), items)


async def may_close(session: AsyncSession, campaign: Campaign360, person: Person) -> bool:
    """The subject's manager, whoever started it, and admins may close a 360 early."""
    if person.is_admin or campaign.created_by_id == person.id:
        return True
    subject = await session.get(Person, campaign.subject_id)
    return subject is not None and subject.manager_id == person.id


def close_early(campaign: Campaign360, now: datetime) -> None:
    """Bring the close forward to `now`: the next tick closes it like any 360 at its date, and sends the results."""
    campaign.closes_at = now


def closing_preview(campaign: Campaign360, answered: dict[str, set[int]]) -> str:
    """Which groups would show and which stay hidden if the 360 closed now — from answer counts alone."""
    shown, hidden = [], []
    for group in ("manager", "self", "peer", "report"):
        count = len(answered.get(group, ()))
        if group in ANONYMOUS_GROUPS and count < campaign.threshold:
            hidden.append(f"{GROUP_NAMES[group]} ({count} answered, fewer than {campaign.threshold})")
        elif count:
            shown.append(f"{GROUP_NAMES[group]} ({count})")
    text = f"Shown: {', '.join(shown) if shown else 'nothing yet'}."
    return text + (f" Would stay hidden: {', '.join(hidden)}." if hidden else "")


async def answered_raters(session: AsyncSession, campaign: Campaign360) -> dict[str, set[int]]:
    raters = await session.scalars(select(Rater360).where(col(Rater360.campaign_id) == campaign.id))
    answered: dict[str, set[int]] = defaultdict(set)
    for rater in raters:
        if rater.answered:
            answered[rater.group].add(rater.rater_id)
    return answered


async def _history(session: AsyncSession, campaign: Campaign360) -> History:
    """For each group, the answered raters of every earlier closed campaign about the same subject where that
    group was large enough to have been shown (a hidden group cannot be subtracted from), and the rating counts
    it showed per question."""
    earlier = await session.execute(
        select(col(Rater360.campaign_id), col(Rater360.group), col(Rater360.rater_id), col(Campaign360.threshold))
        .join(Campaign360, col(Campaign360.id) == Rater360.campaign_id)
        .where(
            col(Campaign360.subject_id) == campaign.subject_id,
            col(Campaign360.id) != campaign.id,
            col(Campaign360.status) == "closed",
            col(Rater360.answered).is_(True),
        )
    )
    sets: dict[tuple[int, str], set[int]] = defaultdict(set)
    thresholds: dict[int, int] = {}
    for campaign_id, group, rater_id, threshold in earlier:
        sets[(campaign_id, group)].add(rater_id)
        thresholds[campaign_id] = threshold
    shown = {key: members for key, members in sets.items() if len(members) >= thresholds[key[0]]}
    counts: dict[tuple[int, str], dict[str, int]] = defaultdict(dict)
    if shown:
        rows = await session.execute(
            select(
                col(Answer360.campaign_id),
                col(Answer360.group),
                col(Answer360.question_id),
                func.count(col(Answer360.rating)),
            )
            .where(col(Answer360.campaign_id).in_({campaign_id for campaign_id, _ in shown}))
            .group_by(col(Answer360.campaign_id), col(Answer360.group), col(Answer360.question_id))
        )
        for campaign_id, group, question, ratings in rows:
            if ratings >= thresholds[campaign_id]:  # a question shown then (older closes stored more than they showed)
                counts[(campaign_id, group)][question] = ratings
    history = History()
    for (campaign_id, group), members in shown.items():
        history.raters.setdefault(group, []).append(members)
        history.counts.setdefault(group, []).append((members, counts.get((campaign_id, group), {})))
    return history


def report_reply(results: Results, subject: Person, *, for_subject: bool, tools: bool) -> Reply:
    """The results card for the subject or their manager."""
    first = subject.name.split(" ")[0]
    lines: list[str] = []
    fields: list[tuple[str, str]] = []
    for group in results.groups:
        name = GROUP_NAMES[group.group]
        if not group.released:
            lines.append(f"{name}: not shown ({group.reason}).")
            continue
        scores = ", ".join(
            f"{INFLUENCE_NAMES[q]} {s:g}"
            for q, s in sorted(
                group.scores.items(),
                key=lambda kv: list(INFLUENCE_NAMES).index(kv[0]) if kv[0] in INFLUENCE_NAMES else 99,
            )
            if q in INFLUENCE_NAMES
        )
        fields.append((f"{name} ({group.raters})", scores or "no ratings shown"))
        order = [*INFLUENCE_NAMES.values(), *OPEN_LABELS.values()]
        ranked = sorted(group.comments, key=lambda c: order.index(c[0]) if c[0] in order else len(order))
        for label, comment in ranked[:SHOWN_COMMENTS]:  # in question order; within a question, shuffled
            lines.append(f"• {name}, {label}: {comment[:500]}")
        if len(ranked) > SHOWN_COMMENTS:
            lines.append(f"• …and {len(ranked) - SHOWN_COMMENTS} more from {name} on the dashboard (*dashboard*).")
    lowest = results.lowest()
    if lowest:
        lines.append("")
        lines.append(
            "Lowest: "
            + ", ".join(INFLUENCE_NAMES[i] for i in lowest)
            + '. "Which tool helps?" can suggest what to try.'
        )
    choices: tuple[Choice, ...] = ()
    if tools and lowest:
        value = "tools" if for_subject else f"tools {subject.email}"
        choices = (Choice("Which tool helps?", value, "primary"),)
    whose = "your" if for_subject else f"{first}'s"
    return Reply(
        f"The 360 on {whose} work has closed. Scores are 1–5; groups with too few answers are left out, not merged.",
        card=Card(f"360 results — {subject.name}", tuple(fields), tuple(lines)),
        choices=choices,
        action="cmd" if choices else None,
    )


async def close_campaign(session: AsyncSession, campaign: Campaign360, now: datetime, sealer: Sealer) -> Results:
    """Open the pool, write only what the results show (shuffled, fresh ids, the close day only), delete the
    pool and every unsubmitted draft, mark the campaign closed, and return its results.

    Answers of groups or questions below their threshold are dropped here, never written readable.
    """
    where = anonymity.scope("360", _id(campaign))
    pooled = list(await session.scalars(select(Pool360).where(col(Pool360.campaign_id) == campaign.id)))
    items: list[Item] = []
    for submission in anonymity.open_submissions(sealer, where, [row.sealed for row in pooled if row.sealed]):
        for question, answer in submission["answers"].items():
            items.append(Item(submission["group"], question, answer.get("rating"), answer.get("comment") or None))
    for row in pooled:  # pooled before answers were sealed (migration 0010)
        if row.sealed is None and row.group and row.question_id:
            items.append(Item(row.group, row.question_id, row.rating, row.comment))
    results = decide(campaign, await answered_raters(session, campaign), await _history(session, campaign), items)
    day = now.date()
    for item in anonymity.shuffled(released_items(results, items)):
        session.add(
            Answer360(
                id=anonymity.new_id(),
                campaign_id=_id(campaign),
                group=item.group,
                question_id=item.question_id,
                rating=item.rating,
                comment=item.comment,
                written_on=day,
            )
        )
    await session.execute(delete(Pool360).where(col(Pool360.campaign_id) == campaign.id))
    await anonymity.clear_drafts(session, where, Review360Dialog.name, "campaign", _id(campaign))
    campaign.status, campaign.closed_on = "closed", day
    session.add(campaign)
    await session.flush()
    return results


# -- the dialog ----------------------------------------------------------------------------------


class Review360Dialog(Dialog):
    name = "review360"
    title = "the 360"
    commands = ("360",)
    summary = "Anonymous 360: start one about a report's work, answer one you're asked for, or add raters to yours."

    def __init__(self) -> None:
        self.first = "setup"
        self.states = {
            "who": State(self.who_prompt, on_choice=self.on_who, on_text=self.on_who, max_length=254),
            "setup": State(self.setup_prompt, on_choice=self.on_setup),
            "add_rater": State(self.add_rater_prompt, on_text=self.on_add_rater, max_length=254),
            "rate": State(self.rate_prompt, on_choice=self.on_rate, on_text=self.on_rate),
            "comment": State(
                self.comment_prompt, on_choice=self.on_comment, on_text=self.on_comment, max_length=MAX_COMMENT
            ),
            "open": State(self.open_prompt, on_choice=self.on_open, on_text=self.on_open, max_length=MAX_COMMENT),
            "confirm": State(self.confirm_prompt, on_choice=self.on_confirm),
            "close": State(self.close_prompt, on_choice=self.on_close),
        }

    async def begin(self, turn: Turn, args: str) -> Transition:
        words = args.split()
        verb = words[0].lower() if words else ""
        if verb == "answer" and len(words) == 2:
            return await self._start_answering(turn, words[1])
        if verb == "decline" and len(words) == 2:
            return await self._decline(turn, words[1])
        if verb == "add" and len(words) == 2:
            return await self._subject_adds(turn, words[1])
        if verb == "threshold" and len(words) == 3:
            return await self._threshold(turn, words[1], words[2])
        if verb == "close" and len(words) == 2:
            return await self._closing(turn, words[1])
        if verb and "@" in verb:
            return await self._choose_subject(turn, verb)
        if not (turn.role.manager or turn.role.admin):
            raise UserFacingError(
                "A 360 is started by a manager about a report's work. If you were asked to answer one, use the "
                "*Start* button on the invitation; to add raters to your own, type *360 add EMAIL*."
            )
        return "who"

    # -- starting a campaign ---------------------------------------------------------------------

    async def who_prompt(self, turn: Turn) -> Reply:
        reports = await queries.reports_of(turn.session, _id(turn.person))
        return Reply(
            "Whose work is the 360 about?",
            choices=tuple(Choice(p.name, p.email) for p in reports[:10]),
            input=TextInput("name@example.com", 254, False),
        )

    async def on_who(self, turn: Turn, value: str) -> Transition:
        return await self._choose_subject(turn, value.strip())

    async def _choose_subject(self, turn: Turn, email: str) -> Transition:
        subject = await queries.person_by_email(turn.session, email)
        if subject is None:
            raise UserFacingError("I don't know anyone with that email here.")
        if not (subject.manager_id == turn.person.id or turn.person.is_admin):
            raise UserFacingError("A 360 is started by the person's manager (or an admin).")
        if subject.id == turn.person.id:
            raise UserFacingError("A 360 is about someone else's work; your own manager can start one about yours.")
        running = await turn.session.scalar(
            select(col(Campaign360.id))
            .where(col(Campaign360.subject_id) == subject.id, col(Campaign360.status) == "open")
            .limit(1)
        )
        if running is not None:
            turn.say(
                Reply(
                    f"A 360 about {subject.name.split(' ')[0]}'s work is already open. "
                    "You can close it now (its results go out at once), or leave it to close on its date.",
                    choices=(Choice("Close it now…", f"360 close {running}"),),
                    action=COMMAND_ACTION,
                )
            )
            return END
        raters = await propose_raters(turn.session, subject)
        turn.data.update(
            subject=subject.id,
            name=subject.name.split(" ")[0],
            raters=[[p.id, g] for p, g in raters],
            threshold=FLOOR,
            window="2w",
        )
        return "setup"

    async def setup_prompt(self, turn: Turn) -> Reply:
        names = {
            p.id: p.name
            for p in (
                await turn.session.execute(
                    select(Person).where(col(Person.id).in_([r[0] for r in turn.data["raters"]]))
                )
            ).scalars()
        }
        by_group: dict[str, list[str]] = defaultdict(list)
        for person_id, group in turn.data["raters"]:
            by_group[group].append(names.get(person_id, "?"))
        lines = [f"{GROUP_NAMES[g]}: {', '.join(sorted(n))}" for g, n in by_group.items()]
        small = [GROUP_NAMES[g] for g in ANONYMOUS_GROUPS if 0 < len(by_group.get(g, [])) < turn.data["threshold"]]
        warning = (
            f"\nNote: {', '.join(small)} has fewer than {turn.data['threshold']} people, so it will not be shown."
            if small
            else ""
        )
        return Reply(
            f"360 about {turn.data['name']}'s work, open for {'one week' if turn.data['window'] == '1w' else 'two weeks'}. "
            f"Anonymous groups show only with at least {turn.data['threshold']} answers.\n"
            + "\n".join(lines)
            + warning,
            choices=(
                Choice("Start", "start", "primary"),
                Choice("Add a rater", "add"),
                Choice("One week" if turn.data["window"] == "2w" else "Two weeks", "window"),
                Choice("Raise the threshold", "raise"),
                Choice("Cancel", "cancel"),
            ),
        )

    async def on_setup(self, turn: Turn, value: str) -> Transition:
        if value == "cancel":
            turn.say("Cancelled; nobody was asked anything.")
            return END
        if value == "add":
            return "add_rater"
        if value == "window":
            turn.data["window"] = "1w" if turn.data["window"] == "2w" else "2w"
            return "setup"
        if value == "raise":
            turn.data["threshold"] = min(turn.data["threshold"] + 1, 10)
            return "setup"
        if value == "start":
            return await self._open(turn)
        return None

    def add_rater_prompt(self, turn: Turn) -> Reply:
        return Reply(
            "Who else should be asked? Type their email (they join the peers group).",
            input=TextInput("name@example.com", 254, False),
        )

    async def on_add_rater(self, turn: Turn, text: str) -> Transition:
        person = await queries.person_by_email(turn.session, text.strip())
        if person is None or not person.active:
            raise UserFacingError("I don't know anyone with that email here.")
        if any(r[0] == person.id for r in turn.data["raters"]):
            raise UserFacingError("They're already on the list.")
        turn.data["raters"] = turn.data["raters"] + [[person.id, "peer"]]
        return "setup"

    async def _open(self, turn: Turn) -> Transition:
        subject = await turn.session.get(Person, turn.data["subject"])
        assert subject is not None
        campaign = Campaign360(
            subject_id=_id(subject),
            created_by_id=_id(turn.person),
            status="open",
            threshold=max(FLOOR, turn.data["threshold"]),
            comment_threshold=max(FLOOR, turn.data["threshold"]),
            opens_at=turn.now,
            closes_at=turn.now + WINDOWS[turn.data["window"]],
            created_at=turn.now,
        )
        turn.session.add(campaign)
        await turn.session.flush()
        for person_id, group in turn.data["raters"]:
            turn.session.add(Rater360(campaign_id=_id(campaign), rater_id=person_id, group=group))
            if person_id != turn.person.id:
                turn.tell(
                    person_id, self._invitation(campaign, subject, group), key=f"360-invite:{campaign.id}:{person_id}"
                )
        await turn.session.flush()
        closes = campaign.closes_at.astimezone(turn.local_now.tzinfo)  # type: ignore[union-attr]
        turn.say(
            f"Started. {len(turn.data['raters'])} people are asked; it closes {closes:%A %d %B}. Results come to you and {turn.data['name']} then."
        )
        if any(p == turn.person.id for p, _ in turn.data["raters"]):
            turn.say(self._invitation(campaign, subject, "manager"))
        return END

    def _invitation(self, campaign: Campaign360, subject: Person, group: str) -> Reply:
        first = subject.name.split(" ")[0]
        if group == "self":
            text = f"A 360 about your work has started ({len(RATED) + len(OPEN)} questions). Please add your self-assessment; you can also ask more colleagues with *360 add EMAIL*."
        else:
            text = (
                f"You're asked for feedback on {first}'s work in a 360 ({len(RATED)} statements to rate, each with an optional comment, and {len(OPEN)} open questions: about 10 minutes). "
                + pooling_note(group, campaign.threshold, first)
            )
        return Reply(
            text,
            choices=(
                Choice("Start", f"360 answer {campaign.id}", "primary"),
                Choice("Decline", f"360 decline {campaign.id}"),
            ),
            action="cmd",
        )

    async def _subject_adds(self, turn: Turn, email: str) -> Transition:
        campaign = (
            (
                await turn.session.execute(
                    select(Campaign360).where(
                        col(Campaign360.subject_id) == turn.person.id, col(Campaign360.status) == "open"
                    )
                )
            )
            .scalars()
            .first()
        )
        if campaign is None:
            raise UserFacingError("You have no open 360 to add raters to.")
        person = await queries.person_by_email(turn.session, email)
        if person is None or person.id == turn.person.id:
            raise UserFacingError("I don't know anyone else with that email here.")
        if not await queries.insert_ignore(
            turn.session,
            Rater360,
            campaign_id=campaign.id,
            rater_id=person.id,
            group="peer",
            answered=False,
            declined=False,
        ):
            raise UserFacingError("They're already asked.")
        turn.tell(person, self._invitation(campaign, turn.person, "peer"), key=f"360-invite:{campaign.id}:{person.id}")
        turn.say(f"Added {person.name}; they'll be asked now and counted with your peers.")
        return END

    async def _threshold(self, turn: Turn, campaign_id: str, value: str) -> Transition:
        campaign = await _campaign(turn, campaign_id)
        if campaign is None or not (campaign.created_by_id == turn.person.id or turn.person.is_admin):
            raise UserFacingError("That 360 isn't yours to change.")
        number = queries.as_int(value, 0, 10_000)
        if number is None:
            raise UserFacingError("The threshold is a whole number, at least 3.")
        wanted = number
        if wanted < FLOOR:
            raise UserFacingError("The threshold is never below 3: smaller groups can be traced back to people.")
        if campaign.status != "draft" and wanted < campaign.threshold:
            raise UserFacingError(
                "A threshold can be raised but never lowered once a 360 is open: raters were promised it."
            )
        campaign.threshold = wanted
        campaign.comment_threshold = max(campaign.comment_threshold, wanted)
        turn.session.add(campaign)
        turn.say(f"The threshold is now {wanted}.")
        return END

    # -- closing early -------------------------------------------------------------------------------

    async def _closing(self, turn: Turn, campaign_id: str) -> Transition:
        campaign = await _campaign(turn, campaign_id)
        if campaign is None or not await may_close(turn.session, campaign, turn.person):
            raise UserFacingError("Only the manager of the person the 360 is about, or an admin, can close it.")
        if campaign.status != "open":
            raise UserFacingError("That 360 isn't open, so there's nothing to close.")
        turn.data.update(campaign=campaign.id)
        return "close"

    async def close_prompt(self, turn: Turn) -> Reply:
        campaign = await turn.session.get(Campaign360, turn.data["campaign"])
        assert campaign is not None
        subject = await turn.session.get(Person, campaign.subject_id)
        name = subject.name.split(" ")[0] if subject else "them"
        return Reply(
            f"Close the 360 about {name}'s work now? "
            + closing_preview(campaign, await answered_raters(turn.session, campaign))
            + " Results go to you and them at once; answers not yet submitted are discarded.",
            choices=(Choice("Close now", "close", "danger"), Choice("Keep it open", "keep")),
        )

    async def on_close(self, turn: Turn, value: str) -> Transition:
        campaign = await turn.session.get(Campaign360, turn.data["campaign"])
        if value != "close" or campaign is None or campaign.status != "open":
            turn.say("Left open; nothing changed." if value == "keep" else "That 360 has closed already.")
            return END
        close_early(campaign, turn.now)
        turn.session.add(campaign)
        turn.say("Closing it now: the results reach you and them within a minute or two.")
        return END

    # -- answering ---------------------------------------------------------------------------------

    async def _rater(self, turn: Turn, campaign_id: str) -> tuple[Campaign360, Rater360]:
        campaign = await _campaign(turn, campaign_id)
        rater = None
        if campaign is not None:
            rater = (
                (
                    await turn.session.execute(
                        select(Rater360).where(
                            col(Rater360.campaign_id) == campaign.id, col(Rater360.rater_id) == turn.person.id
                        )
                    )
                )
                .scalars()
                .first()
            )
        if campaign is None or rater is None:
            raise UserFacingError("You're not asked to answer that 360.")
        if campaign.status != "open" or (campaign.closes_at is not None and turn.now >= campaign.closes_at):
            raise UserFacingError("That 360 has closed, so it takes no more answers.")
        if rater.answered:
            raise UserFacingError("You've already answered that 360 — thank you. Answers can't be changed once pooled.")
        return campaign, rater

    async def _decline(self, turn: Turn, campaign_id: str) -> Transition:
        _, rater = await self._rater(turn, campaign_id)
        rater.declined = True
        turn.session.add(rater)
        turn.say("Understood — you won't be reminded about this one.")
        return END

    async def _start_answering(self, turn: Turn, campaign_id: str) -> Transition:
        campaign, rater = await self._rater(turn, campaign_id)
        subject = await turn.session.get(Person, campaign.subject_id)
        assert subject is not None
        first = "you" if rater.group == "self" else subject.name.split(" ")[0]
        turn.data.update(campaign=campaign.id, group=rater.group, name=first, i=0)
        await anonymity.drop_draft(turn, anonymity.scope("360", _id(campaign)))  # starting again starts afresh
        turn.say(pooling_note(rater.group, campaign.threshold, first))
        return "rate"

    def _statement(self, turn: Turn, about: str, own: str) -> str:
        return own if turn.data["group"] == "self" else about.format(name=turn.data["name"])

    def rate_prompt(self, turn: Turn) -> Reply:
        index = turn.data["i"]
        _, about, own = RATED[index]
        total = len(RATED) + len(OPEN)
        return Reply(
            f"{index + 1} of {total} — How far do you agree? “{self._statement(turn, about, own)}”",
            rating=Rating(1, 5, "Strongly disagree", "Strongly agree"),
            choices=(Choice("Can't say", "na"),),
        )

    async def on_rate(self, turn: Turn, value: str) -> Transition:
        value = value.strip()
        if value != "na" and queries.as_int(value, 1, 5) is None:
            raise UserFacingError("Please pick 1 to 5, or *Can't say*.")
        influence = RATED[turn.data["i"]][0]
        where = await _where(turn)
        await anonymity.keep_answer(turn, where, influence, {"rating": None if value == "na" else int(value)})
        return "comment"

    def comment_prompt(self, turn: Turn) -> Reply:
        return Reply(
            "Anything to add about that, with an example from the work? (optional)",
            choices=(Choice("No comment", "__none"),),
            input=TextInput("An example helps most…", MAX_COMMENT, True),
        )

    async def on_comment(self, turn: Turn, value: str) -> Transition:
        influence = RATED[turn.data["i"]][0]
        if value != "__none":
            where = await _where(turn)
            rated = (await anonymity.draft(turn, where, influence)).get(influence, {})
            await anonymity.keep_answer(turn, where, influence, {**rated, "comment": value})
        turn.data["i"] += 1
        if turn.data["i"] < len(RATED):
            return "rate"
        turn.data["j"] = 0
        return "open"

    def open_prompt(self, turn: Turn) -> Reply:
        j = turn.data["j"]
        _, about, own = OPEN[j]
        return Reply(
            f"{len(RATED) + j + 1} of {len(RATED) + len(OPEN)} — {self._statement(turn, about, own)} (optional)",
            choices=(Choice("Skip", "__none"),),
            input=TextInput("Type your answer…", MAX_COMMENT, True),
        )

    async def on_open(self, turn: Turn, value: str) -> Transition:
        key = OPEN[turn.data["j"]][0]
        if value != "__none":
            await anonymity.keep_answer(turn, await _where(turn), key, {"rating": None, "comment": value})
        turn.data["j"] += 1
        return "open" if turn.data["j"] < len(OPEN) else "confirm"

    async def confirm_prompt(self, turn: Turn) -> Reply:
        campaign = await turn.session.get(Campaign360, turn.data["campaign"])
        assert campaign is not None
        return Reply(
            "Ready to submit? "
            + pooling_note(turn.data["group"], campaign.threshold, turn.data["name"])
            + " Once submitted, answers can't be changed.",
            choices=(Choice("Submit", "submit", "primary"), Choice("Discard my answers", "discard", "danger")),
        )

    async def on_confirm(self, turn: Turn, value: str) -> Transition:
        if value == "discard":
            await anonymity.drop_draft(turn, await _where(turn))
            turn.data.clear()
            turn.say("Discarded. Nothing was recorded; you can start again from the invitation while the 360 is open.")
            return END
        if value != "submit":
            return None
        campaign, rater = await self._rater(turn, str(turn.data["campaign"]))
        where = await _where(turn)
        submission = {"group": rater.group, "answers": await anonymity.draft(turn, where)}
        sealed = anonymity.seal_submission(turn.sealer, where, submission, slots=len(RATED) + len(OPEN) + 1)
        turn.session.add(Pool360(id=anonymity.new_id(), campaign_id=_id(campaign), sealed=sealed))
        rater.answered = True
        turn.session.add(rater)
        await anonymity.drop_draft(turn, where)  # the only place the answers were linked to this person
        turn.data.clear()
        turn.say("Thank you — your answers are in the pool. They'll be shown only as described, when the 360 closes.")
        return END


async def _campaign(turn: Turn, raw: str) -> Campaign360 | None:
    """The campaign a typed or clicked id names, or None (not an id, or no such campaign)."""
    campaign_id = queries.as_id(raw)
    return await turn.session.get(Campaign360, campaign_id) if campaign_id is not None else None


async def _where(turn: Turn) -> str:
    """The sealing scope of the campaign this person is answering; a draft saved in the clear before answers
    were sealed (an upgrade mid-campaign) is sealed now."""
    where = anonymity.scope("360", turn.data["campaign"])
    legacy = turn.data.pop("answers", None)
    if legacy:
        for question, answer in legacy.items():
            await anonymity.keep_answer(turn, where, question, answer)
    return where


async def due_360(session: AsyncSession, now: datetime) -> tuple[list[Campaign360], list[tuple[Campaign360, Rater360]]]:
    """Campaigns to close now, and raters to remind (not answered or declined, within `REMIND_WITHIN` of the close)."""
    to_close = list(
        (
            await session.execute(
                select(Campaign360).where(col(Campaign360.status) == "open", col(Campaign360.closes_at) <= now)
            )
        ).scalars()
    )
    rows = await session.execute(
        select(Campaign360, Rater360)
        .join(Rater360, col(Rater360.campaign_id) == Campaign360.id)
        .where(
            col(Campaign360.status) == "open",
            col(Campaign360.closes_at) > now,
            col(Campaign360.closes_at) <= now + REMIND_WITHIN,
            col(Rater360.answered).is_(False),
            col(Rater360.declined).is_(False),
        )
    )
    return to_close, [(campaign, rater) for campaign, rater in rows]


def reminder_360(campaign: Campaign360, subject: Person, group: str) -> Reply:
    first = "your" if group == "self" else f"{subject.name.split(' ')[0]}'s"
    return Reply(
        f"A reminder: the 360 on {first} work closes soon, and your answers still count until then.",
        choices=(
            Choice("Start", f"360 answer {campaign.id}", "primary"),
            Choice("Decline", f"360 decline {campaign.id}"),
        ),
        action="cmd",
    )
