"""The admin side over the wire: the real bot process against the fake Discord on 127.0.0.1, with the real
SQLite file and the real embeddings. /setup's options, /unanswered, /digest and the weekly digest's schedule
(the digest loop itself, driven by setting the slot to the current hour), and the Prometheus metrics the bot
updates, scraped from /metrics over HTTP.
"""

from __future__ import annotations

import re
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import KNOWLEDGE
from tests.fake_discord import FakeDiscord, Interaction
from tests.fake_discord.process import BotProcess, copy_tree, running_bot
from tests.wire.chaos import METRICS_PORT, index_ids, read_rows
from tests.wire.test_coach_wire import GUILD_ID, CoachWire, coach_fake, components, settled

pytestmark = pytest.mark.slow

ADMIN, RIDER, MEMBER = 1187654321000050001, 1187654321000050002, 1187654321000050003
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DIGEST_TITLE = "This week in the coach queue"
REFUSED = "for server admins"


@dataclass
class Admin:
    w: CoachWire
    bot: BotProcess
    data: Path

    @property
    def fake(self) -> FakeDiscord:
        return self.w.fake


@pytest.fixture(scope="module")
def admin(tmp_path_factory: pytest.TempPathFactory, wire_index: Path) -> Iterator[Admin]:
    tmp = tmp_path_factory.mktemp("admin-wire")
    data, knowledge = copy_tree(wire_index, tmp / "data"), copy_tree(KNOWLEDGE, tmp / "knowledge")
    w = coach_fake()
    try:
        with running_bot(w.fake, data, knowledge, tmp / "bot.log", extra_env=w.env()) as bot:
            w.fake.wait_until(lambda: w.fake.commands, 60, "the slash commands to sync")
            yield Admin(w, bot, data)
            assert bot.alive(), f"the bot died:\n{bot.log()[-4000:]}"
            assert "Traceback" not in bot.log(), bot.log()[-6000:]
    finally:
        w.fake.stop()


def shown_fields(interaction: Interaction) -> dict[str, str]:
    embeds = [e for body in interaction.replies for e in body.get("embeds") or []]
    assert embeds, interaction.sent
    return {f["name"]: f["value"] for f in embeds[-1].get("fields", [])}


def settings_row(data: Path) -> dict[str, object]:
    columns = ("coach_channel_id", "coach_role_id", "admin_role_id", "digest_weekday", "digest_hour",
               "answer_threads", "last_digest_at")
    rows = read_rows(data, f"SELECT {', '.join(columns)} FROM guild_settings WHERE guild_id = ?", (GUILD_ID,))
    return dict(zip(columns, rows[0], strict=True)) if rows else {}


def scrape(bot: BotProcess) -> dict[str, float]:
    """The bot's /metrics over HTTP, as {sample with labels: value}."""
    match = METRICS_PORT.search(bot.log())
    assert match, "the bot did not log its metrics address"
    with urllib.request.urlopen(f"http://127.0.0.1:{match[1]}/metrics", timeout=10) as response:
        text = response.read().decode()
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def digests(a: Admin) -> list[dict[str, object]]:
    return [m for m in a.fake.channel_messages(a.w.coach_channel)
            if any(e.get("title") == DIGEST_TITLE for e in m.get("embeds") or [])]


# -- /setup ----------------------------------------------------------------------------------------------------
def test_setup_saves_every_option_by_id_and_refuses_everyone_and_non_admins(admin: Admin) -> None:
    fake = admin.fake
    helpers = fake.add_role(GUILD_ID, "Helpers")
    saved = fake.slash("setup", user_id=ADMIN, admin=True, **{
        "coach-channel": admin.w.coach_channel, "coach-role": admin.w.coach_role, "admin-role": helpers,
        "digest-day": "wednesday", "digest-hour": 17, "answer-threads": True})
    everyone = fake.slash("setup", user_id=ADMIN, admin=True, **{"coach-role": GUILD_ID, "digest-hour": 3})
    refused = fake.slash("setup", user_id=MEMBER, **{"digest-hour": 4})
    settled(admin.fake, [saved, everyone, refused], admin.bot)
    assert "Saved." in saved.text, saved.text
    shown = shown_fields(saved)
    assert shown["Coach queue channel"] == f"<#{admin.w.coach_channel}>"
    assert shown["Coach role"] == f"<@&{admin.w.coach_role}>" and shown["Admin role"] == f"<@&{helpers}>"
    assert shown["Weekly digest"] == "Wednesday 17:00 UTC" and shown["Answer threads"] == "on"
    assert "@everyone can't be" in everyone.text, everyone.text
    assert REFUSED in refused.text, refused.text
    row = settings_row(admin.data)
    assert row["coach_channel_id"] == admin.w.coach_channel and row["coach_role_id"] == admin.w.coach_role
    assert row["admin_role_id"] == helpers and (row["digest_weekday"], row["digest_hour"]) == (2, 17)
    assert row["answer_threads"] == 1

    # The admin role works by id, without Manage Server; and answer threads are on: a public /ask opens one.
    by_role = fake.slash("setup", user_id=MEMBER, roles=[helpers])
    ask = fake.slash("ask", question="what is a hip hinge?", user_id=RIDER)
    settled(admin.fake, [by_role, ask], admin.bot)
    assert "Nothing changed" in by_role.text, by_role.text
    fake.wait_until(lambda: fake.threads(fake.guilds[GUILD_ID].channel_id), 30, "the answer's thread")
    off = fake.slash("setup", user_id=ADMIN, admin=True, **{"answer-threads": False})
    settled(admin.fake, [off], admin.bot)
    assert settings_row(admin.data)["answer_threads"] == 0


# -- /unanswered -----------------------------------------------------------------------------------------------
def test_unanswered_groups_declined_and_not_helpful_questions_and_never_lists_private_ones(admin: Admin) -> None:
    fake = admin.fake
    # Three wordings of one question, close enough for the grouping's high-precision threshold.
    fog = ["why do my goggles keep fogging up on the start line?",
           "why do my goggles keep fogging up at the start line?", "my goggles keep fogging up on the start line, why?"]
    private = "which tyre pressure should I run in deep sand at the private test track?"
    asks = [fake.slash("ask", question=q, user_id=RIDER + n, thread=False) for n, q in enumerate(fog)]
    asks.append(fake.slash("ask", question=private, user_id=RIDER, private=True))
    helped = fake.slash("ask", question="how do I hold the attack position?", user_id=RIDER + 7, thread=False)
    settled(admin.fake, [*asks, helped], admin.bot)
    [message] = [m for m in helped.messages.values() if any(c.startswith("hinge:down:") for c in components(m))]
    down = fake.click(message, next(c for c in components(message) if c.startswith("hinge:down:")), user_id=RIDER + 7)
    settled(admin.fake, [down], admin.bot)
    listed = fake.slash("unanswered", user_id=ADMIN, admin=True, days=7)
    refused = fake.slash("unanswered", user_id=MEMBER, days=7)
    settled(admin.fake, [listed, refused], admin.bot)
    assert REFUSED in refused.text, refused.text
    text = listed.text
    assert re.search(r"\*\*3×\*\* [^\n]*goggle", text, re.IGNORECASE), text
    assert "attack position" in text and "not helpful 1" in text and "4 questions in 2 groups" in text, text
    assert "private test track" not in text, text


# -- /digest and its weekly schedule ------------------------------------------------------------------------------
def test_digest_posts_the_week_with_a_chart_in_the_coach_channel(admin: Admin) -> None:
    fake = admin.fake
    before = len(digests(admin))
    posted = fake.slash("digest", user_id=ADMIN, admin=True)
    refused = fake.slash("digest", user_id=MEMBER)
    settled(admin.fake, [posted, refused], admin.bot)
    assert REFUSED in refused.text and f"<#{admin.w.coach_channel}>" in posted.text, (refused.text, posted.text)
    [digest] = digests(admin)[before:]
    description = str(digest["embeds"][0]["description"])
    assert re.search(r"\*\*\d+ questions\*\* this week", description), description
    [chart] = digest["attachments"]
    assert chart["filename"] == "questions-per-day.png" and chart["data"].startswith(b"\x89PNG\r\n\x1a\n")
    assert not fake.pinged_user_ids(digest) and not fake.pinged_role_ids(digest) and not fake.pings_everyone(digest)
    stamp = fake.wait_until(lambda: settings_row(admin.data)["last_digest_at"], 30, "the digest's stamp")
    assert datetime.now(UTC) - datetime.fromisoformat(str(stamp)) < timedelta(minutes=5)


def test_the_weekly_digest_posts_itself_in_its_slot_once(tmp_path: Path, wire_index: Path) -> None:
    """The digest loop runs as the bot becomes ready and then every ten minutes. With the slot set to the
    current UTC hour (the loop reads the real clock, so the slot is chosen around it), a restarted bot posts
    the digest without anyone asking, and the next restart, still in the same slot, does not post it again."""
    now = datetime.now(UTC)
    if now.minute == 59 and now.second > 30:  # the slot must not end between the /setup and the check
        time.sleep(61 - now.second)
        now = datetime.now(UTC)
    data, knowledge = copy_tree(wire_index, tmp_path / "data"), copy_tree(KNOWLEDGE, tmp_path / "knowledge")
    w = coach_fake()
    a: Admin | None = None
    try:
        with running_bot(w.fake, data, knowledge, tmp_path / "bot-1.log", extra_env=w.env()) as bot:
            w.fake.wait_until(lambda: w.fake.commands, 60, "the slash commands to sync")
            a = Admin(w, bot, data)
            # Another slot first: nothing is due, so nothing is posted.
            other = (now.hour + 12) % 24
            setup = w.fake.slash("setup", user_id=ADMIN, admin=True, **{
                "digest-day": WEEKDAYS[now.weekday()], "digest-hour": other})
            settled(a.fake, [setup], a.bot)
            assert f"{other:02d}:00 UTC" in shown_fields(setup)["Weekly digest"]
        with running_bot(w.fake, data, knowledge, tmp_path / "bot-2.log", extra_env=w.env()) as bot:
            a = Admin(w, bot, data)
            time.sleep(5)  # the loop's first round runs as the bot becomes ready
            assert not digests(a), "a digest was posted outside its slot"
            setup = w.fake.slash("setup", user_id=ADMIN, admin=True, **{"digest-hour": now.hour})
            settled(a.fake, [setup], a.bot)
        with running_bot(w.fake, data, knowledge, tmp_path / "bot-3.log", extra_env=w.env()) as bot:
            a = Admin(w, bot, data)
            [digest] = w.fake.wait_until(lambda: digests(a) or None, 60, "the scheduled digest")
            assert digest["attachments"][0]["data"].startswith(b"\x89PNG")
            # Stamped right after the post: the next round (or restart) in this slot knows it went out.
            w.fake.wait_until(lambda: settings_row(data)["last_digest_at"], 30, "the digest's stamp")
        with running_bot(w.fake, data, knowledge, tmp_path / "bot-4.log", extra_env=w.env()) as bot:
            a = Admin(w, bot, data)
            time.sleep(5)
            assert len(digests(a)) == 1, "the digest was posted twice in one slot"
            assert "Traceback" not in bot.log(), bot.log()[-4000:]
    finally:
        w.fake.stop()


# -- /metrics -------------------------------------------------------------------------------------------------------
def test_metrics_over_http_follow_questions_votes_and_reindexes(admin: Admin) -> None:
    fake = admin.fake
    before = scrape(admin.bot)
    answered = fake.slash("ask", question="how do I hold the attack position?", user_id=RIDER + 20, thread=False)
    declined = fake.slash("ask", question="what coolant should my bike use?", user_id=RIDER + 21, thread=False)
    settled(admin.fake, [answered, declined], admin.bot)
    [message] = [m for m in answered.messages.values() if any(c.startswith("hinge:up:") for c in components(m))]
    up = fake.click(message, next(c for c in components(message) if c.startswith("hinge:up:")), user_id=RIDER + 20)
    reindex = fake.slash("reindex", user_id=int(fake.owner["id"]), admin=True)  # a full reindex is the owner's
    settled(admin.fake, [up], admin.bot)
    fake.wait_until(lambda: "Reindexed" in reindex.text or None, 180, "the reindex")
    after = scrape(admin.bot)

    def grew(sample: str) -> float:
        return after.get(sample, 0.0) - before.get(sample, 0.0)

    assert grew('hinge_questions_total{status="answered"}') == 1, (before, after)
    assert grew('hinge_questions_total{status="declined"}') == 1 and grew("hinge_declined_total") == 1
    assert grew("hinge_answer_latency_seconds_count") == 2
    assert grew('hinge_feedback_total{vote="up"}') == 1 and grew('hinge_feedback_total{vote="down"}') == 0
    assert grew('hinge_reindexes_total{result="ok"}') == 1 and grew("hinge_reindex_duration_seconds_count") == 1
    indexed = index_ids(admin.data)
    assert indexed is not None and after["hinge_library_documents"] == len(indexed)
    assert after["hinge_library_chunks"] > after["hinge_library_documents"]
