"""/sources: what the library holds for the server it is asked in, and when it was last reindexed."""

from __future__ import annotations

import asyncio

import discord
from discord import app_commands
from discord.ext import commands

from bot.client import HingeBot
from bot.embeds import COLOUR, safe


class Library(commands.Cog):
    def __init__(self, bot: HingeBot) -> None:
        self.bot = bot

    @app_commands.command(name="sources", description="What the coaching library holds")
    async def sources(self, interaction: discord.Interaction) -> None:
        # The counts of this server's scope: the shipped documents and its own team's, never another's.
        scope = await asyncio.to_thread(self.bot.engine.index.scoped, interaction.guild_id)
        manifest = scope.manifest
        kinds = "\n".join(f"{kind}: {count}" for kind, count in sorted(manifest.kinds.items()))
        embed = discord.Embed(title="The Hinge Coach library", colour=COLOUR,
                              description=f"{manifest.document_count} documents in {manifest.chunk_count} passages")
        embed.add_field(name="Documents", value=kinds or "none", inline=True)
        if interaction.guild_id is not None:
            coach = len(await self.bot.coach.store.answers(interaction.guild_id))
            embed.add_field(name="Coach answers", value=f"{coach} from this server's coaches (see /coach-answers)",
                            inline=True)
        embed.add_field(name="Model", value=f"{manifest.model.id}\n({manifest.model.dimension} dimensions)",
                        inline=True)
        built = f"<t:{int(manifest.built_at.timestamp())}:f> by {safe(manifest.built_by or 'unknown')}"
        last = await self.bot.storage.last_reindex()
        if last is not None and last.finished_at is not None:
            built = f"<t:{int(last.finished_at.timestamp())}:f> by {safe(last.user_name or 'unknown')}"
        embed.add_field(name="Last indexed", value=built, inline=False)
        await interaction.response.send_message(embed=embed)


async def setup(bot: HingeBot) -> None:
    await bot.add_cog(Library(bot))
