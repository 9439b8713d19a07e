"""Anonymous answers: sealed while collected, released only above a threshold, shuffled, unlinkable.

Every feature that collects answers people give anonymously uses this module
(360s today; anonymous ideas and replies are planned). The threat model, also
in the README:

- T1 — someone who can read the database, its backups, its WAL archives or a
  replica, but not Baton's secret, never links an answer to its rater, during
  a collection or after, and reads no answer before release. After release
  they see only what the results show.
- T2 (forward secrecy) — someone who also obtains the secret after release
  must not link answers either. This design does not meet T2: keys are
  derived from the one long-lived secret, so old ciphertext in backups and
  WAL archives opens with it. Meeting T2 needs per-collection keys kept
  outside the database in a store that is never persisted or backed up
  (for example a Redis without persistence, shared by the replicas) and
  destroyed at release; then a restart of that store loses open drafts.
- Out of scope: someone running code inside the live server, which must read
  the answers to release them.

How:
- A draft is held one answer per row (`sealed_draft`), each sealed and padded
  to `SLOT` bytes and bound to the person and the question: what a reader
  learns is only how many questions someone has reached.
- A submission is one pool row per person — no person, no time, a random id —
  holding every answer sealed together and padded to a size that does not
  depend on what was written. Participation is recorded separately, as it
  has to be (who was asked, and whether they answered).
- At release everything is opened in memory, what does not reach its
  threshold is dropped without ever being written readable, and the rest is
  written in shuffled order with fresh random ids; pool rows and drafts are
  deleted in the same transaction, and SQLite's WAL is checkpointed after.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from typing import Any

from sqlalchemy import String, cast, delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from dialogs.engine.contract import Turn
from dialogs.engine.sealing import Sealer
from storage.models import DialogState, SealedDraft

FLOOR = 3  # no threshold of an anonymous collection is ever below this: smaller groups can be traced to people
MAX_WRITTEN = 1500  # characters in one written answer
# One answer as JSON: up to 4 bytes a character (control characters other than newline and tab are removed
# before a handler sees text, so no character takes a six-byte escape) plus the rating and the keys.
SLOT = MAX_WRITTEN * 4 + 256
_random = secrets.SystemRandom()


def scope(kind: str, collection_id: int) -> str:
    """The sealing scope of one collection (one 360 campaign, say)."""
    return f"anonymous:{kind}:{collection_id}"


def new_id() -> str:
    """A random primary key: rows sort by it, never by arrival."""
    return secrets.token_hex(16)


def shuffled(items: Iterable[Any]) -> list[Any]:
    found = list(items)
    _random.shuffle(found)
    return found


# -- drafts ---------------------------------------------------------------------------------------


async def draft(turn: Turn, where: str, *items: str) -> dict[str, dict[str, Any]]:
    """The answers this person has drafted so far in collection `where` (only `items`, if given), opened."""
    statement = select(SealedDraft).where(col(SealedDraft.person_id) == turn.person.id, col(SealedDraft.scope) == where)
    if items:
        statement = statement.where(col(SealedDraft.item).in_(items))
    return {
        row.item: turn.sealer.open(where, row.sealed, context=_draft_context(turn, row.item))
        for row in await turn.session.scalars(statement)
    }


async def keep_answer(turn: Turn, where: str, item: str, answer: dict[str, Any]) -> None:
    """Add or replace one drafted answer, sealed in its own fixed-size slot."""
    person_id = turn.person.id
    assert person_id is not None
    sealed = turn.sealer.seal(where, answer, size=SLOT, context=_draft_context(turn, item))
    row = await turn.session.get(SealedDraft, (person_id, where, item))
    if row is None:
        turn.session.add(SealedDraft(person_id=person_id, scope=where, item=item, sealed=sealed))
    else:
        row.sealed = sealed
        turn.session.add(row)


async def drop_draft(turn: Turn, where: str) -> None:
    """Delete this person's draft in `where` (submitted or discarded); the WAL is checkpointed after the commit."""
    await turn.session.execute(
        delete(SealedDraft).where(col(SealedDraft.person_id) == turn.person.id, col(SealedDraft.scope) == where)
    )
    turn.checkpoint = True


def _draft_context(turn: Turn, item: str) -> str:
    return f"draft:{turn.person.id}:{item}"


async def clear_drafts(session: AsyncSession, where: str, dialog: str, key: str, collection_id: int) -> int:
    """At close: delete every unsubmitted draft of the collection, and end the conversations still answering it."""
    await session.execute(delete(SealedDraft).where(col(SealedDraft.scope) == where))
    # the conversations answering it now, and those with something set aside (parked is JSON: compare its text)
    rows = await session.scalars(
        select(DialogState).where((col(DialogState.dialog) == dialog) | (cast(col(DialogState.parked), String) != "[]"))
    )
    ended = 0
    for state in rows:
        answering = state.dialog == dialog and (state.data or {}).get(key) == collection_id
        parked = [
            p for p in state.parked or [] if p.get("dialog") == dialog and p.get("data", {}).get(key) == collection_id
        ]
        if answering:
            state.dialog, state.state, state.data, state.prompt_id = None, None, {}, None
        if parked:
            state.parked = [p for p in state.parked if p not in parked]
        if answering or parked:
            state.version += 1
            session.add(state)
            ended += 1
    return ended


async def open_drafts(session: AsyncSession, sealer: Sealer, where: str) -> list[tuple[int, dict[str, Any]]]:
    """At close, for a collection whose drafts are its submissions (editable until the close, as a retro's):
    every person's drafted answers, opened in memory and shuffled. The caller keeps a person id only for
    what its author chose to sign, and deletes the drafts (`clear_drafts`) in the same transaction."""
    found: dict[int, dict[str, Any]] = {}
    for row in await session.scalars(select(SealedDraft).where(col(SealedDraft.scope) == where)):
        opened = sealer.open(where, row.sealed, context=f"draft:{row.person_id}:{row.item}")
        found.setdefault(row.person_id, {})[row.item] = opened
    return shuffled(found.items())


# -- submissions ----------------------------------------------------------------------------------


def seal_submission(sealer: Sealer, where: str, submission: dict[str, Any], *, slots: int) -> str:
    """Everything one person submitted, sealed together at a size set by the number of questions only."""
    return sealer.seal(where, submission, size=slots * SLOT, context="pool")


def open_submissions(sealer: Sealer, where: str, sealed: Iterable[str]) -> list[dict[str, Any]]:
    """Every submission of a collection, opened and shuffled (release time only)."""
    return shuffled(sealer.open(where, value, context="pool") for value in sealed)
