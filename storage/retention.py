"""What Baton forgets, and when.

Every message Baton sends is an outbox row, and its payload is the message:
feedback prompts, digests with blockers, sign-in links. Once delivered (or
given up), a row is only useful for a while: the weekly budget looks back
seven days, the admins' view of failed deliveries thirty. So finished rows
older than the retention period are deleted, and so are inbound delivery keys
(platforms retry within minutes; scheduled starts within the grace window).
Rows still waiting to go out are never touched.

What people wrote is kept longer, each kind for its own period (`Keep`,
set by BATON_KEEP_*_DAYS; 0 keeps it for ever): check-ins (runs and their
answers, by when they started, with the 1:1s that quote them: meetings with
their talking points and notes, and action items done that long ago),
feedback and kudos (entries and finished
requests, settled ideas with their threads, and what a retro released), and goals that were done or dropped (with their milestones and
updates, by when they were created). Released anonymous 360 answers are not
personal data and stay.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.models import (
    ActionItem,
    CheckinAnswer,
    CheckinRun,
    FeedbackEntry,
    FeedbackRequest,
    Goal,
    GoalMilestone,
    GoalUpdate,
    Idea,
    IdeaMessage,
    Meeting,
    MeetingNote,
    OutboxMessage,
    ProcessedEvent,
    Retro,
    RetroProposal,
    RetroQuote,
    RetroTheme,
    TalkingPoint,
)

FINISHED = ("sent", "failed", "cancelled", "held")  # held: kept only to show the person why
EVENT_KEY_DAYS = 14


async def prune(session: AsyncSession, now: datetime, *, days: int) -> tuple[int, int]:
    """Delete finished outbox rows older than `days` and delivery keys older than two weeks; (rows, keys) deleted."""
    messages = await session.execute(
        delete(OutboxMessage).where(
            OutboxMessage.status.in_(FINISHED), OutboxMessage.created_at < now - timedelta(days=days)
        )
    )
    keys = await session.execute(
        delete(ProcessedEvent).where(ProcessedEvent.created_at < now - timedelta(days=EVENT_KEY_DAYS))
    )
    return messages.rowcount or 0, keys.rowcount or 0


@dataclass(frozen=True)
class Keep:
    """Days each kind of personal data is kept; 0 keeps it for ever."""

    checkins: int = 730
    feedback: int = 730
    goals: int = 1095


async def forget_old(session: AsyncSession, now: datetime, keep: Keep) -> dict[str, int]:
    """Delete check-ins, feedback and finished goals older than `keep` says; rows deleted per table."""
    done: dict[str, int] = {}

    async def run(table: str, statement: Any) -> None:
        result: Any = await session.execute(statement)
        if result.rowcount:
            done[table] = done.get(table, 0) + result.rowcount

    if keep.checkins:
        old = select(col(CheckinRun.id)).where(col(CheckinRun.started_at) < now - timedelta(days=keep.checkins))
        await run("checkin_answer", delete(CheckinAnswer).where(col(CheckinAnswer.run_id).in_(old)))
        await run(
            "checkin_run", delete(CheckinRun).where(col(CheckinRun.started_at) < now - timedelta(days=keep.checkins))
        )
        # 1:1s quote the check-ins (agenda items) and go with them: old meetings, their points and notes,
        # and action items finished that long ago.
        cutoff = now - timedelta(days=keep.checkins)
        past = select(col(Meeting.id)).where(col(Meeting.starts_at) < cutoff, col(Meeting.status) != "planned")
        await run("one_on_one_note", delete(MeetingNote).where(col(MeetingNote.meeting_id).in_(past)))
        await run("talking_point", delete(TalkingPoint).where(col(TalkingPoint.meeting_id).in_(past)))
        await run("action_item", update(ActionItem).where(col(ActionItem.meeting_id).in_(past)).values(meeting_id=None))
        await run("action_item", delete(ActionItem).where(col(ActionItem.done_at) < cutoff))
        await run(
            "one_on_one_meeting",
            delete(Meeting).where(col(Meeting.starts_at) < cutoff, col(Meeting.status) != "planned"),
        )
    if keep.feedback:
        cutoff = now - timedelta(days=keep.feedback)
        await run("feedback_entry", delete(FeedbackEntry).where(col(FeedbackEntry.created_at) < cutoff))
        finished = col(FeedbackRequest.status) != "open"
        old_requests = select(col(FeedbackRequest.id)).where(col(FeedbackRequest.created_at) < cutoff, finished)
        await run(
            "feedback_entry",
            update(FeedbackEntry).where(col(FeedbackEntry.request_id).in_(old_requests)).values(request_id=None),
        )
        await run("feedback_request", delete(FeedbackRequest).where(col(FeedbackRequest.created_at) < cutoff, finished))
        # Ideas are feedback too: a finished one (a decision or a result) goes with its thread, by when it came in.
        settled = col(Idea.state).in_(("decided", "done", "result"))
        old_ideas = select(col(Idea.id)).where(col(Idea.received_on) < cutoff.date(), settled)
        await run("idea_message", delete(IdeaMessage).where(col(IdeaMessage.idea_id).in_(old_ideas)))
        await run("idea", delete(Idea).where(col(Idea.received_on) < cutoff.date(), settled))
        # A retro's released stories, themes and proposals, by the day it closed; its commitments are action
        # items and follow their own rule. The retro and who took part stay (counts only).
        old_retros = select(col(Retro.id)).where(col(Retro.closed_on) < cutoff.date())
        await run("retro_quote", delete(RetroQuote).where(col(RetroQuote.retro_id).in_(old_retros)))
        await run("retro_theme", delete(RetroTheme).where(col(RetroTheme.retro_id).in_(old_retros)))
        await run("retro_proposal", delete(RetroProposal).where(col(RetroProposal.retro_id).in_(old_retros)))
    if keep.goals:
        cutoff = now - timedelta(days=keep.goals)
        old_goals = select(col(Goal.id)).where(col(Goal.created_at) < cutoff, col(Goal.status).in_(("done", "dropped")))
        await run("goal", update(Goal).where(col(Goal.parent_id).in_(old_goals)).values(parent_id=None))
        await run("goal_update", delete(GoalUpdate).where(col(GoalUpdate.goal_id).in_(old_goals)))
        await run("goal_milestone", delete(GoalMilestone).where(col(GoalMilestone.goal_id).in_(old_goals)))
        await run("goal", delete(Goal).where(col(Goal.created_at) < cutoff, col(Goal.status).in_(("done", "dropped"))))
    return done
