"""The coach loop over the wire: the real bot process (`hinge run`) against the fake Discord on 127.0.0.1.

A declined /ask puts a card in the coach channel; a coach answers it through the modal; the rider gets a reply
in the channel where they asked, pinging only them; the same question is then answered with the coach's words.
Also a SIGKILL between the modal submit and the reindex (the restarted bot finishes the answer, and the rider
is answered exactly once), and a modal full of mentions and front-matter-breaking markdown.

The coach channel and role come from HINGE_COACH_CHANNEL_ID / HINGE_COACH_ROLE_ID, so no /setup is needed.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from index.coaching.contributions import path_for
from tests.conftest import KNOWLEDGE
from tests.fake_discord import FakeDiscord, Interaction
from tests.fake_discord.channels import pinged_role_ids, pinged_user_ids, pings_everyone
from tests.fake_discord.process import FAKE_TOKEN, PROJECT, BotProcess, copy_tree, running_bot

pytestmark = pytest.mark.slow

GUILD_ID = 1187654321098765432
MODAL = 9  # the interaction callback that shows a modal
EPHEMERAL = 64
# The fake names a user "rider<last four digits of the id>": the coach shows as "rider4242".
RIDER, COACH, NOT_A_COACH = 1187654321000001111, 1187654321000004242, 1187654321000007777
COACH_NAME = "rider4242"
# Off the library's topics, and declined by the shipped library (checked with `hinge ask`).
QUESTION = "why do my goggles keep fogging up on the start line?"
ANSWER = ("Fog on the start line is warm breath under a cold lens. Wash the inner lens with mild soap the night "
          "before, never wipe it with a glove, and keep the goggles on top of the helmet until the 30-second board. "
          "Tear-offs do nothing for fog; a dual-pane lens does.")
REPLY_TEXT = "a coach answered your question."


# -- the loop, step by step (the bench uses these too) ------------------------------------------------------
@dataclass
class CoachWire:
    fake: FakeDiscord
    coach_channel: int
    coach_role: int

    @property
    def rider_channel(self) -> int:
        return self.fake.guilds[GUILD_ID].channel_id

    def env(self) -> dict[str, str]:
        return {"HINGE_COACH_CHANNEL_ID": str(self.coach_channel), "HINGE_COACH_ROLE_ID": str(self.coach_role)}


def coach_fake() -> CoachWire:
    """A started fake Discord with a coach queue channel and a coach role (add them before the bot connects)."""
    fake = FakeDiscord(FAKE_TOKEN, guild_ids=[GUILD_ID]).start()
    return CoachWire(fake, fake.add_channel(GUILD_ID, "coach-queue"), fake.add_role(GUILD_ID, "Coaches"))


def settled(fake: FakeDiscord, interactions: list[Interaction], bot: BotProcess | None, timeout: float = 60) -> None:
    try:
        fake.wait_answered(interactions, timeout)
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\nbot log:\n{bot.log()[-4000:] if bot else ''}") from exc


def fields(interaction: Interaction) -> dict[str, str]:
    embeds = [e for body in interaction.replies for e in body.get("embeds") or []]
    assert embeds, f"no embed: {interaction.replies}"
    return {f["name"]: f["value"] for f in embeds[-1].get("fields", [])}


def answer_message(ask: Interaction) -> dict[str, Any]:
    """The message that carries the bot's answer to an /ask (the follow-up after the deferral)."""
    shown = [m for m in ask.messages.values() if m.get("embeds")]
    assert shown, f"/ask showed no answer: {ask.sent}"
    return shown[-1]


def components(message: dict[str, Any]) -> list[str]:
    found: list[str] = []
    for row in message.get("components") or []:
        found += [c.get("custom_id", "") for c in row.get("components") or []]
    return found


def wait_card(w: CoachWire, question: str, timeout: float = 30) -> dict[str, Any]:
    """The open queue card for `question` in the coach channel."""
    def card() -> dict[str, Any] | None:
        for message in w.fake.channel_messages(w.coach_channel):
            described = [e.get("description") for e in message.get("embeds") or []]
            if question in described and any(c.startswith("hinge:card:answer:") for c in components(message)):
                return message
        return None

    return w.fake.wait_until(card, timeout, f"the queue card for {question!r}")


def button(card: dict[str, Any], action: str) -> str:
    [custom_id] = [c for c in components(card) if c.startswith(f"hinge:card:{action}:")]
    return custom_id


def prefilled(modal: dict[str, Any], custom_id: str) -> str:
    def walk(nodes: list[dict[str, Any]]) -> str | None:
        for node in nodes:
            if node.get("custom_id") == custom_id:
                return str(node.get("value") or "")
            inner = node.get("components") or ([node["component"]] if isinstance(node.get("component"), dict) else [])
            found = walk(inner)
            if found is not None:
                return found
        return None

    return walk(modal.get("components") or []) or ""


def replies_to(fake: FakeDiscord, channel_id: int, message_id: int | str) -> list[dict[str, Any]]:
    """The bot's messages in a channel that reply to `message_id`."""
    return [m for m in fake.channel_messages(channel_id)
            if (m.get("message_reference") or {}).get("message_id") == str(message_id)
            and m["author"]["id"] == str(fake.application_id)]


def open_modal(w: CoachWire, card: dict[str, Any], bot: BotProcess | None) -> Interaction:
    shown = w.fake.click(card, button(card, "answer"), user_id=COACH, roles=[w.coach_role])
    settled(w.fake, [shown], bot)
    assert shown.callback_type == MODAL and shown.modal is not None, shown.sent
    return shown


def rows(data: Path, sql: str) -> list[tuple[Any, ...]]:
    """Read the bot's database from outside (another process: a short read, no lock held)."""
    db = sqlite3.connect(f"file:{data / 'hinge.sqlite3'}?mode=ro", uri=True, timeout=5)
    try:
        return db.execute(sql).fetchall()
    except sqlite3.OperationalError:
        return []  # the table is not there yet
    finally:
        db.close()


def coach_cited(interaction: Interaction) -> bool:
    return COACH_NAME in fields(interaction).get("Sources", "")


# -- fixtures ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def coach_index(wire_index: Path) -> Path:
    """The shipped library indexed once for the run (tests/wire/conftest.py); each bot gets a copy of it."""
    return wire_index


@dataclass
class Running:
    w: CoachWire
    bot: BotProcess
    data: Path
    knowledge: Path


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory, coach_index: Path) -> Iterator[Running]:
    tmp = tmp_path_factory.mktemp("coach-wire-bot")
    data, knowledge = copy_tree(coach_index, tmp / "data"), copy_tree(KNOWLEDGE, tmp / "knowledge")
    w = coach_fake()
    try:
        with running_bot(w.fake, data, knowledge, tmp / "bot.log", extra_env=w.env()) as bot:
            yield Running(w, bot, data, knowledge)
            assert bot.alive(), f"the bot died:\n{bot.log()[-4000:]}"
            assert "Traceback" not in bot.log(), bot.log()[-6000:]
    finally:
        w.fake.stop()


def assert_pings_only(fake: FakeDiscord, channel_ids: list[int], allowed_users: set[int]) -> None:
    """No message in these channels pings a role or @everyone, or any user outside `allowed_users`."""
    for channel_id in channel_ids:
        for message in fake.channel_messages(channel_id):
            assert not pings_everyone(message) and not pinged_role_ids(message), message
            assert set(pinged_user_ids(message)) <= allowed_users, (pinged_user_ids(message), message)
            if message["author"]["id"] == str(fake.application_id) and message.get("content"):
                mentions = message.get("allowed_mentions")
                assert mentions is not None, f"the bot left allowed_mentions to the defaults: {message}"
                assert "everyone" not in (mentions.get("parse") or []) and "roles" not in (mentions.get("parse") or [])
                assert not mentions.get("roles")


# -- the whole loop ------------------------------------------------------------------------------------------
def test_the_whole_loop_over_the_wire(running: Running) -> None:
    w, bot = running.w, running.bot
    fake = w.fake

    # A declined /ask: the rider is told a coach will see it, with a way to withdraw.
    ask = fake.slash("ask", question=QUESTION, user_id=RIDER)
    settled(fake, [ask], bot)
    assert "Asked the coaches" in fields(ask), ask.text
    asked = answer_message(ask)
    assert int(asked["channel_id"]) == w.rider_channel
    assert any(c.startswith("hinge:withdraw:") for c in components(asked))

    # The card appears in the coach channel, with the three buttons.
    card = wait_card(w, QUESTION)
    assert [c.split(":")[2] for c in components(card)] == ["answer", "dismiss", "merge"]
    asked_by = next(f["value"] for f in card["embeds"][0]["fields"] if f["name"] == "Asked by")
    assert f"<@{RIDER}>" in asked_by and f"<#{w.rider_channel}>" in asked_by
    assert not pinged_user_ids(card), "the card names the rider but does not ping them"

    # A member without the coach role is refused by the bot's own check: ephemeral, and no modal.
    refused = fake.click(card, button(card, "answer"), user_id=NOT_A_COACH)
    settled(fake, [refused], bot)
    assert refused.callback_type != MODAL and refused.modal is None
    assert refused.replies and all(body.get("flags", 0) & EPHEMERAL for body in refused.replies), refused.sent
    assert "only the team's coaches" in refused.text, refused.text

    # The coach opens the modal: a title for the library (never prefilled with the rider's words), the answer, an
    # optional link.
    shown = open_modal(w, card, bot)
    assert shown.modal is not None and shown.modal["custom_id"].startswith("hinge:modal:answer:")
    assert prefilled(shown.modal, "title") == ""
    submit = fake.submit_modal(shown, {"answer": ANSWER, "title": QUESTION,
                                       "link": "https://www.racerxvt.com/article/goggle-fog"},
                               user_id=COACH, roles=[w.coach_role])
    submitted_at = time.monotonic()

    # The rider's reply: where they asked, replying to their answer message, pinging only them.
    [reply] = fake.wait_until(lambda: replies_to(fake, w.rider_channel, asked["id"]) or None, 30,
                              "the rider's reply")
    assert reply["content"].startswith(f"<@{RIDER}>") and REPLY_TEXT in reply["content"]
    assert pinged_user_ids(reply) == [RIDER]
    assert not pinged_role_ids(reply) and not pings_everyone(reply)
    assert reply["allowed_mentions"].get("users") == [str(RIDER)] or reply["allowed_mentions"].get("users") == [RIDER]
    assert ANSWER[:40] in reply["embeds"][0].get("description", "")
    settled(fake, [submit], bot)
    assert submit.replies[-1].get("flags", 0) & EPHEMERAL and "Thanks! Sent to 1 rider" in submit.text, submit.text

    # The card is closed: "Answered by" the coach, its buttons disabled.
    def closed() -> dict[str, Any] | None:
        message = fake.message(int(card["id"]))
        return message if message["embeds"][0]["title"].startswith(f"Answered by {COACH_NAME}") else None

    answered_card = fake.wait_until(closed, 30, "the card to show the answer")
    assert all(c.get("disabled") for row in answered_card["components"] for c in row["components"]
               if not c["custom_id"].startswith("hinge:card:edit:"))

    # The same question, asked again once the answer is indexed, is answered with the coach's text, credited.
    fake.wait_until(lambda: rows(running.data, "SELECT indexed FROM coach_answers") == [(1,)], 60, "the reindex")
    again = fake.slash("ask", question=QUESTION, user_id=RIDER + 1)
    settled(fake, [again], bot)
    assert coach_cited(again), (fields(again), again.text)
    assert "dual-pane" in again.text or "inner lens" in again.text, again.text
    assert time.monotonic() - submitted_at < 60
    assert_pings_only(fake, [w.rider_channel, w.coach_channel], {RIDER})


# -- bad input -------------------------------------------------------------------------------------------------
def test_mentions_and_front_matter_breaking_markdown_are_stored_safely_and_ping_no_one(running: Running) -> None:
    w, bot, fake = running.w, running.bot, running.w.fake
    question = "which tyre pressure should I run in deep sand?"
    rider = RIDER + 50
    ask = fake.slash("ask", question=question, user_id=rider)
    settled(fake, [ask], bot)
    assert "Asked the coaches" in fields(ask), ask.text
    asked = answer_message(ask)
    card = wait_card(w, question)
    shown = open_modal(w, card, bot)
    title = 'Sand: "low" pressure: 12 psi? --- key: value'
    text = (f"---\nid: hijacked\nkind: drill\ntitle: [broken\n---\n@everyone @here <@&{w.coach_role}> "
            f"<@&{GUILD_ID}> <@{NOT_A_COACH}> <@!{COACH}>\n"
            "key: value\nsummary: \"unterminated\n```yaml\n---\nguild_id: 1\n```\n"
            "For deep sand, drop the rear tyre pressure to about 12 psi so the tyre bags out and finds drive; "
            "go lower and you pinch tubes on the square edges. Keep the front near 13 psi so it floats and steers.")
    submit = fake.submit_modal(shown, {"answer": text, "title": title, "link": "javascript:alert(1)"},
                               user_id=COACH, roles=[w.coach_role])
    settled(fake, [submit], bot)
    assert "Thanks! Sent to 1 rider" in submit.text and "the card is cited instead" in submit.text, submit.text
    [reply] = fake.wait_until(lambda: replies_to(fake, w.rider_channel, asked["id"]) or None, 30,
                              "the rider's reply")
    assert pinged_user_ids(reply) == [rider]
    fake.wait_until(lambda: all(i == 1 for (i,) in rows(running.data, "SELECT indexed FROM coach_answers")),
                    60, "the reindex")

    # Nothing anywhere pinged a role, @everyone or anyone but the riders who asked.
    assert_pings_only(fake, [w.rider_channel, w.coach_channel], {RIDER, rider})

    # The stored document: the coach's text is the body, the front matter is the code's own.
    [(doc_id,)] = rows(running.data, f"SELECT document_id FROM coach_answers WHERE question = '{question}'")
    path = path_for(running.data / "library", GUILD_ID, doc_id)
    assert path.is_file(), sorted(p.name for p in (running.data / "library").rglob("*"))
    from index.library.documents import load_library

    library = load_library([running.knowledge, running.data / "library"])
    assert not library.errors, library.errors
    [doc] = [d for d in library.documents if d.id == doc_id]
    assert doc.title == title and doc.kind.value == "forum" and doc.guild_id == GUILD_ID
    assert doc.sources[0].url.startswith("https://discord.com/channels/")
    assert "12 psi" in doc.body and "hijacked" not in doc.id
    checked = subprocess.run([sys.executable, "-m", "bot.cli", "index", "check", "--data-dir", str(running.data),
                              "--knowledge", str(running.knowledge)], cwd=PROJECT, capture_output=True, text=True,
                             timeout=120)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    # The bot still answers from it.
    again = fake.slash("ask", question=question, user_id=rider + 1)
    settled(fake, [again], bot)
    assert coach_cited(again) and "12 psi" in again.text, again.text


# -- SIGKILL between the modal submit and the reindex -------------------------------------------------------------
def kill_when(bot: BotProcess, condition: Callable[[], bool], timeout: float, what: str, then: float = 0) -> float:
    """SIGKILL the bot's process group as soon as `condition` holds (polled every 2 ms), or `then` seconds
    after. The time it took."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out waiting for {what}\n{bot.log()[-4000:]}")
        if not bot.alive():
            raise AssertionError(f"the bot exited before {what}\n{bot.log()[-4000:]}")
        time.sleep(0.002)
    time.sleep(then)
    os.killpg(bot.pid, signal.SIGKILL)
    bot.proc.wait(10)
    return time.monotonic() - started


# "in flight": delivery is exactly once because each reply carries a nonce per asker with enforce_nonce,
# which Discord (and the fake) use to refuse a second message with the same nonce.
@pytest.mark.parametrize("moment", ["stored", "delivered", "in flight"])
def test_sigkill_between_submit_and_reindex_then_restart(tmp_path: Path, coach_index: Path, moment: str) -> None:
    """The rider hears first, then the card is updated, then the library file is written and indexed.
    `stored`: the library file's write is held, so the kill lands after the reply, before the file.
    `delivered`: the card edit is held by the fake, so the kill lands after the reply, before the file.
    `in flight`: the reply is held by the fake for 3 s; the kill lands while it is in flight, and the fake
    still creates it (as Discord would once the request is in)."""
    data, knowledge = copy_tree(coach_index, tmp_path / "data"), copy_tree(KNOWLEDGE, tmp_path / "knowledge")
    w = coach_fake()
    fake = w.fake
    try:
        with running_bot(fake, data, knowledge, tmp_path / "bot.log", extra_env=w.env()) as bot:
            ask = fake.slash("ask", question=QUESTION, user_id=RIDER)
            settled(fake, [ask], bot)
            asked = answer_message(ask)
            card = wait_card(w, QUESTION)
            shown = open_modal(w, card, bot)
            if moment == "in flight":
                fake.fail("POST", rf"^/channels/{w.rider_channel}/messages$", status=None, delay=3)
            if moment == "delivered":
                # The edit of the card (after the delivery, before the reindex) waits 30 s at the fake.
                fake.fail("PATCH", rf"^/channels/{w.coach_channel}/messages/{card['id']}$", status=None, delay=30)
            title = QUESTION  # what the coach types
            held = None
            if moment == "stored":
                # A FIFO where the library file's temporary copy goes: the write blocks on it (holding the
                # library lock) with the rider answered and the file not written, so the kill lands there.
                # (Should the file be written differently one day, the kill still follows the poll below.)
                from index.coaching.contributions import document_id

                request_id = int(button(card, "answer").rsplit(":", 1)[1])
                path = path_for(data / "library", GUILD_ID, document_id(request_id, title))
                held = path.with_name(f".{path.name}.tmp")
                held.parent.mkdir(parents=True, exist_ok=True)
                os.mkfifo(held)
            fake.submit_modal(shown, {"answer": ANSWER, "title": title}, user_id=COACH, roles=[w.coach_role])
            if moment == "stored":
                kill_when(bot, lambda: bool(rows(data, "SELECT 1 FROM coach_answers WHERE indexed = 0")), 30,
                          "the stored answer", then=0.3)
                assert held is not None
                held.unlink()
            elif moment == "delivered":
                kill_when(bot, lambda: rows(data, "SELECT COUNT(*) FROM coach_askers WHERE delivered_at IS NOT "
                                                  "NULL") == [(1,)], 30, "the delivery")
            else:
                kill_when(bot, lambda: bool(rows(data, "SELECT 1 FROM coach_answers")), 30,
                          "the stored answer", then=0.5)
                fake.wait_until(lambda: replies_to(fake, w.rider_channel, asked["id"]) or None, 10,
                                "the held reply to land")
            at_kill = rows(data, "SELECT a.written, a.indexed, k.delivered_at IS NOT NULL FROM coach_answers a "
                                 "JOIN coach_askers k ON k.request_id = a.request_id")
            print(f"killed at {moment}: (written, indexed, delivered) = {at_kill}")
            assert at_kill and at_kill[0][1] == 0, "the kill landed before the reindex"
            expected = {"stored": (0, 0, 1), "delivered": (0, 0, 1), "in flight": (0, 0, 0)}[moment]
            assert at_kill == [expected], ("the kill landed at another moment (stored: is the library file "
                                           "still written through `.<name>.tmp`?)")
        fake.faults.clear()

        # Restart on the same data dir: on_ready finishes the answer.
        with running_bot(fake, data, knowledge, tmp_path / "bot-2.log", extra_env=w.env()) as bot:
            fake.wait_until(lambda: rows(data, "SELECT written, indexed FROM coach_answers") == [(1, 1)], 90,
                            "the restarted bot to finish the answer")
            [(doc_id,)] = rows(data, "SELECT document_id FROM coach_answers")
            assert path_for(data / "library", GUILD_ID, doc_id).is_file()
            again = fake.slash("ask", question=QUESTION, user_id=RIDER + 2)
            settled(fake, [again], bot)
            assert coach_cited(again), (fields(again), again.text)
            time.sleep(1)  # any second delivery would have been sent by now
            replies = replies_to(fake, w.rider_channel, asked["id"])
            assert len(replies) == 1, f"the rider got {len(replies)} replies"
            assert pinged_user_ids(replies[0]) == [RIDER]
            assert rows(data, "SELECT COUNT(*) FROM coach_askers WHERE delivered_at IS NOT NULL") == [(1,)]
            # The card ends up closed, whatever the first bot managed.
            assert fake.message(int(card["id"]))["embeds"][0]["title"].startswith("Answered by")
            assert "Traceback" not in bot.log(), bot.log()[-6000:]
    finally:
        fake.stop()
