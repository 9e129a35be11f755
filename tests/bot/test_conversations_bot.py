"""Conversations in Discord (simcord): answer threads, /ask in a thread with context, plain follow-ups with
the intent setting on and off, DMs, never answering bots or messages addressed to people, the context
surviving a restart, and a declined DM going to the coach queue with the rider's consent."""

from __future__ import annotations

from pathlib import Path

import discord
import pytest

from bot.settings import Settings
from index.answers.composer import AnswerComposer
from index.answers.conversation import Turn
from tests.bot_fixtures import ALWAYS, NEVER, Harness, make_bot, make_settings, running

ALL_INTENTS = discord.Intents.all()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


def bot_replies(channel) -> list[discord.Message]:  # type: ignore[no-untyped-def]
    return [m for m in channel.history() if m.author.bot and m.embeds]


async def history(h: Harness, channel_id: int) -> list[Turn] | None:
    return await h.bot.storage.conversation(channel_id, 24)


async def test_ask_opens_a_thread_and_ask_inside_it_carries_the_context(settings: Settings) -> None:
    composer = AnswerComposer(policy=ALWAYS)
    async with running(make_bot(settings, composer=composer)) as h:
        first = await h.rider.slash(h.channel, "ask", question="how do I hinge at the hips?", thread=True)
        assert first.response is not None and first.response.embeds
        [thread] = h.channel.threads
        assert thread.name == "how do I hinge at the hips?"
        [turn] = await history(h, thread.id) or []
        assert turn.question == "how do I hinge at the hips?" and turn.passages

        seen: list[tuple[str, list[Turn]]] = []
        original = composer.ask

        def spy(index, question, guild_id=None, history=()):  # type: ignore[no-untyped-def]
            seen.append((question, list(history)))
            return original(index, question, guild_id, history)

        composer.ask = spy  # type: ignore[method-assign]
        follow = await h.rider.slash(thread, "ask", question="and what about tight hamstrings?")
        assert follow.response is not None and follow.response.embeds
        assert seen[-1][0] == "and what about tight hamstrings?"
        assert [t.question for t in seen[-1][1]] == ["how do I hinge at the hips?"]
        assert len(await history(h, thread.id) or []) == 2
        # Already quoted passages are not quoted again while something else fits.
        quoted = set(turn.passages)
        again = await h.bot.answer("and what about tight hamstrings?", h.guild.id, [turn])
        cited = {c.passage_id for c in again.citations}
        assert not quoted & cited or len(h.bot.engine.index.chunks) <= 3

        # Without the option and the server setting, no thread.
        await h.rider.slash(h.channel, "ask", question="what is the attack position?")
        assert len(h.channel.threads) == 1


async def test_the_server_setting_opens_threads_and_a_missing_permission_is_said_once(settings: Settings) -> None:
    async with running(make_bot(settings, composer=AnswerComposer(policy=ALWAYS))) as h:
        saved = await h.admin.slash(h.channel, "setup", **{"answer-threads": True})
        assert saved.response is not None and saved.response.content == "Saved."
        await h.rider.slash(h.channel, "ask", question="how do I hinge?")
        assert len(h.channel.threads) == 1
        # Private answers never get a thread.
        await h.rider.slash(h.channel, "ask", question="how do I hinge privately?", private=True)
        assert len(h.channel.threads) == 1

        # A channel where the bot may not create threads: the rider still gets the answer, and the asker is told
        # once per server what permission is missing; a second question there is answered without the notice.
        assert h.bot.user is not None
        locked = h.guild.create_text_channel(
            "no-threads", overwrites={h.bot.user: discord.PermissionOverwrite(create_public_threads=False)})
        told = []
        for question in ("how do I hinge?", "what is the attack position?"):
            result = await h.rider.slash(locked, "ask", question=question)
            assert result.response is not None and result.response.embeds  # the answer itself
            told += [f.content for f in result.followups if "Create Public Threads" in (f.content or "")]
        assert not locked.threads
        assert len(told) == 1 and "permission" in told[0]


async def test_plain_messages_in_the_thread_follow_the_intent_setting(tmp_path: Path) -> None:
    for followups in (False, True):
        settings = make_settings(tmp_path / str(followups), thread_followups=followups)
        bot = make_bot(settings, composer=AnswerComposer(policy=ALWAYS))
        async with running(bot, approved_intents=ALL_INTENTS) as h:
            await h.rider.slash(h.channel, "ask", question="how do I hinge?", thread=True)
            [thread] = h.channel.threads
            before = len(bot_replies(thread))
            await h.rider.send(thread, "what about for a 12 year old?")
            assert len(bot_replies(thread)) == before + (1 if followups else 0)
            if followups:
                assert [t.question for t in await history(h, thread.id) or []] == [
                    "how do I hinge?", "what about for a 12 year old?"]
                # Never another bot, never a message addressed to a person.
                other_bot = h.guild.add_member(h.env.create_user("statsbot", bot=True))
                await other_bot.send(thread, "how do I hinge?")
                friend = h.member("friend")
                mention = await h.rider.send(thread, f"{friend.mention} did you see this?")
                said = await friend.send(thread, "yes, nice hinge", reply_to=mention)
                await h.rider.send(thread, "how do I brace?", reply_to=said)
                assert len(bot_replies(thread)) == before + 1


async def test_dms_keep_context_and_survive_a_restart(settings: Settings) -> None:
    async with running(make_bot(settings, composer=AnswerComposer(policy=ALWAYS))) as h:
        await h.rider.send_dm("how do I hinge?")
        dm = h.rider.user.dm_channel
        assert len(bot_replies(dm)) == 1
        await h.env.restart_bot(make_bot(settings, composer=AnswerComposer(policy=ALWAYS)))
        await h.rider.send_dm("what about tight hamstrings?")
        assert len(bot_replies(dm)) == 2
        assert [t.question for t in await history(h, dm.id) or []] == ["how do I hinge?",
                                                                         "what about tight hamstrings?"]
        await h.rider.send_dm("new")
        assert await history(h, dm.id) == []
        # A DM is private: logged as such, never shown to admins with the rider's name.
        assert {p for (p,) in h.rows("SELECT private FROM questions")} == {1}


async def test_a_declined_dm_goes_to_the_coaches_only_with_consent_and_comes_back_by_dm(settings: Settings) -> None:
    async with running(make_bot(settings, composer=AnswerComposer(policy=NEVER))) as h:
        queue = h.guild.create_text_channel("coach-queue")
        role = h.guild.create_role("Coaches")
        coach = h.member("coach-sam", roles=(role,))
        await h.admin.slash(h.channel, "setup", **{"coach-channel": queue, "coach-role": role})
        await h.rider.send_dm("which goggles fog the least?")
        dm = h.rider.user.dm_channel
        [declined] = bot_replies(dm)
        assert not [m for m in queue.history() if m.embeds]  # nothing without consent
        consent = await h.rider.user.click(declined, label="Ask a coach")
        shown_first = consent.followups[-1] if consent.followups else consent.response
        assert shown_first is not None
        # One server shared with a coach queue: it goes there, and the rider is told which, before anything goes.
        assert f"the coaches of **{h.guild.name}**" in shown_first.content
        assert not [m for m in queue.history() if m.embeds]
        sent = await h.rider.user.click(shown_first, label="Send to the coaches")
        told = sent.followups[-1] if sent.followups else sent.response
        assert told is not None and told.content.startswith(f"Sent to the coaches of {h.guild.name}")
        [card] = [m for m in queue.history() if m.embeds]
        assert "a rider, privately" in str(card.embeds[0].to_dict())
        shown = await coach.click(card, label="Answer")
        assert shown.modal is not None
        await coach.submit_modal(shown, {"answer": "Tear-offs and a good anti-fog; keep the foam dry.",
                                         "title": "Goggles that don't fog", "link": ""})
        [reply] = [m for m in dm.history() if m.content.endswith("a coach answered your question.")]
        assert "Tear-offs" in (reply.embeds[0].description or "")
