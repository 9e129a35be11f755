"""The coach loop in Discord: queue-card buttons, the answer modal, /coach-answers, /forget, /digest, the weekly
digest, and finishing on start-up whatever a crash left half done."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands, tasks

from bot.client import HingeBot
from bot.coach.cards import MODAL_ID, AnswerModal, CardButton, MergeSelect, merge_view, modal_values
from bot.coach.desk import CoachDesk, CoachSetup
from bot.coach.digest import chart_png, digest_text, due, make_digest
from bot.coach.store import CardClosedError, CoachAnswer
from bot.embeds import COLOUR, clip, safe
from bot.errors import NotAdmin, NotCoach, report
from bot.permissions import is_admin
from index.coaching.contributions import MAX_ANSWER_CHARS

log = logging.getLogger(__name__)
DEFAULT_DIGEST_WEEKDAY, DEFAULT_DIGEST_HOUR = 0, 8  # Monday 08:00 UTC
ONLY_AUTHOR = "Only the coach who wrote this answer, or a server admin, can edit it."


def desk_of(interaction: discord.Interaction) -> CoachDesk:
    bot: HingeBot = interaction.client  # type: ignore[assignment]
    return bot.coach


async def check_coach(interaction: discord.Interaction, setup: CoachSetup | None) -> None:
    """Manage Server or the server's coach role (by id); checked here, not left to Discord's UI."""
    member = interaction.user
    if not isinstance(member, discord.Member) or setup is None:
        raise NotCoach("not in a server with a coach queue")
    if interaction.permissions.manage_guild:
        return
    if setup.role_id is not None and any(role.id == setup.role_id for role in member.roles):
        return
    raise NotCoach("not a coach")


async def handle_card(interaction: discord.Interaction, action: str, target: int, value: int = 0) -> None:
    try:
        await _handle_card(interaction, action, target, value)
    except Exception as exc:
        await report(interaction, exc, f"coach card {action}")


async def may_edit(interaction: discord.Interaction, answer: CoachAnswer) -> bool:
    """The coach who wrote an answer, or a server admin."""
    if answer.coach_id == interaction.user.id:
        return True
    try:
        return await is_admin(interaction)
    except NotAdmin:
        return False


async def _handle_card(interaction: discord.Interaction, action: str, target: int, value: int) -> None:
    desk = desk_of(interaction)
    await check_coach(interaction, await desk.setup_for(interaction.guild_id))
    if action == "edit":
        answer = await desk.store.answer(target)
        if answer is None or answer.removed or answer.guild_id != interaction.guild_id:
            await interaction.response.send_message("That answer is no longer in the library.", ephemeral=True)
            return
        if not await may_edit(interaction, answer):
            await interaction.response.send_message(ONLY_AUTHOR, ephemeral=True)
            return
        await interaction.response.send_modal(AnswerModal("edit", answer.id, answer.title, answer.text,
                                                          answer.link or ""))
        return
    request = await desk.store.request(target)
    if request is None or request.guild_id != interaction.guild_id:
        await interaction.response.send_message("I no longer have that question.", ephemeral=True)
        return
    if request.status != "open":
        await interaction.response.send_message(CardClosedError(request.status, request.closed_by).user_message,
                                                ephemeral=True)
        return
    if action == "answer":
        await interaction.response.send_modal(AnswerModal("answer", request.id))
    elif action == "dismiss":
        await interaction.response.defer(ephemeral=True, thinking=True)
        await desk.dismiss(request.id, interaction.user.display_name)
        await interaction.followup.send("Marked as not for us; the card is closed.", ephemeral=True)
    elif action == "merge":
        others = [r for r, _ in await desk.store.open_queue(request.guild_id) if r.id != request.id]
        if not others:
            await interaction.response.send_message("There is no other open card to merge this into.",
                                                    ephemeral=True)
            return
        await interaction.response.send_message("Merge this card into which one?", view=merge_view(request.id, others),
                                                ephemeral=True)
    elif action == "merge-into":
        into = await desk.store.request(value)
        if into is None or into.status != "open" or into.guild_id != request.guild_id or into.id == request.id:
            await interaction.response.send_message("That card is not open any more.", ephemeral=True)
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        await desk.merge(request.id, into.id, interaction.user.display_name)
        await interaction.followup.send(f"Merged into #{into.id}: its answer will reach these riders too.",
                                        ephemeral=True)


def handed_back(text: str) -> discord.File:
    """A coach's text returned as a file, so nothing they typed is lost when it could not be saved."""
    return discord.File(io.BytesIO(text.encode()), "answer.txt")


async def handle_modal(interaction: discord.Interaction, action: str, target: int) -> None:
    desk = desk_of(interaction)
    await check_coach(interaction, await desk.setup_for(interaction.guild_id))
    values = modal_values(interaction.data or {})  # type: ignore[arg-type]
    text, title, link = values.get("answer", "").strip(), values.get("title", "").strip(), values.get("link", "")
    if not text:
        await interaction.response.send_message("The answer was empty, so nothing was saved or sent.",
                                                ephemeral=True)
        return
    if len(text) > MAX_ANSWER_CHARS:
        # Discord enforces the limit in its client; a longer text means a bad client: hand it back, keep nothing.
        await interaction.response.send_message(
            f"That answer is {len(text):,} characters; the limit is {MAX_ANSWER_CHARS:,}. Here it is back so "
            "nothing is lost.", file=handed_back(text), ephemeral=True)
        return
    await interaction.response.defer(ephemeral=True, thinking=True)
    guild_name = interaction.guild.name if interaction.guild else "the team"
    if action == "edit":
        answer = await desk.store.answer(target)
        if answer is None or answer.removed or answer.guild_id != interaction.guild_id:
            await interaction.followup.send("That answer is no longer in the library; here is your text back.",
                                            file=handed_back(text), ephemeral=True)
            return
        if not await may_edit(interaction, answer):
            await interaction.followup.send(ONLY_AUTHOR, file=handed_back(text), ephemeral=True)
            return
        edited = await desk.edit(answer.id, interaction.user.display_name, title, text, link.strip() or None)
        await interaction.followup.send(f"Updated `{answer.document_id}` in the library." if edited else
                                        "That answer was removed meanwhile; here is your text back.",
                                        file=discord.utils.MISSING if edited else handed_back(text), ephemeral=True)
        return
    request = await desk.store.request(target)
    if request is None or request.guild_id != interaction.guild_id:
        await interaction.followup.send("I no longer have that question; your answer was not saved. Here it is "
                                        "back.", file=handed_back(text), ephemeral=True)
        return
    try:
        answer, riders = await desk.submit(request, interaction.user, guild_name, title, text, link.strip() or None)
    except CardClosedError as closed:
        await interaction.followup.send(f"{closed.user_message} Your answer was not saved; here it is back.",
                                        file=handed_back(text), ephemeral=True)
        return
    note = "" if not link.strip() or desk.draft(answer, request).source_url == link.strip() else \
        " The source link wasn't a valid http(s) address, so the card is cited instead."
    await interaction.followup.send(f"Thanks! Sent to {riders} rider{'s' if riders != 1 else ''} and saved to the "
                                    f"library as `{answer.document_id}`.{note}", ephemeral=True)


class Coach(commands.Cog):
    def __init__(self, bot: HingeBot) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(CardButton, MergeSelect)
        self.digest_loop.start()
        self.recovery_loop.change_interval(seconds=self.bot.settings.coach_retry_seconds)
        self.recovery_loop.start()

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(CardButton, MergeSelect)
        self.digest_loop.cancel()
        self.recovery_loop.cancel()

    @tasks.loop(seconds=30)
    async def recovery_loop(self) -> None:
        """While the bot runs, not only at start-up: whatever a crash or a Discord error left undone."""
        attempted = await self.bot.coach.recover()
        if attempted:
            log.info("recovery: %d coach item(s) attempted", attempted)

    @recovery_loop.before_loop
    async def _recovery_waits_for_ready(self) -> None:
        await self.bot.wait_until_ready()

    @recovery_loop.error
    async def _recovery_failed(self, error: BaseException) -> None:
        # A failure outside the per-item handling (the database): logged, and the loop goes on.
        log.error("the coach recovery round failed", exc_info=error)
        self.recovery_loop.restart()

    @commands.Cog.listener()
    async def on_interaction(self, interaction: discord.Interaction) -> None:
        if interaction.type != discord.InteractionType.modal_submit:
            return
        data: dict[str, Any] = dict(interaction.data or {})
        match = MODAL_ID.fullmatch(str(data.get("custom_id", "")))
        if match is None:
            return
        try:
            await handle_modal(interaction, match["action"], int(match["target"]))
        except Exception as exc:
            await report(interaction, exc, "coach answer modal")

    @app_commands.guild_only()
    @app_commands.command(name="coach-answers", description="The answers this server's coaches added to the library")
    async def coach_answers(self, interaction: discord.Interaction) -> None:
        answers = await self.bot.coach.store.answers(interaction.guild_id)
        if not answers:
            await interaction.response.send_message("No coach answers in this server's library yet.", ephemeral=True)
            return
        lines = [f"• `{a.document_id}` {clip(safe(a.title), 90)} — {safe(a.coach_name)}, "
                 f"<t:{int(a.created_at.timestamp())}:d>" for a in answers[-25:]]
        embed = discord.Embed(title=f"Coach answers ({len(answers)})", description=clip("\n".join(lines), 4000),
                              colour=COLOUR)
        await interaction.response.send_message(embed=embed, ephemeral=True)

    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    @app_commands.command(name="forget", description="Remove a coach answer from the library")
    @app_commands.describe(document="The coach answer to remove (start typing)")
    async def forget(self, interaction: discord.Interaction, document: str) -> None:
        await is_admin(interaction)
        answer = await self.bot.coach.store.answer_by_document(document.strip())
        if answer is None or answer.removed or answer.guild_id != interaction.guild_id:
            await interaction.response.send_message("This server has no coach answer with that id; see "
                                                    "/coach-answers.", ephemeral=True)
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        await self.bot.coach.forget(answer)
        await interaction.followup.send(f"Removed `{answer.document_id}` from the library and reindexed.",
                                        ephemeral=True)

    @forget.autocomplete("document")
    async def forget_choices(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        answers = await self.bot.coach.store.answers(interaction.guild_id)
        typed = current.lower()
        return [app_commands.Choice(name=clip(f"{a.document_id}: {a.title}", 100), value=a.document_id)
                for a in answers if typed in a.document_id or typed in a.title.lower()][:25]

    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    @app_commands.command(name="digest", description="Post the coaches' weekly digest now")
    async def digest(self, interaction: discord.Interaction) -> None:
        await is_admin(interaction)
        setup = await self.bot.coach.setup_for(interaction.guild_id)
        if setup is None or interaction.guild_id is None:
            await interaction.response.send_message("Set the coach channel first: /setup coach-channel:…",
                                                    ephemeral=True)
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        await self.post_digest(interaction.guild_id, setup)
        await interaction.followup.send(f"Posted the digest in <#{setup.channel_id}>.", ephemeral=True)

    async def post_digest(self, guild_id: int, setup: CoachSetup) -> None:
        now = datetime.now(UTC)
        store = self.bot.coach.store
        digest = make_digest(guild_id, now, await store.week_counts(guild_id, now - timedelta(days=7)),
                             await store.open_queue(guild_id),
                             await store.least_helpful(guild_id, now - timedelta(days=7)))
        png = await asyncio.to_thread(chart_png, digest)
        embed = discord.Embed(title="This week in the coach queue", description=clip(digest_text(digest), 4000),
                              colour=COLOUR)
        embed.set_image(url="attachment://questions-per-day.png")
        channel = self.bot.get_partial_messageable(setup.channel_id, guild_id=guild_id)
        await channel.send(embed=embed, file=discord.File(io.BytesIO(png), "questions-per-day.png"),
                           allowed_mentions=discord.AllowedMentions.none())
        await self.bot.storage.update_guild_settings(guild_id, last_digest_at=now)

    @tasks.loop(minutes=10)
    async def digest_loop(self) -> None:
        now = datetime.now(UTC)
        saved_guilds = {s.guild_id: s for s in await self.bot.storage.configured_guilds()}
        for guild_id in self.bot.settings.guild_ids:
            if guild_id not in saved_guilds:
                saved_guilds[guild_id] = await self.bot.storage.guild_settings(guild_id)
        for saved in saved_guilds.values():
            setup = await self.bot.coach.setup_for(saved.guild_id)
            weekday = DEFAULT_DIGEST_WEEKDAY if saved.digest_weekday is None else saved.digest_weekday
            hour = DEFAULT_DIGEST_HOUR if saved.digest_hour is None else saved.digest_hour
            if setup is None or not due(now, weekday, hour, saved.last_digest_at):
                continue
            with contextlib.suppress(discord.HTTPException):
                await self.post_digest(saved.guild_id, setup)

    @digest_loop.before_loop
    async def _wait_ready(self) -> None:
        await self.bot.wait_until_ready()

    @digest_loop.error
    async def _digest_failed(self, error: BaseException) -> None:
        log.error("the digest loop failed", exc_info=error)


async def setup(bot: HingeBot) -> None:
    await bot.add_cog(Coach(bot))
