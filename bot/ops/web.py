"""The HTTP endpoint for operators: /healthz and /metrics (Prometheus text format)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

if TYPE_CHECKING:
    from bot.client import HingeBot

log = logging.getLogger(__name__)


class GatewayWatch:
    """Whether the gateway session is live right now.

    discord.py's `is_ready()` turns true at the first READY and stays true while the client
    reconnects, so on its own it cannot tell an operator that the bot is cut off. This follows the
    client's public events instead: down from `on_disconnect` (sent on every lost or closed gateway
    connection) until `on_ready` (a new session) or `on_resumed` (the old one resumed).
    """

    def __init__(self) -> None:
        self.down = False

    def attach(self, bot: HingeBot) -> None:
        bot.add_listener(self._up, "on_ready")
        bot.add_listener(self._up, "on_resumed")
        bot.add_listener(self._down, "on_disconnect")

    async def _up(self) -> None:
        self.down = False

    async def _down(self) -> None:
        self.down = True


async def health_problems(bot: HingeBot, gateway: GatewayWatch | None = None) -> list[str]:
    problems = []
    if not bot.engine.owner.loaded:
        problems.append("index not loaded")
    if bot.is_closed() or not bot.is_ready() or (gateway is not None and gateway.down):
        problems.append("gateway not connected")
    if not await bot.storage.writable():
        problems.append("database not writable")
    return problems


class HealthServer:
    def __init__(self, bot: HingeBot, host: str, port: int) -> None:
        self.bot = bot
        self.host = host
        self.port = port
        self.gateway = GatewayWatch()
        self._runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/metrics", self.metrics)
        return app

    async def healthz(self, request: web.Request) -> web.Response:
        problems = await health_problems(self.bot, self.gateway)
        body = {"status": "ok" if not problems else "unhealthy", "problems": problems}
        return web.json_response(body, status=503 if problems else 200)

    async def metrics(self, request: web.Request) -> web.Response:
        if self.bot.engine.owner.loaded:
            manifest = self.bot.engine.index.manifest
            self.bot.metrics.library(manifest.document_count, manifest.chunk_count)
        return web.Response(body=self.bot.metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def start(self) -> int:
        """Start listening and watching the gateway (call it before the client connects, as
        `setup_hook` does); returns the port (the OS picks one when the setting is 0)."""
        self.gateway.attach(self.bot)
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        addresses = self._runner.addresses  # public: (host, port, ...) of each listening socket
        self.port = int(addresses[0][1]) if addresses else self.port
        log.info("health and metrics on http://%s:%d/healthz and /metrics", self.host, self.port)
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
