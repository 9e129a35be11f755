"""Admin commands: /add-source and /unanswered (Manage Server or the admin role, for their own server), and
/reindex (the application's owner only: it rebuilds every server's library, the shipped one included)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Literal

import discord
import numpy as np
from discord import app_commands
from discord.ext import commands

from bot.client import HingeBot
from bot.embeds import COLOUR, DECLINED_COLOUR, clip, safe
from bot.permissions import is_admin, is_owner
from bot.state.library import LibraryChangeError
from bot.state.storage import LoggedQuestion
from index.coaching.grouping import group
from index.errors import BuildInProgressError, HingeError, KnowledgeFileError, LibraryError
from index.library.documents import Kind
from index.retrieval.embedding import ProgressFn
from index.retrieval.store import BuildReport

log = logging.getLogger(__name__)

UPLOAD_SUFFIXES = (".md", ".html", ".htm", ".txt")
PROGRESS_SECONDS = 1.5
MAX_GROUPS = 10
MAX_QUESTIONS = 200  # the most recent ones: grouping is quadratic


def group_questions(questions: list[LoggedQuestion], vectors: np.ndarray) -> list[list[LoggedQuestion]]:
    """The questions grouped by meaning (index.coaching.grouping, its measured threshold), largest first."""
    return [[questions[i] for i in members] for members in group(vectors)]


def build_summary(report: BuildReport) -> str:
    return (f"Reindexed {report.documents} documents into {report.chunks} passages in {report.seconds:.1f}s "
            f"({report.embedded} passages embedded). Added {len(report.added)}, changed {len(report.changed)}, "
            f"removed {len(report.removed)}.")


def code(text: str) -> str:
    """`text` as inline code: escapes would show there literally, and a backtick would end it early."""
    without_backticks = text.replace("`", "\u2035")
    return f"`{without_backticks}`"


def library_errors(error: LibraryError) -> str:
    lines = [f"• `{Path(e.path).name}` {safe(e.field)}: {safe(e.reason)}" for e in error.errors[:10]]
    more = f"\n…and {len(error.errors) - 10} more" if len(error.errors) > 10 else ""
    return clip("\n".join(lines) + more, 1800)


class Admin(commands.Cog):
    def __init__(self, bot: HingeBot) -> None:
        self.bot = bot

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        if interaction.command is not None and interaction.command.name == "reindex":
            return await is_owner(interaction)
        return await is_admin(interaction)

    @asynccontextmanager
    async def progress(self, interaction: discord.Interaction, label: str) -> AsyncIterator[ProgressFn]:
        """Shows the build's progress in the original response while the block runs."""
        progress = {"done": 0, "total": 0}

        async def show_progress() -> None:
            while True:
                await asyncio.sleep(PROGRESS_SECONDS)
                if progress["total"]:
                    with contextlib.suppress(discord.HTTPException):
                        await interaction.edit_original_response(
                            content=f"{label}: embedding passages {progress['done']}/{progress['total']}…")

        def on_progress(done: int, total: int) -> None:
            progress.update(done=done, total=total)

        ticker = asyncio.create_task(show_progress())
        try:
            yield on_progress
        finally:
            ticker.cancel()

    async def failed(self, interaction: discord.Interaction, exc: Exception) -> None:
        if isinstance(exc, LibraryError):
            text = (f"The reindex failed: {len(exc.errors)} bad file(s). The previous index is still answering "
                    f"questions.\n{library_errors(exc)}")
        elif isinstance(exc, KnowledgeFileError):
            text = f"Not added: {safe(exc.field)}: {safe(exc.reason)}"
        elif isinstance(exc, HingeError):
            text = exc.user_message
        else:
            raise exc
        await interaction.edit_original_response(content=text)

    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    @app_commands.command(name="reindex", description="Rebuild the library index from the knowledge folder "
                          "(the bot's owner only)")
    async def reindex(self, interaction: discord.Interaction) -> None:
        if self.bot.engine.reindexing:
            await interaction.response.send_message(BuildInProgressError.user_message, ephemeral=True)
            return
        waiting = " (waiting for another library change to finish)" if self.bot.library.busy else ""
        await interaction.response.send_message(f"Reindexing: reading the knowledge folder…{waiting}")
        try:
            async with self.progress(interaction, "Reindexing") as on_progress, self.bot.library.changing():
                report = await self.bot.library.rebuild(interaction.user.id, str(interaction.user), on_progress)
        except (HingeError, OSError) as exc:
            await self.failed(interaction, exc if isinstance(exc, HingeError) else LibraryChangeError(str(exc)))
            return
        await interaction.edit_original_response(content=build_summary(report))

    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    @app_commands.command(name="add-source", description="Add a .md, .html or .txt file to this server's library")
    @app_commands.rename(attachment="file")
    @app_commands.describe(attachment="The file to add", kind="What kind of document it is (for .txt and .html)")
    async def add_source(self, interaction: discord.Interaction, attachment: discord.Attachment,
                         kind: Literal["article", "related", "forum", "drill", "video"] = "related") -> None:
        name = Path(attachment.filename).name
        suffix = Path(name).suffix.lower()
        limit = self.bot.settings.max_upload_bytes
        if suffix not in UPLOAD_SUFFIXES:
            await interaction.response.send_message(f"I take .md, .html or .txt files, not {safe(suffix or name)}.",
                                                    ephemeral=True)
            return
        if attachment.size > limit:
            await interaction.response.send_message(f"That file is {attachment.size:,} bytes; the limit is "
                                                    f"{limit:,}.", ephemeral=True)
            return
        if self.bot.engine.reindexing:
            await interaction.response.send_message(BuildInProgressError.user_message, ephemeral=True)
            return
        await interaction.response.send_message(f"Checking {code(name)}…")
        data = await attachment.read()
        try:
            async with self.progress(interaction, f"Adding {code(name)}; reindexing") as on_progress:
                assert interaction.guild_id is not None  # guild_only
                doc, report = await self.bot.library.add_upload(name, data, Kind(kind), interaction.user.id,
                                                                str(interaction.user), on_progress,
                                                                guild_id=interaction.guild_id)
        except KnowledgeFileError as exc:
            await interaction.edit_original_response(
                content=f"{code(name)} was not added: {safe(exc.field)}: {safe(exc.reason)}")
            return
        except (HingeError, OSError) as exc:
            await self.failed(interaction, exc if isinstance(exc, HingeError) else LibraryChangeError(str(exc)))
            return
        await interaction.edit_original_response(content=f"Added `{doc.id}` ({doc.kind.value}: "
                                                         f"{safe(doc.title)}). {build_summary(report)}")

    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    @app_commands.command(name="unanswered", description="Declined questions and unhelpful answers, grouped")
    @app_commands.describe(days="How far back to look (default 7 days)")
    async def unanswered(self, interaction: discord.Interaction,
                         days: app_commands.Range[int, 1, 365] = 7) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        questions = await self.bot.storage.unanswered(days, limit=MAX_QUESTIONS, guild_id=interaction.guild_id)
        if not questions:
            await interaction.followup.send(f"No declined questions or unhelpful answers in the last {days} days.",
                                            ephemeral=True)
            return
        vectors = await asyncio.to_thread(self.bot.engine.embedder.encode, [q.question for q in questions])
        groups = await asyncio.to_thread(group_questions, questions, vectors)
        lines = []
        for members in groups[:MAX_GROUPS]:
            declined = sum(not q.answered for q in members)
            sample = clip(safe(members[0].question), 150)
            lines.append(f"**{len(members)}×** {sample}\n  declined {declined}, not helpful "
                         f"{len(members) - declined}")
        embed = discord.Embed(title=f"What riders asked that the library missed ({days} days)",
                              description=clip("\n".join(lines), 4000),
                              colour=COLOUR if lines else DECLINED_COLOUR)
        embed.set_footer(text=f"{len(questions)} questions in {len(groups)} groups")
        await interaction.followup.send(embed=embed, ephemeral=True)


async def setup(bot: HingeBot) -> None:
    await bot.add_cog(Admin(bot))
