"""The Discord bot, driven the way riders and admins use it, inside the simcord simulator.

Most tests use the tiny library from tests.helpers with the hashing embedder (fast) and a composer that
always answers; the class marked slow uses the real model on the real library.
"""

from __future__ import annotations

import re
from pathlib import Path

import discord
import pytest

from bot.client import HingeBot
from bot.settings import Settings
from index.answers.composer import DECLINE_LEAD, AnswerComposer
from index.engine import Engine
from index.errors import BuildInProgressError, HingeError
from index.library.documents import guild_folder
from tests.bot_fixtures import (
    ALWAYS,
    NEVER,
    VIDEO_URL,
    bot_library,
    check_embed,
    check_sent,
    make_bot,
    make_settings,
    running,
    write_titled,
)
from tests.conftest import KNOWLEDGE
from tests.helpers import SOURCE, front_matter, write_doc

ADMIN_ONLY = "Sorry, that command is for server admins (Manage Server or the admin role)."
OWNER_ONLY = ("Sorry, a full reindex rebuilds every server's library, so it is for the bot's owner only. Admins add "
              "files to this server's own library with /add-source.")
WENT_WRONG = ("Sorry, something went wrong on my side. The admins can see the details in the log; "
              "please try again.")
SUMMARY = re.compile(r"^Reindexed (\d+) documents into (\d+) passages in \d+\.\ds \((\d+) passages embedded\)\. "
                     r"Added (\d+), changed (\d+), removed (\d+)\.$")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


def embed_text(embed: discord.Embed) -> str:
    parts = [embed.title or "", embed.description or "", embed.footer.text or ""]
    parts += [f"{f.name}\n{f.value}" for f in embed.fields]
    return "\n".join(parts)


def labels(components: list[dict[str, object]]) -> list[object]:
    return [button["label"] for row in components for button in row["components"]]  # type: ignore[attr-defined]


# -- /ask and its buttons ----------------------------------------------------------------------------------

async def test_ask_answers_publicly_with_citations_links_and_buttons(settings: Settings) -> None:
    async with running(make_bot(settings)) as h:
        result = await h.rider.slash(h.channel, "ask", question="how do I hinge at the hips with a long spine?")
        answer = result.response
        assert answer is not None and not answer.ephemeral and not result.followups
        [embed] = answer.embeds
        assert embed.title == "Q: how do I hinge at the hips with a long spine?"
        assert "**[1]** [Hinge Basics](" in (embed.description or "")
        fields = {f.name: f.value or "" for f in embed.fields}
        assert SOURCE["url"] in fields["Sources"] and "Luke Duncan" in fields["Sources"]
        assert "Videos" in fields and "Drill" in fields and "/drill name:dowel-drill" in fields["Drill"]
        assert labels(answer.components) == ["Helpful", "Not helpful", "More sources"]
        [(question, answered, user_id)] = h.rows("SELECT question, answered, user_id FROM questions")
        assert question == "how do I hinge at the hips with a long spine?" and answered == 1
        assert user_id == h.rider.id


async def test_ask_private_answers_only_the_asker(settings: Settings) -> None:
    async with running(make_bot(settings)) as h:
        result = await h.rider.slash(h.channel, "ask", question="how do I hinge?", private=True)
        assert result.response is not None and result.response.ephemeral
        assert result.response.embeds[0].title == "Q: how do I hinge?"
        assert labels(result.response.components) == ["Helpful", "Not helpful", "More sources"]
        public = await h.rider.slash(h.channel, "ask", question="how do I hinge?", private=False)
        assert public.response is not None and not public.response.ephemeral


async def expect_pizza_question_declined(bot: HingeBot) -> None:
    async with running(bot) as h:
        result = await h.rider.slash(h.channel, "ask", question="what is the best pizza topping?")
        assert result.response is not None
        [embed] = result.response.embeds
        assert embed.title == "Not in the library (yet)" and embed.description == DECLINE_LEAD
        assert result.response.components == []
        assert h.rows("SELECT answered, status FROM questions") == [(0, "declined")]


async def test_a_declined_question_gets_the_decline_reply_without_buttons(settings: Settings) -> None:
    bot = make_bot(settings, composer=AnswerComposer(policy=NEVER))
    await expect_pizza_question_declined(bot)


async def test_helpful_and_not_helpful_are_stored_per_user(settings: Settings) -> None:
    async with running(make_bot(settings)) as h:
        answer = (await h.rider.slash(h.channel, "ask", question="how do I hinge?")).response
        assert answer is not None
        [(question_id,)] = h.rows("SELECT id FROM questions")

        up = await h.rider.click(answer, label="Helpful")
        assert up.response is not None and up.response.ephemeral
        assert up.response.content == "Thanks, glad it helped!"
        assert h.rows("SELECT question_id, user_id, helpful FROM feedback") == [(question_id, h.rider.id, 1)]

        # A second vote by the same rider changes the first; another member's vote is its own row.
        down = await h.rider.click(answer, label="Not helpful")
        assert down.response is not None and down.response.ephemeral
        assert "/unanswered" in down.response.content
        other = h.member("second-rider")
        await other.click(answer, label="Not helpful")
        assert sorted(h.rows("SELECT user_id, helpful FROM feedback")) == sorted([(h.rider.id, 0), (other.id, 0)])
        assert await h.bot.storage.feedback_counts() == (0, 2)


async def test_more_sources_replies_privately_with_the_next_passages(settings: Settings) -> None:
    async with running(make_bot(settings)) as h:
        answer = (await h.rider.slash(h.channel, "ask", question="how do I hinge?")).response
        assert answer is not None
        cited = set(re.findall(r"\[\d\] \[([^\]]+)\]", answer.embeds[0].fields[0].value or ""))
        more = await h.rider.click(answer, label="More sources")
        assert more.response is not None and more.response.ephemeral
        [embed] = more.response.embeds
        assert embed.title == "More sources"
        assert "**[4]**" in (embed.description or "")
        listed = set(re.findall(r"\*\*\[\d\]\*\* \[([^\]]+)\]", embed.description or ""))
        assert listed and not listed & cited


async def test_buttons_still_work_after_a_restart(settings: Settings) -> None:
    bot = make_bot(settings)
    async with running(bot) as h:
        answer = (await h.rider.slash(h.channel, "ask", question="how do I hinge?")).response
        assert answer is not None
        await h.env.restart_bot(make_bot(settings, engine=bot.engine))
        await bot.storage.close()
        assert h.env.bot is not bot
        clicked = await h.rider.click(answer, label="Helpful")
        assert clicked.response is not None and clicked.response.content == "Thanks, glad it helped!"
        assert h.rows("SELECT helpful FROM feedback") == [(1,)]


async def test_a_long_question_gets_a_clear_private_reply(settings: Settings) -> None:
    async with running(make_bot(settings)) as h:
        result = await h.rider.slash(h.channel, "ask", question="why " * 126)
        assert result.response is not None and result.response.ephemeral
        assert result.response.content.startswith("That question is 504 characters long; please keep it under 500")
        assert h.rows("SELECT COUNT(*) FROM questions") == [(0,)]


async def test_mentions_in_a_question_are_escaped_and_never_ping(settings: Settings) -> None:
    async with running(make_bot(settings)) as h:
        role = h.guild.create_role("Racers")
        question = f"@everyone @here <@&{role.id}> {h.admin.mention} how do I **hinge**?"
        result = await h.rider.slash(h.channel, "ask", question=question)
        assert result.response is not None
        title = result.response.embeds[0].title or ""
        for raw in ("@everyone", "@here", f"<@&{role.id}>", h.admin.mention, "**hinge**"):
            assert raw not in title
        assert "\\*\\*hinge\\*\\*" in title
        [(stored,)] = h.rows("SELECT question FROM questions")
        assert stored == question  # the log keeps what was asked
        # running() checks that no bot message pinged anyone and every payload disabled mentions.
        assert h.bot.allowed_mentions is not None and h.bot.allowed_mentions.to_dict() == {"parse": []}


async def test_the_mention_check_would_catch_a_ping(settings: Settings) -> None:
    async with running(make_bot(settings)) as h:
        channel = h.bot.get_channel(h.channel.id)
        assert isinstance(channel, discord.TextChannel)
        await channel.send("@everyone the coach is here", allowed_mentions=discord.AllowedMentions.all())
        with pytest.raises(AssertionError):
            check_sent(h)
        h.env.backend.messages[h.channel.id].clear()
        h.env.backend.http_requests.clear()


async def test_library_text_with_mentions_and_markdown_is_escaped_in_the_answer(tmp_path: Path) -> None:
    knowledge = bot_library(tmp_path / "knowledge")
    write_titled(knowledge, "related", "loud-forum-post", "Hinge *tips* @here",
                 "## Shouting\nHey @everyone, the **hinge** is <@&123456789012345678> the _secret_ to riding "
                 "longer motos.\n", kind="related", summary="@everyone **read this** about the hinge")
    write_titled(knowledge, "drills", "loud-drill", "Dowel **pro** @everyone",
                 "## Steps\n1. Ping @here and push the **hips** back.\n## Cues\n- <@&123456789012345678> spine.\n"
                 "## Common faults\n- __Rounding__.\n## Progressions\n- More.\n", kind="drill", level="advanced",
                 dose="3 x @everyone", summary="Groove the **hinge** @here")
    settings = make_settings(tmp_path, knowledge=knowledge)
    async with running(make_bot(settings)) as h:
        drill = await h.rider.slash(h.channel, "drill", name="loud-drill")
        assert drill.response is not None
        shown = embed_text(drill.response.embeds[0])
        assert "Dowel \\*\\*pro\\*\\* @\u200beveryone" in shown and "\\*\\*hips\\*\\*" in shown
        for raw in ("@everyone", "@here", "<@&123456789012345678>", "**pro**", "**hips**", "__Rounding__"):
            assert raw not in shown

        result = await h.rider.slash(h.channel, "ask", question="hinge secret riding longer motos shouting")
        assert result.response is not None
        [embed] = result.response.embeds
        text = embed_text(embed)
        assert "Hinge \\*tips\\* @\u200bhere" in text
        # The lead (here the quoted sentence nearest the question) and the quotes are escaped alike.
        assert "Hey @\u200beveryone, the \\*\\*hinge\\*\\*" in (embed.description or "")
        assert "\\*\\*hinge\\*\\*" in (embed.description or "")
        for raw in ("@everyone", "@here", "<@&123456789012345678>", "**hinge**", "**read this**", "*tips*"):
            assert raw not in text


async def test_ask_cooldown_is_private_per_rider_and_passes_with_time(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, ask_cooldown_seconds=30, ask_cooldown_rate=2)
    async with running(make_bot(settings)) as h:
        for _ in range(settings.ask_cooldown_rate):
            ok = await h.rider.slash(h.channel, "ask", question="how do I hinge?")
            assert ok.response is not None and ok.response.embeds
        cooled = await h.rider.slash(h.channel, "ask", question="how do I hinge?")
        assert cooled.response is not None and cooled.response.ephemeral and not cooled.response.embeds
        assert re.fullmatch(r"Easy there: you can ask again in \d+s\.", cooled.response.content)
        # Another rider has their own allowance.
        other = await h.admin.slash(h.channel, "ask", question="how do I hinge?")
        assert other.response is not None and other.response.embeds
        await h.env.advance_time(settings.ask_cooldown_seconds + 1)
        again = await h.rider.slash(h.channel, "ask", question="how do I hinge?")
        assert again.response is not None and again.response.embeds
        assert h.rows("SELECT COUNT(*) FROM questions") == [(4,)]


async def test_an_exception_in_a_command_is_a_short_private_apology(settings: Settings,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    async with running(make_bot(settings)) as h:
        def explode(index: object, question: str) -> None:
            raise RuntimeError("Traceback (most recent call last): secret internals")

        monkeypatch.setattr(h.bot.composer, "ask", explode)
        private = await h.rider.slash(h.channel, "ask", question="how do I hinge?", private=True)
        assert private.response is not None and private.response.ephemeral
        assert private.response.content == WENT_WRONG and not private.response.embeds

        async def broken() -> None:
            raise OSError("disk on fire")

        monkeypatch.setattr(h.bot.storage, "last_reindex", broken)
        sources = await h.rider.slash(h.channel, "sources")
        assert sources.response is not None and sources.response.ephemeral
        assert sources.response.content == WENT_WRONG

        async def refused() -> None:
            raise HingeError("the index is being rebuilt")

        monkeypatch.setattr(h.bot.storage, "last_reindex", refused)
        hinge = await h.rider.slash(h.channel, "sources")
        assert hinge.response is not None and hinge.response.ephemeral
        # A core error's own text can hold paths: the user gets its class's message, never str(exc).
        assert hinge.response.content == HingeError.user_message

        # A public /ask has already shown a public "thinking…" message; Discord keeps its visibility, so the
        # apology replaces it: still short, and without a traceback.
        public = await h.rider.slash(h.channel, "ask", question="how do I hinge?")
        assert public.response is not None and public.response.content == WENT_WRONG
        for message in h.bot_messages():
            assert "Traceback" not in message.content and "secret" not in message.content


# -- /drill, /video, /sources -------------------------------------------------------------------------------

async def test_drill_by_name_or_title(settings: Settings) -> None:
    async with running(make_bot(settings)) as h:
        result = await h.rider.slash(h.channel, "drill", name="dowel-drill")
        assert result.response is not None and not result.response.ephemeral
        [embed] = result.response.embeds
        assert embed.title == "Dowel Drill"
        fields = {f.name: f.value or "" for f in embed.fields}
        assert list(fields) == ["At a glance", "Steps", "Cues", "Common faults"]
        assert "**Level:** beginner" in fields["At a glance"] and "dowel" in fields["At a glance"]
        assert "Push the hips back" in fields["Steps"]
        by_title = await h.rider.slash(h.channel, "drill", name="  Kettlebell SWING ")
        assert by_title.response is not None and by_title.response.embeds[0].title == "Kettlebell Swing"


async def test_drill_by_focus_and_level(settings: Settings) -> None:
    async with running(make_bot(settings)) as h:
        result = await h.rider.slash(h.channel, "drill", focus="kettlebell", level="intermediate")
        assert result.response is not None and not result.response.ephemeral
        assert result.response.embeds[0].title == "Kettlebell Swing"
        beginner = await h.rider.slash(h.channel, "drill", focus="hinge", level="beginner")
        assert beginner.response is not None and beginner.response.embeds[0].title == "Dowel Drill"
        anything = await h.rider.slash(h.channel, "drill")
        assert anything.response is not None and anything.response.embeds
        none = await h.rider.slash(h.channel, "drill", focus="hinge", level="advanced")
        assert none.response is not None and none.response.ephemeral
        assert none.response.content == "The library has no drill at that level yet."


async def test_an_unknown_drill_name_is_a_private_hint(settings: Settings) -> None:
    async with running(make_bot(settings)) as h:
        result = await h.rider.slash(h.channel, "drill", name="no_such @everyone drill")
        assert result.response is not None and result.response.ephemeral
        content = result.response.content
        assert content.startswith("I have no drill called ") and "start typing in the name option" in content
        assert "no\\_such" in content and "\\\\" not in content  # escaped once, not shown as backslashes
        assert "@everyone" not in content


async def test_drill_name_autocomplete(settings: Settings) -> None:
    async with running(make_bot(settings)) as h:
        every = await h.rider.autocomplete(h.channel, "drill", "name", "")
        assert every == [{"name": "Dowel Drill", "value": "dowel-drill"},
                         {"name": "Kettlebell Swing", "value": "kettlebell-swing"}]
        assert await h.rider.autocomplete(h.channel, "drill", "name", "KETTLE") == [
            {"name": "Kettlebell Swing", "value": "kettlebell-swing"}]
        assert await h.rider.autocomplete(h.channel, "drill", "name", "pizza") == []


async def test_video_with_and_without_a_topic(settings: Settings) -> None:
    async with running(make_bot(settings)) as h:
        every = await h.rider.slash(h.channel, "video")
        assert every.response is not None
        [embed] = every.response.embeds
        assert embed.title == "Videos" and f"[Kettlebell swing demo]({VIDEO_URL})" in (embed.description or "")
        topic = await h.rider.slash(h.channel, "video", topic="hinge")
        assert topic.response is not None
        [embed] = topic.response.embeds
        assert embed.title == "Videos: hinge"
        assert f"[Hinge video]({SOURCE['url']})" in (embed.description or "")
        assert "Racer X" in (embed.description or "")


async def test_video_topic_with_mentions_and_markdown_is_escaped(settings: Settings) -> None:
    async with running(make_bot(settings)) as h:
        result = await h.rider.slash(h.channel, "video", topic="@everyone **hinge**")
        assert result.response is not None
        title = result.response.embeds[0].title or ""
        assert "@everyone" not in title and "**hinge**" not in title and "\\*\\*hinge\\*\\*" in title


async def test_sources_describes_the_library(settings: Settings) -> None:
    async with running(make_bot(settings)) as h:
        result = await h.rider.slash(h.channel, "sources")
        assert result.response is not None and not result.response.ephemeral
        [embed] = result.response.embeds
        assert embed.title == "The Hinge Coach library"
        manifest = h.bot.engine.index.manifest
        assert embed.description == f"6 documents in {manifest.chunk_count} passages"
        fields = {f.name: f.value or "" for f in embed.fields}
        assert fields["Documents"] == "article: 1\ndrill: 2\nrelated: 2\nvideo: 1"
        assert fields["Model"] == "test/hashing\n(64 dimensions)"
        assert fields["Last indexed"].endswith("by start-up")

        await h.admin.slash(h.channel, "reindex")
        after = await h.rider.slash(h.channel, "sources")
        assert after.response is not None
        last = {f.name: f.value or "" for f in after.response.embeds[0].fields}["Last indexed"]
        assert last.endswith("by admin")


# -- admin commands -----------------------------------------------------------------------------------------

async def test_admin_commands_politely_refuse_members_without_manage_server(settings: Settings) -> None:
    async with running(make_bot(settings)) as h:
        # Discord hides these commands from such members; an allow override lets one invoke them anyway.
        assert "reindex" not in h.rider.available_commands(h.channel)
        for command in ("reindex", "unanswered", "add-source"):
            h.allow(command, h.rider)
        before = h.bot.engine.index
        refused = await h.rider.slash(h.channel, "reindex")
        assert refused.response is not None and refused.response.ephemeral
        assert refused.response.content == OWNER_ONLY
        # Manage Server is not enough for a full reindex: it rebuilds every server's library, the shipped one too.
        other_admin = h.member("other-admin", roles=(h.guild.create_role("Mods", permissions=discord.Permissions(
            manage_guild=True)),))
        not_owner = await other_admin.slash(h.channel, "reindex")
        assert not_owner.response is not None and not_owner.response.content == OWNER_ONLY
        unanswered = await h.rider.slash(h.channel, "unanswered")
        assert unanswered.response is not None and unanswered.response.content == ADMIN_ONLY
        upload = await h.rider.slash(h.channel, "add-source", file=("x.md", b"hello"))
        assert upload.response is not None and upload.response.ephemeral
        assert upload.response.content == ADMIN_ONLY
        assert h.bot.engine.index is before
        assert h.rows("SELECT COUNT(*) FROM reindexes") == [(0,)]


async def test_the_configured_admin_role_may_use_admin_commands(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    async with running(make_bot(settings)) as h:
        coach_role = h.guild.create_role("Coach")
        settings.admin_role_id = coach_role.id
        coach = h.member("coach", roles=(coach_role,))
        h.allow("unanswered", coach_role)
        result = await coach.slash(h.channel, "unanswered")
        assert result.response is not None and result.response.ephemeral
        assert result.response.content == "No declined questions or unhelpful answers in the last 7 days."

        # The per-server admin role (stored in the database) counts too.
        mods = h.guild.create_role("Mods")
        mod = h.member("mod", roles=(mods,))
        h.allow("unanswered", mods)
        refused = await mod.slash(h.channel, "unanswered")
        assert refused.response is not None and refused.response.content == ADMIN_ONLY
        # Matched by id: another role with the same name gets nothing.
        fake_mods = h.guild.create_role("Mods")
        impostor = h.member("impostor", roles=(fake_mods,))
        await h.bot.storage.update_guild_settings(h.guild.id, admin_role_id=mods.id)
        h.guild.set_command_permissions(h.command_id("unanswered"), {mods: True, fake_mods: True})
        still_refused = await impostor.slash(h.channel, "unanswered")
        assert still_refused.response is not None and still_refused.response.content == ADMIN_ONLY
        allowed = await mod.slash(h.channel, "unanswered", days=30)
        assert allowed.response is not None
        assert allowed.response.content == "No declined questions or unhelpful answers in the last 30 days."


async def test_reindex_reports_added_changed_and_removed(settings: Settings) -> None:
    async with running(make_bot(settings)) as h:
        knowledge = settings.knowledge_dir
        write_doc(knowledge, "related", "whoops-line", "## Whoops\nSkim the whoops in the attack position.\n")
        tire = knowledge / "related" / "tire-care.md"
        tire.write_text(tire.read_text(encoding="utf-8") + "\nRun a little more pressure in the rocks.\n",
                        encoding="utf-8")
        (knowledge / "related" / "attack-position.md").unlink()

        result = await h.admin.slash(h.channel, "reindex")
        assert result.response is not None and not result.response.ephemeral
        match = SUMMARY.match(result.response.content)
        assert match, result.response.content
        documents, chunks, _embedded, added, changed, removed = map(int, match.groups())
        assert (documents, added, changed, removed) == (6, 1, 1, 1)
        assert chunks == len(h.bot.engine.index.chunks)
        assert "whoops-line" in h.bot.engine.index.documents
        assert "attack-position" not in h.bot.engine.index.documents
        [(ok, user_name, logged_chunks)] = h.rows("SELECT ok, user_name, chunks FROM reindexes")
        assert ok == 1 and user_name == "admin" and logged_chunks == chunks


async def test_a_failed_reindex_names_the_file_and_keeps_the_old_index(settings: Settings) -> None:
    async with running(make_bot(settings)) as h:
        before = h.bot.engine.index
        broken = settings.knowledge_dir / "related" / "broken_file.md"
        broken.write_text("---\ntitle: [unclosed\n---\nSome text.\n", encoding="utf-8")

        result = await h.admin.slash(h.channel, "reindex")
        assert result.response is not None
        content = result.response.content
        assert content.startswith("The reindex failed: 1 bad file(s). The previous index is still answering")
        assert "`broken_file.md` front matter" in content
        assert h.bot.engine.index is before
        assert not h.bot.engine.reindexing
        [(ok, error)] = h.rows("SELECT ok, error FROM reindexes")
        assert ok == 0 and "broken_file.md" in error
        answer = await h.rider.slash(h.channel, "ask", question="how do I hinge?")
        assert answer.response is not None and answer.response.embeds[0].title == "Q: how do I hinge?"


async def test_a_second_reindex_is_refused_politely(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    async with running(make_bot(settings)) as h:
        engine = h.bot.engine
        # A build is running (it holds the build lock): /reindex and /add-source say so, privately.
        lock = engine.store._build_lock
        assert lock.acquire(blocking=False)
        try:
            assert engine.reindexing
            busy = await h.admin.slash(h.channel, "reindex")
            assert busy.response is not None and busy.response.ephemeral
            assert busy.response.content == "A reindex is already running; try again when it has finished."
            upload = await h.admin.slash(h.channel, "add-source", file=("new.txt", b"Hinge text."))
            assert upload.response is not None and upload.response.ephemeral
            assert upload.response.content.startswith("A reindex is already running")
        finally:
            lock.release()

        # One that starts in the gap between the check and the build is told the same.
        def racing(*args: object) -> None:
            raise BuildInProgressError("a build is already running")

        monkeypatch.setattr(engine, "reindex", racing)
        raced = await h.admin.slash(h.channel, "reindex")
        assert raced.response is not None
        assert raced.response.content == "A reindex is already running; try again when it has finished."
        assert h.rows("SELECT ok, error FROM reindexes") == [(0, "already running")]


async def test_add_source_refuses_bad_files(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, max_upload_bytes=2_000)
    async with running(make_bot(settings)) as h:
        before = sorted(p.relative_to(settings.knowledge_dir) for p in settings.knowledge_dir.rglob("*"))

        wrong = await h.admin.slash(h.channel, "add-source", file=("notes.pdf", b"%PDF-1.4"))
        assert wrong.response is not None and wrong.response.ephemeral
        assert wrong.response.content == "I take .md, .html or .txt files, not .pdf."

        big = await h.admin.slash(h.channel, "add-source", file=("big.txt", b"hinge " * 1_000))
        assert big.response is not None and big.response.ephemeral
        assert big.response.content == "That file is 6,000 bytes; the limit is 2,000."

        bad = await h.admin.slash(h.channel, "add-source", file=("bad_file.md", b"---\ntitle: [oops\n---\nText.\n"))
        assert bad.response is not None
        # A code span shows backslashes literally: the file name goes in as it is.
        assert bad.response.content.startswith("`bad_file.md` was not added: front matter: not valid YAML")

        no_kind = front_matter(id="no-kind", title="No kind").encode() + b"Some text about the hinge.\n"
        missing = await h.admin.slash(h.channel, "add-source", file=("no-kind.md", no_kind))
        assert missing.response is not None and "was not added: kind: missing" in missing.response.content

        clash = front_matter(id="hinge-basics", kind="article", title="Another hinge").encode() + b"Hinge text.\n"
        clashed = await h.admin.slash(h.channel, "add-source", file=("hinge.md", clash))
        assert clashed.response is not None
        assert "the library already has a document “hinge-basics”" in clashed.response.content

        # Valid on its own but it breaks the library (a drill that does not exist): taken back out.
        dangling = front_matter(id="dangling", kind="related", title="Dangling", drills=["no-such-drill"]).encode()
        broke = await h.admin.slash(h.channel, "add-source", file=("dangling.md", dangling + b"Hinge text.\n"))
        assert broke.response is not None
        assert broke.response.content.startswith("The reindex failed: 1 bad file(s).")
        assert "`dangling.md`" in broke.response.content

        after = sorted(p.relative_to(settings.knowledge_dir) for p in settings.knowledge_dir.rglob("*"))
        assert after == before
        assert not [p for p in settings.team_library_dir.rglob("*") if p.is_file()]
        # Rolled back: a refused upload leaves no audit row.
        assert h.rows("SELECT COUNT(*) FROM reindexes") == [(0,)]
        assert "dangling" not in h.bot.engine.index.documents


async def test_add_source_saves_a_good_file_and_makes_it_searchable(settings: Settings) -> None:
    async with running(make_bot(settings)) as h:
        text = b"Seat bounce drill: stand up before the rollers and let the bike move under a hinged stance."
        result = await h.admin.slash(h.channel, "add-source", file=("Seat Bounce.txt", text), kind="forum")
        assert result.response is not None and not result.response.ephemeral
        content = result.response.content
        assert content.startswith("Added `seat-bounce` (forum: ") and "Added 1, changed 0, removed 0." in content
        # Uploads go to the team's own folder, never into the shipped library.
        saved = guild_folder(settings.team_library_dir, h.guild.id) / "forum" / "seat-bounce.txt"
        assert saved.read_bytes() == text
        assert h.bot.engine.search("rollers seat bounce", k=1, guild_id=h.guild.id)[0].chunk.doc_id == "seat-bounce"

        drill = front_matter(id="wall-hinge", kind="drill", title="Wall Hinge", level="beginner",
                             dose="2 sets of 8", equipment=["wall"]) + (
            "## Steps\n1. Stand a foot from a wall.\n2. Reach the hips back to touch it.\n"
            "## Cues\n- Hips back.\n## Common faults\n- Squatting down.\n## Progressions\n- Hold a plate.\n")
        added = await h.admin.slash(h.channel, "add-source", file=("wall.md", drill.encode()))
        assert added.response is not None and added.response.content.startswith("Added `wall-hinge` (drill: ")
        assert (guild_folder(settings.team_library_dir, h.guild.id) / "drills" / "wall-hinge.md").is_file()
        shown = await h.rider.slash(h.channel, "drill", name="wall-hinge")
        assert shown.response is not None and shown.response.embeds[0].title == "Wall Hinge"
        assert {"name": "Wall Hinge", "value": "wall-hinge"} in await h.rider.autocomplete(h.channel, "drill",
                                                                                           "name", "wall")


async def test_unanswered_groups_declined_and_unhelpful_questions(settings: Settings) -> None:
    async with running(make_bot(settings, composer=AnswerComposer(policy=NEVER))) as h:
        empty = await h.admin.slash(h.channel, "unanswered")
        assert empty.response is not None and empty.response.ephemeral
        for question in ("best pizza topping for a race day", "best pizza topping for race day @everyone",
                         "which oil for my two stroke"):
            await h.rider.slash(h.channel, "ask", question=question)
        h.bot.composer = AnswerComposer(policy=ALWAYS)
        answered = (await h.rider.slash(h.channel, "ask", question="how do I hinge?")).response
        assert answered is not None
        await h.rider.click(answered, label="Not helpful")
        helped = (await h.rider.slash(h.channel, "ask", question="attack position elbows")).response
        assert helped is not None
        await h.rider.click(helped, label="Helpful")

        result = await h.admin.slash(h.channel, "unanswered", days=7)
        assert result.response is not None and result.response.ephemeral
        [embed] = result.response.embeds
        assert embed.title == "What riders asked that the library missed (7 days)"
        lines = (embed.description or "").split("\n")
        assert lines[0].startswith("**2×** best pizza topping for")
        assert lines[1] == "  declined 2, not helpful 0"
        assert "@everyone" not in (embed.description or "")
        assert "**1×** which oil for my two stroke" in lines
        assert "**1×** how do I hinge?" in lines
        assert "attack position" not in (embed.description or "")
        assert embed.footer.text == "4 questions in 3 groups"


async def test_answers_on_mention_never_ping(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, answer_on_mention=True)
    async with running(make_bot(settings)) as h:
        me = h.bot.user
        assert me is not None
        await h.rider.send(h.channel, f"{me.mention} @everyone how do I hinge?")
        reply = h.channel.last_message
        assert reply is not None and reply.author.id == me.id
        assert reply.embeds[0].title == "Q: @\u200beveryone how do I hinge?"
        assert h.rows("SELECT question FROM questions") == [("@everyone how do I hinge?",)]


async def test_embeds_stay_within_discords_limits(tmp_path: Path) -> None:
    knowledge = bot_library(tmp_path / "knowledge")
    long_sentence = "The hinge keeps the spine long while the hips travel back and the shins stay vertical. "
    for n in range(6):
        write_titled(knowledge, "related", f"long-{n}", f"Hinge {n} " + "very long title " * 15,
                     f"## {'Heading ' * 20}\n" + long_sentence * 60, kind="related", summary="Hinge summary. " * 60,
                     videos=[{"title": "Video " * 30 + str(n), "url": f"https://www.youtube.com/watch?v=v{n}"}],
                     sources=[dict(SOURCE, publisher="Publisher " * 20, author="Author " * 20)])
    steps = "\n".join(f"{i}. " + long_sentence * 3 for i in range(1, 20))
    sections = {"Steps": steps, "Cues": "- " + long_sentence * 30, "Common faults": "- " + long_sentence * 30,
                "Progressions": "- More weight."}
    body = "".join(f"## {name}\n{text}\n" for name, text in sections.items())
    write_titled(knowledge, "drills", "long-drill", "Long " * 50, body, kind="drill", level="advanced",
                 summary="Goal " * 200, dose="dose " * 100, equipment=["dowel " * 30] * 10,
                 videos=[{"title": "Video " * 40, "url": VIDEO_URL}])
    settings = make_settings(tmp_path, knowledge=knowledge)
    async with running(make_bot(settings)) as h:
        question = ("how do I hinge with a long spine while the hips travel back " * 10)[:500]
        answer = (await h.rider.slash(h.channel, "ask", question=question)).response
        assert answer is not None
        more = (await h.rider.click(answer, label="More sources")).response
        drill = (await h.rider.slash(h.channel, "drill", name="long-drill")).response
        videos = (await h.rider.slash(h.channel, "video")).response
        for message in (answer, more, drill, videos):
            assert message is not None and message.embeds
            for embed in message.embeds:
                check_embed(embed.to_dict())  # type: ignore[arg-type]
        assert len(answer.embeds[0]) > 4000  # the test really pushed the limits


# -- the real model on the real library ----------------------------------------------------------------------

@pytest.mark.slow
class TestRealLibrary:
    @pytest.fixture
    def real_settings(self, tmp_path: Path) -> Settings:
        return make_settings(tmp_path, knowledge=KNOWLEDGE)

    @pytest.fixture
    def composer(self, library_engine: Engine) -> AnswerComposer:
        """Warmed before the bot starts: its background warm-up then finds everything computed, and simcord's
        settling never waits on seconds of embedding on a loaded machine."""
        composer = AnswerComposer()
        composer.warm(library_engine.index)
        return composer

    async def test_a_rider_question_is_answered_with_citations_and_links(
            self, real_settings: Settings, library_engine: Engine, composer: AnswerComposer) -> None:
        bot = make_bot(real_settings, engine=library_engine, composer=composer)
        async with running(bot) as h:
            result = await h.rider.slash(h.channel, "ask", question="my lower back is cooked after two motos")
            assert result.response is not None
            [embed] = result.response.embeds
            assert embed.title == "Q: my lower back is cooked after two motos"
            assert "**[1]** [" in (embed.description or "") and "](https://" in (embed.description or "")
            fields = {f.name: f.value or "" for f in embed.fields}
            assert fields["Sources"].startswith("[1] [") and "](https://" in fields["Sources"]
            assert labels(result.response.components) == ["Helpful", "Not helpful", "More sources"]
            more = await h.rider.click(result.response, label="More sources")
            assert more.response is not None and more.response.ephemeral and more.response.embeds

    async def test_an_off_topic_question_is_declined(self, real_settings: Settings, library_engine: Engine,
                                                     composer: AnswerComposer) -> None:
        bot = make_bot(real_settings, engine=library_engine, composer=composer)
        await expect_pizza_question_declined(bot)

    async def test_drills_videos_and_sources_on_the_real_library(self, real_settings: Settings,
                                                                 library_engine: Engine,
                                                                 composer: AnswerComposer) -> None:
        bot = make_bot(real_settings, engine=library_engine, composer=composer)
        async with running(bot) as h:
            choices = await h.rider.autocomplete(h.channel, "drill", "name", "")
            assert 0 < len(choices) <= 25
            first = choices[0]["value"]
            drill = await h.rider.slash(h.channel, "drill", name=first)
            assert drill.response is not None and drill.response.embeds[0].title == choices[0]["name"][:100]
            chosen = await h.rider.slash(h.channel, "drill", focus="hamstrings", level="beginner")
            assert chosen.response is not None and chosen.response.embeds
            videos = await h.rider.slash(h.channel, "video", topic="hip hinge")
            assert videos.response is not None and "](https://" in (videos.response.embeds[0].description or "")
            sources = await h.rider.slash(h.channel, "sources")
            assert sources.response is not None
            count = len(library_engine.index.documents)
            assert sources.response.embeds[0].description == (
                f"{count} documents in {len(library_engine.index.chunks)} passages")
