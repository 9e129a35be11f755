"""Composition root for the Discord bot: settings -> engine -> storage -> bot, with clean shutdown."""

from __future__ import annotations

import asyncio
import logging
import signal

from bot.settings import Settings
from bot.state.storage import Storage
from index.engine import Engine, build_engine

log = logging.getLogger(__name__)
DRAIN_SECONDS = 8.0  # within the usual 10 s grace between SIGTERM and SIGKILL


# discord.py's names for the tasks that run a handler: slash commands, a view's or a persistent (dynamic) item's
# callback, a modal's, and event listeners (on_message, on_interaction: the coach modal's raw handler).
IN_FLIGHT = ("CommandTree-invoker", "discord-ui-view-dispatch-", "discord-ui-dynamic-item-",
             "discord-ui-modal-dispatch-", "discord.py: ")


def in_flight() -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if t.get_name().startswith(IN_FLIGHT) and not t.done()
            and t is not asyncio.current_task()]


async def drain_commands(seconds: float) -> None:
    """Let every interaction and listener already running finish (bounded): slash commands, button presses,
    modal submits, DMs and mentions. Without this a restart leaves a rider looking at "thinking…" with no answer,
    or a coach's submit half done."""
    running = in_flight()
    if running:
        log.info("waiting up to %.0fs for %d interaction(s) and listener(s) in flight", seconds, len(running))
        await asyncio.wait(running, timeout=seconds)


def make_engine(settings: Settings) -> Engine:
    return build_engine(settings.data_dir, settings.knowledge_dir, settings.team_library_dir, settings.engine)


async def run_bot(settings: Settings) -> None:
    from bot.client import HingeBot

    if settings.discord_token is None:
        raise SystemExit("DISCORD_TOKEN is not set: see the README for the Discord developer portal steps")
    bot = HingeBot(settings, make_engine(settings), Storage(settings.database_path))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with bot:
        runner = asyncio.create_task(bot.start(settings.discord_token.get_secret_value()))
        stopper = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if runner in done:
            stopper.cancel()
            runner.result()  # a failed login or a fatal gateway error surfaces here
            return
        log.info("shutting down")
        await drain_commands(DRAIN_SECONDS)
        await bot.close()
        await runner
    log.info("stopped cleanly")
