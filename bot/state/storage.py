"""The bot's SQLite file: question log, feedback, reindex audit and per-server settings.

The schema is versioned: each migration runs once, in order, inside a transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiosqlite
from pydantic import BaseModel, TypeAdapter

from index.answers.conversation import Turn

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
    # 2: the coach loop, answers kept for "More sources", per-server settings by id, private questions
    """
    ALTER TABLE questions ADD COLUMN private INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE questions ADD COLUMN message_id INTEGER;
    ALTER TABLE questions ADD COLUMN answer_json TEXT;
    ALTER TABLE reindexes ADD COLUMN embedded INTEGER;
    CREATE INDEX questions_user ON questions (user_id);
    DROP TABLE guild_settings;
    CREATE TABLE guild_settings (
        guild_id INTEGER PRIMARY KEY,
        admin_role_id INTEGER,
        coach_channel_id INTEGER,
        coach_role_id INTEGER,
        digest_weekday INTEGER,
        digest_hour INTEGER,
        answer_threads INTEGER,
        last_digest_at TEXT,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE coach_requests (
        id INTEGER PRIMARY KEY,
        guild_id INTEGER NOT NULL,
        question TEXT NOT NULL,
        vector BLOB,
        status TEXT NOT NULL DEFAULT 'open',
        card_channel_id INTEGER,
        card_message_id INTEGER,
        merged_into INTEGER REFERENCES coach_requests (id),
        created_at TEXT NOT NULL,
        closed_at TEXT,
        closed_by TEXT
    );
    CREATE INDEX coach_requests_open ON coach_requests (guild_id, status);
    CREATE TABLE coach_askers (
        id INTEGER PRIMARY KEY,
        request_id INTEGER NOT NULL REFERENCES coach_requests (id),
        question_id INTEGER REFERENCES questions (id) ON DELETE SET NULL,
        question TEXT NOT NULL,
        user_id INTEGER,
        channel_id INTEGER,
        message_id INTEGER,
        private INTEGER NOT NULL DEFAULT 0,
        reason TEXT NOT NULL,
        withdrawn INTEGER NOT NULL DEFAULT 0,
        delivered_at TEXT,
        created_at TEXT NOT NULL
    );
    CREATE UNIQUE INDEX coach_askers_once ON coach_askers (request_id, question_id);
    CREATE TABLE coach_answers (
        id INTEGER PRIMARY KEY,
        request_id INTEGER NOT NULL REFERENCES coach_requests (id),
        guild_id INTEGER NOT NULL,
        coach_id INTEGER NOT NULL,
        coach_name TEXT NOT NULL,
        question TEXT NOT NULL,
        title TEXT NOT NULL,
        text TEXT NOT NULL,
        link TEXT,
        document_id TEXT NOT NULL UNIQUE,
        written INTEGER NOT NULL DEFAULT 0,
        indexed INTEGER NOT NULL DEFAULT 0,
        removed INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    """,
    # 3: conversations in the bot's own threads and in DMs
    """
    CREATE TABLE conversations (
        channel_id INTEGER PRIMARY KEY,
        guild_id INTEGER,
        user_id INTEGER,
        turns TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    """,
    # 4: exactly-once delivery (a rider is claimed before the reply is sent), edits credited, cards whose Discord
    # message is out of date (the recovery loop edits them)
    """
    ALTER TABLE coach_askers ADD COLUMN claimed_at TEXT;
    ALTER TABLE coach_askers ADD COLUMN reply_message_id INTEGER;
    ALTER TABLE coach_answers ADD COLUMN edited_by TEXT;
    ALTER TABLE coach_requests ADD COLUMN card_stale INTEGER NOT NULL DEFAULT 0;
    """,
)


class StoredTurn(Turn):
    """A conversation turn with the rider who asked it, so /forget-me and retention can take out their turns
    from a thread someone else opened. Turns stored before it have no rider (None)."""

    user_id: int | None = None


_TURNS = TypeAdapter(list[StoredTurn])
MAX_KEPT_TURNS = 10


class LoggedQuestion(BaseModel):
    id: int
    asked_at: datetime
    question: str
    answered: bool
    helpful: bool | None = None


class QuestionRecord(BaseModel):
    """One logged question with where it was asked and what the bot sent."""

    id: int
    question: str
    answered: bool
    status: str
    guild_id: int | None
    channel_id: int | None
    user_id: int | None
    private: bool
    message_id: int | None
    answer_json: str | None


class GuildSettings(BaseModel):
    """One server's settings; None means "use the deployment's default"."""

    guild_id: int
    admin_role_id: int | None = None
    coach_channel_id: int | None = None
    coach_role_id: int | None = None
    digest_weekday: int | None = None
    digest_hour: int | None = None
    answer_threads: bool | None = None
    last_digest_at: datetime | None = None


GUILD_FIELDS = ("admin_role_id", "coach_channel_id", "coach_role_id", "digest_weekday", "digest_hour",
                "answer_threads", "last_digest_at")


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


# What a card says once every rider who asked it is forgotten: the question was theirs.
FORGOTTEN_QUESTION = "(a question whose rider asked to be forgotten)"


class Forgotten(BaseModel):
    """What /forget-me or retention took out: the questions, and the coach cards whose text or riders changed."""

    questions: int
    cards: list[int]


async def erase(db: aiosqlite.Connection, question_ids: Sequence[int], user_id: int | None = None) -> Forgotten:
    """Inside a transaction: delete these questions (and, with `user_id`, everything else of that rider) with
    their feedback and their places on coach cards. A card left with no rider is withdrawn; a card whose text
    was theirs takes the next rider's words; a coach answer keeps its text but no longer the rider's question
    (its library file is written again without it)."""
    ids = json.dumps(list(question_ids))
    who = user_id if user_id is not None else -1
    mine = "(question_id IN (SELECT value FROM json_each(?)) OR user_id = ?)"
    async with db.execute(f"SELECT DISTINCT request_id FROM coach_askers WHERE {mine}", (ids, who)) as cursor:
        cards = sorted(int(r[0]) for r in await cursor.fetchall())
    await db.execute("DELETE FROM feedback WHERE question_id IN (SELECT value FROM json_each(?)) OR user_id = ?",
                     (ids, who))
    await db.execute(f"DELETE FROM coach_askers WHERE {mine}", (ids, who))
    cursor = await db.execute("DELETE FROM questions WHERE id IN (SELECT value FROM json_each(?))", (ids,))
    removed = int(cursor.rowcount)
    now = _now()
    for request_id in cards:
        async with db.execute("SELECT question FROM coach_askers WHERE request_id = ? ORDER BY id LIMIT 1",
                              (request_id,)) as cursor:
            first = await cursor.fetchone()
        question = str(first[0]) if first else FORGOTTEN_QUESTION
        await db.execute("UPDATE coach_requests SET vector = CASE WHEN question = ? THEN vector END, question = ?, "
                         "card_stale = 1 WHERE id = ?", (question, question, request_id))
        if first is None:
            await db.execute("UPDATE coach_requests SET status = 'withdrawn', closed_at = ?, closed_by = 'the rider' "
                             "WHERE id = ? AND status = 'open'", (now, request_id))
        await db.execute("UPDATE coach_answers SET question = CASE WHEN ? THEN ? ELSE title END, written = 0, "
                         "indexed = 0, updated_at = ? WHERE request_id = ? AND removed = 0 AND question != ?",
                         (first is not None, question, now, request_id, question))
    return Forgotten(questions=removed, cards=cards)


class Storage:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("the database is not open")
        return self._db

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = await aiosqlite.connect(self.path)
        # secure_delete: a forgotten rider's words are overwritten in the file, not left in free pages.
        for pragma in ("PRAGMA journal_mode=WAL", "PRAGMA foreign_keys=ON", "PRAGMA secure_delete=ON"):
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

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction: committed when the block ends, rolled back when it raises.

        Every write goes through here. The bot's coroutines share one connection, so without the lock one
        writer's commit would also commit another's half-done statements (a purge's first DELETE without its
        second), and a writer that found another's transaction open could not tell when it ended. Commit and
        rollback are shielded: a writer cancelled half-way never leaves a transaction open. A COMMIT that fails
        (a full disk, a busy file) is rolled back, so the next writer does not inherit its statements.
        """
        async with self._write_lock:
            try:
                yield self.db
            except BaseException:
                await asyncio.shield(self._rollback())
                raise
            try:
                await asyncio.shield(self.db.commit())
            except BaseException:
                await asyncio.shield(self._rollback())
                raise

    async def _rollback(self) -> None:
        with contextlib.suppress(aiosqlite.Error, ValueError, RuntimeError):
            await self.db.rollback()

    async def writable(self) -> bool:
        """Commit a real write to the database file (its one-row `health_probe` table).

        A TEMP table lives outside the file, so it passes on a read-only disk; this does not. The probe is a
        write transaction like any other (`transaction`): it waits for the one in progress, and commits only
        its own row.
        """
        # Shielded: a health request given up on still finishes its probe, which holds the write lock.
        return await asyncio.shield(self._probe())

    async def _probe(self) -> bool:
        try:
            async with self.transaction() as db:
                await db.execute("CREATE TABLE IF NOT EXISTS health_probe "
                                 "(id INTEGER PRIMARY KEY CHECK (id = 1), checked_at TEXT NOT NULL)")
                await db.execute("INSERT OR REPLACE INTO health_probe (id, checked_at) VALUES (1, ?)", (_now(),))
        except (aiosqlite.Error, ValueError, RuntimeError):  # RuntimeError: not open
            return False
        return True

    # -- questions and feedback -------------------------------------------------------------
    async def log_question(self, question: str, answered: bool, status: str, top_score: float | None,
                           confidence: float | None, latency_ms: float, guild_id: int | None,
                           channel_id: int | None, user_id: int | None, private: bool = False,
                           answer_json: str | None = None) -> int:
        async with self.transaction() as db:
            cursor = await db.execute(
                "INSERT INTO questions (asked_at, question, answered, status, top_score, confidence, latency_ms, "
                "guild_id, channel_id, user_id, private, answer_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (_now(), question, int(answered), status, top_score, confidence, latency_ms, guild_id, channel_id,
                 user_id, int(private), answer_json))
        return int(cursor.lastrowid or 0)

    async def set_question_message(self, question_id: int, message_id: int) -> None:
        async with self.transaction() as db:
            await db.execute("UPDATE questions SET message_id = ? WHERE id = ?", (message_id, question_id))

    async def question(self, question_id: int) -> str | None:
        record = await self.question_record(question_id)
        return record.question if record else None

    async def question_record(self, question_id: int) -> QuestionRecord | None:
        sql = ("SELECT id, question, answered, status, guild_id, channel_id, user_id, private, message_id, answer_json "
               "FROM questions WHERE id = ?")
        async with self.db.execute(sql, (question_id,)) as cursor:
            row = await cursor.fetchone()
        if row is None:
            return None
        return QuestionRecord(id=row[0], question=row[1], answered=bool(row[2]), status=row[3], guild_id=row[4],
                              channel_id=row[5], user_id=row[6], private=bool(row[7]), message_id=row[8],
                              answer_json=row[9])

    async def forget_user(self, user_id: int) -> Forgotten:
        """Delete every row that holds a rider's id or words (their /forget-me), in one transaction."""
        async with self.transaction() as db:
            async with db.execute("SELECT id FROM questions WHERE user_id = ?", (user_id,)) as cursor:
                question_ids = [int(r[0]) for r in await cursor.fetchall()]
            forgotten = await erase(db, question_ids, user_id=user_id)
            async with db.execute("SELECT channel_id, turns FROM conversations") as cursor:
                conversations = await cursor.fetchall()
            for channel_id, turns in conversations:
                kept = [t for t in _TURNS.validate_json(turns) if t.user_id != user_id]
                await db.execute("UPDATE conversations SET turns = ? WHERE channel_id = ?",
                                 (_TURNS.dump_json(kept).decode(), channel_id))
            await db.execute("DELETE FROM conversations WHERE user_id = ?", (user_id,))
        return forgotten

    async def purge_older_than(self, days: int) -> Forgotten:
        """Retention: every row holding a rider's words older than `days` goes (questions, feedback, their place
        on coach cards, conversations idle that long), in one transaction."""
        before = (datetime.now(UTC) - timedelta(days=days)).isoformat()
        async with self.transaction() as db:
            async with db.execute("SELECT id FROM questions WHERE asked_at < ?", (before,)) as cursor:
                question_ids = [int(r[0]) for r in await cursor.fetchall()]
            forgotten = await erase(db, question_ids)
            await db.execute("DELETE FROM feedback WHERE at < ?", (before,))
            await db.execute("DELETE FROM conversations WHERE updated_at < ?", (before,))
        return forgotten

    async def record_feedback(self, question_id: int, user_id: int, helpful: bool) -> bool:
        """Store (or change) one user's vote on one answer; False if the answer is unknown."""
        if await self.question(question_id) is None:
            return False
        async with self.transaction() as db:
            await db.execute(
                "INSERT INTO feedback (question_id, user_id, helpful, at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (question_id, user_id) DO UPDATE SET helpful = excluded.helpful, at = excluded.at",
                (question_id, user_id, int(helpful), _now()))
        return True

    async def feedback_counts(self) -> tuple[int, int]:
        async with self.db.execute("SELECT COALESCE(SUM(helpful), 0), COALESCE(SUM(1 - helpful), 0) "
                                   "FROM feedback") as cursor:
            row = await cursor.fetchone()
        return (int(row[0]), int(row[1])) if row else (0, 0)

    async def unanswered(self, days: int, limit: int = 200, guild_id: int | None = None) -> list[LoggedQuestion]:
        """Declined questions and answers someone marked "Not helpful", newest first, at most `limit`. Private
        questions never: a rider who wants the coaches to see one sends it with Ask a coach."""
        since = (datetime.now(UTC) - timedelta(days=days)).isoformat()
        sql = ("SELECT q.id, q.asked_at, q.question, q.answered, MIN(f.helpful) FROM questions q "
               "LEFT JOIN feedback f ON f.question_id = q.id WHERE q.asked_at >= ? AND q.status != 'invalid' "
               "AND q.private = 0 "
               "AND (? IS NULL OR q.guild_id = ?) "
               "GROUP BY q.id HAVING q.answered = 0 OR MIN(f.helpful) = 0 ORDER BY q.asked_at DESC LIMIT ?")
        async with self.db.execute(sql, (since, guild_id, guild_id, limit)) as cursor:
            rows = await cursor.fetchall()
        return [LoggedQuestion(id=r[0], asked_at=datetime.fromisoformat(r[1]), question=r[2], answered=bool(r[3]),
                               helpful=None if r[4] is None else bool(r[4])) for r in rows]

    # -- reindex audit ----------------------------------------------------------------------
    async def start_reindex(self, user_id: int | None, user_name: str | None) -> int:
        async with self.transaction() as db:
            cursor = await db.execute("INSERT INTO reindexes (started_at, user_id, user_name) VALUES (?, ?, ?)",
                                      (_now(), user_id, user_name))
        return int(cursor.lastrowid or 0)

    async def finish_reindex(self, record_id: int, ok: bool, documents: int | None = None, chunks: int | None = None,
                             added: int | None = None, changed: int | None = None, removed: int | None = None,
                             seconds: float | None = None, error: str | None = None,
                             embedded: int | None = None) -> None:
        async with self.transaction() as db:
            await db.execute(
                "UPDATE reindexes SET finished_at = ?, ok = ?, documents = ?, chunks = ?, added = ?, changed = ?, "
                "removed = ?, seconds = ?, error = ?, embedded = ? WHERE id = ?",
                (_now(), int(ok), documents, chunks, added, changed, removed, seconds, error, embedded, record_id))

    async def delete_reindex(self, record_id: int) -> None:
        async with self.transaction() as db:
            await db.execute("DELETE FROM reindexes WHERE id = ?", (record_id,))

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

    # -- conversations ------------------------------------------------------------------------
    async def conversation(self, channel_id: int, idle_hours: float) -> list[StoredTurn] | None:
        """The turns so far in a thread the bot opened or a DM; None when there is none or it went idle."""
        async with self.db.execute("SELECT turns, updated_at FROM conversations WHERE channel_id = ?",
                                   (channel_id,)) as cursor:
            row = await cursor.fetchone()
        if row is None:
            return None
        if datetime.now(UTC) - datetime.fromisoformat(row[1]) > timedelta(hours=idle_hours):
            return []
        return _TURNS.validate_json(row[0])

    async def save_conversation(self, channel_id: int, guild_id: int | None, user_id: int | None,
                                turns: Sequence[Turn]) -> None:
        async with self.transaction() as db:
            await db.execute(
                "INSERT INTO conversations (channel_id, guild_id, user_id, turns, updated_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (channel_id) DO UPDATE SET turns = excluded.turns, updated_at = excluded.updated_at",
                (channel_id, guild_id, user_id, _TURNS.dump_json([StoredTurn.model_validate(t, from_attributes=True)
                                                                  for t in turns[-MAX_KEPT_TURNS:]]).decode(), _now()))

    # -- per-server settings ----------------------------------------------------------------
    async def guild_settings(self, guild_id: int) -> GuildSettings:
        sql = f"SELECT {', '.join(GUILD_FIELDS)} FROM guild_settings WHERE guild_id = ?"
        async with self.db.execute(sql, (guild_id,)) as cursor:
            row = await cursor.fetchone()
        if row is None:
            return GuildSettings(guild_id=guild_id)
        return GuildSettings(guild_id=guild_id, **dict(zip(GUILD_FIELDS, row, strict=True)))

    async def update_guild_settings(self, guild_id: int, **values: object) -> GuildSettings:
        unknown = set(values) - set(GUILD_FIELDS)
        if unknown:
            raise ValueError(f"unknown server settings: {sorted(unknown)}")
        if values:
            names = ", ".join(values)
            marks = ", ".join("?" for _ in values)
            updates = ", ".join(f"{name} = excluded.{name}" for name in values)
            params = [v.isoformat() if isinstance(v, datetime) else v for v in values.values()]
            async with self.transaction() as db:
                await db.execute(f"INSERT INTO guild_settings (guild_id, {names}, updated_at) VALUES (?, {marks}, ?) "
                                 f"ON CONFLICT (guild_id) DO UPDATE SET {updates}, updated_at = excluded.updated_at",
                                 (guild_id, *params, _now()))
        return await self.guild_settings(guild_id)

    async def configured_guilds(self) -> list[GuildSettings]:
        async with self.db.execute("SELECT guild_id FROM guild_settings") as cursor:
            ids = [int(r[0]) for r in await cursor.fetchall()]
        return [await self.guild_settings(i) for i in ids]
