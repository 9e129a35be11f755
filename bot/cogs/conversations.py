"""Plain messages in a conversation: DMs always, and the threads the bot opened when HINGE_THREAD_FOLLOWUPS is
on (it needs the Message Content intent). Messages from bots, and messages addressed to someone else (a reply
to a person, a mention of a person or a role), are never answered."""

from __future__ import annotations

import logging

import discord
from discord import app_commands
from discord.ext import commands

from bot.client import HingeBot
from bot.cogs.ask import answer_view
from bot.embeds import answer_embed
from bot.errors import WENT_WRONG, describe

log = logging.getLogger(__name__)
NEW_CONVERSATION = ("new", "/new", "start over")


async def addressed_elsewhere(message: discord.Message, me: discord.abc.User) -> bool:
    """A reply to a person, or a mention of anyone but the bot: that message is for them, not for us."""
    mentioned = {*message.raw_mentions, *(u.id for u in message.mentions)}
    if message.raw_role_mentions or message.role_mentions or message.mention_everyone or mentioned - {me.id}:
        return True
    reference = message.reference
    if reference is None or reference.message_id is None:
        return False
    replied = reference.resolved if isinstance(reference.resolved, discord.Message) else None
    if replied is None:
        try:
            replied = await message.channel.fetch_message(reference.message_id)
        except discord.HTTPException:
            return True  # can't tell who it was for: stay out of it
    return replied.author.id != me.id


class Conversations(commands.Cog):
    def __init__(self, bot: HingeBot) -> None:
        self.bot = bot

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        me = self.bot.user
        if me is None or message.author.bot or message.author.id == me.id:
            return
        is_dm = message.guild is None
        if not is_dm and not self.bot.settings.thread_followups:
            return
        # Only the threads the bot opened have a conversation (by channel id; the thread may not be cached).
        if not is_dm and await self.bot.conversations.history(message.channel.id) is None:
            return
        if await addressed_elsewhere(message, me) or not message.content.strip():
            return
        try:
            async with self.bot.conversations.turn_lock(message.channel.id):
                history = await self.bot.conversations.history(message.channel.id)
                await self.answer(message, history or [], is_dm)
        except app_commands.CommandOnCooldown as exc:
            await message.reply(describe(exc))
        except Exception:
            log.exception("answering a message in a conversation failed")
            await message.reply(WENT_WRONG)

    async def answer(self, message: discord.Message, history: list, is_dm: bool) -> None:  # type: ignore[type-arg]
        guild_id = message.guild.id if message.guild else None
        question = message.content.strip()
        if is_dm and question.lower() in NEW_CONVERSATION:
            await self.bot.storage.save_conversation(message.channel.id, None, message.author.id, [])
            await message.reply("Starting over: ask me anything.")
            return
        if len(question) > self.bot.settings.max_question_chars:
            await message.reply(f"Please keep questions under {self.bot.settings.max_question_chars} characters.")
            return
        self.bot.limiter.check(message.author.id, message.created_at)
        async with message.channel.typing():
            answer = await self.bot.answer(question, guild_id, history)
        question_id = await self.bot.log_answer(answer, guild_id, message.channel.id, message.author.id,
                                                private=is_dm)
        view: discord.ui.View | None = None
        coached = await self.bot.coach.has_queue() if is_dm else await self.bot.coach.setup_for(guild_id) is not None
        if answer.answered:
            view = answer_view(question_id, ("up", "down", "more", "coach") if coached else ("up", "down", "more"))
        elif coached and answer.status == "declined":
            # In a DM the rider's consent is the button: nothing goes to the coaches without it.
            view = answer_view(question_id, ("coach",))
        sent = await message.reply(embed=answer_embed(answer), view=view or discord.utils.MISSING)
        await self.bot.storage.set_question_message(question_id, sent.id)
        await self.bot.conversations.add(message.channel.id, guild_id, message.author.id, history, answer)


async def setup(bot: HingeBot) -> None:
    await bot.add_cog(Conversations(bot))
