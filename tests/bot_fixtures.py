"""A running Hinge Coach bot inside simcord, with a rider, an admin and checks every test gets for free."""

from __future__ import annotations

import re
import sqlite3
import textwrap
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import discord
import simcord

from bot.client import HingeBot
from bot.embeds import (
    DESCRIPTION_LIMIT,
    FIELD_NAME_LIMIT,
    FIELD_VALUE_LIMIT,
    FOOTER_LIMIT,
    MAX_FIELDS,
    TITLE_LIMIT,
    TOTAL_LIMIT,
)
from bot.settings import Settings
from bot.state.storage import Storage
from index.answers.composer import AnswerComposer
from index.answers.decline import DeclinePolicy
from index.engine import Engine
from index.retrieval.embedding import Embedder
from tests.helpers import HashingEmbedder, front_matter, small_library, write_doc

ALWAYS = DeclinePolicy(bias=10.0, weights=(0.0, 0.0, 0.0, 0.0))
NEVER = DeclinePolicy(bias=-10.0, weights=(0.0, 0.0, 0.0, 0.0))
VIDEO_URL = "https://www.youtube.com/watch?v=swing-demo"
NO_MENTIONS = {"parse": []}


def bot_library(root: Path) -> Path:
    """tests.helpers.small_library plus one video document, so /video without a topic has something."""
    small_library(root)
    write_doc(root, "video", "swing-demo", textwrap.dedent("""\
        ## The demo
        A coach shows the kettlebell swing from the side: snap the glutes, float the bell to chest height.
        """), videos=[{"title": "Kettlebell swing demo", "url": VIDEO_URL}])
    return root


def write_titled(root: Path, folder: str, doc_id: str, title: str, body: str, **fields: object) -> Path:
    """Like tests.helpers.write_doc, with a title of our choosing."""
    path = root / folder / f"{doc_id}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(front_matter(id=doc_id, title=title, **fields) + body, encoding="utf-8")
    return path


def make_settings(tmp_path: Path, knowledge: Path | None = None, **overrides: Any) -> Settings:
    # No cooldown unless a test wants one; no /healthz server (the port may be taken).
    values: dict[str, Any] = {"ask_cooldown_seconds": 0, "http_enabled": False, "http_port": 0}
    values.update(overrides)
    return Settings(data_dir=tmp_path / "data",
                    knowledge_dir=knowledge if knowledge is not None else bot_library(tmp_path / "knowledge"),
                    _env_file=None, **values)


def make_bot(settings: Settings, engine: Engine | None = None, composer: AnswerComposer | None = None,
             embedder: Embedder | None = None) -> HingeBot:
    if engine is None:
        engine = Engine(settings.data_dir, settings.knowledge_dir, embedder or HashingEmbedder())
    return HingeBot(settings, engine, Storage(settings.database_path),
                    composer or AnswerComposer(policy=ALWAYS, max_chars=settings.max_question_chars))


@dataclass
class Harness:
    env: simcord.Env
    bot: HingeBot
    guild: simcord.GuildHandle
    channel: simcord.ChannelHandle
    rider: simcord.MemberActor
    admin: simcord.MemberActor

    def command_id(self, name: str) -> int:
        command = self.env.backend.find_command(name, None)
        assert command is not None, f"/{name} was not synced"
        return int(command["id"])

    def allow(self, command: str, target: Any) -> None:
        """Seed a command permission allow, so a member without Manage Server can invoke it."""
        self.guild.set_command_permissions(self.command_id(command), {target: True})

    def member(self, name: str, roles: tuple[simcord.RoleHandle, ...] = ()) -> simcord.MemberActor:
        return self.guild.add_member(self.env.create_user(name), roles=list(roles))

    def bot_messages(self) -> Iterator[Any]:
        """Every message the bot has in the backend (ephemeral ones included)."""
        me = self.env.bot.user
        assert me is not None
        for messages in self.env.backend.messages.values():
            for message in messages.values():
                if message.author_id == me.id:
                    yield message

    def db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.bot.settings.database_path)

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with self.db() as connection:
            return list(connection.execute(sql, params).fetchall())


def check_embed(data: dict[str, Any]) -> None:
    """Discord's documented embed limits."""
    embed = discord.Embed.from_dict(data)
    assert len(embed) <= TOTAL_LIMIT, f"embed is {len(embed)} characters"
    assert len(embed.title or "") <= TITLE_LIMIT
    assert len(embed.description or "") <= DESCRIPTION_LIMIT
    assert len(embed.fields) <= MAX_FIELDS
    for field in embed.fields:
        assert 0 < len(field.name or "") <= FIELD_NAME_LIMIT
        assert 0 < len(field.value or "") <= FIELD_VALUE_LIMIT
    assert len(embed.footer.text or "") <= FOOTER_LIMIT


def check_sent(harness: Harness) -> None:
    """What every test checks at the end: nothing pinged anyone, every embed is within Discord's limits."""
    for message in harness.bot_messages():
        assert not message.mention_everyone, message.content
        assert not message.ping_role_ids, message.content
        # The only ping the bot ever sends: a coach's answer to the rider it is for, named first in the message.
        addressed = {int(i) for i in re.findall(r"^<@(\d+)>", message.content)}
        assert set(message.ping_user_ids) <= addressed, message.content
        for embed in message.embeds:
            check_embed(embed)
    checked = 0
    for entry in harness.env.http_requests:
        body = entry.json
        if entry.path.endswith("/callback") and isinstance(body, dict):
            body = body.get("data")
        if isinstance(body, dict) and ("content" in body or "embeds" in body):
            allowed = body.get("allowed_mentions")
            assert isinstance(allowed, dict) and allowed.get("parse") == [] and not allowed.get("roles"), body
            users = allowed.get("users") or []
            assert allowed == NO_MENTIONS or (len(users) == 1 and body["content"].startswith(f"<@{users[0]}>")), body
            checked += 1
    assert checked or not any(harness.bot_messages()), "no message payload was checked"


@asynccontextmanager
async def running(bot: HingeBot, **options: Any) -> AsyncIterator[Harness]:
    """The bot in a simulated server with a rider (no permissions) and an admin (Manage Server)."""
    async with simcord.run(bot, **options) as env:
        guild = env.create_guild("Moto Club")
        channel = guild.create_text_channel("coaching")
        staff = guild.create_role("Staff", permissions=discord.Permissions(manage_guild=True))
        harness = Harness(env=env, bot=bot, guild=guild, channel=channel,
                          rider=guild.add_member(env.create_user("rider")),
                          admin=guild.add_member(env.create_user("admin"), roles=[staff]))
        # simcord's application has no owner: the admin owns it too, as a one-server team's admin does.
        bot.owner_id = harness.admin.id
        try:
            yield harness
            check_sent(harness)
        finally:
            # simcord does not close the bot: close the database here (a restart may have swapped the bot).
            for used in {id(bot): bot, id(env.bot): env.bot}.values():
                if isinstance(used, HingeBot):
                    await used.storage.close()
