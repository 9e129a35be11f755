"""Trust over the wire: the real bot process against the fake Discord on 127.0.0.1.

- Two coaches submit the same card at the same moment, 20 rounds: each card is answered once, the rider gets one
  reply, and the other coach is told who was first with their text handed back.
- /forget-me leaves no row in the SQLite file with the rider's id or a marker word of theirs, no card showing
  them, and no library file with their words.
- A private answer's Not helpful queues nothing.
- A reply that reached Discord just before a SIGKILL is not sent again by the restarted bot, even long after
  Discord forgot the nonce.
- A card whose post failed is posted by the recovery loop while the bot runs.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import KNOWLEDGE
from tests.fake_discord import FakeDiscord, Interaction
from tests.fake_discord.process import copy_tree, running_bot
from tests.wire.test_coach_wire import (
    COACH,
    EPHEMERAL,
    RIDER,
    CoachWire,
    Running,
    answer_message,
    button,
    coach_fake,
    components,
    fields,
    kill_when,
    open_modal,
    replies_to,
    rows,
    settled,
    wait_card,
)

pytestmark = pytest.mark.slow

SECOND_COACH = RIDER + 4343
# Declined by the shipped library (bike upkeep and race admin, not rider training), and unlike each other.
OFF_TOPIC = [
    "how often should I change the fork oil on a 250f?",
    "which chain lube lasts longest in mud?",
    "what air filter oil works best on dusty tracks?",
    "how do I bleed the rear brake on my bike?",
    "what sprocket ratio should I run for a tight supercross track?",
    "how do I jet a two-stroke carburettor for altitude?",
    "which helmet brand has the best rotational liner?",
    "what is the best way to clean white plastics?",
    "how do I register for an amateur national qualifier?",
    "how much does a season of racing cost?",
    "which trailer is best for hauling two bikes?",
    "how do I change the spark plug on a 450?",
    "what radiator coolant should I use?",
    "how do I pick boots for wide feet?",
    "when should I replace the piston on a 125?",
    "what number plate background colours are legal?",
    "how do I fix a flat tube at the track?",
    "which energy drink brands sponsor amateur riders?",
    "how do I wash my riding gear without ruining it?",
    "how do I get a good price when selling my old bike?",
]
# The recovery loop every second; no per-rider limit (one rider here does in seconds what a rider does in a week).
# `make test` runs 3 rounds; HINGE_SUBMIT_ROUNDS=20 runs them all (each costs a reindex).
ROUNDS = min(len(OFF_TOPIC), int(os.environ.get("HINGE_SUBMIT_ROUNDS", "3")))
FAST_RETRIES = {"HINGE_COACH_RETRY_SECONDS": "1", "HINGE_ASK_COOLDOWN_SECONDS": "0"}


@pytest.fixture(scope="module")
def trust_index(wire_index: Path) -> Path:
    return wire_index


@pytest.fixture
def trust(tmp_path: Path, trust_index: Path) -> Iterator[Running]:
    data, knowledge = copy_tree(trust_index, tmp_path / "data"), copy_tree(KNOWLEDGE, tmp_path / "knowledge")
    w = coach_fake()
    try:
        with running_bot(w.fake, data, knowledge, tmp_path / "bot.log", extra_env={**w.env(), **FAST_RETRIES}) as bot:
            yield Running(w, bot, data, knowledge)
            assert bot.alive(), f"the bot died:\n{bot.log()[-4000:]}"
            assert "Traceback" not in bot.log(), bot.log()[-6000:]
    finally:
        w.fake.stop()


def ask_declined(w: CoachWire, running: Running, question: str, user_id: int, **options: Any) -> Interaction:
    ask = w.fake.slash("ask", question=question, user_id=user_id, **options)
    settled(w.fake, [ask], running.bot)
    assert "Asked the coaches" in fields(ask), (question, ask.text)
    return ask


def handed_back(fake: FakeDiscord, interaction: Interaction) -> list[str]:
    """The texts of the files the bot attached to its messages answering this interaction."""
    texts = []
    for message in interaction.messages.values():
        for attachment in message.get("attachments") or []:
            data = fake.files.get(int(attachment["id"]))
            if data is not None:
                texts.append(data.decode())
    return texts


def test_two_coaches_submitting_one_card_at_the_same_moment_answer_it_once(trust: Running) -> None:
    w, fake, data = trust.w, trust.w.fake, trust.data
    asked: dict[int, dict[str, Any]] = {}
    for n, question in enumerate(OFF_TOPIC[:ROUNDS]):
        rider = RIDER + 100 + n
        asked[rider] = answer_message(ask_declined(w, trust, question, rider))
        card = wait_card(w, question)
        first = open_modal(w, card, trust.bot)
        second = fake.click(card, button(card, "answer"), user_id=SECOND_COACH, roles=[w.coach_role])
        settled(fake, [second], trust.bot)
        assert second.modal is not None, second.sent
        texts = (f"Round {n}, coach one: check it after every third ride and change it twice a season.",
                 f"Round {n}, coach two: a shop can do it; ask at the track for the one the pros use.")
        submits = [fake.submit_modal(first, {"answer": texts[0], "title": f"Coach one's answer {n}", "link": ""},
                                     user_id=COACH, roles=[w.coach_role]),
                   fake.submit_modal(second, {"answer": texts[1], "title": f"Coach two's answer {n}", "link": ""},
                                     user_id=SECOND_COACH, roles=[w.coach_role])]
        settled(fake, submits, trust.bot)
        won = [i for i, s in enumerate(submits) if "Thanks! Sent to 1 rider" in s.text]
        lost = [i for i, s in enumerate(submits) if "already answered by" in s.text]
        assert len(won) == 1 and len(lost) == 1, [s.text for s in submits]
        loser = submits[lost[0]]
        assert all(b.get("flags", 0) & EPHEMERAL for b in loser.replies)
        assert handed_back(fake, loser) == [texts[lost[0]]], "the second coach's text was not handed back"
        assert "Sorry" not in loser.text
        card_id = int(button(card, "answer").rsplit(":", 1)[1])
        assert rows(data, f"SELECT COUNT(*) FROM coach_answers WHERE request_id = {card_id}") == [(1,)]
        [(text,)] = rows(data, f"SELECT text FROM coach_answers WHERE request_id = {card_id}")
        assert text == texts[won[0]]

    # Every rider hears once, with the winning text; one library document per card.
    for message in asked.values():
        fake.wait_until(lambda m=message: replies_to(fake, w.rider_channel, m["id"]) or None, 60, "the replies")
    time.sleep(1)
    for message in asked.values():
        assert len(replies_to(fake, w.rider_channel, message["id"])) == 1
    fake.wait_until(lambda: rows(data, "SELECT COUNT(*) FROM coach_answers WHERE indexed = 1") == [(ROUNDS,)],
                    120, "every answer indexed")
    documents = [p for p in (data / "library").rglob("coach-*.md")]
    assert len(documents) == ROUNDS, sorted(p.name for p in documents)


def sweep(database: Path, needles: list[str]) -> list[tuple[str, str, str]]:
    """Every (table, column, value) in the SQLite file whose value holds one of `needles` (text or bytes)."""
    db = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5)
    found = []
    try:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            cursor = db.execute(f"SELECT * FROM {table}")
            columns = [d[0] for d in cursor.description]
            for row in cursor.fetchall():
                for column, value in zip(columns, row, strict=True):
                    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
                    if any(n.lower() in text.lower() for n in needles):
                        found.append((table, column, text[:120]))
    finally:
        db.close()
    return found


MARKER = "zorblax"


def test_forget_me_leaves_no_row_card_or_file_with_the_rider(trust: Running) -> None:
    w, fake, data = trust.w, trust.w.fake, trust.data
    rider, other = RIDER + 900, RIDER + 901
    # A card the rider shares with another rider (the other asked first, so its text is theirs).
    ask_declined(w, trust, "how often should I change the fork oil on a 250f?", other)
    shared_ask = ask_declined(w, trust, f"how often should I change the fork oil on my 250f {MARKER}?", rider)
    shared = wait_card(w, "how often should I change the fork oil on a 250f?")
    fake.wait_until(lambda: "2 riders" in fake.message(int(shared["id"]))["embeds"][0]["footer"]["text"] or None,
                    30, "the rider to join the other's card")
    # A card that is theirs alone, and one a coach answers (its library file holds the question at first).
    alone_question = f"{MARKER} which chain lube lasts longest in mud?"
    ask_declined(w, trust, alone_question, rider)
    alone = wait_card(w, alone_question)
    answered_question = f"{MARKER} what number plate background colours are legal?"
    ask_declined(w, trust, answered_question, rider)
    answered = wait_card(w, answered_question)
    shown = open_modal(w, answered, trust.bot)
    submit = fake.submit_modal(shown, {"answer": "Check your series rulebook: classes have their own colours.",
                                       "title": "Legal plate colours", "link": ""}, user_id=COACH,
                               roles=[w.coach_role])
    settled(fake, [submit], trust.bot)
    fake.wait_until(lambda: rows(data, "SELECT written, indexed FROM coach_answers") == [(1, 1)], 60, "the file")
    assert any(MARKER in p.read_text() for p in (data / "library").rglob("coach-*.md"))
    # Feedback, a conversation in a thread, and a DM conversation.
    hinge = fake.slash("ask", question=f"how do I hinge {MARKER}?", user_id=rider, thread=True)
    settled(fake, [hinge], trust.bot)
    down = fake.click(answer_message(hinge), next(c for c in components(answer_message(hinge))
                                                   if c.startswith("hinge:down:")), user_id=rider)
    settled(fake, [down], trust.bot)
    dm = fake.dm_channel(rider)
    fake.user_message(dm, f"what is the attack position {MARKER}?", user_id=rider)
    fake.wait_until(lambda: len([m for m in fake.channel_messages(dm) if m["author"]["id"] == str(
        fake.application_id)]) >= 1 or None, 30, "the DM answer")
    # The DM's turn is saved after its reply: wait for it, so the forget below does not race the question.
    fake.wait_until(lambda: rows(data, f"SELECT COUNT(*) FROM conversations WHERE user_id = {rider}") == [(2,)]
                    or None, 30, "the thread's and the DM's conversations")
    before = sweep(data / "hinge.sqlite3", [str(rider), MARKER])
    assert {t for t, _c, _v in before} >= {"questions", "coach_askers", "coach_requests", "conversations",
                                          "feedback"}, before

    forget = fake.slash("forget-me", user_id=rider)
    settled(fake, [forget], trust.bot)
    assert "Done" in forget.text, forget.text
    # The recovery loop writes the coach answer's file again without the rider's question.
    fake.wait_until(lambda: (rows(data, "SELECT COUNT(*) FROM coach_answers WHERE written = 1 AND indexed = 1")
                    == [(1,)] and not any(MARKER in p.read_text() for p in (data / "library").rglob("coach-*.md")))
                    or None, 60, "the coach answer's file without the rider's words")
    assert sweep(data / "hinge.sqlite3", [str(rider), MARKER]) == []
    # The cards: the shared one keeps the other rider only, the rider's own is withdrawn, none shows them.
    for card in (shared, alone, answered):
        shown_now = json.dumps(fake.message(int(card["id"]))["embeds"])
        assert MARKER not in shown_now and str(rider) not in shown_now, shown_now
    assert "1 rider asked" in fake.message(int(shared["id"]))["embeds"][0]["footer"]["text"]
    assert fake.message(int(alone["id"]))["embeds"][0]["title"].startswith("Withdrawn")
    assert answer_message(shared_ask)  # their own messages in the channel are Discord's, not ours to delete


def test_not_helpful_on_a_private_answer_queues_nothing(trust: Running) -> None:
    w, fake = trust.w, trust.w.fake
    ask = fake.slash("ask", question="how do I hinge?", user_id=RIDER + 7, private=True)
    settled(fake, [ask], trust.bot)
    message = answer_message(ask)
    assert message.get("flags", 0) & EPHEMERAL
    down = fake.click(message, next(c for c in components(message) if c.startswith("hinge:down:")),
                      user_id=RIDER + 7)
    settled(fake, [down], trust.bot)
    assert "stays with you" in down.text, down.text
    # The queue is written before anyone is told, so a card would exist by now.
    assert rows(trust.data, "SELECT COUNT(*) FROM coach_requests") == [(0,)]
    assert not [m for m in fake.channel_messages(w.coach_channel) if m.get("embeds")]


def test_a_card_whose_post_failed_is_posted_by_the_recovery_loop(trust: Running) -> None:
    w, fake, data = trust.w, trust.w.fake, trust.data
    fake.fail("POST", rf"^/channels/{w.coach_channel}/messages$", status=500, times=3)
    ask = ask_declined(w, trust, OFF_TOPIC[3], RIDER + 11)  # the rider is told only once it is queued
    assert rows(data, "SELECT COUNT(*) FROM coach_requests WHERE status = 'open'") == [(1,)]
    card = wait_card(w, OFF_TOPIC[3], timeout=60)  # while the bot runs: no restart
    assert rows(data, "SELECT card_message_id FROM coach_requests") == [(int(card["id"]),)]
    assert answer_message(ask)


def test_a_reply_sent_just_before_a_kill_is_not_sent_again_long_after(tmp_path: Path, trust_index: Path) -> None:
    data, knowledge = copy_tree(trust_index, tmp_path / "data"), copy_tree(KNOWLEDGE, tmp_path / "knowledge")
    w = coach_fake()
    fake = w.fake
    env = {**w.env(), **FAST_RETRIES}
    try:
        with running_bot(fake, data, knowledge, tmp_path / "bot-1.log", extra_env=env) as bot:
            run = Running(w, bot, data, knowledge)
            asked = answer_message(ask_declined(w, run, OFF_TOPIC[0], RIDER))
            card = wait_card(w, OFF_TOPIC[0])
            shown = open_modal(w, card, bot)
            # The reply lands at Discord at once; its response is held, so the bot never learns it was sent.
            fake.fail("POST", rf"^/channels/{w.rider_channel}/messages$", status=None, hold=60)
            fake.submit_modal(shown, {"answer": "Every 15 hours of riding.", "title": "Fork oil", "link": ""},
                              user_id=COACH, roles=[w.coach_role])
            kill_when(bot, lambda: bool(replies_to(fake, w.rider_channel, asked["id"])), 30, "the reply at Discord")
            assert rows(data, "SELECT delivered_at IS NULL, claimed_at IS NOT NULL FROM coach_askers") == [(1, 1)]
        fake.faults.clear()
        fake.nonce_seconds = 0  # long after: Discord no longer knows the nonce
        with running_bot(fake, data, knowledge, tmp_path / "bot-2.log", extra_env=env) as bot:
            fake.wait_until(lambda: rows(data, "SELECT COUNT(*) FROM coach_askers WHERE delivered_at IS NOT NULL")
                            == [(1,)] or None, 60, "the restarted bot to settle the delivery")
            fake.wait_until(lambda: rows(data, "SELECT written, indexed FROM coach_answers") == [(1, 1)] or None,
                            60, "the answer finished")
            time.sleep(2)  # two more recovery rounds: any second reply would be out by now
            assert len(replies_to(fake, w.rider_channel, asked["id"])) == 1
            assert "Traceback" not in bot.log(), bot.log()[-6000:]
    finally:
        fake.stop()


def test_withdraw_dismiss_merge_edit_and_forget_over_the_wire(trust: Running) -> None:
    w, fake, data = trust.w, trust.w.fake, trust.data
    coach = {"user_id": COACH, "roles": [w.coach_role]}
    # Withdraw: the rider's own button; the card says so.
    withdrawn_ask = ask_declined(w, trust, OFF_TOPIC[4], RIDER + 20)
    withdrawn_card = wait_card(w, OFF_TOPIC[4])
    shown = answer_message(withdrawn_ask)
    pressed = fake.click(shown, next(c for c in components(shown) if c.startswith("hinge:withdraw:")),
                         user_id=RIDER + 20)
    settled(fake, [pressed], trust.bot)
    assert "won't get this one" in pressed.text
    assert fake.message(int(withdrawn_card["id"]))["embeds"][0]["title"].startswith("Withdrawn")
    # Dismiss.
    ask_declined(w, trust, OFF_TOPIC[5], RIDER + 21)
    dismissed = wait_card(w, OFF_TOPIC[5])
    closed = fake.click(dismissed, button(dismissed, "dismiss"), **coach)
    settled(fake, [closed], trust.bot)
    assert fake.message(int(dismissed["id"]))["embeds"][0]["title"].startswith("Not for us")
    # Merge one card into another: its rider then hears the other card's answer.
    merged_ask = ask_declined(w, trust, OFF_TOPIC[6], RIDER + 22)
    ask_declined(w, trust, OFF_TOPIC[7], RIDER + 23)
    source, target = wait_card(w, OFF_TOPIC[6]), wait_card(w, OFF_TOPIC[7])
    menu = fake.click(source, button(source, "merge"), **coach)
    settled(fake, [menu], trust.bot)
    [select] = [m for m in menu.messages.values() if components(m)]
    target_id = button(target, "answer").rsplit(":", 1)[1]
    chosen = fake.click(select, components(select)[0], component_type=3, values=[target_id], **coach)
    settled(fake, [chosen], trust.bot)
    assert f"Merged into #{target_id}" in chosen.text, chosen.text
    modal = open_modal(w, target, trust.bot)
    submit = fake.submit_modal(modal, {"answer": "Soap and warm water, then a plastic restorer.",
                                       "title": "Clean plastics", "link": ""}, **coach)
    settled(fake, [submit], trust.bot)
    assert "Sent to 2 riders" in submit.text, submit.text
    merged_message = answer_message(merged_ask)
    fake.wait_until(lambda: replies_to(fake, w.rider_channel, merged_message["id"]) or None, 30, "the merged reply")
    fake.wait_until(lambda: rows(data, "SELECT indexed FROM coach_answers") == [(1,)] or None, 60, "indexed")
    # Edit by the author: the library file and the index follow.
    [(doc_id,)] = rows(data, "SELECT document_id FROM coach_answers")
    answered = fake.message(int(target["id"]))
    edit_id = next(c for c in components(answered) if c.startswith("hinge:card:edit:"))
    edit = fake.click(answered, edit_id, **coach)
    settled(fake, [edit], trust.bot)
    assert edit.modal is not None
    saved = fake.submit_modal(edit, {"answer": "Warm water, dish soap, and a soft brush.", "title": "Clean plastics",
                                     "link": ""}, **coach)
    settled(fake, [saved], trust.bot)
    assert f"Updated `{doc_id}`" in saved.text, saved.text
    fake.wait_until(lambda: rows(data, "SELECT written, indexed FROM coach_answers") == [(1, 1)] or None, 60,
                    "the edit indexed")
    [path] = list((data / "library").rglob(f"{doc_id}.md"))
    assert "soft brush" in path.read_text()
    # /forget by an admin: gone from the files, the index and the card's Edit button.
    forget = fake.slash("forget", document=doc_id, admin=True, user_id=RIDER + 30)
    settled(fake, [forget], trust.bot)
    assert f"Removed `{doc_id}`" in forget.text, forget.text
    assert not list((data / "library").rglob(f"{doc_id}.md"))
    again = fake.slash("ask", question=OFF_TOPIC[7], user_id=RIDER + 31)
    settled(fake, [again], trust.bot)
    assert "soft brush" not in again.text


def test_a_discord_error_on_a_reply_is_retried_while_the_bot_runs(trust: Running) -> None:
    w, fake, data = trust.w, trust.w.fake, trust.data
    asked = answer_message(ask_declined(w, trust, OFF_TOPIC[8], RIDER + 40))
    card = wait_card(w, OFF_TOPIC[8])
    modal = open_modal(w, card, trust.bot)
    fake.fail("POST", rf"^/channels/{w.rider_channel}/messages$", status=500, times=2)
    submit = fake.submit_modal(modal, {"answer": "The series website has a form.", "title": "Registering",
                                       "link": ""}, user_id=COACH, roles=[w.coach_role])
    settled(fake, [submit], trust.bot)
    assert "Thanks!" in submit.text, submit.text  # saved: the coach is not asked to try again
    fake.wait_until(lambda: replies_to(fake, w.rider_channel, asked["id"]) or None, 60, "the retried reply")
    fake.wait_until(lambda: rows(data, "SELECT written, indexed FROM coach_answers") == [(1, 1)] or None, 60,
                    "the library file and the index, without a restart")
    assert len(replies_to(fake, w.rider_channel, asked["id"])) == 1
