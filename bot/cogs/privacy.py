"""A rider's data: /forget-me, and questions and feedback deleted after the retention period."""

from __future__ import annotations

import logging

import discord
from discord import app_commands
from discord.ext import commands, tasks

from bot.client import HingeBot
from bot.state.storage import Forgotten

log = logging.getLogger(__name__)


class Privacy(commands.Cog):
    def __init__(self, bot: HingeBot) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        self.retention_loop.start()

    async def cog_unload(self) -> None:
        self.retention_loop.cancel()

    @app_commands.command(name="forget-me", description="Delete everything I keep of you: questions, feedback, "
                          "conversations, coach requests")
    async def forget_me(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        forgotten = await self.bot.storage.forget_user(interaction.user.id)
        await self.show_cards(forgotten)
        removed = forgotten.questions
        await interaction.followup.send(
            f"Done: I deleted {removed} question{'s' if removed != 1 else ''}, your feedback, your conversations "
            "and your place on the coaches' cards. Answers coaches wrote for the library stay, without you.",
            ephemeral=True)

    async def show_cards(self, forgotten: Forgotten) -> None:
        # The rows are gone already; a card whose edit fails stays marked out of date for the recovery loop.
        for request_id in forgotten.cards:
            await self.bot.coach.show_card(request_id)

    @tasks.loop(hours=6)
    async def retention_loop(self) -> None:
        forgotten = await self.bot.storage.purge_older_than(self.bot.settings.retention_days)
        await self.show_cards(forgotten)
        if forgotten.questions:
            log.info("deleted %d questions older than %d days", forgotten.questions, self.bot.settings.retention_days)


async def setup(bot: HingeBot) -> None:
    await bot.add_cog(Privacy(bot))
