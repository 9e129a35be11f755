"""/ask and its buttons: Helpful, Not helpful, More sources, Ask a coach, Don't send to coaches."""

from __future__ import annotations

import logging
import re
from typing import Any, ClassVar

import discord
from discord import app_commands
from discord.ext import commands

from bot.client import HingeBot
from bot.coach.desk import CoachQueueError
from bot.embeds import answer_embed, clip, more_embed, safe
from bot.errors import report
from bot.state.storage import QuestionRecord
from index.answers.models import Answer

log = logging.getLogger(__name__)

COACH_WILL_SEE = "A coach will see this question; their answer will come back to you here."


class AnswerButton(discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
                   template=r"hinge:(?P<action>up|down|more|coach|withdraw):(?P<question_id>[0-9]+)"):
    """A button that still works after a restart: its custom id carries the logged question."""

    LABELS: ClassVar[dict[str, tuple[str, discord.ButtonStyle, str]]] = {
        "up": ("Helpful", discord.ButtonStyle.success, "👍"),
        "down": ("Not helpful", discord.ButtonStyle.secondary, "👎"),
        "more": ("More sources", discord.ButtonStyle.primary, "📚"),
        "coach": ("Ask a coach", discord.ButtonStyle.secondary, "🙋"),
        "withdraw": ("Don't send to coaches", discord.ButtonStyle.secondary, "✋"),
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
        try:
            await self.run(interaction)
        except Exception as exc:
            await report(interaction, exc, f"button {self.action}")

    async def run(self, interaction: discord.Interaction) -> None:
        bot: HingeBot = interaction.client  # type: ignore[assignment]
        record = await bot.storage.question_record(self.question_id)
        if record is None:
            await interaction.response.send_message("I no longer have that question.", ephemeral=True)
            return
        if self.action != "up":
            # Every button that costs an embedding, a card edit or a search counts against the rider's limit.
            bot.limiter.check(interaction.user.id, interaction.created_at)
        if self.action == "more":
            # The passages found when the question was answered: no second search.
            answer = Answer.model_validate_json(record.answer_json) if record.answer_json else None
            if answer is None:
                await interaction.response.send_message("I no longer have those sources.", ephemeral=True)
                return
            await interaction.response.send_message(embed=more_embed(answer), ephemeral=True)
        elif self.action == "withdraw":
            withdrawn = record.user_id == interaction.user.id and await bot.coach.withdraw(record.id,
                                                                                           interaction.user.id)
            await interaction.response.send_message("OK, the coaches won't get this one." if withdrawn else
                                                    "Only the rider who asked can withdraw it, once.", ephemeral=True)
        elif self.action == "coach":
            if record.user_id != interaction.user.id:
                await interaction.response.send_message("Only the rider who asked can send it to the coaches; ask "
                                                        "it yourself with /ask.", ephemeral=True)
                return
            if record.private:
                await ask_consent(interaction, bot, record)
                return
            await interaction.response.defer(ephemeral=True, thinking=True)
            queued = await bot.coach.enqueue(record, "asked")
            await interaction.followup.send(f"Sent to the coaches{coach_count(queued.riders)}. {COACH_WILL_SEE}",
                                            ephemeral=True)
        else:
            await self.vote(interaction, bot, record)

    async def vote(self, interaction: discord.Interaction, bot: HingeBot, record: QuestionRecord) -> None:
        helpful = self.action == "up"
        stored = await bot.storage.record_feedback(record.id, interaction.user.id, helpful)
        if stored:
            bot.metrics.voted(helpful)
        if not stored:
            await interaction.response.send_message("I no longer have that answer on record.", ephemeral=True)
            return
        if helpful:
            await interaction.response.send_message("Thanks, glad it helped!", ephemeral=True)
            return
        if record.private:
            # A private question reaches the coaches only through Ask a coach, which shows first what they see.
            await interaction.response.send_message(
                "Thanks for telling us. This question is private, so it stays with you: press **Ask a coach** if "
                "you want the team's coaches to see it.", ephemeral=True)
            return
        queued = None
        # Only the rider's own vote puts their question on the queue: anyone else's is feedback only.
        if record.user_id == interaction.user.id and await bot.coach.setup_for(record.guild_id) is not None:
            await interaction.response.defer(ephemeral=True, thinking=True)
            queued = await bot.coach.enqueue(record, "not_helpful")
        text = (f"Thanks for telling us; the team's coaches will see this question{coach_count(queued.riders)}."
                if queued else "Thanks for telling us; the admins will see this question in /unanswered.")
        await (interaction.followup.send(text, ephemeral=True) if queued else
               interaction.response.send_message(text, ephemeral=True))


class ConsentButton(discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
                    template=r"hinge:consent:(?P<question_id>[0-9]+):(?P<guild_id>[0-9]+)"):
    """The rider's yes to sending a private question (or one asked in a DM) to one server's coaches."""

    def __init__(self, question_id: int, guild_id: int, label: str) -> None:
        super().__init__(discord.ui.Button(label=clip(label, 80), style=discord.ButtonStyle.primary, emoji="🙋",
                                           custom_id=f"hinge:consent:{question_id}:{guild_id}"))
        self.question_id = question_id
        self.guild_id = guild_id

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Item[Any],
                             match: re.Match[str], /) -> ConsentButton:
        return cls(int(match["question_id"]), int(match["guild_id"]), "Send to the coaches")

    async def callback(self, interaction: discord.Interaction) -> None:
        try:
            await self.run(interaction)
        except Exception as exc:
            await report(interaction, exc, "button consent")

    async def run(self, interaction: discord.Interaction) -> None:
        bot: HingeBot = interaction.client  # type: ignore[assignment]
        record = await bot.storage.question_record(self.question_id)
        if record is None or record.user_id != interaction.user.id:
            await interaction.response.send_message("Only the rider who asked can send it to the coaches.",
                                                    ephemeral=True)
            return
        bot.limiter.check(interaction.user.id, interaction.created_at)
        await interaction.response.defer(ephemeral=True, thinking=True)
        allowed = [record.guild_id] if record.guild_id is not None else \
            await bot.coach.shared_queues(interaction.user.id)
        if self.guild_id not in allowed:
            await interaction.followup.send("That server's coaches can't take your question.", ephemeral=True)
            return
        queued = await bot.coach.enqueue(record, "asked", self.guild_id)
        await interaction.followup.send(
            f"Sent to the coaches of {safe(bot.coach.guild_name(self.guild_id))}{coach_count(queued.riders)}. "
            "They see your question, not your name; their answer comes to you by DM.", ephemeral=True)


async def ask_consent(interaction: discord.Interaction, bot: HingeBot, record: QuestionRecord) -> None:
    """Before a private question goes anywhere: what the coaches will see, and which server's coaches."""
    await interaction.response.defer(ephemeral=True, thinking=True)
    guilds = [record.guild_id] if record.guild_id is not None else await bot.coach.shared_queues(interaction.user.id)
    if not guilds:
        await interaction.followup.send("None of the servers we share has a coach queue, so there is no coach to "
                                        "send this to.", ephemeral=True)
        return
    view = discord.ui.View(timeout=None)
    for guild_id in guilds[:25]:
        name = bot.coach.guild_name(guild_id)
        view.add_item(ConsentButton(record.id, guild_id, f"Send to the coaches of {name}" if len(guilds) > 1
                                    else "Send to the coaches"))
    where = (f"the coaches of **{safe(bot.coach.guild_name(guilds[0]))}**" if len(guilds) == 1 else
             "the coaches of the server you choose")
    await interaction.followup.send(
        f"If you send it, {where} will see this question, without your name:\n> {clip(safe(record.question), 500)}\n"
        "Their answer comes back to you by DM. Nothing is sent until you press the button.", view=view,
        ephemeral=True)


def coach_count(riders: int) -> str:
    return f" ({riders} riders asked this)" if riders > 1 else ""


def answer_view(question_id: int, actions: tuple[str, ...] = ("up", "down", "more")) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    for action in actions:
        view.add_item(AnswerButton(action, question_id))
    return view


class Ask(commands.Cog):
    def __init__(self, bot: HingeBot) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(AnswerButton, ConsentButton)

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(AnswerButton, ConsentButton)

    @app_commands.command(name="ask", description="Ask a hip-hinge, riding-position or rider-training question")
    @app_commands.describe(question="Your question, e.g. why is my lower back cooked after two motos?",
                           private="Only you see the answer",
                           thread="Open a thread on the answer for follow-up questions")
    async def ask(self, interaction: discord.Interaction, question: str, private: bool = False,
                  thread: bool | None = None) -> None:
        limit = self.bot.settings.max_question_chars
        if len(question) > limit:
            # Refused before the limit: a question too long to answer costs no request.
            await interaction.response.send_message(
                f"That question is {len(question)} characters long; please keep it under {limit} and ask one "
                "thing at a time.", ephemeral=True)
            return
        self.bot.limiter.check(interaction.user.id, interaction.created_at)
        # Acknowledge at once: Discord allows 3 seconds for that, and 15 minutes for the answer.
        await interaction.response.defer(ephemeral=private, thinking=True)
        # Inside a thread the bot opened (or a DM), earlier questions are the context.
        history = await self.bot.conversations.history(interaction.channel_id)
        answer = await self.bot.answer(question, interaction.guild_id, history or ())
        private = private or interaction.guild_id is None  # a DM is private
        question_id = await self.bot.log_answer(answer, interaction.guild_id, interaction.channel_id,
                                                interaction.user.id, private)
        coached = await self.bot.coach.setup_for(interaction.guild_id) is not None or (
            interaction.guild_id is None and await self.bot.coach.has_queue())
        queued = False
        if coached and not answer.answered and answer.status == "declined" and not private:
            # Queued before the rider is told it was: a crash after this still has the question on a card.
            record = await self.bot.storage.question_record(question_id)
            assert record is not None
            try:
                await self.bot.coach.enqueue(record, "declined")
                queued = True
            except CoachQueueError:
                log.warning("the coach queue of server %s went away", interaction.guild_id)
        view: discord.ui.View | None = None
        if answer.answered:
            view = answer_view(question_id, ("up", "down", "more", "coach") if coached else ("up", "down", "more"))
        elif coached and answer.status == "declined":
            view = answer_view(question_id, ("withdraw",) if queued else ("coach",))
        embed = answer_embed(answer)
        if queued:
            embed.add_field(name="Asked the coaches", value=COACH_WILL_SEE, inline=False)
        sent = await interaction.followup.send(embed=embed, view=view or discord.utils.MISSING, ephemeral=private,
                                               wait=True)
        await self.bot.storage.set_question_message(question_id, sent.id)
        if queued:
            await self.bot.coach.store.set_asker_message(question_id, sent.id)
        if history is not None and interaction.channel_id is not None:
            await self.bot.conversations.add(interaction.channel_id, interaction.guild_id, interaction.user.id,
                                             history, answer)
        elif not private and answer.status != "invalid" and await self.wants_thread(interaction, thread):
            await self.bot.conversations.open_thread(interaction, sent.id, answer)

    async def wants_thread(self, interaction: discord.Interaction, asked: bool | None) -> bool:
        if interaction.guild_id is None or isinstance(interaction.channel, discord.Thread):
            return False
        if asked is not None:
            return asked
        return bool((await self.bot.storage.guild_settings(interaction.guild_id)).answer_threads)


async def setup(bot: HingeBot) -> None:
    await bot.add_cog(Ask(bot))
