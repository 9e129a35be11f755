"""/setup: this server's coach channel, coach role, admin role and digest time, stored by id."""

from __future__ import annotations

from typing import Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.client import HingeBot
from bot.embeds import COLOUR
from bot.permissions import is_admin
from bot.state.storage import GuildSettings

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def describe_settings(saved: GuildSettings, bot: HingeBot) -> discord.Embed:
    def mention(value: int | None, kind: str, default: int | None) -> str:
        chosen = value or default
        if chosen is None:
            return "not set"
        return (f"<#{chosen}>" if kind == "channel" else f"<@&{chosen}>") + ("" if value else " (default)")

    embed = discord.Embed(title="Hinge Coach settings for this server", colour=COLOUR)
    embed.add_field(name="Coach queue channel", value=mention(saved.coach_channel_id, "channel",
                                                              bot.settings.coach_channel_id))
    embed.add_field(name="Coach role", value=mention(saved.coach_role_id, "role", bot.settings.coach_role_id))
    embed.add_field(name="Admin role", value=mention(saved.admin_role_id, "role", bot.settings.admin_role_id))
    weekday = WEEKDAYS[saved.digest_weekday if saved.digest_weekday is not None else 0]
    hour = saved.digest_hour if saved.digest_hour is not None else 8
    embed.add_field(name="Weekly digest", value=f"{weekday.title()} {hour:02d}:00 UTC")
    embed.add_field(name="Answer threads", value="on" if saved.answer_threads else "off")
    return embed


class Setup(commands.Cog):
    def __init__(self, bot: HingeBot) -> None:
        self.bot = bot

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        return await is_admin(interaction)

    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    @app_commands.command(name="setup", description="Set this server's coach channel, coach role and more")
    @app_commands.rename(coach_channel="coach-channel", coach_role="coach-role", admin_role="admin-role",
                         digest_day="digest-day", digest_hour="digest-hour", answer_threads="answer-threads")
    @app_commands.describe(coach_channel="Where questions for the coaches are posted", coach_role="Who answers them",
                           admin_role="Who may run the admin commands besides Manage Server",
                           digest_day="Day of the weekly digest (UTC)", digest_hour="Hour of the digest, 0-23 (UTC)",
                           answer_threads="Open a thread on every public /ask answer for follow-up questions")
    async def setup(self, interaction: discord.Interaction, coach_channel: discord.TextChannel | None = None,
                    coach_role: discord.Role | None = None, admin_role: discord.Role | None = None,
                    digest_day: Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday",
                                        "sunday"] | None = None,
                    digest_hour: app_commands.Range[int, 0, 23] | None = None,
                    answer_threads: bool | None = None) -> None:
        assert interaction.guild_id is not None
        changes: dict[str, object] = {}
        for name, role in (("coach_role_id", coach_role), ("admin_role_id", admin_role)):
            if role is not None:
                if role.is_default():
                    await interaction.response.send_message("@everyone can't be the coach or admin role.",
                                                            ephemeral=True)
                    return
                changes[name] = role.id
        if coach_channel is not None:
            changes["coach_channel_id"] = coach_channel.id
        if digest_day is not None:
            changes["digest_weekday"] = WEEKDAYS.index(digest_day)
        if digest_hour is not None:
            changes["digest_hour"] = digest_hour
        if answer_threads is not None:
            changes["answer_threads"] = answer_threads
        saved = await self.bot.storage.update_guild_settings(interaction.guild_id, **changes)
        text = "Saved." if changes else "Nothing changed; these are the current settings."
        await interaction.response.send_message(text, embed=describe_settings(saved, self.bot), ephemeral=True)


async def setup(bot: HingeBot) -> None:
    await bot.add_cog(Setup(bot))
