"""Over the wire: one server, one library of its own, and no answers outside the allow-listed servers.

The real bot process against the fake Discord with three servers: A and B are in HINGE_GUILD_IDS, OTHER is not.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from index.library.documents import load_library
from tests.conftest import KNOWLEDGE
from tests.fake_discord import FakeDiscord, Interaction
from tests.fake_discord.process import FAKE_TOKEN, copy_tree, running_bot
from tests.fake_discord.server import MESSAGE
from tests.wire.test_wire import Wire, answered

pytestmark = pytest.mark.slow

SERVER_A, SERVER_B, OTHER = 1311111111111111111, 1322222222222222222, 1333333333333333333
SOURCE = {"title": "The Hip Hinge", "publisher": "Racer X",
          "url": "https://www.racerxvt.com/article/the-hip-hinge-do-this-to-ride-faster-video"}
DRILL_BODY = ("## Steps\n1. Stand on the pegs.\n2. Hinge.\n## Cues\n- Hips back.\n## Common faults\n- Sitting.\n"
              "## Progressions\n- Add bumps.\n")


def upload_file(doc_id: str, kind: str, body: str, **fields: object) -> bytes:
    meta: dict[str, object] = {"id": doc_id, "kind": kind, "title": doc_id.replace("-", " ").title(),
                               "summary": "Our own notes.", "tags": ["hip-hinge"], "sources": [SOURCE], **fields}
    return ("---\n" + yaml.safe_dump(meta, sort_keys=False) + "---\n" + body).encode()


@pytest.fixture(scope="module")
def wire(tmp_path_factory: pytest.TempPathFactory, wire_index: Path) -> Iterator[Wire]:
    tmp = tmp_path_factory.mktemp("scope-wire")
    data = copy_tree(wire_index, tmp / "data")
    knowledge = copy_tree(KNOWLEDGE, tmp / "knowledge")
    fake = FakeDiscord(FAKE_TOKEN, guild_ids=[SERVER_A, SERVER_B, OTHER]).start()
    env = {"HINGE_GUILD_IDS": f"{SERVER_A},{SERVER_B}", "HINGE_ANSWER_ON_MENTION": "true"}
    try:
        with running_bot(fake, data, knowledge, tmp / "bot.log", extra_env=env) as bot:
            yield Wire(fake, bot, knowledge, data)
            assert bot.alive(), f"the bot died:\n{bot.log()[-4000:]}"
    finally:
        fake.stop()


def upload(wire: Wire, guild: int, name: str, data: bytes, *, admin: bool = True) -> str:
    """/add-source in `guild` by an admin; the bot's last word on it."""
    added = wire.fake.slash("add-source", guild_id=guild, admin=admin, file=(name, data))
    answered(wire, [added], timeout=120)
    wire.fake.wait_until(lambda: any(w in added.text for w in ("Added `", "not added", "failed", "Sorry")), 120,
                         f"the upload of {name}")
    return added.text


def cited(interaction: Interaction) -> str:
    return " ".join(str(e) for body in interaction.replies for e in body.get("embeds") or [])


def test_add_source_stores_in_the_uploading_server_s_folder_and_cites_it_there_only(wire: Wire) -> None:
    fake = wire.fake
    question = "what does the zorbly peg squeeze do for whoops?"
    body = ("## The zorbly peg squeeze\nThe zorbly peg squeeze is our team's whoops cue: hinge at the hips, "
            "squeeze the pegs with the arches of the feet and let the bike move under a long spine.\n")
    # Its front matter claims server B: the bot sets the server, from where it was uploaded.
    said = upload(wire, SERVER_A, "zorbly.md", upload_file("zorbly-peg-squeeze", "forum", body,
                                                           question=question, guild_id=SERVER_B))
    assert "Added `zorbly-peg-squeeze`" in said, said
    stored = wire.data / "library" / "guilds" / str(SERVER_A) / "forum" / "zorbly-peg-squeeze.md"
    assert stored.is_file(), sorted(str(p) for p in (wire.data / "library").rglob("*"))
    assert not (wire.data / "library" / "guilds" / str(SERVER_B)).exists()

    in_a, in_b, in_dm = (fake.slash("ask", guild_id=SERVER_A, question=question),
                         fake.slash("ask", guild_id=SERVER_B, question=question),
                         fake.slash("ask", channel_id=fake.dm_channel(4242), question=question))
    answered(wire, [in_a, in_b, in_dm])
    assert "Zorbly Peg Squeeze" in cited(in_a), in_a.replies
    assert "Zorbly" not in cited(in_b) and "Zorbly" not in cited(in_dm)


def test_drills_videos_and_source_counts_are_the_server_s_own(wire: Wire) -> None:
    fake = wire.fake
    said = upload(wire, SERVER_A, "drill.md", upload_file("quokka-peg-drill", "drill", DRILL_BODY,
                                                          level="beginner", dose="3 sets of 5"))
    assert "Added `quokka-peg-drill`" in said, said
    said = upload(wire, SERVER_A, "video.md", upload_file(
        "quokka-whoops-video", "video", "Our whoops session.\n",
        videos=[{"title": "Quokka whoops session", "url": "https://www.youtube.com/watch?v=quokka00001"}]))
    assert "Added `quokka-whoops-video`" in said, said
    shipped = len(load_library(KNOWLEDGE).documents)

    def in_server(guild: int) -> dict[str, Interaction]:
        return {"typed": fake.slash("drill", guild_id=guild, name="quokka", focused="name"),
                "named": fake.slash("drill", guild_id=guild, name="quokka-peg-drill"),
                "videos": fake.slash("video", guild_id=guild),
                "sources": fake.slash("sources", guild_id=guild)}

    a, b = in_server(SERVER_A), in_server(SERVER_B)
    answered(wire, [*a.values(), *b.values()], timeout=60)
    assert [c["value"] for c in a["typed"].sent[0].body["choices"]] == ["quokka-peg-drill"]
    assert b["typed"].sent[0].body["choices"] == []
    assert "Quokka" in cited(a["named"]) and "no drill called" in b["named"].text
    assert "Quokka whoops session" in cited(a["videos"]) and "Quokka" not in cited(b["videos"])
    assert f"{shipped + 3} documents" in cited(a["sources"])  # the zorbly answer, the drill and the video
    assert f"{shipped} documents" in cited(b["sources"])


def test_a_coach_id_is_refused_and_a_full_reindex_is_the_owner_s_only(wire: Wire) -> None:
    said = upload(wire, SERVER_A, "coach.md", upload_file("coach-12-planted", "related", "Planted text.\n"))
    assert "was not added" in said and "coach" in said, said
    assert not list((wire.data / "library").rglob("coach.md"))
    refused = wire.fake.slash("reindex", guild_id=SERVER_A, admin=True)
    answered(wire, [refused])
    assert refused.callback_type == MESSAGE and refused.sent[0].body["flags"] & 64
    assert "for the bot's owner only" in refused.text and len(refused.sent) == 1


def test_a_server_outside_the_allow_list_gets_a_polite_refusal_and_its_messages_silence(wire: Wire) -> None:
    fake = wire.fake
    # OTHER's members see commands only if they were synced there once (a global sync from before the list).
    fake.commands.setdefault(None, fake.commands[SERVER_A])
    ask = fake.slash("ask", guild_id=OTHER, question="what is a hip hinge?")
    typed = fake.slash("drill", guild_id=OTHER, name="hinge", focused="name")
    allowed = fake.slash("ask", guild_id=SERVER_B, question="what is a hip hinge?")
    answered(wire, [ask, typed, allowed])
    assert ask.callback_type == MESSAGE and ask.sent[0].body["flags"] & 64 and len(ask.sent) == 1
    assert "only in the servers it was set up for" in ask.text
    assert typed.sent[0].body["choices"] == []
    assert "Sorry" not in allowed.text and allowed.replies

    bot_id = fake.application_id
    other_channel = fake.guilds[OTHER].channel_id
    a_channel = fake.guilds[SERVER_A].channel_id
    fake.user_message(other_channel, "what is a hip hinge?", mentions=[bot_id])
    fake.user_message(a_channel, "what is a hip hinge?", mentions=[bot_id])
    fake.wait_until(lambda: any(m["author"]["id"] == str(bot_id) and m["type"] in (0, 19)
                                for m in fake.channel_messages(a_channel)), 60, "the mention answered in server A")
    time.sleep(2)  # the OTHER mention was sent first: had it been answered, the reply would be in by now
    # Type 0 and 19: a message or a reply (the refusal above is an interaction's, type 20).
    assert not [m for m in fake.channel_messages(other_channel)
                if m["author"]["id"] == str(bot_id) and m["type"] in (0, 19)]
