"""Exact quotes: the run of a passage's sentences that best answers a question."""

from __future__ import annotations

from collections.abc import Callable

from index.library.chunking import Chunk, sentence_spans

EXCERPT_WORDS = 70
ELLIPSIS = "…"


def select_excerpt(chunk: Chunk, query_terms: set[str], tokenize: Callable[[str], list[str]],
                   max_words: int = EXCERPT_WORDS) -> str:
    """The run of consecutive sentences that best answers the question, quoted exactly.

    Sentences are scored by the question's terms they contain; the best window that fits
    `max_words` wins, and an ellipsis marks any text cut before or after it.
    """
    text = chunk.text
    spans = sentence_spans(text)
    if not spans:
        return text
    words = [len(text[s:e].split()) for s, e in spans]
    hits = [len(query_terms & set(tokenize(text[s:e]))) for s, e in spans]
    best: tuple[float, int, int] = (float("-inf"), 0, 0)
    for i in range(len(spans)):
        total, score = 0, 0.0
        for j in range(i, len(spans)):
            total += words[j]
            if total > max_words and j > i:
                break
            # A sentence without the question's terms costs a little (unless nothing matches at
            # all, when the opening of the passage is the best summary); ties go to the earlier
            # window, since the opening sets the context.
            score += hits[j] if hits[j] or not any(hits) else -0.1
            if not any(hits):
                score += 0.001 * words[j]
            candidate = (score - 0.01 * i, i, j)
            if candidate[0] > best[0]:
                best = candidate
    _, i, j = best
    start, end = spans[i][0], spans[j][1]
    excerpt = text[start:end]
    if len(excerpt.split()) > max_words:
        cut = excerpt.split()[:max_words]
        excerpt = excerpt[: excerpt.index(cut[-1], len(" ".join(cut[:-1]))) + len(cut[-1])]
        end = start + len(excerpt)
    prefix = ELLIPSIS + " " if start > 0 else ""
    suffix = " " + ELLIPSIS if end < len(text.rstrip()) else ""
    return f"{prefix}{excerpt}{suffix}"


def whole_sentences(excerpt: str) -> list[str]:
    """The whole sentences of a quoted excerpt (without the ellipses that mark a cut)."""
    text = excerpt.strip().removeprefix(ELLIPSIS).removesuffix(ELLIPSIS).strip()
    return [s for s in (text[a:b].strip() for a, b in sentence_spans(text)) if len(s.split()) >= 4]
