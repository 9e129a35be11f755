"""Trust in the simcord simulator: who may queue, edit and see what; one transaction per coach operation; a
failed COMMIT rolled back; shutdown waits for every interaction in flight."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiosqlite
import pytest
import simcord

from bot.runner import drain_commands
from bot.settings import Settings
from bot.state.storage import FORGOTTEN_QUESTION, Storage
from index.answers.composer import AnswerComposer
from tests.bot.test_coach import QUESTION, answer_card, ask_declined, buttons, cards, coach_server, said
from tests.bot_fixtures import ALWAYS, NEVER, Harness, make_bot, make_settings, running


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


async def test_only_the_askers_own_not_helpful_queues_their_question(settings: Settings) -> None:
    async with running(make_bot(settings, composer=AnswerComposer(policy=ALWAYS))) as h:
        queue, _role, _coach = await coach_server(h)
        answered = (await h.rider.slash(h.channel, "ask", question="how do I hinge?")).response
        assert answered is not None
        nosy = await h.member("nosy").click(answered, label="Not helpful")
        assert "admins will see" in said(nosy)
        assert cards(queue) == []
        own = await h.rider.click(answered, label="Not helpful")
        assert "coaches will see" in said(own)
        assert len(cards(queue)) == 1


async def test_the_digest_and_unanswered_never_list_a_private_question(settings: Settings) -> None:
    async with running(make_bot(settings, composer=AnswerComposer(policy=NEVER))) as h:
        queue, _role, _coach = await coach_server(h)
        await h.rider.slash(h.channel, "ask", question="my secret question about saddle sores", private=True)
        await h.rider.slash(h.channel, "ask", question="a public question about tyre pressure")
        assert h.rows("SELECT private FROM questions ORDER BY id") == [(1,), (0,)]
        unanswered = await h.admin.slash(h.channel, "unanswered")
        reply = unanswered.followups[-1] if unanswered.followups else unanswered.response
        assert reply is not None and reply.embeds
        shown = str(reply.embeds[0].to_dict())
        assert "tyre pressure" in shown and "saddle" not in shown
        digest = await h.admin.slash(h.channel, "digest")
        assert said(digest).startswith("Posted the digest")
        texts = " ".join(str(m.embeds[0].to_dict()) for m in queue.history() if m.attachments)
        assert "saddle" not in texts


async def answered_card(h: Harness) -> tuple[simcord.ChannelHandle, simcord.RoleHandle]:
    """A coach queue with one card, answered by coach-sam as "Race-day food"."""
    queue, role, coach = await coach_server(h)
    await ask_declined(h, h.rider)
    [card] = cards(queue)
    await answer_card(coach, card, title="Race-day food")
    return queue, role


async def test_only_the_author_or_an_admin_may_edit_and_the_edit_is_credited(settings: Settings) -> None:
    async with running(make_bot(settings, composer=AnswerComposer(policy=NEVER))) as h:
        queue, role = await answered_card(h)
        [card] = cards(queue)
        other = h.member("coach-kim", roles=(role,))
        refused = await other.click(card, label="Edit answer")
        assert refused.modal is None and "Only the coach who wrote" in said(refused)
        shown = await h.admin.click(card, label="Edit answer")
        assert shown.modal is not None
        await h.admin.submit_modal(shown, {"answer": "Rice cakes and water.", "title": "Race-day food"})
        [(doc_id, edited_by)] = h.rows("SELECT document_id, edited_by FROM coach_answers")
        assert edited_by == "admin"
        document = h.bot.engine.index.documents[doc_id]
        assert document.sources[0].author == "coach-sam, edited by admin"


async def test_forget_wins_over_an_edit_waiting_for_the_library_lock(settings: Settings) -> None:
    async with running(make_bot(settings, composer=AnswerComposer(policy=NEVER))) as h:
        await answered_card(h)
        [(answer_id, doc_id)] = h.rows("SELECT id, document_id FROM coach_answers")
        # The edit is stored, then waits for the library lock, which another change holds while /forget lands.
        async with h.bot.library.changing():
            edit = asyncio.create_task(h.bot.coach.edit(answer_id, "coach-sam", "Race-day food", "Edited.", None))
            await asyncio.sleep(0.05)
            answer = await h.bot.coach.store.answer(answer_id)
            assert answer is not None
            await h.bot.coach.store.remove_answer(answer_id)
        await edit
        removed = await h.bot.coach.store.answer(answer_id)
        assert removed is not None
        await h.bot.coach.finish(removed)
        assert doc_id not in h.bot.engine.index.documents
        assert not any(h.bot.engine.library_dir.rglob(f"{doc_id}.md"))
        await h.bot.coach.recover()  # nothing brings it back
        assert not any(h.bot.engine.library_dir.rglob(f"{doc_id}.md"))


async def test_merging_into_a_card_closed_meanwhile_changes_nothing(settings: Settings) -> None:
    async with running(make_bot(settings, composer=AnswerComposer(policy=NEVER))) as h:
        queue, _role, coach = await coach_server(h)
        await ask_declined(h, h.rider, "pizza or pasta the night before a race?")
        await ask_declined(h, h.member("r2"), "is it bad to ride with a cold?")
        [first, second] = [r for (r,) in h.rows("SELECT id FROM coach_requests ORDER BY id")]
        merge = await coach.click(cards(queue)[0], label="Merge into…")
        assert merge.response is not None
        await coach.click(cards(queue)[1], label="Not for us")  # the target closes before the choice
        chosen = await coach.select(merge.response, [str(second)])
        assert "not open any more" in said(chosen)
        assert h.rows("SELECT id, status FROM coach_requests ORDER BY id") == [(first, "open"), (second, "dismissed")]
        assert h.rows("SELECT request_id FROM coach_askers ORDER BY id") == [(first,), (second,)]


@pytest.mark.parametrize("operation", ["enqueue", "merge", "withdraw"])
async def test_each_coach_operation_is_one_transaction(settings: Settings, operation: str) -> None:
    """A statement that fails half-way through an operation leaves nothing of it behind."""
    async with running(make_bot(settings, composer=AnswerComposer(policy=NEVER))) as h:
        await coach_server(h)
        await ask_declined(h, h.rider, "pizza or pasta the night before a race?")
        await ask_declined(h, h.member("r2"), "is it bad to ride with a cold?")
        before = h.rows("SELECT id, status, question FROM coach_requests ORDER BY id") + \
            h.rows("SELECT id, request_id, withdrawn FROM coach_askers ORDER BY id")
        [first, second] = [r for (r,) in h.rows("SELECT id FROM coach_requests ORDER BY id")]
        # The operation's last statement fails (as a full disk would).
        trigger = {"enqueue": "BEFORE INSERT ON coach_askers",
                   "merge": "BEFORE UPDATE OF status ON coach_requests",
                   "withdraw": "BEFORE UPDATE OF status ON coach_requests"}[operation]
        async with h.bot.storage.transaction() as db:
            await db.execute(f"CREATE TRIGGER fail_once {trigger} BEGIN SELECT RAISE(ABORT, 'disk full'); END")
        record = await h.bot.storage.question_record(1)
        assert record is not None
        with pytest.raises(aiosqlite.Error):
            if operation == "enqueue":
                fresh = record.model_copy(update={"id": None, "question": "how do I fix a flat at the track?"})
                await h.bot.coach.enqueue(fresh, "asked")
            elif operation == "merge":
                await h.bot.coach.merge(first, second, "coach-sam")
            else:
                await h.bot.coach.withdraw(record.id, h.rider.id)
        after = h.rows("SELECT id, status, question FROM coach_requests ORDER BY id") + \
            h.rows("SELECT id, request_id, withdrawn FROM coach_askers ORDER BY id")
        assert after == before


async def test_a_failed_commit_is_rolled_back(tmp_path: Path) -> None:
    storage = Storage(tmp_path / "hinge.sqlite3")
    await storage.open()
    try:
        # A deferred foreign key fails only at COMMIT.
        async with storage.transaction() as db:
            await db.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
            await db.execute("CREATE TABLE child (parent_id INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY "
                             "DEFERRED)")
        with pytest.raises(aiosqlite.Error):
            async with storage.transaction() as db:
                await db.execute("INSERT INTO child (parent_id) VALUES (42)")
        assert not storage.db.in_transaction
        # The next writer commits its own row only.
        async with storage.transaction() as db:
            await db.execute("INSERT INTO parent (id) VALUES (1)")
        async with storage.db.execute("SELECT COUNT(*) FROM child") as cursor:
            assert await cursor.fetchone() == (0,)
    finally:
        await storage.close()


async def test_the_buttons_that_cost_work_count_against_the_rider_limit(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, ask_cooldown_seconds=60, ask_cooldown_rate=2)
    async with running(make_bot(settings, composer=AnswerComposer(policy=ALWAYS))) as h:
        await coach_server(h)
        answered = (await h.rider.slash(h.channel, "ask", question="how do I hinge?")).response
        assert answered is not None and "Not helpful" in buttons(answered)
        await h.rider.click(answered, label="Not helpful")
        limited = await h.rider.click(answered, label="Ask a coach")
        assert said(limited).startswith("Easy there")


async def test_shutdown_waits_for_a_button_press_in_flight(settings: Settings) -> None:
    async with running(make_bot(settings, composer=AnswerComposer(policy=ALWAYS))) as h:
        answered = (await h.rider.slash(h.channel, "ask", question="how do I hinge?")).response
        assert answered is not None
        held, release = asyncio.Event(), asyncio.Event()
        original = h.bot.storage.record_feedback

        async def slow_vote(*args: object, **kwargs: object) -> bool:
            held.set()
            await release.wait()
            return await original(*args, **kwargs)  # type: ignore[arg-type]

        h.bot.storage.record_feedback = slow_vote  # type: ignore[method-assign]
        press = asyncio.create_task(h.rider.click(answered, label="Helpful"))
        await asyncio.wait_for(held.wait(), 10)
        asyncio.get_running_loop().call_later(0.3, release.set)
        started = time.monotonic()
        await drain_commands(5)
        assert time.monotonic() - started >= 0.25, "shutdown did not wait for the button press"
        assert said(await press) == "Thanks, glad it helped!"
        assert h.rows("SELECT helpful FROM feedback") == [(1,)]


async def test_a_question_is_queued_before_the_rider_is_told(settings: Settings) -> None:
    async with running(make_bot(settings, composer=AnswerComposer(policy=NEVER))) as h:
        queue, _role, _coach = await coach_server(h)
        seen: list[list[tuple[object, ...]]] = []
        original = h.bot.storage.set_question_message

        async def record(question_id: int, message_id: int) -> None:
            # The answer message was just sent: the question must already be on the queue.
            seen.append(h.rows("SELECT question FROM coach_askers"))
            await original(question_id, message_id)

        h.bot.storage.set_question_message = record  # type: ignore[method-assign]
        await ask_declined(h, h.rider)
        assert seen == [[(QUESTION,)]]
        assert len(cards(queue)) == 1


async def test_retention_takes_old_questions_off_cards_and_old_conversations(settings: Settings) -> None:
    async with running(make_bot(settings, composer=AnswerComposer(policy=NEVER))) as h:
        queue, _role, _coach = await coach_server(h)
        await ask_declined(h, h.rider)
        await h.rider.slash(h.channel, "ask", question="how do I hinge?", thread=True)
        # Both declined (the policy declines everything): two riders' places on cards, one thread.
        assert h.rows("SELECT COUNT(*) FROM coach_askers") == [(2,)]
        assert h.rows("SELECT COUNT(*) FROM conversations") == [(1,)]
        card_count = h.rows("SELECT COUNT(*) FROM coach_requests")[0][0]
        with h.db() as db:
            db.execute("UPDATE questions SET asked_at = '2020-01-01T00:00:00+00:00'")
            db.execute("UPDATE conversations SET updated_at = '2020-01-01T00:00:00+00:00'")
        forgotten = await h.bot.storage.purge_older_than(settings.retention_days)
        assert forgotten.questions == 2 and len(forgotten.cards) == card_count
        for table in ("questions", "coach_askers", "conversations", "feedback"):
            assert h.rows(f"SELECT COUNT(*) FROM {table}") == [(0,)], table
        assert h.rows("SELECT DISTINCT status, question FROM coach_requests") == [("withdrawn", FORGOTTEN_QUESTION)]
        for request_id in forgotten.cards:
            await h.bot.coach.show_card(request_id)
        for card in cards(queue):
            assert card.embeds[0].title.startswith("Withdrawn") and QUESTION not in str(card.embeds[0].to_dict())
