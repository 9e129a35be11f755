"""The Discord client: loads the index in `setup_hook`, adds one cog per concern, syncs commands."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.coach.desk import CoachDesk
from bot.ops.metrics import Metrics
from bot.ops.web import HealthServer
from bot.settings import Settings
from bot.state.conversations import ConversationDesk
from bot.state.library import LibraryEditor, place_legacy_files
from bot.state.storage import Storage
from index.answers.composer import AnswerComposer
from index.answers.conversation import Turn
from index.answers.models import Answer
from index.engine import Engine
from index.errors import HingeError

log = logging.getLogger(__name__)

NOT_HERE = ("Sorry, Hinge Coach answers only in the servers it was set up for; ask the people who run it to add "
            "this one.")
# What a member of a server can send the bot: every interaction (slash command, autocomplete, button, modal) and
# every message (mentions, thread follow-ups).
_FROM_MEMBERS = ("INTERACTION_CREATE", "MESSAGE_CREATE")

COGS = ("bot.cogs.errors", "bot.cogs.ask", "bot.cogs.drills", "bot.cogs.library", "bot.cogs.admin",
        "bot.cogs.mentions", "bot.cogs.setup", "bot.cogs.coach", "bot.cogs.privacy", "bot.cogs.conversations")


class UserLimiter:
    """One per-user limit over everything that searches (/ask, More sources, /video, /drill focus, mentions):
    discord.py's own token-bucket `Cooldown`, one per user."""

    def __init__(self, rate: int, per: float) -> None:
        self.rate, self.per = rate, per
        self._buckets: dict[int, app_commands.Cooldown] = {}
        self._used: dict[int, float] = {}

    def check(self, user_id: int, at: datetime) -> None:
        """Take one request from the user's bucket at `at` (the interaction's or message's creation time, as
        discord.py's own cooldowns use); raises CommandOnCooldown when it is empty."""
        if self.per <= 0:
            return
        now = at.timestamp()
        if len(self._buckets) > 10_000:  # forget idle riders rather than grow without bound
            self._buckets = {k: v for k, v in self._buckets.items() if now - self._used.get(k, 0) < self.per}
        self._used[user_id] = now
        bucket = self._buckets.setdefault(user_id, app_commands.Cooldown(self.rate, self.per))
        retry_after = bucket.update_rate_limit(now)
        if retry_after:
            raise app_commands.CommandOnCooldown(bucket, retry_after)


class HingeBot(commands.Bot):
    def __init__(self, settings: Settings, engine: Engine, storage: Storage,
                 composer: AnswerComposer | None = None) -> None:
        intents = discord.Intents.default()
        # Privileged, so only when a feature needs it: DMs and slash commands carry their text without it.
        intents.message_content = settings.answer_on_mention or settings.thread_followups
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            # No reply may ever ping: set once here, so every message the bot sends inherits it.
            allowed_mentions=discord.AllowedMentions.none(),
            help_command=None,
        )
        self.settings = settings
        self.engine = engine
        self.storage = storage
        self.composer = composer or AnswerComposer(max_chars=settings.max_question_chars)
        self.started_at = time.time()
        self.metrics = Metrics()
        self.web: HealthServer | None = None
        self.warming: asyncio.Task[None] | None = None
        self.limiter = UserLimiter(settings.ask_cooldown_rate, settings.ask_cooldown_seconds)
        self.library = LibraryEditor(engine, storage, self.metrics, prepare=self.composer.prepare)
        self.coach = CoachDesk(self)
        self.conversations = ConversationDesk(self)
        self._refusals: set[asyncio.Task[None]] = set()
        if settings.guild_ids:
            self._answer_only_in(frozenset(settings.guild_ids))

    def _answer_only_in(self, allowed: frozenset[int]) -> None:
        """HINGE_GUILD_IDS as an allow-list, in one place: the gateway events of `_FROM_MEMBERS` from any other
        server never reach discord.py's parsers, so no command, autocomplete, button, modal or listener runs for
        them (the gateway reads this same dict of parsers). DMs carry no server and pass."""
        parsers = self._connection.parsers
        for event in _FROM_MEMBERS:
            parsers[event] = functools.partial(self._if_allowed, allowed, event, parsers[event])

    def _if_allowed(self, allowed: frozenset[int], event: str, parse: Callable[[Any], None], data: Any) -> None:
        guild_id = data.get("guild_id") if isinstance(data, dict) else None
        if guild_id is None or int(guild_id) in allowed:
            parse(data)
            return
        log.info("ignored %s from server %s: not in HINGE_GUILD_IDS", event, guild_id)
        if event == "INTERACTION_CREATE":
            # A polite private refusal; a message gets silence.
            task = asyncio.create_task(self._refuse(data))
            self._refusals.add(task)
            task.add_done_callback(self._refusals.discard)

    async def _refuse(self, data: Any) -> None:
        interaction: discord.Interaction[HingeBot] = discord.Interaction(data=data, state=self._connection)
        try:
            if interaction.type is discord.InteractionType.autocomplete:
                await interaction.response.autocomplete([])
            elif interaction.type is not discord.InteractionType.ping:
                await interaction.response.send_message(NOT_HERE, ephemeral=True)
        except discord.HTTPException:
            log.warning("could not refuse an interaction from server %s", interaction.guild_id, exc_info=True)

    async def setup_hook(self) -> None:
        await self.storage.open()
        moved = await self._place_legacy_library_files()
        if not self.engine.owner.loaded:
            started = time.perf_counter()
            # Loading (or a first build) is CPU work: off the event loop.
            if moved:
                try:
                    await asyncio.to_thread(self.engine.build, built_by="start-up (library files moved)")
                except HingeError:  # the previous index serves on: a bad file must not keep the bot down
                    log.exception("rebuilding after moving the team library's files failed")
            await asyncio.to_thread(self.engine.load)
            log.info("index loaded: %d chunks in %.1fs", len(self.engine.index), time.perf_counter() - started)
        elif moved:
            await asyncio.to_thread(self.engine.reindex, None, "start-up (library files moved)", self.composer.prepare)
        # The composer's vectors of the library (its sentences, document questions, off-topic topics) fill in the
        # background: the bot connects meanwhile, and a question that comes first computes what it needs.
        self.warming = asyncio.create_task(self._warm())
        for cog in COGS:
            await self.load_extension(cog)
        if self.settings.http_enabled:
            self.web = HealthServer(self, self.settings.http_host, self.settings.http_port)
            await self.web.start()
        await self.sync_commands()

    async def _place_legacy_library_files(self) -> int:
        """Files of the team library from before per-server folders go to their server's folder (coach answers,
        by the coach_answers table) or to unassigned/ (not loaded): ownership comes from the folder only."""
        owners = {a.document_id: a.guild_id for a in await self.coach.store.answers(include_removed=True)}
        return len(await asyncio.to_thread(place_legacy_files, self.engine.library_dir, owners))

    async def _warm(self) -> None:
        started = time.perf_counter()
        try:
            for step in self.composer.warm_steps(self.engine.index):
                await asyncio.to_thread(step)
        except Exception:  # a question computes what it needs anyway: a failed warm-up costs only time
            log.exception("warming the answer composer failed")
        else:
            log.info("answer composer warm in %.1fs", time.perf_counter() - started)

    async def sync_commands(self) -> list[app_commands.AppCommand]:
        if self.settings.guild_ids:
            synced: list[app_commands.AppCommand] = []
            for guild_id in self.settings.guild_ids:
                guild = discord.Object(id=guild_id)
                self.tree.copy_global_to(guild=guild)
                synced += await self.tree.sync(guild=guild)
            log.info("synced %d commands to %d server(s)", len(synced), len(self.settings.guild_ids))
            return synced
        synced = await self.tree.sync()
        log.info("synced %d global commands (they can take a while to appear)", len(synced))
        return synced

    async def answer(self, question: str, guild_id: int | None = None, history: Sequence[Turn] = ()) -> Answer:
        """Compose an answer off the event loop, on the index in use when the question came in; a team's own
        documents are cited only in that team's server; `history`: the conversation's earlier turns."""
        index = self.engine.index
        return await asyncio.to_thread(self.composer.ask, index, question, guild_id, history)

    async def log_answer(self, answer: Answer, guild_id: int | None, channel_id: int | None,
                         user_id: int | None, private: bool = False) -> int:
        log.info("question answered=%s status=%s top=%.3f latency=%.1fms", answer.answered, answer.status,
                 answer.top_score or 0.0, answer.elapsed_ms)
        self.metrics.answered(answer.status, answer.elapsed_ms)
        return await self.storage.log_question(answer.question, answer.answered, answer.status, answer.top_score,
                                               answer.confidence, answer.elapsed_ms, guild_id, channel_id, user_id,
                                               private, answer.model_dump_json())

    async def on_error(self, event_method: str, /, *args: object, **kwargs: object) -> None:
        # Listener errors: logged (token redacted by the log filter), never shown to anyone as a traceback.
        log.exception("listener %s failed", event_method)

    async def close(self) -> None:
        await super().close()
        if self.warming is not None:
            # Stopped between two steps: a thread cannot be interrupted, a step is a second or less.
            self.warming.cancel()
            await asyncio.gather(self.warming, return_exceptions=True)
        if self.web is not None:
            await self.web.stop()
        await self.storage.close()
