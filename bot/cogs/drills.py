"""/drill (with name autocomplete) and /video, over the scope of the server they are used in (the shipped
documents and that team's own)."""

from __future__ import annotations

import asyncio
from typing import Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.client import HingeBot
from bot.embeds import drill_embed, safe, videos_embed
from index.answers.drills import best_drill
from index.library.documents import Document, Kind
from index.retrieval.search import SearchIndex

MAX_VIDEOS = 5


def find_drill(index: SearchIndex, name: str) -> Document | None:
    wanted = name.strip().lower()
    drills = [d for d in index.documents.values() if d.kind == Kind.DRILL]
    return next((d for d in drills if wanted in (d.id, d.title.lower())), None)


def fitting_videos(index: SearchIndex, topic: str) -> list[tuple[str, str, str]]:
    """(title, source, url) of the videos of `index` (a server's scope) whose documents best match `topic`, best
    first; every one when there is no topic."""
    if topic.strip():
        doc_ids = list(dict.fromkeys(h.chunk.doc_id for h in index.search(topic, k=30)))
    else:
        doc_ids = sorted(d.id for d in index.documents.values() if d.kind == Kind.VIDEO)
    videos: dict[str, tuple[str, str, str]] = {}
    for doc_id in doc_ids:
        doc = index.documents[doc_id]
        source = doc.sources[0].publisher if doc.sources else doc.title
        for video in doc.videos:
            videos.setdefault(video.url, (video.title, source, video.url))
    return list(videos.values())[:MAX_VIDEOS]


class Drills(commands.Cog):
    def __init__(self, bot: HingeBot) -> None:
        self.bot = bot

    async def scope(self, interaction: discord.Interaction) -> SearchIndex:
        # Off the event loop: a server's scope is built on its first use after a start (a reindex warms them).
        return await asyncio.to_thread(self.bot.engine.index.scoped, interaction.guild_id)

    @app_commands.command(name="drill", description="A drill by name, or the one that best fits a focus and level")
    @app_commands.describe(name="The drill (start typing to pick one)", focus="What to work on, e.g. hinge, core, "
                           "hamstrings, attack position", level="Your level")
    async def drill(self, interaction: discord.Interaction, name: str | None = None, focus: str | None = None,
                    level: Literal["beginner", "intermediate", "advanced"] | None = None) -> None:
        index = await self.scope(interaction)
        if name:
            found = find_drill(index, name)
            if found is None:
                # Escaped after cutting, and not through repr(), which would double the escapes' backslashes.
                await interaction.response.send_message(
                    f"I have no drill called “{safe(name.strip()[:100])}”; start typing in the name option to "
                    "pick one.", ephemeral=True)
                return
            await interaction.response.send_message(embed=drill_embed(found))
            return
        if not any(d.kind == Kind.DRILL and level in (None, d.level) for d in index.documents.values()):
            # Before deferring: the first follow-up would take over the public "thinking…" message.
            await interaction.response.send_message("The library has no drill at that level yet.", ephemeral=True)
            return
        if focus and focus.strip():
            self.bot.limiter.check(interaction.user.id, interaction.created_at)
        await interaction.response.defer(thinking=True)
        chosen = await asyncio.to_thread(best_drill, index, (focus or "")[:200], level)
        if chosen is None:
            await interaction.followup.send("The library has no drill at that level yet.")
            return
        await interaction.followup.send(embed=drill_embed(chosen))

    @drill.autocomplete("name")
    async def drill_names(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        typed = current.strip().lower()
        drills = sorted((d for d in (await self.scope(interaction)).documents.values() if d.kind == Kind.DRILL),
                        key=lambda d: d.title)
        matches = [d for d in drills if typed in d.title.lower() or typed in d.id]
        return [app_commands.Choice(name=d.title[:100], value=d.id) for d in matches[:25]]

    @app_commands.command(name="video", description="Videos that fit a topic")
    @app_commands.describe(topic="e.g. hip hinge, kettlebell swing, attack position (empty: every video)")
    async def video(self, interaction: discord.Interaction, topic: str | None = None) -> None:
        if topic and topic.strip():
            self.bot.limiter.check(interaction.user.id, interaction.created_at)
        await interaction.response.defer(thinking=True)
        index = await self.scope(interaction)
        found = await asyncio.to_thread(fitting_videos, index, (topic or "")[:200])
        await interaction.followup.send(embed=videos_embed((topic or "")[:100], found))


async def setup(bot: HingeBot) -> None:
    await bot.add_cog(Drills(bot))
