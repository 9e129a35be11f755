from pathlib import Path
import discord, simcord
from bot.client import HingeBot
from bot.settings import Settings
from bot.storage import Storage
from index.answers import AnswerComposer, DeclinePolicy
from index.engine import Engine
from tests.helpers import HashingEmbedder, small_library

ALWAYS = DeclinePolicy(bias=10.0, weights=(0.0, 0.0, 0.0, 0.0))

async def test_smoke(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path / "data", knowledge_dir=small_library(tmp_path / "k"), _env_file=None)
    engine = Engine(s.data_dir, s.knowledge_dir, HashingEmbedder())
    bot = HingeBot(s, engine, Storage(s.database_path), AnswerComposer(policy=ALWAYS))
    async with simcord.run(bot) as env:
        guild = env.create_guild()
        ch = guild.create_text_channel("general")
        m = guild.add_member(env.create_user("rider"))
        r = await m.slash(ch, "ask", question="how do I hinge?")
        print(r, r.deferred, r.ephemeral, r.response, r.followups)
        print(r.response.embeds[0].to_dict(), r.response.components)
        c = await m.click(r.response, label="More sources")
        print(c, c.response, c.followups)
        for e in env.http_requests:
            print(e.method, e.path, str(e.json)[:300])
        print(env.backend.find_command("reindex", None))
