"""Optional: answer a message that mentions the bot, like /ask (needs the message content intent)."""

from __future__ import annotations

import logging
import re

import discord
from discord import app_commands
from discord.ext import commands

from bot.client import HingeBot
from bot.embeds import answer_embed
from bot.errors import WENT_WRONG, describe

log = logging.getLogger(__name__)


class Mentions(commands.Cog):
    def __init__(self, bot: HingeBot) -> None:
        self.bot = bot

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        me = self.bot.user
        if not self.bot.settings.answer_on_mention or me is None or message.author.bot:
            return
        if me not in message.mentions:
            return
        if message.guild is None or (self.bot.settings.thread_followups and
                                     await self.bot.conversations.history(message.channel.id) is not None):
            return  # the conversations cog answers DMs and the bot's own threads
        try:
            await self.answer(message, me.id)
        except app_commands.CommandOnCooldown as exc:
            await message.reply(describe(exc))
        except Exception:
            log.exception("answering a mention failed")
            await message.reply(WENT_WRONG)

    async def answer(self, message: discord.Message, my_id: int) -> None:
        question = re.sub(rf"<@!?{my_id}>", " ", message.content).strip()
        if len(question) > self.bot.settings.max_question_chars:
            await message.reply(f"Please keep questions under {self.bot.settings.max_question_chars} characters.")
            return
        self.bot.limiter.check(message.author.id, message.created_at)
        guild_id = message.guild.id if message.guild else None
        async with message.channel.typing():
            answer = await self.bot.answer(question, guild_id)
        await self.bot.log_answer(answer, guild_id, message.channel.id, message.author.id)
        await message.reply(embed=answer_embed(answer))


async def setup(bot: HingeBot) -> None:
    await bot.add_cog(Mentions(bot))
