"""Installs the one error handler (bot.errors) for slash commands; buttons and modals call it themselves."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot.client import HingeBot
from bot.errors import report


class Errors(commands.Cog):
    def __init__(self, bot: HingeBot) -> None:
        self.bot = bot
        self._previous = bot.tree.on_error
        bot.tree.on_error = self.on_app_command_error  # type: ignore[method-assign]

    async def cog_unload(self) -> None:
        self.bot.tree.on_error = self._previous  # type: ignore[method-assign]

    async def on_app_command_error(self, interaction: discord.Interaction,
                                   error: app_commands.AppCommandError) -> None:
        command = interaction.command.qualified_name if interaction.command else "?"
        await report(interaction, error, f"command /{command}")


async def setup(bot: HingeBot) -> None:
    await bot.add_cog(Errors(bot))
