"""The coach loop's rows in the bot's SQLite file: queue cards, who asked, and the coaches' answers.

A coach's answer is written here before anything else happens to it, so a crash, a failed reindex or a
Discord error never loses it; start-up finishes whatever a row says is not done yet.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import aiosqlite
import numpy as np
from pydantic import BaseModel, Field

from bot.state.storage import Storage
from index.errors import HingeError
from index.retrieval.embedding import Vectors


def _now() -> str:
    return datetime.now(UTC).isoformat()


class CardClosedError(HingeError):
    """A coach acted on a card that another coach (or the rider) closed a moment earlier."""

    def __init__(self, status: str, closed_by: str | None) -> None:
        super().__init__(f"card already {status}")
        self.status = status
        self.closed_by = closed_by

    @property
    def user_message(self) -> str:  # type: ignore[override]
        if self.status == "answered":
            return f"This card was already answered by {self.closed_by or 'another coach'}."
        return f"This card is already closed ({self.status})."


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
    card_stale: bool = False


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
    claimed: bool


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
    edited_by: str | None = None
    updated_at: str = Field(description="the row's version: a flag is set only for the text it was done for")


_REQUEST = ("id, guild_id, question, status, card_channel_id, card_message_id, merged_into, created_at, closed_by, "
            "card_stale")
_ASKER = ("id, request_id, question_id, question, user_id, channel_id, message_id, private, reason, withdrawn, "
          "delivered_at IS NOT NULL, claimed_at IS NOT NULL")
_ANSWER = ("id, request_id, guild_id, coach_id, coach_name, question, title, text, link, document_id, written, "
           "indexed, removed, created_at, edited_by, updated_at")


def _request(row: tuple[object, ...]) -> CoachRequest:
    return CoachRequest.model_validate(dict(zip(_REQUEST.split(", "), row, strict=True)))


def _asker(row: tuple[object, ...]) -> Asker:
    names = _ASKER.replace("delivered_at IS NOT NULL", "delivered").replace("claimed_at IS NOT NULL",
                                                                             "claimed").split(", ")
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
    async def request(self, request_id: int) -> CoachRequest | None:
        async with self.db.execute(f"SELECT {_REQUEST} FROM coach_requests WHERE id = ?", (request_id,)) as cursor:
            row = await cursor.fetchone()
        return _request(row) if row else None

    async def queue(self, guild_id: int, question_id: int | None, question: str, user_id: int | None,
                    channel_id: int | None, message_id: int | None, private: bool, reason: str, vector: Vectors,
                    pick: Callable[[Vectors, Sequence[Vectors]], int | None]) -> tuple[int, int, bool]:
        """One transaction: the open card that asks the same thing (`pick` chooses among the open cards'
        vectors) or a new card, and this rider on it. (card id, riders on it, whether the card is new)."""
        async with self.storage.transaction() as db:
            async with db.execute("SELECT id, vector FROM coach_requests WHERE guild_id = ? AND status = 'open' "
                                  "AND vector IS NOT NULL ORDER BY id", (guild_id,)) as cursor:
                rows = await cursor.fetchall()
            found = pick(vector, [np.frombuffer(r[1], dtype=np.float32) for r in rows]) if rows else None
            rows = list(rows)
            if found is not None:
                request_id, new_card = int(rows[found][0]), False
            else:
                cursor = await db.execute(
                    "INSERT INTO coach_requests (guild_id, question, vector, created_at) VALUES (?, ?, ?, ?)",
                    (guild_id, question, vector.astype(np.float32).tobytes(), _now()))
                request_id, new_card = int(cursor.lastrowid or 0), True
            await db.execute(
                "INSERT OR IGNORE INTO coach_askers (request_id, question_id, question, user_id, channel_id, "
                "message_id, private, reason, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (request_id, question_id, question, user_id, channel_id, message_id, int(private), reason, _now()))
            await db.execute("UPDATE coach_requests SET card_stale = 1 WHERE id = ?", (request_id,))
            async with db.execute("SELECT COUNT(*) FROM coach_askers WHERE request_id = ? AND withdrawn = 0",
                                  (request_id,)) as cursor:
                row = await cursor.fetchone()
        return request_id, int(row[0]) if row else 0, new_card

    async def set_card(self, request_id: int, channel_id: int, message_id: int) -> None:
        async with self.storage.transaction() as db:
            await db.execute("UPDATE coach_requests SET card_channel_id = ?, card_message_id = ?, card_stale = 0 "
                             "WHERE id = ?", (channel_id, message_id, request_id))

    async def card_shown(self, request_id: int) -> None:
        """The card's message now shows what the rows say."""
        async with self.storage.transaction() as db:
            await db.execute("UPDATE coach_requests SET card_stale = 0 WHERE id = ?", (request_id,))

    async def set_asker_message(self, question_id: int, message_id: int) -> None:
        async with self.storage.transaction() as db:
            await db.execute("UPDATE coach_askers SET message_id = ? WHERE question_id = ?", (message_id, question_id))
            # The card's "jump" link to the rider's message: shown at the recovery loop's next round.
            await db.execute("UPDATE coach_requests SET card_stale = 1 WHERE id IN "
                             "(SELECT request_id FROM coach_askers WHERE question_id = ?)", (question_id,))

    @staticmethod
    async def _close_open(db: aiosqlite.Connection, request_id: int, status: str, by: str,
                          merged_into: int | None = None) -> None:
        """Inside a transaction, compare-and-set: close the card only if it is still open; otherwise say who
        closed it."""
        cursor = await db.execute(
            "UPDATE coach_requests SET status = ?, closed_at = ?, closed_by = ?, merged_into = ?, card_stale = 1 "
            "WHERE id = ? AND status = 'open'", (status, _now(), by, merged_into, request_id))
        if cursor.rowcount == 1:
            return
        async with db.execute("SELECT status, closed_by FROM coach_requests WHERE id = ?", (request_id,)) as found:
            row = await found.fetchone()
        raise CardClosedError(str(row[0]) if row else "gone", row[1] if row else None)

    async def dismiss(self, request_id: int, by: str) -> None:
        async with self.storage.transaction() as db:
            await self._close_open(db, request_id, "dismissed", by)

    async def merge(self, request_id: int, into_id: int, by: str) -> None:
        """One transaction: the riders move onto the other card (a rider already there stays once), this card
        closes. Raises CardClosedError when either card closed meanwhile."""
        async with self.storage.transaction() as db:
            async with db.execute("SELECT status, closed_by FROM coach_requests WHERE id = ?", (into_id,)) as cursor:
                target = await cursor.fetchone()
            if target is None or target[0] != "open":
                raise CardClosedError(str(target[0]) if target else "gone", target[1] if target else None)
            await self._close_open(db, request_id, "merged", by, merged_into=into_id)
            await db.execute("UPDATE OR IGNORE coach_askers SET request_id = ? WHERE request_id = ?",
                             (into_id, request_id))
            await db.execute("UPDATE coach_requests SET card_stale = 1 WHERE id = ?", (into_id,))

    async def withdraw(self, question_id: int, user_id: int) -> int | None:
        """One transaction: the rider's own question off its card, and the card withdrawn when no rider is left.
        The card's id, or None when it was not theirs or already withdrawn."""
        async with self.storage.transaction() as db:
            async with db.execute("SELECT id, request_id FROM coach_askers WHERE question_id = ? AND user_id = ? "
                                  "AND withdrawn = 0 ORDER BY id DESC", (question_id, user_id)) as cursor:
                row = await cursor.fetchone()
            if row is None:
                return None
            await db.execute("UPDATE coach_askers SET withdrawn = 1 WHERE id = ?", (row[0],))
            request_id = int(row[1])
            async with db.execute("SELECT COUNT(*) FROM coach_askers WHERE request_id = ? AND withdrawn = 0",
                                  (request_id,)) as cursor:
                left = await cursor.fetchone()
            await db.execute("UPDATE coach_requests SET card_stale = 1 WHERE id = ?", (request_id,))
            if left is not None and left[0] == 0:
                await db.execute("UPDATE coach_requests SET status = 'withdrawn', closed_at = ?, "
                                 "closed_by = 'the rider' WHERE id = ? AND status = 'open'", (_now(), request_id))
        return request_id

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

    async def claim(self, asker_id: int) -> bool:
        """Take a rider's reply before sending it: False when it was claimed (or delivered) already."""
        async with self.storage.transaction() as db:
            cursor = await db.execute("UPDATE coach_askers SET claimed_at = ? WHERE id = ? AND claimed_at IS NULL "
                                      "AND delivered_at IS NULL", (_now(), asker_id))
        return cursor.rowcount == 1

    async def claimed_at(self, asker_id: int) -> datetime | None:
        async with self.db.execute("SELECT claimed_at FROM coach_askers WHERE id = ?", (asker_id,)) as cursor:
            row = await cursor.fetchone()
        return datetime.fromisoformat(row[0]) if row and row[0] else None

    async def mark_delivered(self, asker_id: int, message_id: int | None = None) -> None:
        async with self.storage.transaction() as db:
            await db.execute("UPDATE coach_askers SET delivered_at = ?, reply_message_id = ? WHERE id = ?",
                             (_now(), message_id, asker_id))

    async def open_queue(self, guild_id: int) -> list[tuple[CoachRequest, int]]:
        """Open cards with their number of (not withdrawn) askers, oldest first."""
        sql = (f"SELECT {', '.join('r.' + c for c in _REQUEST.split(', '))}, COUNT(a.id) FROM coach_requests r "
               "LEFT JOIN coach_askers a ON a.request_id = r.id AND a.withdrawn = 0 "
               "WHERE r.guild_id = ? AND r.status = 'open' GROUP BY r.id ORDER BY r.id")
        async with self.db.execute(sql, (guild_id,)) as cursor:
            return [(_request(r[:-1]), int(r[-1])) for r in await cursor.fetchall()]

    # -- answers ------------------------------------------------------------------------------------
    async def save_answer(self, request_id: int, guild_id: int, coach_id: int, coach_name: str, question: str,
                          title: str, text: str, link: str | None, document_id: str) -> tuple[int, int]:
        """One transaction, compare-and-set: the card closes as answered only if it is still open, and the answer
        is stored with it; otherwise CardClosedError says who was first. (answer id, riders waiting)."""
        now = _now()
        async with self.storage.transaction() as db:
            await self._close_open(db, request_id, "answered", coach_name)
            cursor = await db.execute(
                "INSERT INTO coach_answers (request_id, guild_id, coach_id, coach_name, question, title, text, link, "
                "document_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (request_id, guild_id, coach_id, coach_name, question, title, text, link, document_id, now, now))
            async with db.execute("SELECT COUNT(*) FROM coach_askers WHERE request_id = ? AND withdrawn = 0",
                                  (request_id,)) as counted:
                riders = await counted.fetchone()
        return int(cursor.lastrowid or 0), int(riders[0]) if riders else 0

    async def update_answer_text(self, answer_id: int, title: str, text: str, link: str | None,
                                 edited_by: str) -> bool:
        """An edit, unless the answer was removed meanwhile (False)."""
        async with self.storage.transaction() as db:
            cursor = await db.execute(
                "UPDATE coach_answers SET title = ?, text = ?, link = ?, edited_by = ?, written = 0, indexed = 0, "
                "updated_at = ? WHERE id = ? AND removed = 0", (title, text, link, edited_by, _now(), answer_id))
            await db.execute("UPDATE coach_requests SET card_stale = 1 WHERE id = "
                             "(SELECT request_id FROM coach_answers WHERE id = ?)", (answer_id,))
        return cursor.rowcount == 1

    async def remove_answer(self, answer_id: int) -> bool:
        """Mark a coach answer removed (its file still to be deleted: `written` stays until it is)."""
        async with self.storage.transaction() as db:
            cursor = await db.execute("UPDATE coach_answers SET removed = 1, updated_at = ? WHERE id = ? "
                                      "AND removed = 0", (_now(), answer_id))
            await db.execute("UPDATE coach_requests SET card_stale = 1 WHERE id = "
                             "(SELECT request_id FROM coach_answers WHERE id = ?)", (answer_id,))
        return cursor.rowcount == 1

    async def mark_answer(self, answer_id: int, version: str, **flags: bool) -> bool:
        """Set `written` or `indexed` for the text of `version` (its updated_at): an edit that landed meanwhile
        keeps its own flags cleared, so its text is written too. False when the row moved on."""
        unknown = set(flags) - {"written", "indexed"}
        if unknown:
            raise ValueError(sorted(unknown))
        sets = ", ".join(f"{name} = ?" for name in flags)
        async with self.storage.transaction() as db:
            cursor = await db.execute(f"UPDATE coach_answers SET {sets} WHERE id = ? AND updated_at = ?",
                                      (*(int(v) for v in flags.values()), answer_id, version))
        return cursor.rowcount == 1

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
        """Answers not yet in the library or the index, with a rider still waiting for them, or removed with
        their file still on disk."""
        sql = (f"SELECT {_ANSWER} FROM coach_answers ans WHERE (removed = 1 AND written = 1) OR (removed = 0 AND "
               "(written = 0 OR indexed = 0 OR EXISTS (SELECT 1 FROM coach_askers a WHERE a.request_id = "
               "ans.request_id AND a.withdrawn = 0 AND a.delivered_at IS NULL AND a.user_id IS NOT NULL))) "
               "ORDER BY id")
        async with self.db.execute(sql) as cursor:
            return [_answer(r) for r in await cursor.fetchall()]

    async def cards_to_show(self) -> list[int]:
        """Cards whose Discord message is missing (an open card never posted) or out of date."""
        async with self.db.execute("SELECT id FROM coach_requests WHERE card_stale = 1 OR (status = 'open' AND "
                                   "card_message_id IS NULL) ORDER BY id") as cursor:
            return [int(r[0]) for r in await cursor.fetchall()]

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
               "WHERE q.guild_id = ? AND q.asked_at >= ? AND q.private = 0 GROUP BY q.id HAVING down > 0 "
               "ORDER BY down DESC, q.id "
               "LIMIT ?")
        async with self.db.execute(sql, (guild_id, since.isoformat(), limit)) as cursor:
            return [(str(r[0]), int(r[1])) for r in await cursor.fetchall()]
