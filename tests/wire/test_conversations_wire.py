"""Over the wire: the real bot process opens a thread on its answer (the REST call that starts a thread from a
message) and answers a plain message in that thread with the conversation's context; a DM gets the same."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from tests.conftest import KNOWLEDGE
from tests.fake_discord import FakeDiscord
from tests.fake_discord import payloads as p
from tests.fake_discord.process import FAKE_TOKEN, copy_tree, running_bot

pytestmark = pytest.mark.slow

GUILD_ID = 1187654321098765433


def turns(data: Path, channel_id: int) -> list[str]:
    import json

    with sqlite3.connect(data / "hinge.sqlite3") as db:
        row = db.execute("SELECT turns FROM conversations WHERE channel_id = ?", (channel_id,)).fetchone()
    return [t["question"] for t in json.loads(row[0])] if row else []


def test_a_thread_is_opened_and_a_message_in_it_is_answered_with_context(tmp_path: Path, wire_index: Path) -> None:
    data = copy_tree(wire_index, tmp_path / "data")
    knowledge = copy_tree(KNOWLEDGE, tmp_path / "knowledge")
    fake = FakeDiscord(FAKE_TOKEN, guild_ids=(GUILD_ID,)).start()
    try:
        with running_bot(fake, data, knowledge, tmp_path / "bot.log",
                         extra_env={"HINGE_THREAD_FOLLOWUPS": "true"}) as bot:
            identify = fake.bot_frames(op=2)[0].d
            assert identify["intents"] & (1 << 15), "follow-ups in threads need the message content intent"
            rider, friend, other_bot = (p.snowflake() for _ in range(3))  # real-size ids: mentions parse
            ask = fake.slash("ask", question="how do I hinge properly?", thread=True, user_id=rider)
            fake.wait_answered([ask], 60)
            [thread] = fake.wait_until(lambda: fake.threads() or None, 30, "the answer thread")
            [call] = fake.calls("POST", r"^/channels/\d+/messages/\d+/threads$")
            assert thread["name"] == "how do I hinge properly?"
            thread_id = int(thread["id"])
            assert call.path.endswith(f"/messages/{thread_id}/threads")  # a thread started from the answer

            fake.user_message(thread_id, "what if my hamstrings are really tight?", user_id=rider)
            replies = fake.wait_until(
                lambda: [m for m in fake.channel_messages(thread_id) if m["author"].get("bot") and m.get("embeds")]
                or None, 60, "the follow-up's answer")
            assert replies[0]["message_reference"]["channel_id"] == str(thread_id)
            assert not fake.pinged_user_ids(replies[0]) and not fake.pings_everyone(replies[0])
            expected = ["how do I hinge properly?", "what if my hamstrings are really tight?"]
            # The turn is saved right after the reply is sent.
            fake.wait_until(lambda: turns(data, thread_id) == expected or None, 30, "the saved turn")
            # Another bot's message and a reply to a person are left alone.
            fake.user_message(thread_id, "how do I hinge?", user_id=other_bot, bot=True)
            to_friend = fake.user_message(thread_id, "what do you think?", user_id=rider, mentions=[friend])
            fake.user_message(thread_id, "did you try the dowel?", user_id=friend,
                              message_reference=int(to_friend["id"]))
            time.sleep(2)
            assert len([m for m in fake.channel_messages(thread_id) if m["author"].get("bot") and m.get("embeds")]) \
                == 1

            # A DM: answered without any privileged intent, with context too.
            # (Another rider: the first has used up the per-user limit of 3 requests in 5 s.)
            dm_rider = p.snowflake()
            dm = fake.dm_channel(dm_rider)
            # Sent back to back: one turn at a time per conversation, so the second still sees the first.
            fake.user_message(dm, "how do I hold the attack position?", user_id=dm_rider)
            fake.user_message(dm, "and in the whoops?", user_id=dm_rider)
            fake.wait_until(lambda: len([m for m in fake.channel_messages(dm) if m["author"].get("bot")]) >= 2 or None,
                            60, "two DM answers")
            fake.wait_until(lambda: turns(data, dm) == ["how do I hold the attack position?", "and in the whoops?"]
                            or None, 30, "the DM's saved turns")
            assert bot.alive(), bot.log()[-3000:]
    finally:
        fake.stop()
