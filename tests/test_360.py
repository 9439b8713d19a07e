"""Anonymous 360s, attacked: after a campaign, nothing in any table or log links an answer to its rater."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from sqlalchemy import insert, select, text

from dialogs.services.rhythm import Conductor
from storage.models import Answer360, Campaign360, OutboxMessage, Person, Pool360, Rater360, metadata
from tests.harness import Chat, Rig

PEERS = [f"peer{n}@demo.baton" for n in range(1, 7)]


async def add_peers(rig: Rig, emails: list[str]) -> None:
    tom = rig.people["tom@demo.baton"]
    await rig.db.run(
        lambda s: s.execute(
            insert(Person),
            [
                {
                    "email": e,
                    "name": f"Peer {e[4]}",
                    "timezone": "Europe/Berlin",
                    "team_id": tom.team_id,
                    "manager_id": tom.manager_id,
                    "created_at": rig.clock.now(),
                }
                for e in emails
            ],
        )
    )
    await rig.reload_people()


async def start_campaign(rig: Rig, chat: Chat, *, raise_to: int | None = None) -> Campaign360:
    await chat.send("360 tom@demo.baton")
    setup = chat.expect("360 about Tom's work")
    while raise_to is not None and f"at least {raise_to} answers" not in setup.text:
        await chat.press("Raise the threshold", on=setup)
        setup = chat.expect("360 about Tom's work")
    await chat.press("Start", on=setup)
    chat.expect("Started.")
    campaigns = list((await rig.db.run(lambda s: s.execute(select(Campaign360)))).scalars())
    return campaigns[-1]


async def answer(rig: Rig, email: str, campaign: Campaign360, ratings: list[str], comment: str | None) -> None:
    """Answer every question: the given ratings, the same comment on each, then submit."""
    rater = rig.chat(email)
    invitation = next(
        r for r in reversed(rig.delivery.to(rater.person.id)) if "360" in r.text or "self-assessment" in r.text
    )
    await rater.press("Start", on=invitation)
    for rating in ratings:
        rater.replies()
        await rater.press(rating)
        rater.expect("Anything to add")
        if comment:
            await rater.send(comment)
        else:
            await rater.press("No comment")
    for _ in range(2):
        rater.replies()
        if comment:
            await rater.send(f"{comment} (open)")
        else:
            await rater.press("Skip")
    rater.expect("Ready to submit?")
    await rater.press("Submit")
    rater.expect("your answers are in the pool")


async def close(rig: Rig, campaign: Campaign360) -> None:
    rig.clock.set(campaign.closes_at + timedelta(minutes=1))
    report = await Conductor(rig.db, sealer=rig.sealer, tools_available=True).tick(rig.clock.now())
    assert report.reviews >= 1
    await rig.sender.drain_once()


async def dump_every_table(rig: Rig) -> dict[str, list[dict]]:
    async def work(session):
        found = {}
        for table in metadata.sorted_tables:
            rows = await session.execute(text(f'SELECT * FROM "{table.name}"'))
            found[table.name] = [dict(r._mapping) for r in rows]
        return found

    return await rig.db.run(work)


async def test_no_table_or_log_links_an_answer_to_its_rater(
    rig: Rig, chat: Chat, caplog: pytest.LogCaptureFixture
) -> None:
    await add_peers(rig, PEERS)
    campaign = await start_campaign(rig, chat)
    caplog.set_level(logging.DEBUG)
    order = []
    # Each peer answers with a rating pattern and a comment that identify them, in a known order, hours apart.
    for n, email in enumerate(PEERS, 1):
        rig.clock.advance(hours=3)
        await answer(rig, email, campaign, [str((n + q) % 5 + 1) for q in range(6)], f"secret-mark-{n}")
        order.append(f"secret-mark-{n}")
    await close(rig, campaign)

    tables = await dump_every_table(rig)
    assert tables["pool_360"] == []  # nothing left waiting
    answers = tables["answer_360"]
    assert len(answers) == 6 * 8
    assert set(answers[0]) == {"id", "campaign_id", "group", "question_id", "rating", "comment", "written_on"}
    assert {str(a["written_on"]) for a in answers} == {str(rig.clock.now().date())}  # no per-answer time at all
    peer_ids = {rig.people[e].id for e in PEERS}
    # No row anywhere holds both a rater's identity and their words.
    for name, rows in tables.items():
        for row in rows:
            flat = repr(row)
            marks = [m for m in order if m in flat]
            if not marks:
                continue
            assert name in ("answer_360", "outbox"), f"{name} holds answer text: {row}"
            values = {v for v in row.values() if isinstance(v, (int, str))}
            assert not (values & peer_ids) and not any(e in flat for e in PEERS), (
                f"answer linked to a rater in {name}: {row}"
            )
    # Storage order (primary key, and physical order) does not follow the order people answered in. Each of
    # the eight questions is checked: a fair shuffle keeps one question's six answers in answering order once
    # in 720 times, so two may by chance (three would happen about once in six million runs); a release in
    # answering order keeps all eight.
    for ordering in ("id", "physical"):
        query = "SELECT question_id, comment FROM answer_360 WHERE \"group\" = 'peer'"
        if ordering == "id":
            query += " ORDER BY id"
        elif not rig.db.is_sqlite:
            query += " ORDER BY ctid"
        stored: dict[str, list[str]] = {}
        for question, comment in await rig.db.run(lambda s, query=query: s.execute(text(query))):
            stored.setdefault(question, []).append(comment.removesuffix(" (open)"))
        assert len(stored) == 8 and all(sorted(marks) == order for marks in stored.values())
        in_order = [question for question, marks in stored.items() if marks == order]
        assert len(in_order) <= 2, f"{ordering} order reveals who answered when: {in_order}"
    # The participation record has no content and no time.
    raters = tables["rater_360"]
    assert set(raters[0]) == {"id", "campaign_id", "rater_id", "group", "answered", "declined"}
    # Raters' dialog state no longer holds their answers.
    for row in tables["dialog_state"]:
        assert not any(m in repr(row) for m in order)
    # Messages Baton sent: the marks only reach the subject and the manager, inside the pooled report.
    for row in tables["outbox"]:
        if any(m in repr(row["payload"]) for m in order):
            assert row["person_id"] in {rig.people["tom@demo.baton"].id, rig.people["maya@demo.baton"].id}
            assert row["kind"] == "report"
    assert not any(m in caplog.text for m in order)


async def test_a_group_at_k_minus_one_is_omitted_and_at_k_shown(rig: Rig, chat: Chat) -> None:
    await add_peers(rig, PEERS[:4])
    campaign = await start_campaign(rig, chat)
    for email in PEERS[:2]:
        await answer(rig, email, campaign, ["4"] * 6, None)
    await answer(rig, "maya@demo.baton", campaign, ["2"] * 6, "manager-view")
    await close(rig, campaign)
    tom_report = rig.delivery.to(rig.people["tom@demo.baton"].id)[-1]
    assert tom_report.card is not None
    shown = dict(tom_report.card.fields)
    assert any(k.startswith("Manager") for k in shown)
    assert not any(k.startswith("Peers") for k in shown)
    assert any("Peers: not shown (fewer than 3 answered)" in line for line in tom_report.card.lines)
    assert "4" not in " ".join(v for k, v in shown.items())  # the hidden peers' 4s are folded in nowhere
    # ... and were never written readable: the released table holds the manager's answers only
    stored = (
        await rig.db.run(lambda s: s.scalars(select(Answer360).where(Answer360.campaign_id == campaign.id)))
    ).all()
    assert stored and {row.group for row in stored} == {"manager"}

    campaign2 = await start_campaign_for_next_round(rig, chat, campaign)
    for email in PEERS[:3]:
        await answer(rig, email, campaign2, ["4"] * 6, None)
    await close(rig, campaign2)
    report = rig.delivery.to(rig.people["tom@demo.baton"].id)[-1]
    assert any(k.startswith("Peers (3)") for k in dict(report.card.fields))


async def start_campaign_for_next_round(rig: Rig, chat: Chat, previous: Campaign360) -> Campaign360:
    rig.clock.set(previous.closes_at + timedelta(days=1))
    chat.replies()
    return await start_campaign(rig, chat)


async def test_differencing_two_campaigns_is_blocked(rig: Rig, chat: Chat) -> None:
    await add_peers(rig, PEERS[:5])
    first = await start_campaign(rig, chat)
    for email in PEERS[:3]:
        await answer(rig, email, first, ["3"] * 6, None)
    await close(rig, first)
    second = await start_campaign_for_next_round(rig, chat, first)
    for email in PEERS[:4]:  # the same three plus one: subtracting would expose the fourth
        await answer(rig, email, second, ["5" if email == PEERS[3] else "3"] * 6, None)
    await close(rig, second)
    report = rig.delivery.to(rig.people["tom@demo.baton"].id)[-1]
    assert not any(k.startswith("Peers") for k in dict(report.card.fields))
    assert any("too close to an earlier 360" in line for line in report.card.lines)


async def test_one_question_whose_rating_count_moved_by_one_is_withheld(rig: Rig, chat: Chat) -> None:
    """Same four peers twice; one "Can't say" became a rating: 4 x 3.75 - 3 x 3.67 would be exactly that rating."""
    await add_peers(rig, PEERS[:4])
    first = await start_campaign(rig, chat)
    for email in PEERS[:4]:
        await answer(rig, email, first, (["Can't say"] if email == PEERS[3] else ["4"]) + ["4"] * 5, None)
    await close(rig, first)
    shown_first = dict(rig.delivery.to(rig.people["tom@demo.baton"].id)[-1].card.fields)
    assert "Expectations 4" in shown_first["Peers (4)"]  # three ratings, at the threshold: shown
    second = await start_campaign_for_next_round(rig, chat, first)
    for email in PEERS[:4]:
        await answer(rig, email, second, ["1" if email == PEERS[3] else "4"] + ["4"] * 5, None)
    await close(rig, second)
    shown = dict(rig.delivery.to(rig.people["tom@demo.baton"].id)[-1].card.fields)
    assert "Expectations" not in shown["Peers (4)"] and "Feedback 4" in shown["Peers (4)"]
    stored = (await rig.db.run(lambda s: s.scalars(select(Answer360).where(Answer360.campaign_id == second.id)))).all()
    assert not [row for row in stored if row.question_id == "expectations" and row.rating is not None]


async def test_a_restart_mid_answer_keeps_the_draft(rig: Rig, chat: Chat) -> None:
    await add_peers(rig, PEERS[:3])
    campaign = await start_campaign(rig, chat)
    rater = rig.chat(PEERS[0])
    await rater.send(f"360 answer {campaign.id}")
    await rater.press("5")
    await rater.send("kept across a restart")
    restarted = rig.restart()  # a new process with the same secret
    again = restarted.chat(PEERS[0])
    for _ in range(5):
        await again.send("4")  # typed: this new process's chat has not seen the buttons yet
        await again.press("No comment")
    for _ in range(2):
        await again.press("Skip")
    await again.press("Submit")
    again.expect("your answers are in the pool")
    for email in PEERS[1:3]:
        await answer(restarted, email, campaign, ["4"] * 6, None)
    await close(restarted, campaign)
    report = restarted.delivery.to(restarted.people["tom@demo.baton"].id)[-1]
    peers = dict(report.card.fields)["Peers (3)"]
    assert "Expectations 4.33" in peers  # 5 (answered before the restart), 4 and 4


async def test_the_secret_is_required_with_postgresql_and_kept_0600_beside_sqlite(tmp_path, monkeypatch) -> None:
    from bot.config import load_settings
    from dialogs.engine.errors import ConfigurationError

    monkeypatch.delenv("BATON_SECRET_KEY")
    with pytest.raises(ConfigurationError, match="BATON_SECRET_KEY is missing"):
        load_settings(env_file=None, DATABASE_URL="postgresql://baton@db.example/baton").sealer()
    with pytest.raises(ConfigurationError, match="at least 32 characters"):
        load_settings(env_file=None, BATON_SECRET_KEY="short")
    settings = load_settings(env_file=None, DATABASE_URL=f"sqlite:///{tmp_path}/baton.db")
    sealed = settings.sealer().seal("s", {"a": 1}, size=64)
    key_file = tmp_path / "baton.db.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert settings.sealer().open("s", sealed) == {"a": 1}  # the same secret on the next start
    key_file.chmod(0o644)
    with pytest.raises(ConfigurationError, match="chmod 600"):
        settings.sealer()


async def test_thresholds_rise_but_never_fall_or_go_below_three(rig: Rig, chat: Chat) -> None:
    await add_peers(rig, PEERS[:3])
    campaign = await start_campaign(rig, chat, raise_to=4)
    assert campaign.threshold == 4
    await chat.send(f"360 threshold {campaign.id} 3")
    chat.expect("raised but never lowered")
    await chat.send(f"360 threshold {campaign.id} 2")
    chat.expect("never below 3")
    await chat.send(f"360 threshold {campaign.id} 5")
    chat.expect("now 5")
    stored = await rig.db.run(lambda s: s.get(Campaign360, campaign.id))
    assert stored.threshold == 5
    arjun = rig.chat("arjun@demo.baton")
    await arjun.send(f"360 threshold {campaign.id} 9")
    arjun.expect("isn't yours")


async def test_raters_are_told_how_answers_are_pooled_and_managers_that_theirs_are_not_anonymous(
    rig: Rig, chat: Chat
) -> None:
    await add_peers(rig, PEERS[:3])
    await start_campaign(rig, chat)
    peer_invite = rig.delivery.to(rig.people[PEERS[0]].id)[-1]
    assert "join the *peers* group" in peer_invite.text and "at least 3" in peer_invite.text
    manager_note = [r.text for r in chat.replies() if "not anonymous" in r.text]
    assert manager_note
    tom_invite = rig.delivery.to(rig.people["tom@demo.baton"].id)[-1]
    assert "self-assessment" in tom_invite.text


async def test_one_answer_per_rater_and_no_answers_after_close(rig: Rig, chat: Chat) -> None:
    await add_peers(rig, PEERS[:3])
    campaign = await start_campaign(rig, chat)
    await answer(rig, PEERS[0], campaign, ["4"] * 6, None)
    again = rig.chat(PEERS[0])
    await again.send(f"360 answer {campaign.id}")
    again.expect("already answered")
    pooled = list((await rig.db.run(lambda s: s.execute(select(Pool360)))).scalars())
    assert len(pooled) == 1 and pooled[0].sealed and pooled[0].group is None  # one sealed row, nothing readable
    await close(rig, campaign)
    late = rig.chat(PEERS[1])
    await late.send(f"360 answer {campaign.id}")
    late.expect("has closed")


async def test_the_subject_can_add_a_rater_and_late_raters_get_one_reminder(rig: Rig, chat: Chat) -> None:
    await add_peers(rig, PEERS[:3])
    outsider = Person(email="outsider@demo.baton", name="Olu Outsider", timezone="UTC", created_at=rig.clock.now())
    await rig.db.run(lambda s: _add(s, outsider))
    await rig.reload_people()
    campaign = await start_campaign(rig, chat)
    tom = rig.chat("tom@demo.baton")
    await tom.send("360 add outsider@demo.baton")
    tom.expect("Added Olu Outsider")
    await tom.send("360 add outsider@demo.baton")
    tom.expect("already asked")
    rows = list(
        (await rig.db.run(lambda s: s.execute(select(Rater360).where(Rater360.campaign_id == campaign.id)))).scalars()
    )
    assert any(r.rater_id == rig.people["outsider@demo.baton"].id and r.group == "peer" for r in rows)
    rig.clock.set(campaign.closes_at - timedelta(days=1))
    conductor = Conductor(rig.db, sealer=rig.sealer)
    await conductor.tick(rig.clock.now())
    await conductor.tick(rig.clock.now())
    reminders = list(
        (
            await rig.db.run(lambda s: s.execute(select(OutboxMessage).where(OutboxMessage.topic == "360-reminder")))
        ).scalars()
    )
    assert sorted(r.person_id for r in reminders) == sorted(
        r.rater_id for r in rows
    )  # everyone who hasn't answered, once


async def _add(session, person: Person) -> None:
    session.add(person)
