"""Conversations in Discord: the threads the bot opens on its answers, and DMs. Their turns live in SQLite
(keyed by the thread or DM channel), so a follow-up after a restart still has its context."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import discord

from bot.embeds import clip
from bot.state.storage import StoredTurn
from index.answers.composer import turn_of
from index.answers.conversation import Turn
from index.answers.models import Answer

if TYPE_CHECKING:
    from bot.client import HingeBot

log = logging.getLogger(__name__)
NO_THREADS = ("I couldn't open a thread for follow-ups here: I need the **Create Public Threads** permission in "
              "this channel. I'll answer in the channel instead.")


class ConversationDesk:
    def __init__(self, bot: HingeBot) -> None:
        self.bot = bot
        self._told_no_threads: set[int] = set()
        self._locks: dict[int, asyncio.Lock] = {}

    def turn_lock(self, channel_id: int) -> asyncio.Lock:
        """One turn at a time per conversation: two quick messages must not both read the same history and
        overwrite each other's turn."""
        if len(self._locks) > 10_000:
            self._locks = {k: v for k, v in self._locks.items() if v.locked()}
        return self._locks.setdefault(channel_id, asyncio.Lock())

    async def history(self, channel_id: int | None) -> list[StoredTurn] | None:
        """The earlier turns in this channel when it is a conversation (a thread the bot opened, or a DM)."""
        if channel_id is None:
            return None
        return await self.bot.storage.conversation(channel_id, self.bot.settings.conversation_idle_hours)

    async def add(self, channel_id: int, guild_id: int | None, user_id: int | None, history: Sequence[Turn],
                  answer: Answer) -> None:
        if answer.status == "invalid":
            return
        turn = StoredTurn(**turn_of(answer).model_dump(), user_id=user_id)
        await self.bot.storage.save_conversation(channel_id, guild_id, user_id, [*history, turn])

    async def open_thread(self, interaction: discord.Interaction, message_id: int, answer: Answer) -> None:
        """A public thread on the answer, named after the question; its first turn is this answer."""
        assert interaction.channel_id is not None and interaction.guild_id is not None
        channel = self.bot.get_partial_messageable(interaction.channel_id, guild_id=interaction.guild_id)
        try:
            thread = await channel.get_partial_message(message_id).create_thread(
                name=clip(answer.question.replace("\n", " "), 100) or "Follow-up questions",
                auto_archive_duration=1440)
        except discord.Forbidden:
            if interaction.guild_id not in self._told_no_threads:
                self._told_no_threads.add(interaction.guild_id)
                await interaction.followup.send(NO_THREADS, ephemeral=True)
            return
        await self.add(thread.id, interaction.guild_id, interaction.user.id, [], answer)
