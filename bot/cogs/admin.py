"""Admin commands: /reindex, /add-source, /unanswered. Manage Server or the admin role only."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
from pathlib import Path
from typing import Literal

import discord
import numpy as np
from discord import app_commands
from discord.ext import commands

from bot.client import HingeBot
from bot.cogs.errors import NotAdmin
from bot.embeds import COLOUR, DECLINED_COLOUR, clip, safe
from bot.storage import LoggedQuestion
from index.documents import KIND_FOLDERS, Document, Kind, load_file
from index.errors import BuildInProgressError, KnowledgeFileError, LibraryError
from index.store import BuildReport

log = logging.getLogger(__name__)

UPLOAD_SUFFIXES = (".md", ".html", ".htm", ".txt")
PROGRESS_SECONDS = 1.5
GROUP_SIMILARITY = 0.6
MAX_GROUPS = 10


async def is_admin(interaction: discord.Interaction) -> bool:
    """Manage Server, or the admin role from the settings or this server's own setting."""
    member = interaction.user
    if not isinstance(member, discord.Member):
        raise NotAdmin("admin commands work in a server only")
    # The interaction carries the member's resolved permissions: no dependence on the role cache.
    if interaction.permissions.manage_guild:
        return True
    bot: HingeBot = interaction.client  # type: ignore[assignment]
    roles = {bot.settings.admin_role, await bot.storage.guild_admin_role(member.guild.id)} - {None}
    if any(role.name in roles for role in member.roles):
        return True
    raise NotAdmin("not an admin")


def group_questions(questions: list[LoggedQuestion], vectors: np.ndarray) -> list[list[LoggedQuestion]]:
    """Greedy grouping by meaning: each question joins the first group whose lead it resembles."""
    groups: list[tuple[np.ndarray, list[LoggedQuestion]]] = []
    for question, vector in zip(questions, vectors, strict=True):
        for lead, members in groups:
            if float(lead @ vector) >= GROUP_SIMILARITY:
                members.append(question)
                break
        else:
            groups.append((vector, [question]))
    return sorted((members for _, members in groups), key=len, reverse=True)


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
        return await is_admin(interaction)

    async def _reindex(self, interaction: discord.Interaction, label: str) -> BuildReport | None:
        """Rebuild with progress shown in the original response; the old index serves until the swap."""
        engine = self.bot.engine
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

        record = await self.bot.storage.start_reindex(interaction.user.id, str(interaction.user))
        ticker = asyncio.create_task(show_progress())
        try:
            report = await asyncio.to_thread(engine.reindex, on_progress, str(interaction.user))
        except BuildInProgressError:
            await self.bot.storage.finish_reindex(record, ok=False, error="already running")
            await interaction.edit_original_response(content="A reindex is already running; try again when it "
                                                             "has finished.")
            return None
        except LibraryError as exc:
            await self.bot.storage.finish_reindex(record, ok=False, error=str(exc)[:2000])
            self.bot.metrics.reindexed(ok=False)
            await interaction.edit_original_response(
                content=f"The reindex failed: {len(exc.errors)} bad file(s). The previous index is still "
                        f"answering questions.\n{library_errors(exc)}")
            return None
        finally:
            ticker.cancel()
        self.bot.metrics.reindexed(ok=True, seconds=report.seconds)
        await self.bot.storage.finish_reindex(record, ok=True, documents=report.documents, chunks=report.chunks,
                                              added=len(report.added), changed=len(report.changed),
                                              removed=len(report.removed), seconds=report.seconds)
        return report

    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    @app_commands.command(name="reindex", description="Rebuild the library index from the knowledge folder")
    async def reindex(self, interaction: discord.Interaction) -> None:
        if self.bot.engine.reindexing:
            await interaction.response.send_message("A reindex is already running; try again when it has "
                                                    "finished.", ephemeral=True)
            return
        await interaction.response.send_message("Reindexing: reading the knowledge folder…")
        report = await self._reindex(interaction, "Reindexing")
        if report is not None:
            await interaction.edit_original_response(content=build_summary(report))

    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    @app_commands.command(name="add-source", description="Add a .md, .html or .txt file to the library")
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
            await interaction.response.send_message("A reindex is already running; add the file when it has "
                                                    "finished.", ephemeral=True)
            return
        await interaction.response.send_message(f"Checking {code(name)}…")
        data = await attachment.read()
        try:
            doc = await asyncio.to_thread(self._validate, name, data, Kind(kind))
        except KnowledgeFileError as exc:
            await interaction.edit_original_response(
                content=f"{code(name)} was not added: {safe(exc.field)}: {safe(exc.reason)}")
            return
        target = self.bot.engine.knowledge_dir / KIND_FOLDERS[doc.kind] / (f"{doc.id}{suffix}")
        clash = doc.id in self.bot.engine.index.documents or target.exists()
        if clash:
            await interaction.edit_original_response(
                content=f"{code(name)} was not added: the library already has a document `{doc.id}`. Rename "
                        "the file or change its id, or edit the existing one and run /reindex.")
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        report = await self._reindex(interaction, f"Added `{doc.id}`; reindexing")
        if report is None:
            # The library must stay buildable: take the new file back out.
            target.unlink(missing_ok=True)
            return
        await interaction.edit_original_response(content=f"Added `{doc.id}` ({doc.kind.value}: "
                                                         f"{safe(doc.title)}). {build_summary(report)}")

    @staticmethod
    def _validate(name: str, data: bytes, kind: Kind) -> Document:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / name
            path.write_bytes(data)
            doc = load_file(path, kind)
        return doc

    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    @app_commands.command(name="unanswered", description="Declined questions and unhelpful answers, grouped")
    @app_commands.describe(days="How far back to look (default 7 days)")
    async def unanswered(self, interaction: discord.Interaction,
                         days: app_commands.Range[int, 1, 365] = 7) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        questions = await self.bot.storage.unanswered(days)
        if not questions:
            await interaction.followup.send(f"No declined questions or unhelpful answers in the last {days} days.",
                                            ephemeral=True)
            return
        vectors = await asyncio.to_thread(self.bot.engine.embedder.encode, [q.question for q in questions])
        groups = group_questions(questions, vectors)
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
