"""The manifest of an index folder: what built it, from what, and a checksum of every file.

Reading a manifest imports neither torch nor faiss, so `hinge index status` stays instant.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from index.retrieval.fusion import FusionSettings

# 3: dense vectors are windows, with window_chunks.npy mapping each window to its chunk.
# 4: lexical/pairs.npz holds the word-pair index; learned-combiner indexes hold sentence vectors.
# 5: one vector per chunk again, no word pairs, no sentence vectors: the one engine the bot ships.
# 6: the lexical index is BM25+ (it was Lucene's BM25); an older index is rebuilt at start-up from the cache.
FORMAT_VERSION = 6
MANIFEST_NAME = "manifest.json"


class ModelInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    dimension: int


class Manifest(BaseModel):
    model_config = ConfigDict(frozen=True)

    format_version: int = FORMAT_VERSION
    model: ModelInfo
    fusion: FusionSettings = Field(default_factory=FusionSettings)
    chunk_count: int
    document_count: int
    documents: dict[str, str] = Field(description="document id -> hash of its content")
    kinds: dict[str, int] = Field(default_factory=dict, description="documents per kind")
    sources_hash: str
    built_at: datetime
    build_seconds: float
    embedded: int = Field(description="passages embedded by this build (the rest came from the cache)")
    built_by: str | None = None
    files: dict[str, str] = Field(description="file name -> sha256, to detect damage")

    @classmethod
    def read(cls, folder: Path) -> Manifest:
        return cls.model_validate_json((folder / MANIFEST_NAME).read_text(encoding="utf-8"))

    def write(self, folder: Path) -> None:
        (folder / MANIFEST_NAME).write_text(self.model_dump_json(indent=2), encoding="utf-8")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
