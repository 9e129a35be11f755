"""Hardening: one lock over library changes (run concurrently), one per-user limit, kind errors everywhere,
redacted tracebacks, data retention and /forget-me, and the embedding cache dropping what no index uses."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from bot.ops.logs import REDACTED, configure_logging
from bot.ops.metrics import Metrics
from bot.settings import Settings
from bot.state.library import LibraryChangeError, LibraryEditor
from bot.state.storage import Storage
from index.answers.composer import AnswerComposer
from index.engine import Engine
from index.errors import KnowledgeFileError, LibraryError
from index.library.documents import Kind
from index.retrieval.embedding import EmbeddingCache
from tests.bot_fixtures import ALWAYS, bot_library, make_bot, make_settings, running
from tests.helpers import HashingEmbedder, front_matter

WENT_WRONG = "Sorry, something went wrong on my side. The admins can see the details in the log; please try again."


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


def upload(doc_id: str, text: str) -> bytes:
    return (front_matter(id=doc_id, kind="related", title=doc_id.title()) + text + "\n").encode()


@pytest.fixture
async def editor(tmp_path: Path) -> LibraryEditor:
    engine = Engine(tmp_path / "data", bot_library(tmp_path / "knowledge"), HashingEmbedder())
    await asyncio.to_thread(engine.load)
    storage = Storage(tmp_path / "data" / "hinge.sqlite3")
    await storage.open()
    return LibraryEditor(engine, storage, Metrics())


async def test_uploads_and_a_reindex_at_the_same_time_are_serialised(editor: LibraryEditor) -> None:
    """Two uploads of one id and a reindex, started together: one upload lands, the other is refused, nothing
    is overwritten, every build sees a consistent folder."""
    first, second = upload("seat-bounce", "First text about seat bounce."), upload("seat-bounce", "Second text.")

    async def reindex() -> object:
        async with editor.changing():
            return await editor.rebuild(1, "admin")

    results = await asyncio.gather(
        editor.add_upload("seat-bounce.md", first, Kind.RELATED, 1, "admin"),
        editor.add_upload("seat-bounce.md", second, Kind.RELATED, 2, "other"),
        reindex(), return_exceptions=True)
    refused = [r for r in results if isinstance(r, KnowledgeFileError)]
    added = [r for r in results if isinstance(r, tuple)]
    assert len(refused) == 1 and len(added) == 1, results
    saved = editor.engine.library_dir / "related" / "seat-bounce.md"
    # Whichever took the lock first wins; the other never overwrote it.
    winner = first if results[0] is added[0] else second
    assert saved.read_bytes() == winner
    assert "seat-bounce" in editor.engine.index.documents
    async with editor.storage.db.execute("SELECT COUNT(*), SUM(ok) FROM reindexes") as cursor:
        assert await cursor.fetchone() == (2, 2)  # the upload's build and the reindex; no row for the refusal
    await editor.storage.close()


async def test_a_failure_that_is_not_a_bad_file_rolls_back_and_keeps_the_old_index(
        editor: LibraryEditor, monkeypatch: pytest.MonkeyPatch) -> None:
    before = editor.engine.index

    def disk_full(*args: object) -> None:
        raise OSError(28, "No space left on device", "/secret/server/path")

    monkeypatch.setattr(editor.engine, "reindex", disk_full)
    with pytest.raises(LibraryChangeError) as failed:
        await editor.add_upload("new-doc.md", upload("new-doc", "Text."), Kind.RELATED, 1, "admin")
    assert "/secret" not in failed.value.user_message
    assert not (editor.engine.library_dir / "related" / "new-doc.md").exists()
    assert editor.engine.index is before
    async with editor.storage.db.execute("SELECT COUNT(*) FROM reindexes") as cursor:
        assert await cursor.fetchone() == (0,)
    # A bad library (not a bad upload) is reported with its files and leaves the old index too.
    monkeypatch.undo()
    broken = editor.engine.library_dir / "related" / "broken.md"
    broken.parent.mkdir(parents=True, exist_ok=True)
    broken.write_text("---\ntitle: [oops\n---\ntext\n", encoding="utf-8")
    with pytest.raises(LibraryError):
        async with editor.changing():
            await editor.rebuild(1, "admin")
    assert editor.engine.index is before
    await editor.storage.close()


async def test_one_limit_covers_every_search_and_a_too_long_question_costs_nothing(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, ask_cooldown_seconds=60, ask_cooldown_rate=2)
    async with running(make_bot(settings)) as h:
        too_long = await h.rider.slash(h.channel, "ask", question="x" * (settings.max_question_chars + 1))
        assert too_long.response is not None and "characters long" in too_long.response.content
        first = await h.rider.slash(h.channel, "ask", question="how do I hinge?")
        assert first.response is not None and first.response.embeds
        video = await h.rider.slash(h.channel, "video", topic="hinge")
        assert video.response is not None and video.response.embeds
        # The third search of any kind within the window is refused: /drill focus, /video, /ask alike.
        for command, options in (("drill", {"focus": "hamstrings"}), ("video", {"topic": "swing"}),
                                 ("ask", {"question": "how do I hinge?"})):
            refused = await h.rider.slash(h.channel, command, **options)
            assert refused.response is not None and refused.response.ephemeral, command
            assert refused.response.content.startswith("Easy there"), command
        # /drill by name and /video without a topic do not search, so they stay free.
        named = await h.rider.slash(h.channel, "drill", name="dowel-drill")
        assert named.response is not None and named.response.embeds


async def test_more_sources_serves_the_stored_passages_without_searching_again(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    async with running(make_bot(settings, composer=AnswerComposer(policy=ALWAYS))) as h:
        answer = (await h.rider.slash(h.channel, "ask", question="how do I hinge?")).response
        assert answer is not None

        def no_search(*args: object) -> None:
            raise AssertionError("More sources must not search again")

        monkeypatch.setattr(h.bot.composer, "ask", no_search)
        monkeypatch.setattr(h.bot.engine.index, "search_with_vector", no_search)
        more = await h.rider.click(answer, label="More sources")
        assert more.response is not None and more.response.ephemeral and more.response.embeds


async def test_a_failing_button_gets_the_same_kind_message_as_a_command(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    async with running(make_bot(settings)) as h:
        answer = (await h.rider.slash(h.channel, "ask", question="how do I hinge?")).response
        assert answer is not None

        async def broken(*args: object) -> bool:
            raise RuntimeError("database /var/lib/secret/path is locked")

        monkeypatch.setattr(h.bot.storage, "record_feedback", broken)
        clicked = await h.rider.click(answer, label="Helpful")
        assert clicked.response is not None and clicked.response.ephemeral
        assert clicked.response.content == WENT_WRONG
        for message in h.bot_messages():
            assert "/var/lib" not in message.content and "locked" not in message.content


def test_the_token_is_redacted_from_tracebacks_too(capsys: pytest.CaptureFixture[str]) -> None:
    token = "MTIzNDU2Nzg5MDEy.Gabcde.secret-token-value"
    for as_json in (False, True):
        configure_logging("INFO", as_json=as_json, secrets=[token])
        try:
            try:
                raise RuntimeError(f"login failed with {token}")
            except RuntimeError:
                logging.getLogger("hinge.test").exception("gateway error")
        finally:
            logging.getLogger().handlers.clear()
        err = capsys.readouterr().err
        assert token not in err and REDACTED in err and "RuntimeError" in err


async def test_forget_me_and_retention_delete_questions_and_feedback(settings: Settings) -> None:
    async with running(make_bot(settings)) as h:
        answer = (await h.rider.slash(h.channel, "ask", question="how do I hinge?")).response
        assert answer is not None
        await h.rider.click(answer, label="Helpful")
        await h.admin.slash(h.channel, "ask", question="attack position?")
        gone = await h.rider.slash(h.channel, "forget-me")
        told = gone.followups[-1] if gone.followups else gone.response
        assert told is not None and told.ephemeral
        assert told.content.startswith("Done: I deleted 1 question, your feedback")
        assert h.rows("SELECT user_id FROM questions") == [(h.admin.id,)]
        assert h.rows("SELECT COUNT(*) FROM feedback") == [(0,)]
        with h.db() as db:
            db.execute("UPDATE questions SET asked_at = '2020-01-01T00:00:00+00:00'")
        assert (await h.bot.storage.purge_older_than(settings.retention_days)).questions == 1
        assert h.rows("SELECT COUNT(*) FROM questions") == [(0,)]


def test_the_embedding_cache_keeps_only_what_the_current_index_uses(tmp_path: Path) -> None:
    knowledge = bot_library(tmp_path / "knowledge")
    engine = Engine(tmp_path / "data", knowledge, HashingEmbedder())
    engine.load()
    cache = EmbeddingCache(engine.store.cache_path)

    def rows() -> int:
        with cache._connect() as db:
            return int(db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0])

    before = rows()
    page = knowledge / "related" / "tire-care.md"
    page.write_text(page.read_text(encoding="utf-8").replace("gauge", "digital gauge"), encoding="utf-8")
    engine.reindex()
    # The edited passage's old vector is gone; the count stays what the index holds.
    assert rows() == before
    with cache._connect() as db:
        db.execute("INSERT INTO vectors VALUES ('other/model', 'k', x'00')")
    engine.reindex()
    assert rows() == before
