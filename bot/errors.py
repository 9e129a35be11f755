"""The one error handler: commands, buttons, modals and listeners all end here.

A user sees a short, friendly, ephemeral message, never an exception's text or a server path; the log gets
the traceback (with the token redacted by bot.ops.logs).
"""

from __future__ import annotations

import logging

import discord
from discord import app_commands

from index.errors import HingeError

log = logging.getLogger(__name__)

WENT_WRONG = "Sorry, something went wrong on my side. The admins can see the details in the log; please try again."


class NotAdmin(app_commands.CheckFailure):
    """The member may not use an admin command."""


class NotOwner(app_commands.CheckFailure):
    """Only the application's owner may do this (it changes every server's library)."""


class NotCoach(app_commands.CheckFailure):
    """The member may not use the coach queue's buttons."""


async def reply(interaction: discord.Interaction, text: str) -> None:
    """Send `text` ephemerally whether or not the interaction was already acknowledged."""
    try:
        if interaction.response.is_done():
            await interaction.followup.send(text, ephemeral=True)
        else:
            await interaction.response.send_message(text, ephemeral=True)
    except discord.HTTPException:
        log.warning("could not tell the user about an error", exc_info=True)


def describe(error: Exception) -> str:
    if isinstance(error, app_commands.CommandOnCooldown):
        return f"Easy there: you can ask again in {max(error.retry_after, 1):.0f}s."
    if isinstance(error, NotAdmin):
        return "Sorry, that command is for server admins (Manage Server or the admin role)."
    if isinstance(error, NotOwner):
        return ("Sorry, a full reindex rebuilds every server's library, so it is for the bot's owner only. "
                "Admins add files to this server's own library with /add-source.")
    if isinstance(error, NotCoach):
        return "Sorry, only the team's coaches (the coach role or Manage Server) can use the coach queue."
    if isinstance(error, app_commands.CheckFailure):
        return "Sorry, you can't use that command here."
    original = getattr(error, "original", error)
    if isinstance(original, HingeError):
        return original.user_message
    return WENT_WRONG


async def report(interaction: discord.Interaction, error: Exception, where: str) -> None:
    """Log `error` (unless it is an expected refusal) and tell the user kindly."""
    if not isinstance(error, app_commands.CheckFailure | app_commands.CommandOnCooldown):
        log.error("%s failed", where, exc_info=error)
    await reply(interaction, describe(error))
