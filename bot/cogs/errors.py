"""Every command error becomes a short, friendly ephemeral message; the log gets the traceback."""

from __future__ import annotations

import logging

import discord
from discord import app_commands
from discord.ext import commands

from bot.client import HingeBot
from index.errors import HingeError

log = logging.getLogger(__name__)


class NotAdmin(app_commands.CheckFailure):
    """The member may not use an admin command."""


async def reply(interaction: discord.Interaction, text: str) -> None:
    """Send `text` ephemerally whether or not the interaction was already acknowledged."""
    try:
        if interaction.response.is_done():
            await interaction.followup.send(text, ephemeral=True)
        else:
            await interaction.response.send_message(text, ephemeral=True)
    except discord.HTTPException:
        log.warning("could not tell the user about an error", exc_info=True)


def describe(error: app_commands.AppCommandError) -> str:
    if isinstance(error, app_commands.CommandOnCooldown):
        return f"Easy there: you can ask again in {error.retry_after:.0f}s."
    if isinstance(error, NotAdmin):
        return "Sorry, that command is for server admins (Manage Server or the coach admin role)."
    if isinstance(error, app_commands.CheckFailure):
        return "Sorry, you can't use that command here."
    original = getattr(error, "original", error)
    if isinstance(original, HingeError):
        return f"Sorry, I couldn't do that: {original}"
    return "Sorry, something went wrong on my side. The admins can see the details in the log; please try again."


class Errors(commands.Cog):
    def __init__(self, bot: HingeBot) -> None:
        self.bot = bot
        self._previous = bot.tree.on_error
        bot.tree.on_error = self.on_app_command_error  # type: ignore[method-assign]

    async def cog_unload(self) -> None:
        self.bot.tree.on_error = self._previous  # type: ignore[method-assign]

    async def on_app_command_error(self, interaction: discord.Interaction,
                                   error: app_commands.AppCommandError) -> None:
        if not isinstance(error, app_commands.CheckFailure):
            command = interaction.command.qualified_name if interaction.command else "?"
            log.error("command /%s failed", command, exc_info=error)
        await reply(interaction, describe(error))


async def setup(bot: HingeBot) -> None:
    await bot.add_cog(Errors(bot))
