"""A team's own documents: a coach's answer given in Discord, written as a forum answer of the library.

The front matter is written by code (yaml.safe_dump of single-line values), never by hand, and the text is
parsed back before it is saved, so whatever a coach types, the library still loads.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import unicodedata
from pathlib import Path

import yaml
from pydantic import BaseModel, Field, ValidationError

from index.errors import KnowledgeFileError
from index.library.documents import KIND_FOLDERS, Document, Kind, Url, guild_folder, parse_markdown

MAX_ANSWER_CHARS = 2000
MAX_TITLE_CHARS = 100
SUMMARY_CHARS = 240
COACH_TAG = "coach-answer"

_MENTION = re.compile(r"<@[!&]?(\d+)>|<#(\d+)>|@(everyone|here)\b")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s")


class CoachAnswerDraft(BaseModel):
    """What a coach submitted, and where: everything the library file is made from."""

    document_id: str
    question: str
    title: str
    text: str = Field(max_length=MAX_ANSWER_CHARS * 2)
    coach_name: str
    guild_id: int
    guild_name: str
    source_url: str = Field(description="the coach's own link, or the queue card's message link")
    date: dt.date


def one_line(text: str, limit: int) -> str:
    folded = " ".join(_CONTROL.sub(" ", unicodedata.normalize("NFKC", text)).split())
    return folded if len(folded) <= limit else folded[: limit - 1].rstrip() + "…"


def plain_text(text: str) -> str:
    """The coach's words as library text: mention syntax spelled out (it means nothing outside Discord)."""
    text = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _MENTION.sub(lambda m: "a team mate" if m[1] else "a channel" if m[2] else m[3], text)
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


def summary_of(text: str) -> str:
    """The answer's opening sentences, up to SUMMARY_CHARS: shown as the lead of an answer that cites it."""
    flat = one_line(text.replace("#", " "), 10_000)
    summary = ""
    for sentence in _SENTENCE_END.split(flat):
        if summary and len(summary) + len(sentence) + 1 > SUMMARY_CHARS:
            break
        summary = f"{summary} {sentence}".strip()
    return one_line(summary or flat, SUMMARY_CHARS)


def document_id(answer_id: int, title: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", unicodedata.normalize("NFKD", title).encode("ascii", "ignore")
                  .decode().lower()).strip("-")[:40].strip("-")
    return f"coach-{answer_id}" + (f"-{slug}" if slug else "")


def valid_url(url: str | None) -> str | None:
    """`url` if the library would accept it as a source link, else None."""
    if not url or not url.strip():
        return None
    try:
        from pydantic import TypeAdapter

        return TypeAdapter(Url).validate_python(url.strip())
    except ValidationError:
        return None


def render(draft: CoachAnswerDraft) -> str:
    title = one_line(draft.title, MAX_TITLE_CHARS) or one_line(draft.question, MAX_TITLE_CHARS)
    meta = {
        "id": draft.document_id,
        "kind": Kind.FORUM.value,
        "title": title,
        "question": one_line(draft.question, 500),
        "summary": summary_of(plain_text(draft.text)),
        "tags": [COACH_TAG],
        "sources": [{"title": one_line(f"Coach answer in {draft.guild_name}", 200),
                     "author": one_line(draft.coach_name, 100) or "a coach",
                     "publisher": one_line(f"{draft.guild_name} coaches", 200), "url": draft.source_url}],
        "guild_id": draft.guild_id,
        "date": draft.date.isoformat(),
    }
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=1_000_000)
    return f"---\n{front}---\n\n{plain_text(draft.text)}\n"


def path_for(library_dir: Path, guild_id: int, doc_id: str) -> Path:
    """Where a coach answer of server `guild_id` lives: its folder is what makes it that server's own."""
    return guild_folder(library_dir, guild_id) / KIND_FOLDERS[Kind.FORUM] / f"{doc_id}.md"


def write_document(path: Path, text: str, replace: bool = False) -> Document:
    """Parse `text` as a library file, then save it: a new file is created exclusively (an existing one is never
    overwritten unless `replace`), and a replacement lands atomically. Returns the parsed document."""
    doc = parse_markdown(path, text)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode("utf-8")
    if not replace:
        try:
            with path.open("xb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        except FileExistsError as exc:
            raise KnowledgeFileError(path, "id", f"{doc.id!r} already exists in the library") from exc
        return doc
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    return doc
