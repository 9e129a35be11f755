"""/ask and its buttons: Helpful, Not helpful, More sources."""

from __future__ import annotations

import logging
import re
from typing import Any, ClassVar

import discord
from discord import app_commands
from discord.ext import commands

from bot.client import HingeBot
from bot.embeds import answer_embed, more_embed

log = logging.getLogger(__name__)


def ask_cooldown(interaction: discord.Interaction) -> app_commands.Cooldown | None:
    settings = interaction.client.settings  # type: ignore[attr-defined]
    if settings.ask_cooldown_seconds <= 0:
        return None
    return app_commands.Cooldown(settings.ask_cooldown_rate, settings.ask_cooldown_seconds)


class AnswerButton(discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
                   template=r"hinge:(?P<action>up|down|more):(?P<question_id>[0-9]+)"):
    """A button that still works after a restart: its custom id carries the logged question."""

    LABELS: ClassVar[dict[str, tuple[str, discord.ButtonStyle, str]]] = {
        "up": ("Helpful", discord.ButtonStyle.success, "👍"),
        "down": ("Not helpful", discord.ButtonStyle.secondary, "👎"),
        "more": ("More sources", discord.ButtonStyle.primary, "📚"),
    }

    def __init__(self, action: str, question_id: int) -> None:
        label, style, emoji = self.LABELS[action]
        super().__init__(discord.ui.Button(label=label, style=style, emoji=emoji,
                                           custom_id=f"hinge:{action}:{question_id}"))
        self.action = action
        self.question_id = question_id

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Item[Any],
                             match: re.Match[str], /) -> AnswerButton:
        return cls(match["action"], int(match["question_id"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        bot: HingeBot = interaction.client  # type: ignore[assignment]
        if self.action == "more":
            question = await bot.storage.question(self.question_id)
            if question is None:
                await interaction.response.send_message("I no longer have that question.", ephemeral=True)
                return
            await interaction.response.defer(ephemeral=True, thinking=True)
            answer = await bot.answer(question)
            await interaction.followup.send(embed=more_embed(answer), ephemeral=True)
            return
        helpful = self.action == "up"
        stored = await bot.storage.record_feedback(self.question_id, interaction.user.id, helpful)
        if stored:
            bot.metrics.voted(helpful)
        text = ("Thanks, glad it helped!" if helpful else "Thanks for telling us; the admins will see this "
                "question in /unanswered.") if stored else "I no longer have that answer on record."
        await interaction.response.send_message(text, ephemeral=True)


def answer_view(question_id: int) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    for action in ("up", "down", "more"):
        view.add_item(AnswerButton(action, question_id))
    return view


class Ask(commands.Cog):
    def __init__(self, bot: HingeBot) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(AnswerButton)

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(AnswerButton)

    @app_commands.command(name="ask", description="Ask a hip-hinge, riding-position or rider-training question")
    @app_commands.describe(question="Your question, e.g. why is my lower back cooked after two motos?",
                           private="Only you see the answer")
    @app_commands.checks.dynamic_cooldown(ask_cooldown)
    async def ask(self, interaction: discord.Interaction, question: str, private: bool = False) -> None:
        limit = self.bot.settings.max_question_chars
        if len(question) > limit:
            await interaction.response.send_message(
                f"That question is {len(question)} characters long; please keep it under {limit} and ask one "
                "thing at a time.", ephemeral=True)
            return
        # Acknowledge at once: Discord allows 3 seconds for that, and 15 minutes for the answer.
        await interaction.response.defer(ephemeral=private, thinking=True)
        answer = await self.bot.answer(question)
        question_id = await self.bot.log_answer(answer, interaction.guild_id, interaction.channel_id,
                                                interaction.user.id)
        view = answer_view(question_id) if answer.answered else discord.utils.MISSING
        await interaction.followup.send(embed=answer_embed(answer), view=view, ephemeral=private)


async def setup(bot: HingeBot) -> None:
    await bot.add_cog(Ask(bot))
