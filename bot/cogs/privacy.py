"""A rider's data: /forget-me, and questions and feedback deleted after the retention period."""

from __future__ import annotations

import logging

import discord
from discord import app_commands
from discord.ext import commands, tasks

from bot.client import HingeBot

log = logging.getLogger(__name__)


class Privacy(commands.Cog):
    def __init__(self, bot: HingeBot) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        self.retention_loop.start()

    async def cog_unload(self) -> None:
        self.retention_loop.cancel()

    @app_commands.command(name="forget-me", description="Delete the questions you asked and your feedback")
    async def forget_me(self, interaction: discord.Interaction) -> None:
        removed = await self.bot.storage.forget_user(interaction.user.id)
        await interaction.response.send_message(
            f"Done: I deleted {removed} question{'s' if removed != 1 else ''} and your feedback. Answers coaches "
            "wrote for the library stay, without your name.", ephemeral=True)

    @tasks.loop(hours=6)
    async def retention_loop(self) -> None:
        removed = await self.bot.storage.purge_older_than(self.bot.settings.retention_days)
        if removed:
            log.info("deleted %d questions older than %d days", removed, self.bot.settings.retention_days)


async def setup(bot: HingeBot) -> None:
    await bot.add_cog(Privacy(bot))
