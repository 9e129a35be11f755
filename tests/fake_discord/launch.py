"""Run the real bot (`hinge run`) against the fake Discord named in the environment.

    FAKE_DISCORD_API=http://127.0.0.1:PORT/api/v10 FAKE_DISCORD_GATEWAY=ws://127.0.0.1:PORT/gateway \
        python -m tests.fake_discord.launch

Only discord.py's two base URLs change; the bot itself is the shipped one, unmodified, except with
HINGE_BENCH_UNBATCHED=1, which bench/wire.py --unbatched sets to measure the burst without query batching.
"""

from __future__ import annotations

import os
import sys
from urllib.parse import urlsplit


def point_discord_at(api: str, gateway: str) -> None:
    for url in (api, gateway):
        host = urlsplit(url).hostname
        if host not in ("127.0.0.1", "localhost"):
            raise SystemExit(f"refusing to point the bot at {url}: the fake Discord runs on 127.0.0.1 only")
    import discord.gateway
    import discord.http
    import yarl

    discord.http.Route.BASE = api.rstrip("/")
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway)


def main() -> int:
    point_discord_at(os.environ["FAKE_DISCORD_API"], os.environ["FAKE_DISCORD_GATEWAY"])
    if os.environ.get("HINGE_BENCH_UNBATCHED") == "1":
        import index.engine

        index.engine.BatchingEmbedder = lambda embedder: embedder  # type: ignore[assignment,misc]
    from bot.cli import main as hinge

    return hinge(["run"])


if __name__ == "__main__":
    sys.exit(main())
