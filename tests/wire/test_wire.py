"""Over the wire: the real bot process (`hinge run`) against a fake Discord on 127.0.0.1.

The fake speaks discord.py's REST routes and its zlib-stream JSON gateway, records every request and
frame, and injects faults. One bot serves most tests in this module (starting one takes seconds);
the SIGTERM test starts its own.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from index.library.documents import load_library
from tests.conftest import KNOWLEDGE
from tests.fake_discord import FakeDiscord, Interaction
from tests.fake_discord.process import FAKE_TOKEN, BotProcess, copy_tree, running_bot
from tests.fake_discord.server import DEFERRED_MESSAGE, MESSAGE, RESUME

pytestmark = pytest.mark.slow

GUILD_ID = 1187654321098765432
SORRY = "something went wrong"
LINK = re.compile(r"\]\((https?://[^)\s]+)\)")


@pytest.fixture(scope="session")
def built_index(wire_index: Path) -> Path:
    """The real library indexed once per test run (tests/wire/conftest.py); each bot gets a copy of it."""
    return wire_index


@dataclass
class Wire:
    fake: FakeDiscord
    bot: BotProcess
    knowledge: Path
    data: Path


def start(tmp: Path, built: Path, guild_ids: tuple[int, ...] = (GUILD_ID,),
          extra_env: dict[str, str] | None = None) -> tuple[FakeDiscord, Path, Path]:
    data = copy_tree(built, tmp / "data")
    knowledge = copy_tree(KNOWLEDGE, tmp / "knowledge")
    return FakeDiscord(FAKE_TOKEN, guild_ids=guild_ids).start(), data, knowledge


@pytest.fixture(scope="module")
def wire(tmp_path_factory: pytest.TempPathFactory, built_index: Path) -> Iterator[Wire]:
    tmp = tmp_path_factory.mktemp("wire-bot")
    fake, data, knowledge = start(tmp, built_index)
    try:
        with running_bot(fake, data, knowledge, tmp / "bot.log") as bot:
            yield Wire(fake, bot, knowledge, data)
            assert bot.alive(), f"the bot died:\n{bot.log()[-4000:]}"
    finally:
        fake.stop()


def answered(wire: Wire, interactions: list[Interaction], timeout: float = 30) -> None:
    try:
        wire.fake.wait_answered(interactions, timeout)
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\nbot log:\n{wire.bot.log()[-4000:]}") from exc


def embed(interaction: Interaction) -> dict[str, object]:
    embeds = [e for body in interaction.replies for e in body.get("embeds") or []]
    assert embeds, f"/{interaction.name} sent no embed: {interaction.replies}"
    return embeds[-1]  # type: ignore[no-any-return]


# -- connect and sync --------------------------------------------------------------------------
def test_connects_identifies_and_syncs_the_command_schema(wire: Wire) -> None:
    fake = wire.fake
    conn = fake.wait_connected()
    assert conn.query == {"v": "10", "encoding": "json", "compress": "zlib-stream"}
    identify = fake.bot_frames(op=2)[0].d
    assert identify["token"] == FAKE_TOKEN and identify["properties"]["browser"] == "discord.py"
    assert not identify["intents"] & (1 << 15), "the message content intent is off by default"
    assert fake.bot_frames(op=1), "discord.py heartbeats at once after HELLO"
    assert all(c.authorization == f"Bot {FAKE_TOKEN}" for c in fake.calls(path=r"^/(users|oauth2|applications)/"))
    assert fake.calls("PUT", rf"/guilds/{GUILD_ID}/commands$"), "guild sync, since HINGE_GUILD_IDS is set"

    commands = {c["name"]: c for c in fake.commands[GUILD_ID]}
    assert set(commands) == {"ask", "drill", "video", "sources", "reindex", "add-source", "unanswered", "setup",
                             "coach-answers", "forget", "digest", "forget-me"}

    def options(name: str) -> dict[str, dict[str, object]]:
        return {o["name"]: o for o in commands[name].get("options", [])}

    ask = options("ask")
    assert ask["question"]["type"] == 3 and ask["question"]["required"] is True
    assert ask["private"]["type"] == 5 and not ask["private"].get("required")
    drill = options("drill")
    assert drill["name"]["autocomplete"] is True and drill["focus"]["type"] == 3
    assert {c["value"] for c in drill["level"]["choices"]} == {"beginner", "intermediate", "advanced"}  # type: ignore[attr-defined]
    assert options("video")["topic"]["type"] == 3 and options("sources") == {}
    upload = options("add-source")
    assert upload["file"]["type"] == 11 and upload["file"]["required"] is True
    assert {c["value"] for c in upload["kind"]["choices"]} >= {"article", "drill", "video"}  # type: ignore[attr-defined]
    days = options("unanswered")["days"]
    assert (days["type"], days["min_value"], days["max_value"]) == (4, 1, 365)
    for admin in ("reindex", "add-source", "unanswered", "setup", "forget", "digest"):
        assert commands[admin]["default_member_permissions"] == str(1 << 5), f"/{admin} defaults to Manage Server"


# -- the commands --------------------------------------------------------------------------------
def test_ask_is_deferred_at_once_and_answered_with_citations_and_links(wire: Wire) -> None:
    ask = wire.fake.slash("ask", question="Why is my lower back cooked after two motos?")
    answered(wire, [ask])
    assert ask.callback_type == DEFERRED_MESSAGE and ask.ack_latency is not None and ask.ack_latency < 3
    body = ask.replies[-1]
    assert body["allowed_mentions"]["parse"] == []
    found = embed(ask)
    fields = {f["name"]: f["value"] for f in found["fields"]}  # type: ignore[attr-defined]
    assert "Sources" in fields and LINK.search(fields["Sources"]), fields
    assert LINK.search(str(found["description"])) and "[1]" in str(found["description"])
    buttons = [c["custom_id"] for row in body.get("components", []) for c in row["components"]]
    assert len(buttons) == 3 and all(b.startswith("hinge:") for b in buttons)
    assert not ask.errors


def test_private_ask_stays_ephemeral(wire: Wire) -> None:
    ask = wire.fake.slash("ask", question="how do I hinge in the attack position?", private=True)
    answered(wire, [ask])
    assert ask.sent[0].body.get("flags", 0) & 64 and ask.replies[-1].get("flags", 0) & 64


def test_drill_by_name_by_focus_and_autocomplete(wire: Wire) -> None:
    fake = wire.fake
    by_name = fake.slash("drill", name="kettlebell-swing")
    by_focus = fake.slash("drill", focus="hamstrings", level="beginner")
    typed = fake.slash("drill", name="hinge", focused="name")
    unknown = fake.slash("drill", name="backflip")
    answered(wire, [by_name, by_focus, typed, unknown])
    assert by_name.callback_type == MESSAGE and str(embed(by_name)["title"]).startswith("Kettlebell Swing")
    assert by_focus.callback_type == DEFERRED_MESSAGE and "Goal" in str(embed(by_focus)["description"])
    choices = typed.sent[0].body["choices"]
    assert choices and all("hinge" in (c["name"].lower() + c["value"]) for c in choices)
    assert unknown.replies[0]["flags"] & 64 and "no drill called" in unknown.text


def test_video_and_sources_answer(wire: Wire) -> None:
    video = wire.fake.slash("video", topic="kettlebell swing")
    every = wire.fake.slash("video")
    sources = wire.fake.slash("sources")
    answered(wire, [video, every, sources])
    assert LINK.search(str(embed(video)["description"])) and LINK.search(str(embed(every)["description"]))
    assert re.search(r"\d+ documents in \d+ passages", str(embed(sources)["description"]))


def test_a_member_without_manage_server_is_refused_the_admin_commands(wire: Wire) -> None:
    refused = [wire.fake.slash("reindex"), wire.fake.slash("unanswered", days=3)]
    answered(wire, refused)
    for interaction, why in zip(refused, ("for the bot's owner only", "for server admins"), strict=True):
        assert interaction.callback_type == MESSAGE, interaction.sent
        assert interaction.sent[0].body["flags"] & 64 and why in interaction.text
        assert len(interaction.sent) == 1, "nothing else happens"


def test_admin_reindex_swaps_the_index_while_20_questions_are_in_flight(wire: Wire) -> None:
    fake = wire.fake
    extra = wire.knowledge / "related" / "wire-test-hinge-note.md"
    extra.write_text("---\nid: wire-test-hinge-note\nkind: related\ntitle: Wire test hinge note\nsummary: A note.\n"
                     "tags: [hip-hinge]\nsources:\n  - title: The Hip Hinge\n    publisher: Racer X\n"
                     "    url: https://www.racerxvt.com/article/the-hip-hinge-do-this-to-ride-faster-video\n---\n"
                     "## Note\nHinge from the hips with a long spine when the track gets rough.\n", encoding="utf-8")
    reindex = fake.slash("reindex", admin=True, user_id=int(fake.owner["id"]))  # the application's owner
    answered(wire, [reindex])
    questions = ["how do I stop arm pump?", "what is a hip hinge?", "kettlebell swing for riders",
                 "why does my lower back hurt after riding?", "best drill for the attack position"]
    asks = [fake.slash("ask", question=questions[n % len(questions)] + f" ({n})") for n in range(20)]
    fake.wait_until(lambda: any("Reindexed" in s.body.get("content", "") for s in reindex.sent), 120,
                    "the reindex summary")
    answered(wire, asks, timeout=60)
    finished = max(s.at for s in reindex.sent)
    assert sum(a.dispatched_at < finished for a in asks) >= 10, "the questions overlapped the reindex"
    for ask in asks:
        assert ask.ack_latency is not None and ask.ack_latency < 3
        assert SORRY not in ask.text and not ask.errors, ask.text
        assert embed(ask)["title"], ask.replies
    summary = next(s.body["content"] for s in reindex.sent if "Reindexed" in s.body.get("content", ""))
    assert "Added 1" in summary, summary
    sources = fake.slash("sources")
    answered(wire, [sources])
    shipped = len(load_library(KNOWLEDGE).documents)
    assert str(embed(sources)["description"]).startswith(f"{shipped + 1} documents"), embed(sources)


def test_bot_resumes_after_the_gateway_is_cut_and_answers_again(wire: Wire) -> None:
    fake = wire.fake
    resumes = len(fake.bot_frames(op=RESUME))
    dropped = fake.drop_gateway()
    conn = fake.wait_connected(timeout=60, after=dropped)
    assert conn.resumed and conn.path == "/resume", "an abnormal close is resumed at resume_gateway_url"
    assert len(fake.bot_frames(op=RESUME)) == resumes + 1
    ask = fake.slash("ask", question="what does a good hinge feel like?")
    answered(wire, [ask])
    assert SORRY not in ask.text


def test_bot_follows_reconnect_and_identifies_again_after_an_invalid_session(wire: Wire) -> None:
    fake = wire.fake
    told = fake.send_reconnect()
    resumed = fake.wait_connected(timeout=60, after=told)
    assert resumed.resumed
    identifies = len(fake.bot_frames(op=2))
    invalid = fake.invalidate_session(resumable=False)
    try:
        fresh = fake.wait_connected(timeout=60, after=invalid)
    finally:
        fake.invalidate_resumes = False
    assert fresh.identified and len(fake.bot_frames(op=2)) == identifies + 1
    ask = fake.slash("ask", question="how should my hips move over jumps?")
    answered(wire, [ask])
    assert SORRY not in ask.text


def test_rate_limited_and_failing_follow_ups_are_retried(wire: Wire) -> None:
    fake = wire.fake
    followups = rf"^/webhooks/{fake.application_id}/[^/]+$"
    before = len(fake.calls("POST", followups))
    fake.fail("POST", followups, status=429, times=1, retry_after=0.6)
    limited = fake.slash("ask", question="what is the attack position?")
    answered(wire, [limited], timeout=30)
    calls = fake.calls("POST", followups)[before:]
    assert [c.status for c in calls] == [429, 200], [c.status for c in calls]
    assert calls[1].at - calls[0].at >= 0.5, "retry-after was honoured"
    assert embed(limited)["title"] and SORRY not in limited.text

    fake.fail("POST", followups, status=500, times=1)
    fake.fail("POST", r"^/interactions/\d+/[^/]+/callback$", status=None, delay=1.0, times=1)
    flaky = fake.slash("ask", question="how do I stop my back rounding?")
    answered(wire, [flaky], timeout=30)
    assert flaky.ack_latency is not None and 0.9 <= flaky.ack_latency < 3
    assert embed(flaky)["title"] and SORRY not in flaky.text


# -- bad input -----------------------------------------------------------------------------------
MENTIONS = ["@everyone", "@here", "<@&123>", "<@123456789012345678>", "<@!42>", "<#1>", "<@&1187654321098765433>"]
MARKDOWN = ["**", "__", "`", "```", "||", "> ", "# ", "[x](https://evil.example)", "~~", "\\", "\n", "*"]
questions = st.one_of(
    st.text(max_size=200),  # any unicode (no surrogates: JSON cannot carry them)
    st.lists(st.one_of(st.sampled_from(MENTIONS + MARKDOWN), st.text(max_size=12)), max_size=25).map("".join),
    st.builds(lambda word, n: word * n, st.text(min_size=1, max_size=16), st.integers(40, 400)),  # very long
    st.just(""), st.just("   "),
    st.sampled_from(MENTIONS).map(lambda m: f"{m} why is my lower back cooked after two motos? {m}"),
)


def test_200_generated_questions_each_get_a_reply_that_pings_no_one(wire: Wire) -> None:
    fake = wire.fake
    sent: list[Interaction] = []

    @settings(max_examples=200, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(questions)
    def ask(question: str) -> None:
        if len(sent) < 200:
            sent.append(fake.slash("ask", question=question))
            time.sleep(0.02)  # a steady stream, not one burst

    ask()
    assert len(sent) >= 150
    answered(wire, sent, timeout=120)
    assert wire.bot.alive()
    for interaction in sent:
        assert interaction.ack_latency is not None and interaction.ack_latency < 3
        assert SORRY not in interaction.text and not interaction.errors, (interaction.options, interaction.text)
        long = len(interaction.options["question"]) > 500
        assert ("keep it under" in interaction.text) == long
    for message in fake.sent_messages():
        if message.body.get("content") or message.body.get("embeds"):
            mentions = message.body.get("allowed_mentions")
            assert mentions is not None and mentions.get("parse") == [], message.body
            assert not mentions.get("users") and not mentions.get("roles") and not mentions.get("replied_user")
    assert "Traceback" not in wire.bot.log()


# -- shutdown ------------------------------------------------------------------------------------
def test_sigterm_exits_cleanly_with_the_database_intact(tmp_path: Path, built_index: Path) -> None:
    fake, data, knowledge = start(tmp_path, built_index)
    try:
        # No HINGE_GUILD_IDS: the commands go global this time.
        with running_bot(fake, data, knowledge, tmp_path / "bot.log", extra_env={"HINGE_GUILD_IDS": ""}) as bot:
            assert fake.calls("PUT", rf"^/applications/{fake.application_id}/commands$")
            assert not fake.calls("PUT", r"/guilds/")
            done = fake.slash("ask", question="what is a hip hinge?")
            fake.wait_answered([done], 30)
            # SIGTERM with questions acknowledged but not yet answered: they finish before the bot stops.
            in_flight = [fake.slash("ask", question=f"how to fix arm pump, take {n}") for n in range(10)]
            fake.wait_until(lambda: all(a.acked_at for a in in_flight), 10, "the acknowledgements")
            code = bot.terminate(timeout=30)
            log = bot.log()
            assert code == 0, log[-4000:]
            assert "stopped cleanly" in log and "Traceback" not in log, log[-4000:]
            assert all(a.answered_at and SORRY not in a.text for a in in_flight), log[-4000:]
    finally:
        fake.stop()
    # The bot closed its gateway socket itself. (discord.py sends close code 4000, not 1000, when it is
    # closed while its poll loop is reading: aiohttp wakes the pending receive, which closes first.)
    assert fake.connections and all(c.closed and c.close_code is not None for c in fake.connections)
    with sqlite3.connect(data / "hinge.sqlite3") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        logged = [row[0] for row in db.execute("SELECT question FROM questions ORDER BY id")]
    assert sorted(logged) == sorted(["what is a hip hinge?"] + [f"how to fix arm pump, take {n}" for n in range(10)])
