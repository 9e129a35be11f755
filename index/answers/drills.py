"""Choosing a drill: the one the answer's passages point to, or the best match in the library."""

from __future__ import annotations

from index.answers.models import DrillSuggestion
from index.library.documents import Document, Kind
from index.retrieval.embedding import Vectors
from index.retrieval.search import SearchIndex


def drill_suggestion(drill: Document) -> DrillSuggestion:
    return DrillSuggestion(id=drill.id, title=drill.title, goal=drill.summary, level=drill.level, dose=drill.dose,
                           url=drill.videos[0].url if drill.videos else drill.url)


def best_drill(index: SearchIndex, text: str, level: str | None = None,
               vector: Vectors | None = None) -> Document | None:
    """The drill of `index` (a server's scope) whose passages best match `text` (and `level`, when given);
    `vector` is the text's embedding when the caller already has it."""
    drills = [d for d in index.documents.values() if d.kind == Kind.DRILL and (level is None or d.level == level)]
    if not drills:
        return None
    if text.strip():
        allowed = {d.id for d in drills}
        hits = index.search(text, k=40) if vector is None else index.search_with_vector(text, vector, k=40)
        for hit in hits:
            if hit.chunk.doc_id in allowed:
                return index.documents[hit.chunk.doc_id]
    return sorted(drills, key=lambda d: d.id)[0]
