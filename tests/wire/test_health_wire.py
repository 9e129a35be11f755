"""/healthz over the wire: the real bot process against the fake Discord, asked over HTTP.

discord.py's `is_ready()` stays true while the client reconnects, so a health check built on it
says "ok" through a gateway outage. This test cuts the gateway and refuses the reconnects for a
while: /healthz must answer 503 "gateway not connected" until the bot is back, then 200 again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sqlite3
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import aiosqlite
import pytest

from bot.state.storage import Storage
from tests.fake_discord import FakeDiscord
from tests.fake_discord.process import FAKE_TOKEN, BotProcess, build_index, running_bot
from tests.helpers import small_library

GUILD_ID = 1187654321098765432
LISTENING = re.compile(r"health and metrics on http://127\.0\.0\.1:(\d+)/healthz")


def healthz(port: int) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def poll(check: Callable[[], tuple[int, dict[str, object]] | None], timeout: float, what: str,
         log: Callable[[], str]) -> tuple[int, dict[str, object]]:
    """Call `check` every 0.1 s until it returns a value; at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found is not None:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}\nbot log:\n{log()[-4000:]}")


def health_is(port: int, status: int) -> Callable[[], tuple[int, dict[str, object]] | None]:
    def check() -> tuple[int, dict[str, object]] | None:
        answer = healthz(port)
        return answer if answer[0] == status else None
    return check


@pytest.fixture
def bot_and_fake(tmp_path: Path) -> Iterator[tuple[FakeDiscord, BotProcess, int]]:
    # A small library of its own: quick to build, and independent of edits to knowledge/.
    knowledge = small_library(tmp_path / "knowledge")
    data = tmp_path / "data"
    build_index(data, knowledge)
    fake = FakeDiscord(FAKE_TOKEN, guild_ids=(GUILD_ID,)).start()
    try:
        with running_bot(fake, data, knowledge, tmp_path / "bot.log") as bot:
            found = poll(lambda: (0, {"port": m[1]}) if (m := LISTENING.search(bot.log())) else None, 60,
                         "the health endpoint's port in the log", bot.log)
            yield fake, bot, int(str(found[1]["port"]))
    finally:
        fake.refuse_gateway = False
        fake.stop()


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[Storage]:
    opened = Storage(tmp_path / "hinge.sqlite3")
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


def committed_probes(path: Path) -> int:
    """Probe rows another connection sees in the database file (0 before the table exists)."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        try:
            return int(db.execute("SELECT count(*) FROM health_probe").fetchone()[0])
        except sqlite3.OperationalError:  # no such table yet
            return 0


@pytest.mark.slow
def test_healthz_is_503_while_the_gateway_reconnects_and_200_again_after(
        bot_and_fake: tuple[FakeDiscord, BotProcess, int]) -> None:
    fake, bot, port = bot_and_fake
    status, body = poll(health_is(port, 200), 120, "/healthz 200 once connected", bot.log)
    assert body == {"status": "ok", "problems": []}

    # An outage: the live connection is cut, and every reconnect is refused until it is lifted.
    fake.refuse_gateway = True
    dropped = fake.drop_gateway()
    status, body = poll(health_is(port, 503), 30, "/healthz 503 after the drop", bot.log)
    assert body == {"status": "unhealthy", "problems": ["gateway not connected"]}, body
    # Still 503 after the bot's reconnect attempts have been refused (it retries with a backoff).
    fake.wait_until(lambda: fake.refused_connections >= 2, 60, "two refused reconnects")
    status, body = healthz(port)
    assert (status, body["problems"]) == (503, ["gateway not connected"]), body
    assert fake.live_connection() is None and bot.alive()

    fake.refuse_gateway = False
    conn = fake.wait_connected(timeout=90, after=dropped)
    assert conn.resumed, "the bot resumed its session once the gateway took connections again"
    status, body = poll(health_is(port, 200), 30, "/healthz 200 after the reconnect", bot.log)
    assert body == {"status": "ok", "problems": []}

    # "Database writable" wrote to the database file itself, not to a TEMP table.
    with contextlib.closing(sqlite3.connect(bot.data_dir / "hinge.sqlite3")) as db:
        rows = db.execute("SELECT id, checked_at FROM health_probe").fetchall()
    assert len(rows) == 1 and rows[0][0] == 1, f"health_probe rows: {rows}\nbot log:\n{bot.log()[-4000:]}"


async def test_database_writable_means_the_database_file_takes_a_write(tmp_path: Path) -> None:
    path = tmp_path / "hinge.sqlite3"
    storage = Storage(path)
    await storage.open()
    try:
        assert await storage.writable()
        assert await storage.writable(), "the probe row is rewritten, not added"
        # The disk turns read-only under the bot: the same file, open read-only.
        await storage.close()
        storage._db = await aiosqlite.connect(f"file:{path}?mode=ro", uri=True)
        async with storage.db.execute("CREATE TEMP TABLE IF NOT EXISTS probe (x INTEGER)"):
            pass  # what the old check did: it still passes here
        assert not await storage.writable()
        assert not storage.db.in_transaction, "the failed probe left no transaction open"
    finally:
        await storage.close()
    assert not await storage.writable(), "a closed database is not writable"
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM health_probe").fetchone() == (1,)


@pytest.mark.parametrize("other_writer", ["commits", "fails"])
async def test_the_probe_waits_for_the_write_in_progress_and_commits_only_its_own(storage: Storage,
                                                                                  other_writer: str) -> None:
    # The bug this replaces: a probe that found another write's transaction open joined it and left the commit
    # to its owner; when the owner committed before the probe's INSERT, that INSERT opened a transaction no one
    # ever committed, and /healthz said ok while no probe landed again.
    async with storage.transaction() as db:
        await db.execute("CREATE TABLE other_work (x INTEGER)")
    writing, release = asyncio.Event(), asyncio.Event()

    async def other_write() -> None:
        async with storage.transaction() as db:
            await db.execute("INSERT INTO other_work (x) VALUES (1)")
            writing.set()
            await release.wait()
            if other_writer == "fails":
                raise RuntimeError("the other writer fails half-way")

    other = asyncio.create_task(other_write())
    await writing.wait()
    probe = asyncio.create_task(storage.writable())
    await asyncio.sleep(0.05)
    assert not probe.done(), "the probe waits for the write in progress"
    release.set()
    if other_writer == "fails":
        with pytest.raises(RuntimeError):
            await other
    else:
        await other
    assert await probe
    assert not storage.db.in_transaction, "no transaction is left open"
    with contextlib.closing(sqlite3.connect(storage.path)) as db:
        assert db.execute("SELECT count(*) FROM other_work").fetchone() == (int(other_writer == "commits"),)
    assert committed_probes(storage.path) == 1


async def test_a_probe_given_up_on_still_commits_its_write(storage: Storage) -> None:
    # A cancelled probe still finishes: it holds the write lock, and its transaction must not be left open.
    probe = asyncio.create_task(storage.writable())
    await asyncio.sleep(0)  # the probe has started
    probe.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probe
    for _ in range(500):  # at most about 5 s
        if committed_probes(storage.path):
            break
        await asyncio.sleep(0.01)
    assert committed_probes(storage.path) == 1, "the probe's write was committed although its caller gave up"
    assert not storage.db.in_transaction


async def test_probes_and_other_writes_at_the_same_time_leave_no_transaction_open(storage: Storage) -> None:
    # What /healthz met in the wire test: the retention purge and a probe at the same moment.
    for n in range(30):
        await asyncio.gather(storage.purge_older_than(30), storage.writable())
        await asyncio.gather(storage.log_question(f"question {n}", True, "answered", 0.5, 0.9, 5.0, 1, 2, 3),
                             storage.writable(), storage.purge_older_than(30))
        assert not storage.db.in_transaction, f"a transaction was left open in round {n}"
    assert committed_probes(storage.path) == 1
    with contextlib.closing(sqlite3.connect(storage.path)) as db:
        assert db.execute("SELECT count(*) FROM questions").fetchone() == (30,)


async def test_a_probe_commits_its_own_row_when_the_write_it_met_ends_under_it(storage: Storage) -> None:
    # The exact interleaving the wire test met: a probe starts while another write's transaction is open, and
    # that write commits between the probe's two statements. The probe's row must still be committed.
    await storage.db.execute("INSERT INTO questions (asked_at, question, answered, status, latency_ms) "
                             "VALUES ('2026-12-06T00:00:00+00:00', 'q', 1, 'answered', 1.0)")
    probe = asyncio.create_task(storage.writable())
    await asyncio.sleep(0)  # the probe has found the transaction open and queued its first statement
    await storage.db.commit()
    assert await probe
    assert not storage.db.in_transaction, "the probe left a transaction open"
    assert committed_probes(storage.path) == 1
