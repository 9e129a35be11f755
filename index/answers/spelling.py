"""Phone typos spelled the library's way ("hindge corectly" -> "hinge correctly"), before search.

Only a word the library (and the list of topics it does not cover) never uses is corrected, and
only to a library word within one edit (two for a word of seven letters or more; a swap of two
neighbouring letters is one edit), the most frequent such word winning. Short words are left alone.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from rapidfuzz import process
from rapidfuzz.distance import OSA

_WORD = re.compile(r"[a-z]+")
MIN_LETTERS = 4
LONG_WORD = 7


class Speller:
    def __init__(self, texts: Iterable[str]) -> None:
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(_WORD.findall(text.lower()))
        self.counts = counts
        self._words = [w for w in counts if len(w) >= MIN_LETTERS - 1]
        self._cache: dict[str, str] = {}

    def correct_word(self, word: str) -> str:
        if len(word) < MIN_LETTERS or word in self.counts:
            return word
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        limit = 2 if len(word) >= LONG_WORD else 1
        found = process.extract(word, self._words, scorer=OSA.distance, score_cutoff=limit, limit=20)
        best = min(found, key=lambda m: (m[1], -self.counts[m[0]]))[0] if found else word
        if len(self._cache) < 10_000:
            self._cache[word] = best
        return best

    def correct(self, text: str) -> str:
        """`text` with each unknown word replaced by its library spelling, case and punctuation kept
        (a corrected word is written in lower case)."""
        return re.sub(r"[A-Za-z]+", lambda m: self._fix(m.group(0)), text)

    def _fix(self, word: str) -> str:
        lower = word.lower()
        fixed = self.correct_word(lower)
        return word if fixed == lower else fixed
