"""The coach loop in the simcord simulator: queueing, merging, the modal, delivery, the library file, the
incremental reindex, edit, forget, withdraw, the digest, server scoping and restarts."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import discord
import pytest
import simcord

from bot.settings import Settings
from index.answers.composer import AnswerComposer
from index.coaching.contributions import path_for
from index.library.documents import load_library
from tests.bot_fixtures import ALWAYS, NEVER, Harness, make_bot, make_settings, running
from tests.helpers import HashingEmbedder

QUESTION = "what should I eat between motos on race day?"
ANSWER = ("Keep it light between motos: a banana or a rice cake and water about an hour before the gate. "
          "Skip anything heavy, it sits in your gut for the second moto.")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


async def coach_server(h: Harness) -> tuple[simcord.ChannelHandle, simcord.RoleHandle, simcord.MemberActor]:
    """/setup by the admin: a coach channel and a coach role (stored by id), and one coach."""
    channel = h.guild.create_text_channel("coach-queue")
    role = h.guild.create_role("Coaches")
    coach = h.member("coach-sam", roles=(role,))
    result = await h.admin.slash(h.channel, "setup", **{"coach-channel": channel, "coach-role": role})
    assert result.response is not None and result.response.ephemeral and result.response.content == "Saved."
    assert h.rows("SELECT coach_channel_id, coach_role_id FROM guild_settings") == [(channel.id, role.id)]
    return channel, role, coach


class SimulatedCrash(BaseException):
    """Stands for the process dying (SIGKILL): nothing after it runs, no handler catches it."""


def said(result: simcord.InteractionResult) -> str:
    """The text the bot finally showed for an interaction (a deferred reply's follow-up, or the reply)."""
    if result.followups:
        return str(result.followups[-1].content)
    assert result.response is not None
    return result.response.content


def cards(channel: simcord.ChannelHandle) -> list[discord.Message]:
    return [m for m in channel.history() if m.embeds]


def buttons(message: Any) -> dict[str, dict[str, Any]]:
    rows = message.components if isinstance(message.components, list) else []
    found: dict[str, dict[str, Any]] = {}
    for row in rows:
        children = row.children if hasattr(row, "children") else row.get("components", [])
        for child in children:
            label = child.label if hasattr(child, "label") else child.get("label")
            found[str(label)] = {"disabled": getattr(child, "disabled", None) if hasattr(child, "disabled") else
                                 child.get("disabled", False)}
    return found


async def ask_declined(h: Harness, rider: simcord.MemberActor, question: str = QUESTION) -> Any:
    result = await rider.slash(h.channel, "ask", question=question)
    assert result.response is not None and not result.response.ephemeral
    return result.response


async def answer_card(coach: simcord.MemberActor, card: discord.Message, text: str = ANSWER,
                      title: str | None = None, link: str = "") -> simcord.InteractionResult:
    shown = await coach.click(card, label="Answer")
    assert shown.modal is not None, "Answer should open a modal"
    assert prefilled(shown.modal, "title") == "", "the rider's question is not the modal's default title"
    # The coach types a title; by default the card's question, as coaches mostly do.
    typed = title if title is not None else str(card.embeds[0].description)
    values = {"answer": text, "link": link, "title": typed}
    return await coach.submit_modal(shown, values)


def prefilled(modal: dict[str, Any], custom_id: str) -> str:
    """What the modal shows in a field before the coach types (Discord sends it back unless changed)."""
    def walk(nodes: list[dict[str, Any]]) -> str | None:
        for node in nodes:
            if node.get("custom_id") == custom_id:
                return str(node.get("value") or "")
            found = walk(node.get("components") or ([node["component"]] if "component" in node else []))
            if found is not None:
                return found
        return None

    return walk(modal.get("components") or []) or ""


async def test_with_no_coach_setup_a_decline_behaves_as_before(settings: Settings) -> None:
    async with running(make_bot(settings, composer=AnswerComposer(policy=NEVER))) as h:
        reply = await ask_declined(h, h.rider)
        assert reply.components == []
        assert h.rows("SELECT COUNT(*) FROM coach_requests") == [(0,)]


async def test_the_whole_loop_declined_card_modal_delivery_library_and_the_next_rider(settings: Settings) -> None:
    composer = AnswerComposer(policy=NEVER)
    async with running(make_bot(settings, composer=composer)) as h:
        queue, _role, coach = await coach_server(h)
        reply = await ask_declined(h, h.rider)
        [embed] = reply.embeds
        assert any(f.name == "Asked the coaches" for f in embed.fields)
        assert "Don't send to coaches" in buttons(reply)

        # One card per question; a second rider asking the same thing joins it.
        second = h.member("rider-two")
        await ask_declined(h, second)
        [card] = cards(queue)
        assert card.embeds[0].description == QUESTION.replace("?", "?")
        assert card.embeds[0].footer.text == "2 riders asked this"
        asked_by = next(f.value for f in card.embeds[0].fields if f.name == "Asked by")
        assert f"<@{h.rider.id}>" in asked_by and f"<#{h.channel.id}>" in asked_by and "jump" in asked_by
        assert list(buttons(card)) == ["Answer", "Not for us", "Merge into…"]

        # A rider is refused by our own check, even if Discord showed them the button.
        refused = await h.rider.click(card, label="Answer")
        assert refused.response is not None and refused.response.ephemeral
        assert refused.response.content.startswith("Sorry, only the team's coaches")
        assert refused.modal is None

        done = await answer_card(coach, card, link="https://www.racerxvt.com/article/race-day-nutrition")
        assert said(done).startswith("Thanks! Sent to 2 riders and saved")

        # Both riders get a reply, in the channel where they asked, to their own answer message, pinging only them.
        replies = [m for m in h.channel.history() if m.content.endswith("a coach answered your question.")]
        assert len(replies) == 2
        for message in replies:
            assert message.reference is not None and message.reference.message_id is not None
            [pinged] = message.raw_mentions
            assert message.content.startswith(f"<@{pinged}>")
            assert ANSWER[:40] in (message.embeds[0].description or "")
        assert {m.raw_mentions[0] for m in replies} == {h.rider.id, second.id}

        # The card says who answered, its buttons are disabled, and the coach can still edit.
        [card] = cards(queue)
        assert card.embeds[0].title.startswith("Answered by coach-sam")
        state = buttons(card)
        assert all(state[label]["disabled"] for label in ("Answer", "Not for us", "Merge into…"))
        assert not state["Edit answer"]["disabled"]

        # The answer is a library document in the team's folder, and only its passages were embedded.
        [(doc_id, written, indexed)] = h.rows("SELECT document_id, written, indexed FROM coach_answers")
        assert written == 1 and indexed == 1
        path = path_for(settings.team_library_dir, doc_id)
        assert path.is_file()
        doc = next(d for d in load_library(settings.team_library_dir).documents if d.id == doc_id)
        assert doc.sources[0].author == "coach-sam" and doc.guild_id == h.guild.id and doc.question == QUESTION
        assert doc.sources[0].url == "https://www.racerxvt.com/article/race-day-nutrition"
        chunks = [c for c in h.bot.engine.index.chunks if c.doc_id == doc_id]
        [(embedded, added)] = h.rows("SELECT embedded, added FROM reindexes ORDER BY id DESC LIMIT 1")
        # Only the new document's passages were embedded; everything else came from the embedding cache.
        assert chunks and embedded == len(chunks) and added == 1

        # The next rider who asks gets the coach's words, quoted and credited.
        composer.policy = ALWAYS
        again = await h.rider.slash(h.channel, "ask", question=QUESTION)
        assert again.response is not None
        [answer_embed] = again.response.embeds
        assert "coach-sam" in next(f.value for f in answer_embed.fields if f.name == "Sources")
        assert "banana" in (answer_embed.description or "")


async def test_coach_answers_are_cited_only_in_their_own_server(settings: Settings) -> None:
    composer = AnswerComposer(policy=NEVER)
    async with running(make_bot(settings, composer=composer)) as h:
        _queue, _role, coach = await coach_server(h)
        await ask_declined(h, h.rider)
        [card] = cards(_queue)
        await answer_card(coach, card)
        other_guild = h.env.create_guild("Other Club")
        other_channel = other_guild.create_text_channel("general")
        outsider = other_guild.add_member(h.env.create_user("outsider"))
        composer.policy = ALWAYS
        mine = await h.bot.answer(QUESTION, h.guild.id)
        theirs = await h.bot.answer(QUESTION, other_guild.id)
        assert mine.citations[0].document_id.startswith("coach-")
        assert all(not c.document_id.startswith("coach-") for c in theirs.citations + theirs.more)
        shown = await outsider.slash(other_channel, "ask", question=QUESTION)
        assert shown.response is not None and "coach-sam" not in str(shown.response.embeds[0].to_dict())
        listed = await coach.slash(h.channel, "coach-answers")
        assert listed.response is not None and "coach-" in (listed.response.embeds[0].description or "")
        sources = await outsider.slash(other_channel, "sources")
        assert sources.response is not None
        fields = {f.name: f.value for f in sources.response.embeds[0].fields}
        assert fields["Coach answers"].startswith("0 from this server's coaches")
        ours = await h.rider.slash(h.channel, "sources")
        assert ours.response is not None
        assert {f.name: f.value for f in ours.response.embeds[0].fields}["Coach answers"].startswith("1 from")


async def test_not_helpful_and_ask_a_coach_join_the_queue_private_ones_only_on_request(settings: Settings) -> None:
    async with running(make_bot(settings, composer=AnswerComposer(policy=ALWAYS))) as h:
        queue, _role, _coach = await coach_server(h)
        answered = (await h.rider.slash(h.channel, "ask", question="how do I hinge?")).response
        assert answered is not None
        assert list(buttons(answered)) == ["Helpful", "Not helpful", "More sources", "Ask a coach"]
        not_theirs = await h.member("nosy").click(answered, label="Ask a coach")
        assert said(not_theirs).startswith("Only the rider who asked")
        down = await h.rider.click(answered, label="Not helpful")
        assert "coaches will see" in said(down)
        [card] = cards(queue)
        assert "not helpful" in next(f.value for f in card.embeds[0].fields if f.name == "Asked by")
        assert "What the bot answered" in [f.name for f in card.embeds[0].fields]

        private = (await h.rider.slash(h.channel, "ask", question="how long should I hold a plank?",
                                       private=True)).response
        assert private is not None and private.ephemeral
        assert len(cards(queue)) == 1  # nothing queued until the rider asks for it
        # Not helpful on a private answer is feedback only: the question stays with the rider.
        down = await h.rider.click(private, label="Not helpful")
        assert "stays with you" in said(down)
        assert len(cards(queue)) == 1
        assert h.rows("SELECT COUNT(*) FROM coach_askers WHERE private = 1") == [(0,)]
        # Ask a coach says first what the coaches will see, and sends nothing until the rider says yes.
        consent = await h.rider.click(private, label="Ask a coach")
        assert "will see this question, without your name" in said(consent)
        assert "how long should I hold a plank?" in said(consent)
        assert len(cards(queue)) == 1
        message = consent.followups[-1] if consent.followups else consent.response
        sent = await h.rider.click(message, label="Send to the coaches")
        assert said(sent).startswith("Sent to the coaches")
        assert len(cards(queue)) == 2
        newest = cards(queue)[-1]
        # A private question never shows who asked.
        assert "a rider, privately" in next(f.value for f in newest.embeds[0].fields if f.name == "Asked by")
        assert f"<@{h.rider.id}>" not in str(newest.embeds[0].to_dict())


async def test_withdraw_dismiss_and_merge(settings: Settings) -> None:
    async with running(make_bot(settings, composer=AnswerComposer(policy=NEVER))) as h:
        queue, _role, coach = await coach_server(h)
        reply = await ask_declined(h, h.rider)
        withdrawn = await h.rider.click(reply, label="Don't send to coaches")
        assert withdrawn.response is not None and withdrawn.response.content == "OK, the coaches won't get this one."
        [card] = cards(queue)
        assert card.embeds[0].title.startswith("Withdrawn")
        assert h.rows("SELECT status FROM coach_requests") == [("withdrawn",)]

        await ask_declined(h, h.rider, "pizza or pasta the night before a race?")
        await ask_declined(h, h.member("r2"), "is it bad to ride with a cold?")
        await ask_declined(h, h.member("r3"), "which goggles fog the least?")
        first, second, third = cards(queue)[1:]
        merge = await coach.click(second, label="Merge into…")
        assert merge.response is not None and merge.response.ephemeral
        chosen = await coach.select(merge.response, [str(h.rows("SELECT id FROM coach_requests ORDER BY id")[1][0])])
        assert said(chosen).startswith("Merged into #")
        assert cards(queue)[2].embeds[0].title.startswith("Merged")
        assert cards(queue)[1].embeds[0].footer.text == "2 riders asked this"
        dismissed = await coach.click(third, label="Not for us")
        assert said(dismissed).startswith("Marked as not for us")
        assert cards(queue)[3].embeds[0].title.startswith("Not for us")
        assert first is not None


async def test_edit_and_forget_reindex_the_document(settings: Settings) -> None:
    async with running(make_bot(settings, composer=AnswerComposer(policy=NEVER))) as h:
        queue, _role, coach = await coach_server(h)
        await ask_declined(h, h.rider)
        [card] = cards(queue)
        await answer_card(coach, card)
        [(doc_id,)] = h.rows("SELECT document_id FROM coach_answers")
        [card] = cards(queue)
        shown = await coach.click(card, label="Edit answer")
        assert shown.modal is not None
        assert prefilled(shown.modal, "answer") == ANSWER
        await coach.submit_modal(shown, {"answer": "Rice cakes and water, nothing heavy.", "title": "Race-day food"})
        assert h.bot.engine.index.documents[doc_id].title == "Race-day food"
        assert "Rice cakes" in h.bot.engine.index.documents[doc_id].body

        forget = await h.admin.slash(h.channel, "forget", document=doc_id)
        assert said(forget).startswith(f"Removed `{doc_id}`")
        assert doc_id not in h.bot.engine.index.documents
        assert not path_for(settings.team_library_dir, doc_id).exists()
        h.allow("forget", h.rider)
        refused = await h.rider.slash(h.channel, "forget", document=doc_id)
        assert refused.response is not None and refused.response.content.startswith("Sorry, that command is for")


@pytest.mark.parametrize(("text", "expect"), [
    ("   ", "The answer was empty"),
    ("---\ntitle: [broken\n---\n@everyone <@&123> <@456> ping", "Thanks! Sent to 1 rider"),
])
async def test_bad_answers_get_a_clear_message_or_are_stored_safely(settings: Settings, text: str,
                                                                    expect: str) -> None:
    async with running(make_bot(settings, composer=AnswerComposer(policy=NEVER))) as h:
        queue, _role, coach = await coach_server(h)
        await ask_declined(h, h.rider, 'what\'s "the" deal: with --- yaml: [x]?')
        [card] = cards(queue)
        result = await answer_card(coach, card, text=text, title='Title: with "quotes" and --- dashes',
                                   link="javascript:alert(1)")
        message = said(result)
        assert message.startswith(expect), message
        library = load_library([settings.knowledge_dir, settings.team_library_dir])
        assert not library.errors
        if expect.startswith("Thanks"):
            assert "the card is cited instead" in message
            [doc] = [d for d in library.documents if d.id.startswith("coach-")]
            assert doc.title == 'Title: with "quotes" and --- dashes'
            assert "@everyone" not in doc.body.replace("everyone ping", "") or "<@" not in doc.body
            assert doc.sources[0].url.startswith("https://discord.com/channels/")


async def test_a_stored_answer_is_finished_after_a_restart(settings: Settings) -> None:
    """A crash after the answer was stored but before the library file, delivery and reindex."""
    async with running(make_bot(settings, composer=AnswerComposer(policy=NEVER))) as h:
        queue, _role, coach = await coach_server(h)
        await ask_declined(h, h.rider)
        [card] = cards(queue)
        original_finish = h.bot.coach.finish

        async def crash(answer: object) -> None:
            raise SimulatedCrash  # the process dies here

        h.bot.coach.finish = crash  # type: ignore[method-assign]
        await answer_card(coach, card)
        h.bot.coach.finish = original_finish  # type: ignore[method-assign]
        assert h.rows("SELECT written, indexed FROM coach_answers") == [(0, 0)]
        restarted = make_bot(settings, engine=None, composer=AnswerComposer(policy=NEVER),
                             embedder=HashingEmbedder())
        await h.env.restart_bot(restarted)
        await h.env.settle()
        assert h.rows("SELECT written, indexed FROM coach_answers") == [(1, 1)]
        replies = [m for m in h.channel.history() if m.content.endswith("a coach answered your question.")]
        assert len(replies) == 1
        assert h.rows("SELECT COUNT(*) FROM coach_askers WHERE delivered_at IS NOT NULL") == [(1,)]
        with pytest.raises(BaseExceptionGroup) as crashed:
            h.env.raise_errors()
        assert crashed.group_contains(SimulatedCrash)


async def test_buttons_work_after_a_restart(settings: Settings) -> None:
    async with running(make_bot(settings, composer=AnswerComposer(policy=NEVER))) as h:
        queue, _role, coach = await coach_server(h)
        await ask_declined(h, h.rider)
        await h.env.restart_bot(make_bot(settings, composer=AnswerComposer(policy=NEVER)))
        [card] = cards(queue)
        done = await answer_card(coach, card)
        assert said(done).startswith("Thanks! Sent to 1 rider")


async def test_the_digest_posts_counts_queue_and_a_png(settings: Settings) -> None:
    async with running(make_bot(settings, composer=AnswerComposer(policy=NEVER))) as h:
        queue, _role, _coach = await coach_server(h)
        await ask_declined(h, h.rider)
        result = await h.admin.slash(h.channel, "digest")
        assert said(result).startswith("Posted the digest")
        [digest] = [m for m in queue.history() if m.attachments]
        assert digest.attachments[0].filename == "questions-per-day.png"
        assert digest.attachments[0].content_type in (None, "image/png")
        text = digest.embeds[0].description or ""
        assert text.startswith("**1 questions** this week: 0% answered by the library, 0% by coaches, 100% still")
        assert "Open queue" in text and QUESTION in text
        assert digest.embeds[0].image.url == "attachment://questions-per-day.png"


async def test_a_rider_hears_the_answer_while_another_library_change_holds_the_lock(settings: Settings) -> None:
    """Another coach answer's rebuild may hold the library lock for seconds: the rider's reply does not wait
    for it; the file and the index follow once the lock is free."""
    async with running(make_bot(settings, composer=AnswerComposer(policy=NEVER))) as h:
        queue, _role, coach = await coach_server(h)
        await ask_declined(h, h.rider)
        [card] = cards(queue)
        locked, release = asyncio.Event(), asyncio.Event()

        async def another_change() -> None:
            async with h.bot.library.changing():
                locked.set()
                await release.wait()

        holder = asyncio.create_task(another_change())
        await locked.wait()
        submitted = asyncio.create_task(answer_card(coach, card))
        # Bounded at 10 s, the first embedding of a new bot included (the pair's models load then); done at
        # once when the rider has the reply and it is recorded as delivered.
        for _ in range(1000):
            if any(m.content.endswith("a coach answered your question.") for m in h.channel.history()) and \
                    h.rows("SELECT COUNT(*) FROM coach_askers WHERE delivered_at IS NOT NULL") == [(1,)]:
                break
            await asyncio.sleep(0.01)
        assert h.rows("SELECT COUNT(*) FROM coach_askers WHERE delivered_at IS NOT NULL") == [(1,)]
        assert h.rows("SELECT written, indexed FROM coach_answers") == [(0, 0)]  # still behind the lock
        release.set()
        await holder
        await submitted
        await h.env.settle()
        assert h.rows("SELECT written, indexed FROM coach_answers") == [(1, 1)]
