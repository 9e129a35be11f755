"""Optional: answer a message that mentions the bot, like /ask (needs the message content intent)."""

from __future__ import annotations

import re

import discord
from discord.ext import commands

from bot.client import HingeBot
from bot.embeds import answer_embed


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
        question = re.sub(rf"<@!?{me.id}>", " ", message.content).strip()
        if len(question) > self.bot.settings.max_question_chars:
            await message.reply(f"Please keep questions under {self.bot.settings.max_question_chars} characters.")
            return
        async with message.channel.typing():
            answer = await self.bot.answer(question)
        await self.bot.log_answer(answer, message.guild.id if message.guild else None, message.channel.id,
                                  message.author.id)
        await message.reply(embed=answer_embed(answer))


async def setup(bot: HingeBot) -> None:
    await bot.add_cog(Mentions(bot))
