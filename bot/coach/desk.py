"""The coach desk: puts questions on the coach queue, and carries a coach's answer to the riders and into the
team's library. Discord I/O and the database only; the library file comes from index.coaching.contributions."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import discord
import numpy as np

from bot.coach.cards import answered_view, card_embed, card_view, delivery_embed
from bot.coach.store import Asker, CoachAnswer, CoachRequest, CoachStore
from bot.state.storage import QuestionRecord
from index.answers.models import Answer
from index.coaching import contributions
from index.coaching.grouping import closest
from index.errors import HingeError

if TYPE_CHECKING:
    from bot.client import HingeBot

log = logging.getLogger(__name__)


class CoachQueueError(HingeError):
    user_message = "The coach queue isn't set up in this server yet: an admin can do it with /setup."


@dataclass(frozen=True)
class CoachSetup:
    channel_id: int
    role_id: int | None


@dataclass(frozen=True)
class Queued:
    request_id: int
    riders: int
    new_card: bool


def jump_link(guild_id: int | None, channel_id: int | None, message_id: int | None) -> str | None:
    if not (channel_id and message_id):
        return None
    return f"https://discord.com/channels/{guild_id or '@me'}/{channel_id}/{message_id}"


class CoachDesk:
    def __init__(self, bot: HingeBot) -> None:
        self.bot = bot
        self.store = CoachStore(bot.storage)
        # One card change at a time per server: two riders asking the same thing at once get one card.
        self._queue_lock = asyncio.Lock()
        self._guild_names: dict[int, str] = {}

    async def setup_for(self, guild_id: int | None) -> CoachSetup | None:
        if guild_id is None:
            return None
        saved = await self.bot.storage.guild_settings(guild_id)
        channel = saved.coach_channel_id or self.bot.settings.coach_channel_id
        if channel is None:
            return None
        return CoachSetup(channel, saved.coach_role_id or self.bot.settings.coach_role_id)

    async def home_guild(self) -> int | None:
        """The server whose coaches take questions asked in DMs: the first with a coach queue."""
        candidates = [*self.bot.settings.guild_ids, *(g.guild_id for g in await self.bot.storage.configured_guilds())]
        for guild_id in dict.fromkeys(candidates):
            if await self.setup_for(guild_id) is not None:
                return guild_id
        return None

    # -- the queue ----------------------------------------------------------------------------------
    async def enqueue(self, record: QuestionRecord, reason: str) -> Queued:
        """Put a logged question on its server's coach queue: onto the open card that asks the same thing, or a
        new card. Raises CoachQueueError when the server has no coach channel."""
        if record.guild_id is None:  # a DM: the rider consented with a button; the answer comes back by DM
            record = record.model_copy(update={"guild_id": await self.home_guild(), "private": True})
        setup = await self.setup_for(record.guild_id)
        if setup is None or record.guild_id is None:
            raise CoachQueueError("no coach channel")
        vector = (await asyncio.to_thread(self.bot.engine.embedder.encode, [record.question]))[0]
        async with self._queue_lock:
            open_requests = [(r, v) for r, v in await self.store.open_requests(record.guild_id) if v is not None]
            match = closest(vector, np.stack([v for _, v in open_requests])) if open_requests else None
            if match is not None:
                request_id, new_card = open_requests[match[0]][0].id, False
            else:
                request_id, new_card = await self.store.create_request(record.guild_id, record.question, vector), True
            await self.store.add_asker(request_id, record.id, record.question, record.user_id, record.channel_id,
                                       record.message_id, record.private, reason)
            riders = len(await self.store.askers(request_id))
            await self.refresh_card(request_id, setup)
        return Queued(request_id, riders, new_card)

    async def withdraw(self, question_id: int, user_id: int) -> bool:
        asker = await self.store.asker_for_question(question_id)
        if asker is None or asker.user_id != user_id or asker.withdrawn:
            return False
        await self.store.withdraw(asker.id)
        remaining = await self.store.askers(asker.request_id)
        request = await self.store.request(asker.request_id)
        if not remaining and request is not None and request.status == "open":
            await self.store.close(asker.request_id, "withdrawn", "the rider")
        await self.refresh_card(asker.request_id)
        return True

    async def dismiss(self, request_id: int, by: str) -> None:
        await self.store.close(request_id, "dismissed", by)
        await self.refresh_card(request_id)

    async def merge(self, request_id: int, into_id: int, by: str) -> None:
        await self.store.move_askers(request_id, into_id)
        await self.store.close(request_id, "merged", by, merged_into=into_id)
        await self.refresh_card(request_id)
        await self.refresh_card(into_id)

    async def refresh_card(self, request_id: int, setup: CoachSetup | None = None) -> None:
        """Post the card, or edit it to show what changed (more riders, answered, dismissed...)."""
        request = await self.store.request(request_id)
        if request is None:
            return
        setup = setup or await self.setup_for(request.guild_id)
        askers = await self.store.askers(request_id)
        answer = await self.store.answer_for_request(request_id)
        bot_answer = await self._bot_answer(askers)
        embed = card_embed(request, askers, bot_answer, answer)
        view = card_view(request.id) if request.status == "open" else answered_view(request, answer)
        if request.card_message_id and request.card_channel_id:
            message = self.bot.get_partial_messageable(request.card_channel_id).get_partial_message(
                request.card_message_id)
            try:
                await message.edit(embed=embed, view=view, allowed_mentions=discord.AllowedMentions.none())
                return
            except discord.NotFound:
                log.warning("coach card %s was deleted; posting it again", request_id)
        if setup is None:
            return
        channel = self.bot.get_partial_messageable(setup.channel_id, guild_id=request.guild_id)
        sent = await channel.send(embed=embed, view=view, allowed_mentions=discord.AllowedMentions.none())
        await self.store.set_card(request_id, setup.channel_id, sent.id)

    async def _bot_answer(self, askers: list[Asker]) -> str | None:
        """What the bot told the first rider who got an answer (a "Not helpful" or "Ask a coach" case)."""
        for asker in askers:
            record = await self.bot.storage.question_record(asker.question_id) if asker.question_id else None
            if record is not None and record.answered and record.answer_json:
                return Answer.model_validate_json(record.answer_json).lead
        return None

    # -- answers ------------------------------------------------------------------------------------
    async def submit(self, request: CoachRequest, coach: discord.abc.User, guild_name: str, title: str, text: str,
                     link: str | None) -> CoachAnswer:
        """Store a coach's answer first of all, then finish it (library file, riders, card, index)."""
        doc_id = contributions.document_id(request.id, title or request.question)
        answer_id = await self.store.save_answer(request.id, request.guild_id, coach.id, coach.display_name,
                                                 request.question, title, text, link, doc_id)
        await self.store.close(request.id, "answered", coach.display_name)
        self._guild_names[request.guild_id] = guild_name
        answer = await self.store.answer(answer_id)
        assert answer is not None
        await self.finish(answer)
        return answer

    def _guild_name(self, guild_id: int) -> str:
        guild = self.bot.get_guild(guild_id)
        return guild.name if guild else self._guild_names.get(guild_id, "the team")

    def draft(self, answer: CoachAnswer, request: CoachRequest) -> contributions.CoachAnswerDraft:
        source = contributions.valid_url(answer.link) or jump_link(request.guild_id, request.card_channel_id,
                                                                     request.card_message_id)
        return contributions.CoachAnswerDraft(
            document_id=answer.document_id, question=answer.question, title=answer.title, text=answer.text,
            coach_name=answer.coach_name, guild_id=answer.guild_id, guild_name=self._guild_name(answer.guild_id),
            source_url=source or "https://discord.com/channels/" + str(answer.guild_id), date=answer.created_at.date())

    async def finish(self, answer: CoachAnswer) -> None:
        """Whatever the rows say is not done yet: the riders' replies, the card, the library file, the index.
        Safe to run again after a crash at any point."""
        request = await self.store.request(answer.request_id)
        if request is None:
            return
        # The riders hear first: the answer is already safe in SQLite, and writing its file waits for the
        # library lock, which another coach answer's rebuild may hold for seconds.
        await self.deliver(answer, request)
        try:
            await self.refresh_card(request.id)
        except discord.HTTPException:
            log.warning("could not update the coach card %s", request.id, exc_info=True)
        path = contributions.path_for(self.bot.engine.library_dir, answer.guild_id, answer.document_id)
        if not answer.written:
            text = contributions.render(self.draft(answer, request))
            async with self.bot.library.changing():
                await asyncio.to_thread(contributions.write_document, path, text, True)
            await self.store.mark_answer(answer.id, written=True)
        if not answer.indexed:
            async with self.bot.library.changing():
                await self.bot.library.rebuild(answer.coach_id, answer.coach_name)
            await self.store.mark_answer(answer.id, indexed=True)

    async def deliver(self, answer: CoachAnswer, request: CoachRequest) -> None:
        for asker in await self.store.askers(request.id):
            if asker.delivered or asker.user_id is None:
                continue
            try:
                await self._reply(asker, answer, request)
            except (discord.NotFound, discord.Forbidden):
                # The rider or the channel is gone: the answer is in the library all the same.
                log.warning("could not reach the rider of question %s; the answer is saved", asker.question_id)
            await self.store.mark_delivered(asker.id)

    async def _reply(self, asker: Asker, answer: CoachAnswer, request: CoachRequest) -> None:
        assert asker.user_id is not None
        embed = delivery_embed(asker.question or request.question, answer)
        pings = discord.AllowedMentions(everyone=False, roles=False, replied_user=False,
                                        users=[discord.Object(asker.user_id)])
        content = f"<@{asker.user_id}> a coach answered your question."
        # One nonce per rider and question: discord.py sends it with enforce_nonce, so a restart that delivers
        # again after a crash mid-send gets Discord's first message back instead of a second reply.
        nonce = f"coach-{asker.id}"
        if asker.private or asker.channel_id is None:
            user = self.bot.get_user(asker.user_id) or await self.bot.fetch_user(asker.user_id)
            await user.send(content=content, embed=embed, allowed_mentions=pings, nonce=nonce)
            return
        channel = self.bot.get_partial_messageable(asker.channel_id, guild_id=request.guild_id)
        reference = discord.MessageReference(message_id=asker.message_id, channel_id=asker.channel_id,
                                             fail_if_not_exists=False) if asker.message_id else None
        await channel.send(content=content, embed=embed, allowed_mentions=pings, reference=reference,  # type: ignore[arg-type]
                           nonce=nonce)

    async def edit(self, answer: CoachAnswer, title: str, text: str, link: str | None) -> None:
        await self.store.update_answer_text(answer.id, title, text, link)
        updated = await self.store.answer(answer.id)
        assert updated is not None
        await self.finish(updated)

    async def forget(self, answer: CoachAnswer, user_id: int, user_name: str) -> None:
        path = contributions.path_for(self.bot.engine.library_dir, answer.guild_id, answer.document_id)
        if path.exists():
            await self.bot.library.remove(path, user_id, user_name)
        await self.store.mark_answer(answer.id, removed=True)

    async def recover(self) -> int:
        """Finish every answer a crash or an outage left half done; returns how many were looked at."""
        unfinished = await self.store.unfinished_answers()
        for answer in unfinished:
            try:
                await self.finish(answer)
            except (discord.HTTPException, HingeError, OSError):
                log.exception("could not finish coach answer %s yet; it stays stored", answer.id)
        return len(unfinished)
