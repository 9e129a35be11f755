"""Phone typos spelled the library's way ("hindge corectly" -> "hinge correctly"), before search.

Only a word that is neither the library's (nor in the list of topics it does not cover) nor English is
corrected: a real English word is never touched, so "sick whip", "deck", "bleed" or "broom" stay what the
rider wrote and an off-topic question keeps the words that show it. English is SymSpell's frequency
dictionary (82,765 words of both Google Books and SCOWL, MIT licence), shipped by the symspellpy package
and read once, on first use; symspellpy itself is never imported.

A non-word is corrected to the nearest library word within one edit (two for a word of seven letters or
more; a swap of two neighbouring letters is one edit). Among the nearest, one the typo only dropped
letters of wins ("dowl" -> "dowel", not "down"; "lowr" -> "lower", not "low"), then the one the library
uses most. A non-word nearer to an English word than to any library word ("weldingg" when the library
has no "welding") is that word's typo, and is left alone. Short words are left alone.
"""

from __future__ import annotations

import importlib.util
import re
import threading
from collections import Counter
from collections.abc import Collection, Iterable
from pathlib import Path

from rapidfuzz import process
from rapidfuzz.distance import OSA

_WORD = re.compile(r"[a-z]+")
_LETTERS = "abcdefghijklmnopqrstuvwxyz"
MIN_LETTERS = 4
LONG_WORD = 7
ENGLISH_PACKAGE = "symspellpy"
ENGLISH_FILE = "frequency_dictionary_en_82_765.txt"

_english: frozenset[str] | None = None
_english_lock = threading.Lock()


def english_words() -> frozenset[str]:
    """The English word list (lower case), read from symspellpy's data file on the first call only."""
    global _english
    if _english is None:
        with _english_lock:
            if _english is None:
                _english = _read_english()
    return _english


def _read_english() -> frozenset[str]:
    # find_spec locates the package without running its __init__ (which would import its speller).
    spec = importlib.util.find_spec(ENGLISH_PACKAGE)
    folders = list(spec.submodule_search_locations or []) if spec else []
    if not folders:
        raise RuntimeError(f"the English word list needs the {ENGLISH_PACKAGE} package: pip install -e .")
    with (Path(folders[0]) / ENGLISH_FILE).open(encoding="utf-8") as lines:
        return frozenset(word for line in lines if (word := line.split(" ", 1)[0].strip()))


def _limit(letters: int) -> int:
    """How many edits a word of so many letters may be from its correction."""
    return 2 if letters >= LONG_WORD else 1


def _edits1(word: str) -> set[str]:
    """Every string one deletion, swap of neighbours, replacement or insertion away from `word`."""
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    return {*(a + b[1:] for a, b in splits if b),
            *(a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1),
            *(a + c + b[1:] for a, b in splits if b for c in _LETTERS),
            *(a + c + b for a, b in splits for c in _LETTERS)}


def _dropped_letters(typo: str, word: str) -> bool:
    """Whether `typo` is `word` with letters left out (and nothing else changed)."""
    rest = iter(word)
    return len(typo) < len(word) and all(letter in rest for letter in typo)


class Speller:
    def __init__(self, texts: Iterable[str], english: Collection[str] | None = None) -> None:
        """The library's spelling from `texts`; `english` is the list of words never corrected besides the
        library's own (default: the shipped English list)."""
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(_WORD.findall(text.lower()))
        self.counts = counts
        self.english = english_words() if english is None else english
        words = [w for w in counts if len(w) >= MIN_LETTERS - 1]
        # The library words a word of each length may be corrected to (an edit changes the length by one).
        self._near_length = {n: [w for w in words if abs(len(w) - n) <= _limit(n)]
                             for n in range(MIN_LETTERS, max(map(len, words), default=0) + 3)}
        self._cache: dict[str, str] = {}

    def known(self, word: str) -> bool:
        """Whether `word` (lower case) is the library's or English, and so never corrected."""
        return word in self.counts or word in self.english

    def correct_word(self, word: str) -> str:
        if len(word) < MIN_LETTERS or self.known(word):
            return word
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        best = self._best(word)
        if len(self._cache) < 10_000:
            self._cache[word] = best
        return best

    def _best(self, word: str) -> str:
        found = process.extract(word, self._near_length.get(len(word), ()), scorer=OSA.distance,
                                score_cutoff=_limit(len(word)), limit=20)
        if not found:
            return word
        nearest = min(int(d) for _, d, _ in found)
        # Nearer to an English word than to any library word: that word's typo, which the library can't fix.
        if nearest > 1 and any(w in self.english for w in _edits1(word)):
            return word
        return min((w for w, d, _ in found if d == nearest),
                   key=lambda w: (not _dropped_letters(word, w), -self.counts[w], w))

    def correct(self, text: str) -> str:
        """`text` with each unknown word replaced by its library spelling, case and punctuation kept
        (a corrected word is written in lower case)."""
        return re.sub(r"[A-Za-z]+", lambda m: self._fix(m.group(0)), text)

    def _fix(self, word: str) -> str:
        lower = word.lower()
        fixed = self.correct_word(lower)
        return word if fixed == lower else fixed
