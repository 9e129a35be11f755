"""Start-up puts the team library's files from before per-server folders where ownership says (real SQLite)."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from bot.settings import Settings
from bot.state.storage import Storage
from index.coaching.contributions import path_for
from index.library.documents import guild_folder
from tests.bot_fixtures import make_bot, make_settings, running
from tests.helpers import write_doc

SERVER_A, SERVER_B = 5151, 6262


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


async def test_start_up_moves_legacy_files_a_known_coach_answer_to_its_server_anything_else_to_unassigned(
        settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    library = settings.team_library_dir
    # Written before per-server folders: a coach answer of server A (its front matter says B), and an upload.
    answer = write_doc(library, "forum", "coach-1-holding-on", "Grip the bike with the knees.", guild_id=SERVER_B)
    upload = write_doc(library, "related", "our-track", "Whoops section notes.", guild_id=SERVER_B)
    storage = Storage(settings.database_path)
    await storage.open()
    await storage.close()
    with sqlite3.connect(settings.database_path) as db:
        at = "2026-01-01T00:00:00+00:00"
        db.execute("INSERT INTO coach_requests (id, guild_id, question, created_at) VALUES (1, ?, 'q', ?)",
                   (SERVER_A, at))
        db.execute("INSERT INTO coach_answers (request_id, guild_id, coach_id, coach_name, question, title, text, "
                   "document_id, written, indexed, created_at, updated_at) VALUES (1, ?, 7, 'sam', 'q', 't', "
                   "'Grip the bike with the knees.', 'coach-1-holding-on', 1, 1, ?, ?)", (SERVER_A, at, at))
    caplog.set_level(logging.INFO, logger="bot.state.library")
    async with running(make_bot(settings)) as h:
        assert not answer.exists() and not upload.exists()
        assert (library / "unassigned" / "related" / "our-track.md").is_file()
        assert path_for(library, SERVER_A, "coach-1-holding-on").is_file()
        index = h.bot.engine.index
        assert index.documents["coach-1-holding-on"].guild_id == SERVER_A
        assert "our-track" not in index.documents
        assert "coach-1-holding-on" in index.scoped(SERVER_A).documents
        assert "coach-1-holding-on" not in index.scoped(SERVER_B).documents
    warning = next(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "unassigned" in warning and str(guild_folder(library, 0).parent) in warning and "our-track" in warning
