"""The fake Discord itself, without the bot: framing, the session dance, REST faults (fast)."""

from __future__ import annotations

import json
import zlib
from typing import Any

import aiohttp
import pytest

from tests.fake_discord import FakeDiscord

TOKEN = "fake-token"
GUILD = 1187654321098765432


@pytest.fixture
def fake() -> Any:
    with FakeDiscord(TOKEN, guild_ids=[GUILD]) as running:
        yield running


class Reader:
    """discord.py's way of reading zlib-stream frames: one inflater, a frame ends with 00 00 ff ff."""

    def __init__(self) -> None:
        self.inflater = zlib.decompressobj()

    def read(self, data: bytes) -> dict[str, Any]:
        assert data[-4:] == b"\x00\x00\xff\xff"
        decoded: dict[str, Any] = json.loads(self.inflater.decompress(data))
        return decoded


async def test_gateway_speaks_zlib_stream_and_resumes(fake: FakeDiscord) -> None:
    async with aiohttp.ClientSession() as http:
        reader = Reader()
        async with http.ws_connect(fake.gateway_url + "?v=10&encoding=json&compress=zlib-stream") as ws:
            hello = reader.read(await ws.receive_bytes(timeout=5))
            assert hello["op"] == 10 and hello["d"]["heartbeat_interval"] > 0
            await ws.send_str(json.dumps({"op": 1, "d": None}))
            assert reader.read(await ws.receive_bytes(timeout=5))["op"] == 11
            await ws.send_str(json.dumps({"op": 2, "d": {"token": TOKEN, "intents": 513, "properties": {}}}))
            ready = reader.read(await ws.receive_bytes(timeout=5))
            guild = reader.read(await ws.receive_bytes(timeout=5))
            assert (ready["t"], ready["s"], guild["t"], guild["s"]) == ("READY", 1, "GUILD_CREATE", 2)
            assert guild["d"]["roles"][1]["permissions"] == str(fake.guilds[GUILD].payload({})["roles"][1]
                                                                ["permissions"])
            session, resume_url = ready["d"]["session_id"], ready["d"]["resume_gateway_url"]
        assert resume_url.startswith("ws://127.0.0.1:")
        fake._run(lambda: fake._dispatch_on(fake.sessions[session], "TYPING_START", {"x": 1}))
        reader = Reader()
        async with http.ws_connect(resume_url + "?v=10&encoding=json&compress=zlib-stream") as ws:
            reader.read(await ws.receive_bytes(timeout=5))  # HELLO
            await ws.send_str(json.dumps({"op": 6, "d": {"token": TOKEN, "session_id": session, "seq": 2}}))
            missed = reader.read(await ws.receive_bytes(timeout=5))
            resumed = reader.read(await ws.receive_bytes(timeout=5))
            assert (missed["t"], missed["s"], resumed["t"]) == ("TYPING_START", 3, "RESUMED")
        async with http.ws_connect(fake.gateway_url + "?v=10&encoding=json") as ws:
            assert json.loads(await ws.receive_str(timeout=5))["op"] == 10  # plain text without compress
            await ws.send_str(json.dumps({"op": 2, "d": {"token": "wrong"}}))
            await ws.receive(timeout=5)
            assert ws.close_code == 4004


async def test_rest_routes_faults_and_rate_limit_headers(fake: FakeDiscord) -> None:
    auth = {"Authorization": f"Bot {TOKEN}"}
    async with aiohttp.ClientSession() as http:
        async with http.get(fake.api_base + "/users/@me", headers=auth) as r:
            assert r.status == 200 and r.headers["Content-Type"] == "application/json"
            assert (await r.json())["bot"] is True
        async with http.get(fake.api_base + "/users/@me") as r:
            assert r.status == 401
        fake.fail("GET", r"^/gateway/bot$", status=429, times=1, retry_after=0.25)
        fake.fail("GET", r"^/gateway/bot$", status=500, times=1)
        async with http.get(fake.api_base + "/gateway/bot", headers=auth) as r:
            assert r.status == 429 and r.headers["Via"] and r.headers["X-RateLimit-Remaining"] == "0"
            assert float(r.headers["X-RateLimit-Reset-After"]) == 0.25
            assert (await r.json())["retry_after"] == 0.25
        async with http.get(fake.api_base + "/gateway/bot", headers=auth) as r:
            assert r.status == 500
        async with http.get(fake.api_base + "/gateway/bot", headers=auth) as r:
            assert r.status == 200 and (await r.json())["url"].startswith("ws://127.0.0.1:")
        app = fake.application_id
        commands = [{"name": "ask", "description": "Ask", "options": [
            {"name": "question", "description": "q", "type": 3, "required": True}]}]
        async with http.put(f"{fake.api_base}/applications/{app}/guilds/{GUILD}/commands", json=commands,
                            headers=auth) as r:
            synced = await r.json()
            assert synced[0]["id"] and synced[0]["guild_id"] == str(GUILD)
    assert [c.status for c in fake.calls("GET", "gateway")] == [429, 500, 200]
    assert fake.calls("PUT")[0].body == commands
