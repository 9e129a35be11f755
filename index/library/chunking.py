"""Split documents into passages that follow headings and paragraphs.

Every chunk is one contiguous span `body[start:end]` of its document, so an excerpt can be
quoted exactly as written and traced back to its place.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from index.library.documents import Document

MIN_WORDS = 60
# The longest passage. The rider library's sections are all shorter than 220 words, so its passages are the same
# at any size from 220 to 1,000 and the rider question set cannot choose; BEIR's train/dev splits chose among
# 220/300/400/600 (bench/chunking.py, the mean of SciFact train, NFCorpus train and dev: 0.4818, 0.4837, 0.4835,
# 0.4833). In the product it matters only for uploads and coach answers whose sections pass 220 words.
MAX_WORDS = 300

_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$", re.M)
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")
# A sentence ends at . ! or ? (optionally closed by a quote or bracket) followed by space.
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]?\s+")
_WORD = re.compile(r"\S+")
_SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?]+[\"')\]]?|$)", re.M)


class Chunk(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    doc_id: str
    kind: str
    title: str
    heading_path: tuple[str, ...]
    text: str
    start: int
    end: int
    url: str | None = None
    question: str | None = Field(default=None, description="the rider question a forum answer answers")
    summary: str | None = Field(default=None, description="the document's summary, context for the model")

    def embedding_text(self) -> str:
        """What the model sees: title, question and heading path give a short passage its context."""
        if self.text.startswith(self.title):
            return self.text
        title = f"{self.title} ({self.question})" if self.question else self.title
        if self.summary:
            title = f"{title}. {self.summary}"
        return f"{' > '.join([title, *self.heading_path])}\n{self.text}"

    def lexical_text(self) -> str:
        """What BM25 indexes: the passage, with its document's title when the passage does not open with it."""
        return self.text if self.text.startswith(self.title) else f"{self.title}\n{self.text}"


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence or line of `text`, whitespace trimmed."""
    spans = []
    for match in _SENTENCE.finditer(text):
        raw = match.group(0)
        if raw.strip():
            lead = len(raw) - len(raw.lstrip())
            spans.append((match.start() + lead, match.start() + len(raw.rstrip())))
    return spans


@dataclass(frozen=True)
class _Span:
    start: int
    end: int
    words: int


def _word_count(text: str) -> int:
    return len(_WORD.findall(text))


def _sections(body: str) -> Iterator[tuple[tuple[str, ...], int, int]]:
    """Yield (heading path, start, end) of the text under each heading, headings excluded."""
    path: list[tuple[int, str]] = []
    cursor = 0
    for match in _HEADING.finditer(body):
        if body[cursor:match.start()].strip():
            yield tuple(h for _, h in path), cursor, match.start()
        level = len(match.group(1))
        path = [(lvl, h) for lvl, h in path if lvl < level] + [(level, match.group(2).strip())]
        cursor = match.end()
    if body[cursor:].strip():
        yield tuple(h for _, h in path), cursor, len(body)


def _trimmed(body: str, start: int, end: int) -> _Span | None:
    segment = body[start:end]
    stripped = segment.strip()
    if not stripped:
        return None
    lead = len(segment) - len(segment.lstrip())
    s = start + lead
    e = s + len(stripped)
    return _Span(s, e, _word_count(stripped))


def _paragraphs(body: str, start: int, end: int) -> Iterator[_Span]:
    cursor = start
    for match in _PARAGRAPH_BREAK.finditer(body, start, end):
        span = _trimmed(body, cursor, match.start())
        if span:
            yield span
        cursor = match.end()
    span = _trimmed(body, cursor, end)
    if span:
        yield span


def _split_long(body: str, span: _Span, max_words: int) -> Iterator[_Span]:
    """Split an over-long paragraph at sentence ends, falling back to word boundaries."""
    pieces: list[_Span] = []
    cursor = span.start
    for match in _SENTENCE_END.finditer(body, span.start, span.end):
        piece = _trimmed(body, cursor, match.start() + len(match.group(0).rstrip()))
        if piece:
            pieces.append(piece)
        cursor = match.end()
    tail = _trimmed(body, cursor, span.end)
    if tail:
        pieces.append(tail)
    expanded: list[_Span] = []
    for piece in pieces:
        if piece.words <= max_words:
            expanded.append(piece)
            continue
        words = list(_WORD.finditer(body, piece.start, piece.end))
        for i in range(0, len(words), max_words):
            group = words[i:i + max_words]
            expanded.append(_Span(group[0].start(), group[-1].end(), len(group)))
    yield from _pack(expanded, max_words)


def _pack(spans: Iterable[_Span], max_words: int) -> Iterator[_Span]:
    current: _Span | None = None
    for span in spans:
        if current is None:
            current = span
        elif current.words + span.words <= max_words:
            current = _Span(current.start, span.end, current.words + span.words)
        else:
            yield current
            current = span
    if current is not None:
        yield current


def chunk_document(doc: Document, min_words: int = MIN_WORDS, max_words: int = MAX_WORDS) -> list[Chunk]:
    body = doc.body
    raw: list[tuple[tuple[str, ...], _Span]] = []
    for heading_path, start, end in _sections(body):
        pieces: list[_Span] = []
        for para in _paragraphs(body, start, end):
            pieces.extend(_split_long(body, para, max_words) if para.words > max_words else [para])
        raw.extend((heading_path, span) for span in _pack(pieces, max_words))
    # A passage under min_words says too little on its own: join it to a neighbour in the same
    # section when the pair still fits, so short intros and tails are not orphaned.
    merged: list[tuple[tuple[str, ...], _Span]] = []
    for heading_path, span in raw:
        if merged:
            prev_path, prev = merged[-1]
            fits = prev.words + span.words <= max_words
            if prev_path == heading_path and fits and (span.words < min_words or prev.words < min_words):
                merged[-1] = (prev_path, _Span(prev.start, span.end, prev.words + span.words))
                continue
        merged.append((heading_path, span))
    return [
        Chunk(
            id=f"{doc.id}#{n}",
            doc_id=doc.id,
            kind=doc.kind.value,
            title=doc.title,
            heading_path=heading_path,
            text=body[span.start:span.end],
            start=span.start,
            end=span.end,
            url=doc.url,
            question=doc.question,
            summary=doc.summary or None,
        )
        for n, (heading_path, span) in enumerate(merged)
    ]


def chunk_documents(docs: Iterable[Document], min_words: int = MIN_WORDS,
                    max_words: int = MAX_WORDS) -> list[Chunk]:
    return [chunk for doc in docs for chunk in chunk_document(doc, min_words, max_words)]
