"""Lexical search: BM25+ (bm25s) over stemmed, stopword-free tokens of the same chunks."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Sequence
from pathlib import Path

import bm25s
import numpy as np
import numpy.typing as npt
import Stemmer
from bm25s.stopwords import STOPWORDS_EN

_TOKEN = re.compile(r"(?u)\b\w\w+\b")
_STOPWORDS = frozenset(STOPWORDS_EN)

Scores = npt.NDArray[np.float32]


class Tokenizer:
    """Lower-case word tokens, English stopwords dropped, Snowball-stemmed."""

    def __init__(self) -> None:
        self._stemmer = Stemmer.Stemmer("english")

    def __call__(self, text: str) -> list[str]:
        words = [w for w in _TOKEN.findall(text.lower()) if w not in _STOPWORDS]
        return list(self._stemmer.stemWords(words))


class LexicalIndex:
    """BM25+ over chunk texts; scores every chunk for a query (cheap: a sparse column sum)."""

    K1 = 1.2
    B = 0.75
    # BM25+ (Lv and Zhai, 2011) adds a floor (delta 0.5) to each matched word's weight, so a long passage that
    # does name the word is not scored as if it barely did. The rider set cannot tell it from Lucene's BM25 (every
    # tune and held-out figure and lead the same); the benchmarks' train/dev splits chose it: SciFact train
    # 0.7500 -> 0.7506, NFCorpus train 0.3593 -> 0.3655, dev 0.3419 -> 0.3464 (bench/retrieval.py's README notes).
    METHOD = "bm25+"

    def __init__(self, model: bm25s.BM25) -> None:
        self._model = model
        self._local = threading.local()
        self._vocab: dict[str, int] = model.vocab_dict

    @classmethod
    def build(cls, texts: Sequence[str]) -> LexicalIndex:
        tokenize = Tokenizer()
        tokens = [tokenize(t) for t in texts]
        # bm25s needs at least one token per document to keep ids aligned with chunks.
        corpus = [t or ["__empty__"] for t in tokens]
        model = bm25s.BM25(k1=cls.K1, b=cls.B, method=cls.METHOD)
        model.index(corpus, show_progress=False)
        return cls(model)

    @property
    def vocabulary(self) -> dict[str, int]:
        return self._vocab

    @property
    def method(self) -> str:
        return str(self._model.method)

    @property
    def size(self) -> int:
        return int(self._model.scores["num_docs"])

    def tokenize(self, text: str) -> list[str]:
        tokenize: Tokenizer | None = getattr(self._local, "tokenize", None)
        if tokenize is None:
            # PyStemmer objects must not be shared between threads: one tokenizer per thread.
            tokenize = self._local.tokenize = Tokenizer()
        return tokenize(text)

    def scores(self, text: str) -> Scores:
        return self.scores_for_terms(self.tokenize(text))

    def scores_for_terms(self, terms: list[str]) -> Scores:
        ids = [self._vocab[t] for t in terms if t in self._vocab]
        if not ids:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self._model.get_scores_from_ids(ids), dtype=np.float32)

    def save(self, folder: Path) -> None:
        self._model.save(str(folder), show_progress=False)

    @classmethod
    def load(cls, folder: Path) -> LexicalIndex:
        logging.getLogger("bm25s").setLevel(logging.WARNING)
        return cls(bm25s.BM25.load(str(folder), show_progress=False, mmap=False))
