"""The coach desk: puts questions on the coach queue, and carries a coach's answer to the riders and into the
team's library. Discord I/O and the database only; the library file comes from index.coaching.contributions."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import discord
import numpy as np

from bot.coach.cards import answered_view, card_embed, card_view, delivery_embed
from bot.coach.store import Asker, CoachAnswer, CoachRequest, CoachStore
from bot.state.storage import QuestionRecord
from index.answers.models import Answer
from index.coaching import contributions
from index.coaching.grouping import closest
from index.errors import HingeError
from index.retrieval.embedding import Vectors

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
        self._guild_names: dict[int, str] = {}
        # One finisher per answer and one poster per card in this process: the recovery loop and a coach's submit
        # may reach the same answer or card at once. (Across a crash, the rows' claims do the same job.)
        self._answer_locks: dict[int, asyncio.Lock] = {}
        self._card_locks: dict[int, asyncio.Lock] = {}
        self._retries: dict[str, tuple[int, float]] = {}

    async def setup_for(self, guild_id: int | None) -> CoachSetup | None:
        if guild_id is None:
            return None
        saved = await self.bot.storage.guild_settings(guild_id)
        channel = saved.coach_channel_id or self.bot.settings.coach_channel_id
        if channel is None:
            return None
        return CoachSetup(channel, saved.coach_role_id or self.bot.settings.coach_role_id)

    async def _queue_guilds(self) -> list[int]:
        candidates = [*self.bot.settings.guild_ids, *(g.guild_id for g in await self.bot.storage.configured_guilds())]
        return [g for g in dict.fromkeys(candidates) if await self.setup_for(g) is not None]

    async def has_queue(self) -> bool:
        """Whether any server has a coach queue (a DM's answer then offers Ask a coach)."""
        return bool(await self._queue_guilds())

    async def shared_queues(self, user_id: int) -> list[int]:
        """The servers with a coach queue that this rider is a member of: where a question asked in a DM may go.
        Asked of Discord (no member cache or privileged intent needed)."""
        shared = []
        for guild_id in await self._queue_guilds():
            try:
                await self.bot.http.get_member(guild_id, user_id)
            except (discord.NotFound, discord.Forbidden):
                continue
            shared.append(guild_id)
        return shared

    def guild_name(self, guild_id: int) -> str:
        guild = self.bot.get_guild(guild_id)
        return guild.name if guild else self._guild_names.get(guild_id, "the team")

    # -- the queue ----------------------------------------------------------------------------------
    async def enqueue(self, record: QuestionRecord, reason: str, guild_id: int | None = None) -> Queued:
        """Put a logged question on a coach queue (its server's, or `guild_id`'s for a question asked in a DM),
        onto the open card that asks the same thing or a new card, in one transaction; then show the card (a
        failed post is retried by the recovery loop). Raises CoachQueueError when there is no coach channel."""
        target = record.guild_id if record.guild_id is not None else guild_id
        setup = await self.setup_for(target)
        if setup is None or target is None:
            raise CoachQueueError("no coach channel")
        vector = (await asyncio.to_thread(self.bot.engine.embedder.encode, [record.question]))[0]
        request_id, riders, new_card = await self.store.queue(
            target, record.id, record.question, record.user_id, record.channel_id, record.message_id,
            record.private or record.guild_id is None, reason, vector, _same_question)
        await self.show_card(request_id)
        return Queued(request_id, riders, new_card)

    async def withdraw(self, question_id: int, user_id: int) -> bool:
        request_id = await self.store.withdraw(question_id, user_id)
        if request_id is None:
            return False
        await self.show_card(request_id)
        return True

    async def dismiss(self, request_id: int, by: str) -> None:
        await self.store.dismiss(request_id, by)
        await self.show_card(request_id)

    async def merge(self, request_id: int, into_id: int, by: str) -> None:
        await self.store.merge(request_id, into_id, by)
        await self.show_card(request_id)
        await self.show_card(into_id)

    async def show_card(self, request_id: int) -> None:
        """`refresh_card`, where a Discord error leaves the card marked out of date for the recovery loop."""
        try:
            await self.refresh_card(request_id)
        except discord.HTTPException:
            log.warning("could not show coach card %s yet; the recovery loop will", request_id, exc_info=True)

    async def refresh_card(self, request_id: int) -> None:
        """Post the card, or edit it to show what changed (more riders, answered, dismissed...)."""
        async with _lock(self._card_locks, request_id):
            request = await self.store.request(request_id)
            if request is None:
                return
            setup = await self.setup_for(request.guild_id)
            askers = await self.store.askers(request_id)
            answer = await self.store.answer_for_request(request_id)
            embed = card_embed(request, askers, await self._bot_answer(askers), answer)
            view = card_view(request.id) if request.status == "open" else answered_view(request, answer)
            if request.card_message_id and request.card_channel_id:
                message = self.bot.get_partial_messageable(request.card_channel_id).get_partial_message(
                    request.card_message_id)
                try:
                    await message.edit(embed=embed, view=view, allowed_mentions=discord.AllowedMentions.none())
                    await self.store.card_shown(request_id)
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
                     link: str | None) -> tuple[CoachAnswer, int]:
        """Store a coach's answer (compare-and-set: CardClosedError when another coach was first), then finish
        it. (the answer, riders it goes to). Once stored, a failure to finish is left to the recovery loop."""
        doc_id = contributions.document_id(request.id, title or request.question)
        answer_id, riders = await self.store.save_answer(request.id, request.guild_id, coach.id, coach.display_name,
                                                         request.question, title, text, link, doc_id)
        self._guild_names[request.guild_id] = guild_name
        answer = await self.store.answer(answer_id)
        assert answer is not None
        try:
            await self.finish(answer)
        except (discord.HTTPException, HingeError, OSError):
            log.warning("coach answer %s is saved; the recovery loop will finish it", answer_id, exc_info=True)
        return answer, riders

    def draft(self, answer: CoachAnswer, request: CoachRequest) -> contributions.CoachAnswerDraft:
        source = contributions.valid_url(answer.link) or jump_link(request.guild_id, request.card_channel_id,
                                                                     request.card_message_id)
        credit = answer.coach_name if answer.edited_by in (None, answer.coach_name) else \
            f"{answer.coach_name}, edited by {answer.edited_by}"
        return contributions.CoachAnswerDraft(
            document_id=answer.document_id, question=answer.question, title=answer.title, text=answer.text,
            coach_name=credit, guild_id=answer.guild_id, guild_name=self.guild_name(answer.guild_id),
            source_url=source or "https://discord.com/channels/" + str(answer.guild_id), date=answer.created_at.date())

    def path(self, answer: CoachAnswer) -> Path:
        return contributions.path_for(self.bot.engine.library_dir, answer.document_id)

    async def finish(self, answer: CoachAnswer) -> None:
        """Whatever the rows say is not done yet: the riders' replies, the card, the library file, the index, or
        a removed answer's file. Safe to run again after a crash at any point, and at once from two places."""
        async with _lock(self._answer_locks, answer.id):
            current = await self.store.answer(answer.id)
            request = await self.store.request(answer.request_id)
            if current is None or request is None:
                return
            if current.removed:
                await self._take_out(current)
                return
            # The riders hear first: the answer is already safe in SQLite, and writing its file waits for the
            # library lock, which another change's rebuild may hold for seconds.
            await self.deliver(current, request)
            await self.show_card(request.id)
            if current.written and current.indexed:
                return
            async with self.bot.library.changing():
                # Read again under the library lock: an edit or a /forget may have landed while we waited.
                current = await self.store.answer(answer.id)
                if current is None or current.removed:
                    return
                if not current.written:
                    text = contributions.render(self.draft(current, request))
                    await asyncio.to_thread(contributions.write_document, self.path(current), text, True)
                    await self.store.mark_answer(current.id, current.updated_at, written=True)
                if not current.indexed:
                    await self.bot.library.rebuild(current.coach_id, current.coach_name)
                    await self.store.mark_answer(current.id, current.updated_at, indexed=True)

    async def _take_out(self, answer: CoachAnswer) -> None:
        """A removed answer's file out of the library (and the index rebuilt), if it is still there."""
        path = self.path(answer)
        if await asyncio.to_thread(path.exists):
            await self.bot.library.remove(path, answer.coach_id, "/forget")
        elif answer.document_id in self.bot.engine.index.documents:
            # The file went but a crash came before the rebuilt index was current: rebuild without it now.
            async with self.bot.library.changing():
                await self.bot.library.rebuild(answer.coach_id, "/forget")
        await self.store.mark_answer(answer.id, answer.updated_at, written=False)

    async def deliver(self, answer: CoachAnswer, request: CoachRequest) -> None:
        """Each waiting rider once: claimed in the database before the reply is sent, so a restart never sends a
        second one. A claim never confirmed (a crash or a Discord error mid-send) is settled by looking for the
        reply in the rider's channel before sending again."""
        for asker in await self.store.askers(request.id):
            if asker.delivered or asker.user_id is None:
                continue
            if asker.claimed:
                found = await self._find_reply(asker)
                if found is not None:
                    await self.store.mark_delivered(asker.id, found)
                    continue
            elif not await self.store.claim(asker.id):
                continue
            try:
                message_id: int | None = await self._reply(asker, answer, request)
            except (discord.NotFound, discord.Forbidden):
                # The rider or the channel is gone: the answer is in the library all the same.
                log.warning("could not reach the rider of question %s; the answer is saved", asker.question_id)
                message_id = None
            await self.store.mark_delivered(asker.id, message_id)

    async def _channel(self, asker: Asker, guild_id: int) -> discord.abc.Messageable:
        assert asker.user_id is not None
        if asker.private or asker.channel_id is None:
            user = self.bot.get_user(asker.user_id) or await self.bot.fetch_user(asker.user_id)
            return user.dm_channel or await user.create_dm()
        return self.bot.get_partial_messageable(asker.channel_id, guild_id=guild_id)

    async def _find_reply(self, asker: Asker) -> int | None:
        """The id of a reply to this rider sent before its delivery was confirmed, if Discord has it."""
        request = await self.store.request(asker.request_id)
        claimed = await self.store.claimed_at(asker.id)
        if request is None or claimed is None:
            return None
        channel = await self._channel(asker, request.guild_id)
        me = self.bot.user.id if self.bot.user else None
        marker = reply_marker(asker.id)
        async for message in channel.history(limit=100, after=claimed - timedelta(seconds=5)):
            if message.author.id == me and any(marker in (e.footer.text or "") for e in message.embeds):
                return message.id
        return None

    async def _reply(self, asker: Asker, answer: CoachAnswer, request: CoachRequest) -> int:
        assert asker.user_id is not None
        embed = delivery_embed(asker.question or request.question, answer, reply_marker(asker.id))
        pings = discord.AllowedMentions(everyone=False, roles=False, replied_user=False,
                                        users=[discord.Object(asker.user_id)])
        content = f"<@{asker.user_id}> a coach answered your question."
        # One nonce per rider and question: discord.py sends it with enforce_nonce, so a resend within Discord's
        # nonce window returns the first message instead of posting a second.
        nonce = f"coach-{asker.id}"
        channel = await self._channel(asker, request.guild_id)
        reference = discord.MessageReference(message_id=asker.message_id, channel_id=asker.channel_id,
                                             fail_if_not_exists=False) \
            if asker.message_id and not asker.private and asker.channel_id else None
        sent = await channel.send(content=content, embed=embed, allowed_mentions=pings,
                                  reference=reference, nonce=nonce)  # type: ignore[arg-type]
        return sent.id

    async def edit(self, answer_id: int, editor: str, title: str, text: str, link: str | None) -> CoachAnswer | None:
        """A coach's edit, credited to them; None when the answer was removed meanwhile."""
        if not await self.store.update_answer_text(answer_id, title, text, link, editor):
            return None
        updated = await self.store.answer(answer_id)
        assert updated is not None
        try:
            await self.finish(updated)
        except (discord.HTTPException, HingeError, OSError):
            log.warning("edit of coach answer %s is saved; the recovery loop will finish it", answer_id, exc_info=True)
        return updated

    async def forget(self, answer: CoachAnswer) -> None:
        """/forget: marked removed first (so nothing waiting on the library lock can write it back), then its
        file taken out and the index rebuilt."""
        await self.store.remove_answer(answer.id)
        removed = await self.store.answer(answer.id)
        assert removed is not None
        await self.finish(removed)

    # -- recovery -------------------------------------------------------------------------------------
    async def recover(self) -> int:
        """One round of finishing what a crash, an outage or a Discord error left undone: answers not yet
        delivered, written, indexed or taken out, and cards never posted or out of date. An item that fails
        backs off (doubling, at most 10 minutes). Returns how many items were attempted."""
        attempted = 0
        for answer in await self.store.unfinished_answers():
            attempted += await self._attempt(f"answer {answer.id}", self.finish(answer))
        for request_id in await self.store.cards_to_show():
            attempted += await self._attempt(f"card {request_id}", self.refresh_card(request_id))
        return attempted

    async def _attempt(self, key: str, work: Coroutine[Any, Any, None]) -> int:
        failures, not_before = self._retries.get(key, (0, 0.0))
        if time.monotonic() < not_before:
            work.close()
            return 0
        try:
            await work
        except (discord.HTTPException, HingeError, OSError):
            wait = min(MAX_BACKOFF, self.bot.settings.coach_retry_seconds * 2 ** failures)
            self._retries[key] = (failures + 1, time.monotonic() + wait)
            log.warning("coach %s is not finished yet; trying again in %.0fs", key, wait, exc_info=True)
        else:
            self._retries.pop(key, None)
        return 1


MAX_BACKOFF = 600.0


def reply_marker(asker_id: int) -> str:
    """Shown in a coach reply's footer, so a restart can tell whether that rider's reply went out."""
    return f"reply {asker_id}"


def _same_question(vector: Vectors, open_cards: Sequence[Vectors]) -> int | None:
    match = closest(vector, np.stack(list(open_cards)))
    return match[0] if match else None


def _lock(locks: dict[int, asyncio.Lock], key: int) -> asyncio.Lock:
    if len(locks) > 10_000:
        for idle in [k for k, v in locks.items() if not v.locked()]:
            del locks[idle]
    return locks.setdefault(key, asyncio.Lock())
