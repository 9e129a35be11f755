"""The fake Discord itself, without the bot: framing, the session dance, REST faults (fast)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import zlib
from typing import Any

import aiohttp
import discord
import pytest

from tests.fake_discord import FakeDiscord, pinged_role_ids, pinged_user_ids, pings_everyone

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


# -- a real discord.py Client in-process against the fake ---------------------------------------------------------


@pytest.fixture
async def client(fake: FakeDiscord, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A discord.py Client (message content intent on) connected to the fake; its events in `client.seen`."""
    import discord.gateway
    import discord.http
    import yarl

    monkeypatch.setattr(discord.http.Route, "BASE", fake.api_base)
    monkeypatch.setattr(discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(fake.gateway_url))
    intents = discord.Intents.default()
    intents.message_content = True
    bot = discord.Client(intents=intents, guild_ready_timeout=0.2)  # READY without the 2 s wait
    bot.seen = asyncio.Queue()  # type: ignore[attr-defined]

    @bot.event
    async def on_message(message: discord.Message) -> None:
        if message.author.id != bot.user.id:  # type: ignore[union-attr]
            await bot.seen.put(("message", message))  # type: ignore[attr-defined]

    @bot.event
    async def on_thread_create(thread: discord.Thread) -> None:
        await bot.seen.put(("thread", thread))  # type: ignore[attr-defined]

    @bot.event
    async def on_guild_channel_create(channel: discord.abc.GuildChannel) -> None:
        await bot.seen.put(("channel", channel))  # type: ignore[attr-defined]

    await bot.login(TOKEN)
    task = asyncio.create_task(bot.connect(reconnect=False))
    await asyncio.wait_for(bot.wait_until_ready(), 10)
    yield bot
    await asyncio.wait_for(bot.close(), 10)
    task.cancel()
    with contextlib.suppress(BaseException):
        await task


async def next_event(bot: Any, kind: str) -> Any:
    while True:
        seen, item = await asyncio.wait_for(bot.seen.get(), 5)
        if seen == kind:
            return item


async def test_channels_and_roles_reach_the_client(fake: FakeDiscord, client: Any) -> None:
    lounge = await asyncio.to_thread(fake.add_channel, GUILD, "lounge")
    channel = await next_event(client, "channel")
    assert channel.id == lounge and channel.name == "lounge" and isinstance(channel, discord.TextChannel)
    mods = await asyncio.to_thread(fake.add_role, GUILD, "Mods", 1 << 13)
    await asyncio.sleep(0.2)
    guild = client.get_guild(GUILD)
    assert guild.get_role(mods).name == "Mods" and guild.get_channel(fake.guilds[GUILD].channel_id)
    assert any(int(c["id"]) == lounge for c in fake.guilds[GUILD].payload(fake.bot_user)["channels"])
    assert (await client.fetch_channel(lounge)).name == "lounge"  # GET /channels/{id}
    with pytest.raises(discord.NotFound):
        await client.fetch_channel(123)


async def test_messages_files_replies_and_pings(fake: FakeDiscord, client: Any) -> None:
    channel = client.get_channel(fake.guilds[GUILD].channel_id)
    rider, other, role = 111111111111111111, 222222222222222222, fake.guilds[GUILD].admin_role_id
    sent = await channel.send(f"<@{rider}> <@{other}> <@&{role}> @everyone look",
                              allowed_mentions=discord.AllowedMentions(users=[discord.Object(rider)], roles=False,
                                                                       everyone=False),
                              file=discord.File(io.BytesIO(b"hinge notes"), "notes.txt"),
                              embed=discord.Embed(title="Hinge"))
    assert sent.attachments[0].filename == "notes.txt" and sent.attachments[0].size == 11
    stored = fake.channel_messages(channel.id)[-1]
    assert stored["attachments"][0]["data"] == b"hinge notes" and stored["embeds"][0]["title"] == "Hinge"
    assert fake.pinged_user_ids(stored) == [rider]
    assert pinged_role_ids(stored) == [] and not pings_everyone(stored)
    # A user's message (default allowed_mentions: everything pings); the bot replies without pinging.
    asked = await asyncio.to_thread(fake.user_message, channel.id, "how deep?", user_id=rider, mentions=[other])
    got = await next_event(client, "message")
    assert got.content == f"how deep? <@{other}>" and got.author.id == rider and got.guild.id == GUILD
    assert pinged_user_ids(asked) == [other]
    reply = await got.reply(f"<@{rider}> about 30 degrees", mention_author=False,
                            allowed_mentions=discord.AllowedMentions.none())
    stored = fake.message(reply.id)
    assert stored["message_reference"]["message_id"] == asked["id"] and stored["type"] == 19
    assert stored["allowed_mentions"]["replied_user"] is False and pinged_user_ids(stored) == []
    pinging = await got.reply("again")  # default: the reply pings its author
    assert pinged_user_ids(fake.message(pinging.id)) == [rider]
    # Replying to an interaction answer by message id; edits, fetches, deletes.
    fake._sync(GUILD, [{"name": "ask", "description": "Ask", "options": [
        {"name": "question", "description": "q", "type": 3, "required": True}]}])

    @client.event
    async def on_interaction(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("an answer")

    ask = await asyncio.to_thread(fake.slash, "ask", question="hinge?", user_id=rider)
    await asyncio.to_thread(fake.wait_answered, [ask], 5)
    answer = fake.channel_messages(channel.id)[-1]
    assert answer["content"] == "an answer" and int(answer["id"]) == ask.original_id
    follow = await channel.send("more", reference=discord.MessageReference(message_id=ask.original_id,
                                                                            channel_id=channel.id))
    assert fake.message(follow.id)["referenced_message"]["content"] == "an answer"
    with pytest.raises(discord.HTTPException) as bad:
        await channel.send("x", reference=discord.MessageReference(message_id=42, channel_id=channel.id))
    assert bad.value.code == 50035
    await follow.edit(content="more, edited")
    assert (await channel.fetch_message(follow.id)).content == "more, edited"
    await follow.delete()
    with pytest.raises(discord.NotFound):
        await channel.fetch_message(follow.id)
    with pytest.raises(discord.Forbidden):
        await got.edit(content="not mine")


async def test_clicks_update_defer_and_modals(fake: FakeDiscord, client: Any) -> None:
    class Why(discord.ui.Modal, title="Why?"):
        why = discord.ui.Label(text="Why", component=discord.ui.TextInput(custom_id="why", max_length=50))
        extra = discord.ui.TextInput(label="Extra", custom_id="extra", required=False)

        async def on_submit(self, interaction: discord.Interaction) -> None:
            assert isinstance(self.why.component, discord.ui.TextInput)
            await interaction.response.send_message(f"got {self.why.component.value}/{self.extra.value}")

    class Buttons(discord.ui.View):
        @discord.ui.button(label="Bump", custom_id="bump")
        async def bump(self, interaction: discord.Interaction, button: discord.ui.Button[Any]) -> None:
            await interaction.response.edit_message(content="bumped", view=self)

        @discord.ui.button(label="Later", custom_id="later")
        async def later(self, interaction: discord.Interaction, button: discord.ui.Button[Any]) -> None:
            await interaction.response.defer()
            await interaction.edit_original_response(content="later, edited")

        @discord.ui.button(label="Ask", custom_id="ask")
        async def ask(self, interaction: discord.Interaction, button: discord.ui.Button[Any]) -> None:
            await interaction.response.send_modal(Why())

    channel = client.get_channel(fake.guilds[GUILD].channel_id)
    sent = await channel.send("pick one", view=Buttons())
    bump = await asyncio.to_thread(fake.click, sent.id, "bump", user_id=5, roles=[fake.guilds[GUILD].admin_role_id])
    await asyncio.to_thread(fake.wait_answered, [bump], 5)
    assert bump.callback_type == 7 and fake.message(sent.id)["content"] == "bumped"
    later = await asyncio.to_thread(fake.click, fake.message(sent.id), "later")
    await asyncio.to_thread(fake.wait_answered, [later], 5)
    assert later.callback_type == 6 and fake.message(sent.id)["content"] == "later, edited"
    with pytest.raises(KeyError):
        fake.click(sent.id, "nope")
    asked = await asyncio.to_thread(fake.click, sent.id, "ask", user_id=7)
    await asyncio.to_thread(fake.wait_answered, [asked], 5)
    assert asked.callback_type == 9 and asked.modal is not None and asked.modal["title"] == "Why?"
    with pytest.raises(ValueError):
        fake.submit_modal(asked, {"extra": "x"})  # "why" is required
    submitted = await asyncio.to_thread(fake.submit_modal, asked, {"why": "hips", "extra": "knees"})
    await asyncio.to_thread(fake.wait_answered, [submitted], 5)
    assert submitted.user_id == 7 and submitted.text == "got hips/knees"
    assert fake.channel_messages(channel.id)[-1]["content"] == "got hips/knees"


async def test_threads_dms_and_permission_faults(fake: FakeDiscord, client: Any) -> None:
    channel = client.get_channel(fake.guilds[GUILD].channel_id)
    await asyncio.to_thread(fake.user_message, channel.id, "start here", user_id=9)
    message = await next_event(client, "message")
    thread = await message.create_thread(name="Hinge talk")
    assert thread.id == message.id and thread.parent_id == channel.id
    assert (await next_event(client, "thread")).id == thread.id
    await thread.send("in the thread")
    assert [m["content"] for m in fake.channel_messages(thread.id)] == ["in the thread"]
    await asyncio.to_thread(fake.user_message, thread.id, "thanks", user_id=9)
    inside = await next_event(client, "message")
    assert isinstance(inside.channel, discord.Thread) and inside.channel.id == thread.id
    private = await channel.create_thread(name="private", type=discord.ChannelType.private_thread)
    assert fake.threads(channel.id)[-1]["type"] == 12 and private.type == discord.ChannelType.private_thread
    fake.fail("POST", r"/threads$", status=403)
    with pytest.raises(discord.Forbidden) as denied:
        await channel.create_thread(name="denied", type=discord.ChannelType.public_thread)
    assert denied.value.code == 50013
    fake.fail("POST", r"^/channels/\d+/messages$", status=403)
    with pytest.raises(discord.Forbidden):
        await channel.send("nope")
    # DMs: the bot opens one and writes; the user answers (MESSAGE_CREATE without guild_id).
    dm = await client.create_dm(discord.Object(9))
    assert dm.id == fake.dm_channel(9) and isinstance(dm, discord.DMChannel)
    await dm.send("hello in private")
    assert fake.channel_messages(dm.id)[0]["content"] == "hello in private"
    await asyncio.to_thread(fake.user_message, dm.id, "hi coach", user_id=9)
    got = await next_event(client, "message")
    assert got.guild is None and got.content == "hi coach" and isinstance(got.channel, discord.DMChannel)
    assert "guild_id" not in fake.channel_messages(dm.id)[-1]
