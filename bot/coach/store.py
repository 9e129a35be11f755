"""The coach loop's rows in the bot's SQLite file: queue cards, who asked, and the coaches' answers.

A coach's answer is written here before anything else happens to it, so a crash, a failed reindex or a
Discord error never loses it; start-up finishes whatever a row says is not done yet.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
from pydantic import BaseModel

from bot.state.storage import Storage
from index.retrieval.embedding import Vectors


def _now() -> str:
    return datetime.now(UTC).isoformat()


class CoachRequest(BaseModel):
    """One queue card: a question (and the similar ones merged into it) waiting for a coach."""

    id: int
    guild_id: int
    question: str
    status: str  # open, answered, dismissed, merged
    card_channel_id: int | None
    card_message_id: int | None
    merged_into: int | None
    created_at: datetime
    closed_by: str | None


class Asker(BaseModel):
    id: int
    request_id: int
    question_id: int | None
    question: str
    user_id: int | None
    channel_id: int | None
    message_id: int | None
    private: bool
    reason: str  # declined, not_helpful, asked
    withdrawn: bool
    delivered: bool


class CoachAnswer(BaseModel):
    id: int
    request_id: int
    guild_id: int
    coach_id: int
    coach_name: str
    question: str
    title: str
    text: str
    link: str | None
    document_id: str
    written: bool
    indexed: bool
    removed: bool
    created_at: datetime


_REQUEST = "id, guild_id, question, status, card_channel_id, card_message_id, merged_into, created_at, closed_by"
_ASKER = ("id, request_id, question_id, question, user_id, channel_id, message_id, private, reason, withdrawn, "
          "delivered_at IS NOT NULL")
_ANSWER = ("id, request_id, guild_id, coach_id, coach_name, question, title, text, link, document_id, written, "
           "indexed, removed, created_at")


def _request(row: tuple[object, ...]) -> CoachRequest:
    return CoachRequest.model_validate(dict(zip(_REQUEST.split(", "), row, strict=True)))


def _asker(row: tuple[object, ...]) -> Asker:
    names = _ASKER.replace("delivered_at IS NOT NULL", "delivered").split(", ")
    return Asker.model_validate(dict(zip(names, row, strict=True)))


def _answer(row: tuple[object, ...]) -> CoachAnswer:
    return CoachAnswer.model_validate(dict(zip(_ANSWER.split(", "), row, strict=True)))


class CoachStore:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    @property
    def db(self):  # type: ignore[no-untyped-def]
        return self.storage.db

    # -- the queue ----------------------------------------------------------------------------------
    async def open_requests(self, guild_id: int) -> list[tuple[CoachRequest, Vectors | None]]:
        sql = f"SELECT {_REQUEST}, vector FROM coach_requests WHERE guild_id = ? AND status = 'open' ORDER BY id"
        async with self.db.execute(sql, (guild_id,)) as cursor:
            rows = await cursor.fetchall()
        return [(_request(r[:-1]), np.frombuffer(r[-1], dtype=np.float32) if r[-1] else None) for r in rows]

    async def request(self, request_id: int) -> CoachRequest | None:
        async with self.db.execute(f"SELECT {_REQUEST} FROM coach_requests WHERE id = ?", (request_id,)) as cursor:
            row = await cursor.fetchone()
        return _request(row) if row else None

    async def create_request(self, guild_id: int, question: str, vector: Vectors | None) -> int:
        async with self.storage.transaction() as db:
            cursor = await db.execute(
                "INSERT INTO coach_requests (guild_id, question, vector, created_at) VALUES (?, ?, ?, ?)",
                (guild_id, question, vector.astype(np.float32).tobytes() if vector is not None else None, _now()))
        return int(cursor.lastrowid or 0)

    async def set_card(self, request_id: int, channel_id: int, message_id: int) -> None:
        async with self.storage.transaction() as db:
            await db.execute("UPDATE coach_requests SET card_channel_id = ?, card_message_id = ? WHERE id = ?",
                             (channel_id, message_id, request_id))

    async def close(self, request_id: int, status: str, by: str, merged_into: int | None = None) -> None:
        async with self.storage.transaction() as db:
            await db.execute("UPDATE coach_requests SET status = ?, closed_at = ?, closed_by = ?, merged_into = ? "
                             "WHERE id = ?", (status, _now(), by, merged_into, request_id))

    async def add_asker(self, request_id: int, question_id: int | None, question: str, user_id: int | None,
                        channel_id: int | None, message_id: int | None, private: bool, reason: str) -> bool:
        """False when this question is already on that card (a second press of the same button)."""
        async with self.storage.transaction() as db:
            cursor = await db.execute(
                "INSERT OR IGNORE INTO coach_askers (request_id, question_id, question, user_id, channel_id, "
                "message_id, private, reason, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (request_id, question_id, question, user_id, channel_id, message_id, int(private), reason, _now()))
        return bool(cursor.rowcount)

    async def move_askers(self, from_request: int, to_request: int) -> None:
        async with self.storage.transaction() as db:
            await db.execute("UPDATE OR IGNORE coach_askers SET request_id = ? WHERE request_id = ?",
                             (to_request, from_request))

    async def askers(self, request_id: int, include_withdrawn: bool = False) -> list[Asker]:
        sql = f"SELECT {_ASKER} FROM coach_askers WHERE request_id = ?" + ("" if include_withdrawn else
                                                                         " AND withdrawn = 0") + " ORDER BY id"
        async with self.db.execute(sql, (request_id,)) as cursor:
            return [_asker(r) for r in await cursor.fetchall()]

    async def asker_for_question(self, question_id: int) -> Asker | None:
        async with self.db.execute(f"SELECT {_ASKER} FROM coach_askers WHERE question_id = ? ORDER BY id DESC",
                                   (question_id,)) as cursor:
            row = await cursor.fetchone()
        return _asker(row) if row else None

    async def withdraw(self, asker_id: int) -> None:
        async with self.storage.transaction() as db:
            await db.execute("UPDATE coach_askers SET withdrawn = 1 WHERE id = ?", (asker_id,))

    async def mark_delivered(self, asker_id: int) -> None:
        async with self.storage.transaction() as db:
            await db.execute("UPDATE coach_askers SET delivered_at = ? WHERE id = ?", (_now(), asker_id))

    async def open_queue(self, guild_id: int) -> list[tuple[CoachRequest, int]]:
        """Open cards with their number of (not withdrawn) askers, oldest first."""
        sql = (f"SELECT {', '.join('r.' + c for c in _REQUEST.split(', '))}, COUNT(a.id) FROM coach_requests r "
               "LEFT JOIN coach_askers a ON a.request_id = r.id AND a.withdrawn = 0 "
               "WHERE r.guild_id = ? AND r.status = 'open' GROUP BY r.id ORDER BY r.id")
        async with self.db.execute(sql, (guild_id,)) as cursor:
            return [(_request(r[:-1]), int(r[-1])) for r in await cursor.fetchall()]

    # -- answers ------------------------------------------------------------------------------------
    async def save_answer(self, request_id: int, guild_id: int, coach_id: int, coach_name: str, question: str,
                          title: str, text: str, link: str | None, document_id: str) -> int:
        now = _now()
        async with self.storage.transaction() as db:
            cursor = await db.execute(
                "INSERT INTO coach_answers (request_id, guild_id, coach_id, coach_name, question, title, text, link, "
                "document_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (request_id, guild_id, coach_id, coach_name, question, title, text, link, document_id, now, now))
            # Closed in the same transaction: a crash right after the answer is stored must not leave its card open
            # (after a restart the card would still offer Answer, and a second answer would become a second document).
            await db.execute("UPDATE coach_requests SET status = 'answered', closed_at = ?, closed_by = ? "
                             "WHERE id = ? AND status = 'open'", (now, coach_name, request_id))
        return int(cursor.lastrowid or 0)

    async def update_answer_text(self, answer_id: int, title: str, text: str, link: str | None) -> None:
        async with self.storage.transaction() as db:
            await db.execute("UPDATE coach_answers SET title = ?, text = ?, link = ?, written = 0, indexed = 0, "
                             "updated_at = ? WHERE id = ?", (title, text, link, _now(), answer_id))

    async def mark_answer(self, answer_id: int, **flags: bool) -> None:
        unknown = set(flags) - {"written", "indexed", "removed"}
        if unknown:
            raise ValueError(sorted(unknown))
        async with self.storage.transaction() as db:
            for name, value in flags.items():
                await db.execute(f"UPDATE coach_answers SET {name} = ?, updated_at = ? WHERE id = ?",
                                 (int(value), _now(), answer_id))

    async def answer(self, answer_id: int) -> CoachAnswer | None:
        async with self.db.execute(f"SELECT {_ANSWER} FROM coach_answers WHERE id = ?", (answer_id,)) as cursor:
            row = await cursor.fetchone()
        return _answer(row) if row else None

    async def answer_for_request(self, request_id: int) -> CoachAnswer | None:
        async with self.db.execute(f"SELECT {_ANSWER} FROM coach_answers WHERE request_id = ? ORDER BY id DESC",
                                   (request_id,)) as cursor:
            row = await cursor.fetchone()
        return _answer(row) if row else None

    async def answer_by_document(self, document_id: str) -> CoachAnswer | None:
        async with self.db.execute(f"SELECT {_ANSWER} FROM coach_answers WHERE document_id = ?",
                                   (document_id,)) as cursor:
            row = await cursor.fetchone()
        return _answer(row) if row else None

    async def answers(self, guild_id: int | None = None, include_removed: bool = False) -> list[CoachAnswer]:
        sql = f"SELECT {_ANSWER} FROM coach_answers WHERE (? IS NULL OR guild_id = ?)"
        if not include_removed:
            sql += " AND removed = 0"
        async with self.db.execute(sql + " ORDER BY id", (guild_id, guild_id)) as cursor:
            return [_answer(r) for r in await cursor.fetchall()]

    async def unfinished_answers(self) -> list[CoachAnswer]:
        """Answers not yet in the library or the index, or with a rider still waiting for them."""
        sql = (f"SELECT {_ANSWER} FROM coach_answers ans WHERE removed = 0 AND (written = 0 OR indexed = 0 OR "
               "EXISTS (SELECT 1 FROM coach_askers a WHERE a.request_id = ans.request_id AND a.withdrawn = 0 "
               "AND a.delivered_at IS NULL)) ORDER BY id")
        async with self.db.execute(sql) as cursor:
            return [_answer(r) for r in await cursor.fetchall()]

    # -- the weekly digest --------------------------------------------------------------------------
    async def week_counts(self, guild_id: int, since: datetime) -> list[tuple[str, str, int]]:
        """(day, outcome, count) of questions since `since`; outcome: library, coach, declined."""
        sql = ("SELECT substr(q.asked_at, 1, 10) AS day, CASE WHEN EXISTS (SELECT 1 FROM coach_askers a "
               "JOIN coach_answers ans ON ans.request_id = a.request_id "
               "WHERE a.question_id = q.id AND ans.removed = 0) "
               "THEN 'coach' WHEN q.answered = 1 THEN 'library' ELSE 'declined' END AS outcome, COUNT(*) "
               "FROM questions q WHERE q.guild_id = ? AND q.asked_at >= ? AND q.status != 'invalid' "
               "GROUP BY day, outcome ORDER BY day")
        async with self.db.execute(sql, (guild_id, since.isoformat())) as cursor:
            return [(str(r[0]), str(r[1]), int(r[2])) for r in await cursor.fetchall()]

    async def least_helpful(self, guild_id: int, since: datetime, limit: int = 5) -> list[tuple[str, int]]:
        sql = ("SELECT q.question, SUM(1 - f.helpful) AS down FROM questions q JOIN feedback f ON f.question_id = q.id "
               "WHERE q.guild_id = ? AND q.asked_at >= ? GROUP BY q.id HAVING down > 0 ORDER BY down DESC, q.id "
               "LIMIT ?")
        async with self.db.execute(sql, (guild_id, since.isoformat(), limit)) as cursor:
            return [(str(r[0]), int(r[1])) for r in await cursor.fetchall()]
