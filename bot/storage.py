"""The bot's SQLite file: question log, feedback, reindex audit and per-server settings.

The schema is versioned: each migration runs once, in order, inside a transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiosqlite
from pydantic import BaseModel

MIGRATIONS: Sequence[str] = (
    # 1: the first schema
    """
    CREATE TABLE questions (
        id INTEGER PRIMARY KEY,
        asked_at TEXT NOT NULL,
        question TEXT NOT NULL,
        answered INTEGER NOT NULL,
        status TEXT NOT NULL,
        top_score REAL,
        confidence REAL,
        latency_ms REAL NOT NULL,
        guild_id INTEGER,
        channel_id INTEGER,
        user_id INTEGER
    );
    CREATE INDEX questions_asked_at ON questions (asked_at);
    CREATE TABLE feedback (
        id INTEGER PRIMARY KEY,
        question_id INTEGER NOT NULL REFERENCES questions (id),
        user_id INTEGER NOT NULL,
        helpful INTEGER NOT NULL,
        at TEXT NOT NULL,
        UNIQUE (question_id, user_id)
    );
    CREATE TABLE reindexes (
        id INTEGER PRIMARY KEY,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        user_id INTEGER,
        user_name TEXT,
        ok INTEGER NOT NULL DEFAULT 0,
        documents INTEGER,
        chunks INTEGER,
        added INTEGER,
        changed INTEGER,
        removed INTEGER,
        seconds REAL,
        error TEXT
    );
    CREATE TABLE guild_settings (
        guild_id INTEGER PRIMARY KEY,
        admin_role TEXT,
        updated_at TEXT NOT NULL
    );
    """,
)


class LoggedQuestion(BaseModel):
    id: int
    asked_at: datetime
    question: str
    answered: bool
    helpful: bool | None = None


class ReindexRecord(BaseModel):
    started_at: datetime
    finished_at: datetime | None
    user_name: str | None
    ok: bool
    documents: int | None
    chunks: int | None
    seconds: float | None


def _now() -> str:
    return datetime.now(UTC).isoformat()


class Storage:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: aiosqlite.Connection | None = None

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("the database is not open")
        return self._db

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = await aiosqlite.connect(self.path)
        for pragma in ("PRAGMA journal_mode=WAL", "PRAGMA foreign_keys=ON"):
            # Closing the cursor matters: an unread PRAGMA row keeps a statement open, which
            # blocks the migration's COMMIT.
            async with self._db.execute(pragma):
                pass
        await self.migrate()

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    async def schema_version(self) -> int:
        async with self.db.execute("PRAGMA user_version") as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def migrate(self) -> None:
        current = await self.schema_version()
        for version, script in enumerate(MIGRATIONS[current:], current + 1):
            # executescript commits first; the version bump rides in the same script.
            await self.db.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {version};\nCOMMIT;")

    async def writable(self) -> bool:
        try:
            await self.db.execute("CREATE TEMP TABLE IF NOT EXISTS probe (x INTEGER)")
            return True
        except (aiosqlite.Error, RuntimeError):
            return False

    # -- questions and feedback -------------------------------------------------------------
    async def log_question(self, question: str, answered: bool, status: str, top_score: float | None,
                           confidence: float | None, latency_ms: float, guild_id: int | None,
                           channel_id: int | None, user_id: int | None) -> int:
        cursor = await self.db.execute(
            "INSERT INTO questions (asked_at, question, answered, status, top_score, confidence, latency_ms, "
            "guild_id, channel_id, user_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (_now(), question, int(answered), status, top_score, confidence, latency_ms, guild_id, channel_id,
             user_id))
        await self.db.commit()
        return int(cursor.lastrowid or 0)

    async def question(self, question_id: int) -> str | None:
        async with self.db.execute("SELECT question FROM questions WHERE id = ?", (question_id,)) as cursor:
            row = await cursor.fetchone()
        return str(row[0]) if row else None

    async def record_feedback(self, question_id: int, user_id: int, helpful: bool) -> bool:
        """Store (or change) one user's vote on one answer; False if the answer is unknown."""
        if await self.question(question_id) is None:
            return False
        await self.db.execute(
            "INSERT INTO feedback (question_id, user_id, helpful, at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (question_id, user_id) DO UPDATE SET helpful = excluded.helpful, at = excluded.at",
            (question_id, user_id, int(helpful), _now()))
        await self.db.commit()
        return True

    async def feedback_counts(self) -> tuple[int, int]:
        async with self.db.execute("SELECT COALESCE(SUM(helpful), 0), COALESCE(SUM(1 - helpful), 0) "
                                   "FROM feedback") as cursor:
            row = await cursor.fetchone()
        return (int(row[0]), int(row[1])) if row else (0, 0)

    async def unanswered(self, days: int) -> list[LoggedQuestion]:
        """Declined questions and answers someone marked "Not helpful", newest first."""
        since = (datetime.now(UTC) - timedelta(days=days)).isoformat()
        sql = ("SELECT q.id, q.asked_at, q.question, q.answered, MIN(f.helpful) FROM questions q "
               "LEFT JOIN feedback f ON f.question_id = q.id WHERE q.asked_at >= ? AND q.status != 'invalid' "
               "GROUP BY q.id HAVING q.answered = 0 OR MIN(f.helpful) = 0 ORDER BY q.asked_at DESC")
        async with self.db.execute(sql, (since,)) as cursor:
            rows = await cursor.fetchall()
        return [LoggedQuestion(id=r[0], asked_at=datetime.fromisoformat(r[1]), question=r[2], answered=bool(r[3]),
                               helpful=None if r[4] is None else bool(r[4])) for r in rows]

    # -- reindex audit ----------------------------------------------------------------------
    async def start_reindex(self, user_id: int | None, user_name: str | None) -> int:
        cursor = await self.db.execute("INSERT INTO reindexes (started_at, user_id, user_name) VALUES (?, ?, ?)",
                                       (_now(), user_id, user_name))
        await self.db.commit()
        return int(cursor.lastrowid or 0)

    async def finish_reindex(self, record_id: int, ok: bool, documents: int | None = None, chunks: int | None = None,
                             added: int | None = None, changed: int | None = None, removed: int | None = None,
                             seconds: float | None = None, error: str | None = None) -> None:
        await self.db.execute(
            "UPDATE reindexes SET finished_at = ?, ok = ?, documents = ?, chunks = ?, added = ?, changed = ?, "
            "removed = ?, seconds = ?, error = ? WHERE id = ?",
            (_now(), int(ok), documents, chunks, added, changed, removed, seconds, error, record_id))
        await self.db.commit()

    async def last_reindex(self) -> ReindexRecord | None:
        sql = ("SELECT started_at, finished_at, user_name, ok, documents, chunks, seconds FROM reindexes "
               "WHERE ok = 1 ORDER BY id DESC LIMIT 1")
        async with self.db.execute(sql) as cursor:
            row = await cursor.fetchone()
        if row is None:
            return None
        return ReindexRecord(started_at=datetime.fromisoformat(row[0]),
                             finished_at=datetime.fromisoformat(row[1]) if row[1] else None, user_name=row[2],
                             ok=bool(row[3]), documents=row[4], chunks=row[5], seconds=row[6])

    # -- per-server settings ----------------------------------------------------------------
    async def guild_admin_role(self, guild_id: int) -> str | None:
        async with self.db.execute("SELECT admin_role FROM guild_settings WHERE guild_id = ?", (guild_id,)) as cur:
            row = await cur.fetchone()
        return str(row[0]) if row and row[0] else None

    async def set_guild_admin_role(self, guild_id: int, role: str | None) -> None:
        await self.db.execute(
            "INSERT INTO guild_settings (guild_id, admin_role, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (guild_id) DO UPDATE SET admin_role = excluded.admin_role, updated_at = excluded.updated_at",
            (guild_id, role, _now()))
        await self.db.commit()
