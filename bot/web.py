"""The HTTP endpoint for operators: /healthz and /metrics (Prometheus text format)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

if TYPE_CHECKING:
    from bot.client import HingeBot

log = logging.getLogger(__name__)


async def health_problems(bot: HingeBot) -> list[str]:
    problems = []
    if not bot.engine.owner.loaded:
        problems.append("index not loaded")
    if bot.is_closed() or not bot.is_ready():
        problems.append("gateway not connected")
    if not await bot.storage.writable():
        problems.append("database not writable")
    return problems


class HealthServer:
    def __init__(self, bot: HingeBot, host: str, port: int) -> None:
        self.bot = bot
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/metrics", self.metrics)
        return app

    async def healthz(self, request: web.Request) -> web.Response:
        problems = await health_problems(self.bot)
        body = {"status": "ok" if not problems else "unhealthy", "problems": problems}
        return web.json_response(body, status=503 if problems else 200)

    async def metrics(self, request: web.Request) -> web.Response:
        if self.bot.engine.owner.loaded:
            manifest = self.bot.engine.index.manifest
            self.bot.metrics.library(manifest.document_count, manifest.chunk_count)
        return web.Response(body=self.bot.metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def start(self) -> int:
        """Start listening; returns the port (the OS picks one when the setting is 0)."""
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.port = int(sockets[0].getsockname()[1]) if sockets else self.port
        log.info("health and metrics on http://%s:%d/healthz and /metrics", self.host, self.port)
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
