"""The tables. Every datetime is timezone-aware UTC (sqlmodel's UTCDateTime; timestamptz on PostgreSQL)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

metadata = SQLModel.metadata


class Team(SQLModel, table=True):
    """A group of people with one rhythm (check-in schedule, digest)."""

    __tablename__ = "team"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=120, unique=True)
    created_at: datetime
    # The weekly rhythm, in each person's own time zone. Weekdays: Monday = 0.
    checkin_weekday: int = 4
    checkin_time: str = Field(default="16:00", max_length=5)
    reminder_count: int = 1
    reminder_after_minutes: int = 120
    # The period closes (edits end, the manager's digest goes out) at this local time of the manager.
    digest_weekday: int = 0
    digest_time: str = Field(default="09:00", max_length=5)
    # Opt-in: non-private answers posted to a team channel (a platform address).
    broadcast: bool = False
    # After answering a check-in, invite the performer to give their manager feedback (and vice versa).
    feedback_after_checkin: bool = True
    broadcast_address: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # Public holidays the team has off: an ISO country code, optionally with a subdivision ("DE", "DE-BY").
    holidays: str | None = Field(default=None, max_length=16)


class Person(SQLModel, table=True):
    """Someone in the organisation. `manager_id` makes the reporting tree."""

    __tablename__ = "person"
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=254, unique=True)
    name: str = Field(max_length=200)
    timezone: str = Field(default="UTC", max_length=64)
    locale: str = Field(default="en", max_length=16)
    team_id: int | None = Field(default=None, foreign_key="team.id", index=True)
    manager_id: int | None = Field(default=None, foreign_key="person.id", index=True)
    is_admin: bool = False
    # Local times "HH:MM"; nothing unsolicited is delivered between start and end.
    quiet_start: str = Field(default="20:00", max_length=5)
    quiet_end: str = Field(default="08:00", max_length=5)
    # How this person likes to be recognised: "private", "public", or None (either).
    recognition: str | None = Field(default=None, max_length=8)
    active: bool = True
    created_at: datetime


class Identity(SQLModel, table=True):
    """A person's account on one platform, and how to reach them there.

    `address` is the platform's conversation reference as plain JSON (a Slack
    user id, a Teams ConversationReference); adapters alone interpret it.
    """

    __tablename__ = "identity"
    __table_args__ = (UniqueConstraint("platform", "external_id"),)
    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    platform: str = Field(max_length=16)
    external_id: str = Field(max_length=255)
    address: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    updated_at: datetime


class DialogState(SQLModel, table=True):
    """The one conversation Baton holds with a person, saved after every turn.

    `version` grows by one on every save; a save that finds another version
    lost a race and is retried. `prompt_id` names the question on screen, so a
    click on an older question's button is recognised as expired.
    """

    __tablename__ = "dialog_state"
    person_id: int = Field(primary_key=True, foreign_key="person.id")
    dialog: str | None = Field(default=None, max_length=64)
    state: str | None = Field(default=None, max_length=64)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    prompt_id: str | None = Field(default=None, max_length=32)
    # Conversations set aside when the person typed a command mid-way, newest last:
    # [{"dialog", "state", "data", "prompt_id"}, …]; `resume` (or one of their buttons) takes one back.
    parked: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False, server_default="[]")
    )
    version: int = 0
    updated_at: datetime


class ProcessedEvent(SQLModel, table=True):
    """Keys of inbound deliveries already handled (platform retries, double submits)."""

    __tablename__ = "processed_event"
    key: str = Field(primary_key=True, max_length=255)
    created_at: datetime = Field(index=True)


class InboxEvent(SQLModel, table=True):
    """A delivery acknowledged to its platform whose turn has not committed yet (see storage/inbox.py).

    Written before the acknowledgement and deleted in the turn's own
    transaction, so a crash in between loses nothing: the row is replayed.
    It holds what the person sent only for that short while.
    """

    __tablename__ = "inbox"
    key: str = Field(primary_key=True, max_length=255)
    # The delivery, sealed and padded to one size, as raw bytes (dialogs/engine/inbox.py).
    sealed: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    # Rows kept by a Baton before 0021 (JSON, sealed as text or not at all), read until they are replayed.
    inbound: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    attempts: int = 0
    received_at: datetime = Field(index=True)


class OutboxMessage(SQLModel, table=True):
    """Every message Baton sends, replies included, queued in the turn's transaction.

    `key` is the idempotency key: writing the same key twice is a no-op, which is
    what makes scheduled sends exactly-once across ticks, restarts and replicas.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "status", "due_at"),
        # "does this person have an earlier message still waiting?" — asked of every row a claim takes
        Index("ix_outbox_person_status", "person_id", "status"),
    )
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=255, unique=True)
    # None for a post to a shared place (a team channel) rather than to a person.
    person_id: int | None = Field(default=None, foreign_key="person.id", index=True)
    channel: str = Field(max_length=16)
    address: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    kind: str = Field(default="reply", max_length=32)
    # What the message is about, for the scheduler's own questions ("checkin:2026-W47").
    topic: str | None = Field(default=None, max_length=64, index=True)
    unsolicited: bool = False
    due_at: datetime
    status: str = Field(default="pending", max_length=16)
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=500)
    claimed_until: datetime | None = None
    created_at: datetime
    sent_at: datetime | None = None
    # Several messages that waited (quiet hours, leave) go out as one "while you were away" message:
    # the first row carries it, the others are sent inside it and point at it.
    folded_into: int | None = None


class SendPace(SQLModel, table=True):
    """One platform budget that every replica shares (a Slack workspace, a Teams tenant): the next free
    send slot as a GCRA "theoretical arrival time", and until when the platform asked to pause (a 429).

    Times are seconds since the epoch on the replicas' own clocks (kept within milliseconds by NTP).
    bot/pacing.py hands the slots out; storage/pacing.py takes them a block at a time.
    """

    __tablename__ = "send_pace"
    scope: str = Field(primary_key=True, max_length=255)
    next_at: float = 0.0
    paused_until: float = 0.0


class CheckinTemplate(SQLModel, table=True):
    """A team's own check-in questions; teams without one use the default in `dialogs.checkin`."""

    __tablename__ = "checkin_template"
    id: int | None = Field(default=None, primary_key=True)
    team_id: int = Field(foreign_key="team.id", unique=True)
    questions: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    updated_at: datetime


class CheckinRun(SQLModel, table=True):
    """One person's check-in for one period, created when they first act on it.

    `questions` is a snapshot, so editing the template never breaks a check-in in progress.
    """

    __tablename__ = "checkin_run"
    __table_args__ = (UniqueConstraint("person_id", "period"),)
    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    team_id: int | None = Field(default=None, foreign_key="team.id", index=True)
    period: str = Field(max_length=8, index=True)
    questions: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    status: str = Field(default="open", max_length=16)  # open, answered, skipped
    snoozed_until: datetime | None = None
    snoozes: int = 0
    started_at: datetime
    answered_at: datetime | None = None


class CheckinAnswer(SQLModel, table=True):
    """An answer to one question of a run; editing overwrites it."""

    __tablename__ = "checkin_answer"
    __table_args__ = (UniqueConstraint("run_id", "question_id"),)
    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="checkin_run.id", index=True)
    question_id: str = Field(max_length=32)
    text: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    number: float | None = None
    updated_at: datetime


class Leave(SQLModel, table=True):
    """Dates (the person's local calendar, inclusive) on which Baton sends them nothing on its own.

    `source` says where it came from: "typed" (the `leave` command), "calendar" (the person's calendar
    feed; only the days, never titles or attendees). Public holidays are not stored: they follow from the
    team's `holidays` setting.
    """

    __tablename__ = "leave"
    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    start: date
    end: date
    source: str = Field(default="typed", max_length=16, sa_column_kwargs={"server_default": "typed"})
    created_by_id: int | None = Field(default=None, foreign_key="person.id")
    created_at: datetime


class CalendarFeed(SQLModel, table=True):
    """A person's secret iCalendar address, sealed (it grants read access to their calendar), and its health.

    `problem` is the kind of the last failure (unreachable, not_found, too_big, malformed …) or None;
    `told` is when the person was last told about a problem, so they hear of one once, not every hour.
    """

    __tablename__ = "calendar_feed"
    person_id: int = Field(primary_key=True, foreign_key="person.id")
    sealed_url: str = Field(sa_column=Column(Text, nullable=False))
    checked_at: datetime | None = None
    ok_at: datetime | None = None
    problem: str | None = Field(default=None, max_length=32)
    told_at: datetime | None = None
    created_at: datetime
    # SHA-256 of the body last parsed and the local day it was parsed for: the same body on the same day
    # gives the same days, so it is not parsed again (most feeds change rarely; parsing is the cost).
    digest: str | None = Field(default=None, max_length=64)
    read_for: date | None = None


class AwayOverride(SQLModel, table=True):
    """ "I'm working that day": a day a person is not away, whatever a calendar or a holiday says."""

    __tablename__ = "away_override"
    person_id: int = Field(primary_key=True, foreign_key="person.id")
    day: date = Field(primary_key=True)


class SlackInstallation(SQLModel, table=True):
    """A Slack workspace (or org) install from the OAuth flow; `data` is bolt's Installation as a dict.

    Holds the workspace's bot token: the database must be protected like any secret store.
    """

    __tablename__ = "slack_installation"
    __table_args__ = (Index("ix_slack_installation_lookup", "enterprise_id", "team_id", "installed_at"),)
    id: int | None = Field(default=None, primary_key=True)
    enterprise_id: str | None = Field(default=None, max_length=32)
    team_id: str | None = Field(default=None, max_length=32)
    user_id: str | None = Field(default=None, max_length=32)
    is_enterprise_install: bool = False
    data: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    installed_at: datetime


class ToolPlan(SQLModel, table=True):
    """A tool someone chose from "which tool helps?", with its follow-up and outcome.

    Outcomes feed the ranking within the organisation: a tool that keeps working
    for an influence rises, one that keeps failing sinks.
    """

    __tablename__ = "tool_plan"
    id: int | None = Field(default=None, primary_key=True)
    asked_by_id: int = Field(foreign_key="person.id", index=True)
    person_id: int = Field(foreign_key="person.id", index=True)  # whose work it is about (may be asked_by)
    team_id: int | None = Field(default=None, foreign_key="team.id")  # set when it is about a whole team
    gap: str = Field(sa_column=Column(Text, nullable=False))  # the manager's description, never logged
    influence: str = Field(max_length=32)
    tool_id: str = Field(max_length=64, index=True)
    signals: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # What the diagnosis established ("expectations:no", "new_in_role"): later suggestions never contradict it.
    facts: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False, server_default="[]"))
    created_at: datetime
    follow_up_at: datetime = Field(index=True)
    status: str = Field(default="planned", max_length=16)  # planned, asked, closed
    outcome: str | None = Field(default=None, max_length=8)  # yes, partly, no
    outcome_note: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    outcome_at: datetime | None = None


class FeedbackRequest(SQLModel, table=True):
    """Someone asked a colleague for feedback on a topic, by a deadline."""

    __tablename__ = "feedback_request"
    id: int | None = Field(default=None, primary_key=True)
    requester_id: int = Field(foreign_key="person.id", index=True)
    responder_id: int = Field(foreign_key="person.id", index=True)
    topic: str = Field(max_length=300)
    deadline: datetime
    status: str = Field(default="open", max_length=16)  # open, answered, declined, expired
    reminded: bool = False
    created_at: datetime


class FeedbackEntry(SQLModel, table=True):
    """Attributed feedback from one person to another: upward, downward, requested, or kudos.

    Only the two people involved ever see `text`; it never reaches a log line.
    """

    __tablename__ = "feedback_entry"
    id: int | None = Field(default=None, primary_key=True)
    from_id: int = Field(foreign_key="person.id", index=True)
    to_id: int = Field(foreign_key="person.id", index=True)
    kind: str = Field(max_length=16)  # upward, downward, requested, peer, kudos
    request_id: int | None = Field(default=None, foreign_key="feedback_request.id")
    text: str = Field(sa_column=Column(Text, nullable=False))
    public: bool = False  # kudos posted to the team channel
    created_at: datetime
    thanked_at: datetime | None = None


class Campaign360(SQLModel, table=True):
    """A 360 for one subject. Thresholds may rise while open, never fall; the floor is 3."""

    __tablename__ = "campaign_360"
    id: int | None = Field(default=None, primary_key=True)
    subject_id: int = Field(foreign_key="person.id", index=True)
    created_by_id: int = Field(foreign_key="person.id")
    status: str = Field(default="draft", max_length=16)  # draft, open, closed
    threshold: int = 3
    comment_threshold: int = 3
    opens_at: datetime | None = None
    closes_at: datetime | None = Field(default=None, index=True)
    created_at: datetime
    closed_on: date | None = None  # the day results were computed; the only time answers carry


class Rater360(SQLModel, table=True):
    """Participation only: who is asked, in which group, and whether they answered. Never content."""

    __tablename__ = "rater_360"
    __table_args__ = (UniqueConstraint("campaign_id", "rater_id"),)
    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign_360.id", index=True)
    rater_id: int = Field(foreign_key="person.id", index=True)
    group: str = Field(max_length=16)  # manager, self, peer, report
    answered: bool = False
    declined: bool = False


class Pool360(SQLModel, table=True):
    """Submissions waiting for the campaign to close: one sealed row per rater. No rater, no time, random ids.

    `sealed` holds the group and every answer, encrypted and padded to one size
    (dialogs/common/anonymity.py). At close they are opened, what is released is
    written to `answer_360` in shuffled order, and the rows are deleted.
    The other columns are only for rows pooled before answers were sealed (migration 0010).
    """

    __tablename__ = "pool_360"
    # SQLite keeps rowid tables in insertion order; WITHOUT ROWID orders by the random key instead.
    __table_args__ = {"sqlite_with_rowid": False}
    id: str = Field(primary_key=True, max_length=32)
    campaign_id: int = Field(foreign_key="campaign_360.id", index=True)
    sealed: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    group: str | None = Field(default=None, max_length=16)
    question_id: str | None = Field(default=None, max_length=32)
    rating: int | None = None
    comment: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class SealedDraft(SQLModel, table=True):
    """One answer someone is still drafting in an anonymous collection, sealed and padded to one size.

    Kept apart from `dialog_state` so a turn rewrites one answer, not all of them; deleted on submit,
    on discard and when the collection closes (dialogs/common/anonymity.py).
    """

    __tablename__ = "sealed_draft"
    person_id: int = Field(primary_key=True, foreign_key="person.id")
    scope: str = Field(primary_key=True, max_length=64, index=True)
    item: str = Field(primary_key=True, max_length=32)
    sealed: str = Field(sa_column=Column(Text, nullable=False))


class Answer360(SQLModel, table=True):
    """A released answer: campaign, group, question and value only — unlinkable to its rater."""

    __tablename__ = "answer_360"
    __table_args__ = {"sqlite_with_rowid": False}
    id: str = Field(primary_key=True, max_length=32)
    campaign_id: int = Field(foreign_key="campaign_360.id", index=True)
    group: str = Field(max_length=16)
    question_id: str = Field(max_length=32)
    rating: int | None = None
    comment: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    written_on: date


class Goal(SQLModel, table=True):
    """A goal for a person or a team: a metric (start → target, in a unit, up or down) or milestones."""

    __tablename__ = "goal"
    id: int | None = Field(default=None, primary_key=True)
    owner_id: int | None = Field(default=None, foreign_key="person.id", index=True)
    team_id: int | None = Field(default=None, foreign_key="team.id", index=True)
    parent_id: int | None = Field(default=None, foreign_key="goal.id", index=True)
    title: str = Field(max_length=200)
    kind: str = Field(default="metric", max_length=16)  # metric, milestones
    start_value: float | None = None
    target_value: float | None = None
    unit: str = Field(default="", max_length=16)
    start_date: date
    due_date: date | None = None
    committed: bool = True  # False: aspirational (judged against 60–70% attainment)
    learning: bool = False  # a learning goal: progress in what is learned, not the outcome
    status: str = Field(default="active", max_length=16)  # active, done, dropped
    rag: str | None = Field(default=None, max_length=8)  # green, amber, red at the last update
    nudges_off: bool = False
    snoozed_until: datetime | None = None
    created_by_id: int | None = Field(default=None, foreign_key="person.id")
    created_at: datetime


class GoalMilestone(SQLModel, table=True):
    __tablename__ = "goal_milestone"
    id: int | None = Field(default=None, primary_key=True)
    goal_id: int = Field(foreign_key="goal.id", index=True)
    title: str = Field(max_length=200)
    position: int = 0
    done_at: datetime | None = None


class GoalUpdate(SQLModel, table=True):
    """One progress value, with where it came from and when."""

    __tablename__ = "goal_update"
    id: int | None = Field(default=None, primary_key=True)
    goal_id: int = Field(foreign_key="goal.id", index=True)
    value: float
    progress: float  # share of the way from start to target (milestones: share done), at this update
    expected: float  # share expected by now, given the elapsed time and the goal's kind
    rag: str = Field(max_length=8)
    source: str = Field(max_length=64)  # chat, checkin, csv, http:<integration>
    note: str | None = Field(default=None, max_length=500)
    recorded_at: datetime = Field(index=True)
    recorded_by_id: int | None = Field(default=None, foreign_key="person.id")


class IntegrationToken(SQLModel, table=True):
    """A token another system uses to post goal progress. Only a hash is kept."""

    __tablename__ = "integration_token"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, unique=True)
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime
    revoked_at: datetime | None = None


class DashboardToken(SQLModel, table=True):
    """A single-use, short-lived sign-in link sent in chat. Only a hash of the token is kept."""

    __tablename__ = "dashboard_token"
    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None


class DashboardSession(SQLModel, table=True):
    """A signed-in browser. The cookie holds a random id; only its hash is kept, with a CSRF secret."""

    __tablename__ = "dashboard_session"
    id: int | None = Field(default=None, primary_key=True)
    session_hash: str = Field(max_length=64, unique=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    csrf: str = Field(max_length=64)
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None


class OneOnOne(SQLModel, table=True):
    """A manager–report pair's 1:1 rhythm: every `every_weeks` weeks on `weekday` at `at`, in the manager's
    own time zone, for `minutes`. `anchor` is the (manager's local) date of one occurrence; the others
    follow from it. `proposal` is a change one side proposed and the other has not confirmed yet.
    """

    __tablename__ = "one_on_one"
    __table_args__ = (UniqueConstraint("manager_id", "report_id"),)
    id: int | None = Field(default=None, primary_key=True)
    manager_id: int = Field(foreign_key="person.id", index=True)
    report_id: int = Field(foreign_key="person.id", index=True)
    every_weeks: int = 2
    minutes: int = 30
    weekday: int = 1  # Monday = 0
    at: str = Field(default="10:00", max_length=5)
    anchor: date
    # {"by": person id, "every_weeks", "minutes", "weekday", "at"} until the other side confirms or declines
    proposal: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    ask_report: bool = False  # also ask the report "How did it go?"
    skipped_in_row: int = 0
    skips_told: bool = False  # the manager heard about three skips in a row (once, until one is held)
    active: bool = True
    created_at: datetime


class Meeting(SQLModel, table=True):
    """One occurrence of a pair's 1:1. `planned_at` is its slot in the rhythm (unique per pair, so every
    replica creates it once); `starts_at` is when it really is — later when leave moved it.
    """

    __tablename__ = "one_on_one_meeting"
    __table_args__ = (UniqueConstraint("pair_id", "planned_at"),)
    id: int | None = Field(default=None, primary_key=True)
    pair_id: int = Field(foreign_key="one_on_one.id", index=True)
    planned_at: datetime
    starts_at: datetime = Field(index=True)
    status: str = Field(default="planned", max_length=16)  # planned, held, skipped, unrecorded, replaced
    moved: str | None = Field(default=None, max_length=16)  # why it moved ("leave"), if it did
    shared_notes: str | None = Field(default=None, sa_column=Column(Text, nullable=True))  # both see them
    recorded_at: datetime | None = None
    agenda_at: datetime | None = None  # when the scheduler built its agenda and queued it to both
    asked_at: datetime | None = None  # when "How did it go?" was queued
    created_at: datetime


class TalkingPoint(SQLModel, table=True):
    """Something to talk about in a pair's next 1:1: typed by either side, or taken from the week
    (`source`: typed, priority, blocker, pulse, ask, goal, feedback-request, tool, kudos, checkin, feedback).
    `meeting_id` is the agenda it was put on; an undiscussed point moves to the next agenda.
    The text is seen by the pair only.
    """

    __tablename__ = "talking_point"
    id: int | None = Field(default=None, primary_key=True)
    pair_id: int = Field(foreign_key="one_on_one.id", index=True)
    author_id: int | None = Field(default=None, foreign_key="person.id")  # None: Baton gathered it
    source: str = Field(default="typed", max_length=24)
    ref: str | None = Field(default=None, max_length=64)  # what it was taken from ("checkin:12:blockers")
    text: str = Field(sa_column=Column(Text, nullable=False))
    meeting_id: int | None = Field(default=None, foreign_key="one_on_one_meeting.id", index=True)
    note: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    discussed_at: datetime | None = None
    created_at: datetime


class MeetingNote(SQLModel, table=True):
    """A private note on a 1:1: only its author ever sees it."""

    __tablename__ = "one_on_one_note"
    id: int | None = Field(default=None, primary_key=True)
    meeting_id: int = Field(foreign_key="one_on_one_meeting.id", index=True)
    author_id: int = Field(foreign_key="person.id", index=True)
    text: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime


class ActionItem(SQLModel, table=True):
    """Someone committed to do something, maybe by a date: from a 1:1 (`pair_id`, `meeting_id`) or another
    practice (`source`). Open ones are nudged within the budget and carried into the pair's next agenda."""

    __tablename__ = "action_item"
    id: int | None = Field(default=None, primary_key=True)
    owner_id: int = Field(foreign_key="person.id", index=True)
    created_by_id: int | None = Field(default=None, foreign_key="person.id")
    text: str = Field(sa_column=Column(Text, nullable=False))
    due_on: date | None = None
    source: str = Field(default="1:1", max_length=16)
    pair_id: int | None = Field(default=None, foreign_key="one_on_one.id", index=True)
    meeting_id: int | None = Field(default=None, foreign_key="one_on_one_meeting.id")
    done_at: datetime | None = None
    created_at: datetime


class RetroPolicy(SQLModel, table=True):
    """Who may start a team's appreciative retro: its manager always, its members when this allows it."""

    __tablename__ = "retro_policy"
    team_id: int = Field(primary_key=True, foreign_key="team.id")
    members_may_start: bool = False


class Retro(SQLModel, table=True):
    """One appreciative retro (Discover, Dream, Design, Destiny) of a team around a theme in its own words.

    `status`: collecting (answers are sealed drafts) → voting (themes, quotes and proposals released) →
    choosing (the starter gives the top proposals owners and dates) → done; or stopped. Each step of the
    scheduler is claimed with one conditional UPDATE of `status` or of its `*_at` column.
    """

    __tablename__ = "retro"
    id: int | None = Field(default=None, primary_key=True)
    team_id: int = Field(foreign_key="team.id", index=True)
    started_by_id: int = Field(foreign_key="person.id")
    theme: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(default="collecting", max_length=16, index=True)
    threshold: int = 3  # at least 3, raised but never lowered once open (the 360 rules)
    opens_at: datetime
    closes_at: datetime
    vote_closes_at: datetime | None = None
    invited_at: datetime | None = None
    closed_on: date | None = None  # the day answers were released; the only time they carry
    voted_on: date | None = None
    answered: int = 0  # how many people gave at least one answer, written at the close
    voters: int = 0  # how many people voted, written at the vote's close
    created_at: datetime


class RetroParticipant(SQLModel, table=True):
    """Participation only: who is asked, and whether they answered and voted. Never what."""

    __tablename__ = "retro_participant"
    __table_args__ = (UniqueConstraint("retro_id", "person_id"),)
    id: int | None = Field(default=None, primary_key=True)
    retro_id: int = Field(foreign_key="retro.id", index=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    answered: bool = False
    voted: bool = False


class RetroTheme(SQLModel, table=True):
    """A released theme: the stage it grew from, its name and how many people it gathers (at least the
    threshold). Random id, the close day only, no person."""

    __tablename__ = "retro_theme"
    __table_args__ = {"sqlite_with_rowid": False}
    id: str = Field(primary_key=True, max_length=32)
    retro_id: int = Field(foreign_key="retro.id", index=True)
    stage: str = Field(max_length=16)  # discover, dream, design
    name: str = Field(max_length=200)
    people: int
    written_on: date


class RetroQuote(SQLModel, table=True):
    """A released answer in its author's words: under a shown theme (anonymous), or a story its author chose to
    sign (`author_id`). Random id, the close day only."""

    __tablename__ = "retro_quote"
    __table_args__ = {"sqlite_with_rowid": False}
    id: str = Field(primary_key=True, max_length=32)
    retro_id: int = Field(foreign_key="retro.id", index=True)
    theme_id: str | None = Field(default=None, max_length=32)
    stage: str = Field(max_length=16)
    text: str = Field(sa_column=Column(Text, nullable=False))
    author_id: int | None = Field(default=None, foreign_key="person.id", index=True)
    written_on: date


class RetroProposal(SQLModel, table=True):
    """A released Design proposal the team votes on. `votes` is the count written when the vote closes — no
    row links a voter to a proposal. A chosen one becomes an action item (`action_item_id`, source "retro")."""

    __tablename__ = "retro_proposal"
    __table_args__ = {"sqlite_with_rowid": False}
    id: str = Field(primary_key=True, max_length=32)
    retro_id: int = Field(foreign_key="retro.id", index=True)
    number: int  # its place on the ballot (1, 2, …), shuffled at release
    text: str = Field(sa_column=Column(Text, nullable=False))
    votes: int | None = None
    chosen: bool = False
    action_item_id: int | None = Field(default=None, foreign_key="action_item.id")
    followed_up_at: datetime | None = None
    helped_yes: int = 0
    helped_partly: int = 0
    helped_no: int = 0
    # "Has it helped?" answers stay sealed drafts until the scheduler counts them all at once, this day; the
    # counts are written only when at least the retro's threshold of people answered.
    helped_counted_on: date | None = None
    written_on: date


class Idea(SQLModel, table=True):
    """An improvement idea and where it stands: received → acknowledged → decided → done → result.

    A random id and dates only (never a time of day, which a sender's own activity could match). `signed_by_id`
    only when signed; for an anonymous idea the way back to its sender is `relay`, sealed and padded to one
    size (dialogs/services/ideas.py), and `relay_pending` counts news the scheduler still owes them.
    """

    __tablename__ = "idea"
    # SQLite keeps rowid tables in insertion order; WITHOUT ROWID orders by the random key instead.
    __table_args__ = {"sqlite_with_rowid": False}
    id: str = Field(primary_key=True, max_length=32)
    owner_id: int = Field(foreign_key="person.id", index=True)
    team_id: int | None = Field(default=None, foreign_key="team.id", index=True)
    text: str = Field(sa_column=Column(Text, nullable=False))
    signed_by_id: int | None = Field(default=None, foreign_key="person.id", index=True)
    relay: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    relay_pending: int = 0  # news for an anonymous sender not relayed yet
    relay_on: date | None = None  # the day the oldest of that news was made (relayed from the next day on)
    state: str = Field(default="received", max_length=16)  # received, acknowledged, decided, done, result
    decision: str | None = Field(default=None, max_length=16)  # adopt, try, park, decline
    reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    result: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    received_on: date
    acknowledged_on: date | None = None
    decided_on: date | None = None
    done_on: date | None = None
    result_on: date | None = None
    nudged_on: date | None = None  # the owner was nudged to acknowledge it (once)


class IdeaMessage(SQLModel, table=True):
    """One message in an idea's thread: the owner's replies, the sender's answers. Random id, date only.

    An anonymous sender's answers arrive through `idea_submission`, like their ideas."""

    __tablename__ = "idea_message"
    __table_args__ = {"sqlite_with_rowid": False}
    id: str = Field(primary_key=True, max_length=32)
    idea_id: str = Field(foreign_key="idea.id", index=True, max_length=32)
    from_owner: bool
    text: str = Field(sa_column=Column(Text, nullable=False))
    written_on: date


class IdeaSubmission(SQLModel, table=True):
    """An anonymous idea on its way: sealed whole (owner, team, text, the sealed relay), no sender, no time.

    Written in the sender's turn; opened and published as an `idea` by the scheduler together with the other
    anonymous ideas once at least three people have sent one, so neither a transaction, a commit instant nor
    a small group ties the readable idea to its sender.
    """

    __tablename__ = "idea_submission"
    __table_args__ = {"sqlite_with_rowid": False}
    id: str = Field(primary_key=True, max_length=32)
    sealed: str = Field(sa_column=Column(Text, nullable=False))
