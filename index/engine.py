"""The engine the CLI, the bot and the benchmarks share: one library, one data dir, one model, one index in
use, and one set of settings (`EngineSettings`), composed by `build_engine`."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from index.errors import IndexLoadError
from index.library.documents import Document, Kind, load_library
from index.retrieval.batching import BatchingEmbedder
from index.retrieval.bge_model import BgeEmbedder
from index.retrieval.embedding import BUNDLED_MODEL, Embedder, ProgressFn, SentenceEmbedder, resolve_model_path
from index.retrieval.fusion import FusionSettings
from index.retrieval.joint import JointEmbedder
from index.retrieval.onnx_model import OnnxEmbedder, model_cache_dir
from index.retrieval.search import Hit, IndexOwner, SearchIndex
from index.retrieval.store import BuildReport, IndexStore, load_folder


class EngineSettings(BaseModel):
    """What the bot ships, `hinge` runs and `hinge eval` and bench/ measure: there is no other configuration."""

    model_config = ConfigDict(frozen=True)

    embed_model: str = Field(default=BUNDLED_MODEL, description="'bundled' or a local sentence-transformers folder")
    fusion: FusionSettings = Field(default_factory=FusionSettings)


def build_engine(data_dir: Path, knowledge_dir: Path, library_dir: Path | None = None,
                 settings: EngineSettings | None = None) -> Engine:
    """The composition root of the core: the CLI, the bot and bench/ all build their engine here."""
    settings = settings or EngineSettings()
    # Questions that arrive while another is being embedded go together in the next batch; a lone one is
    # embedded at once (index/retrieval/batching.py).
    embedder = BatchingEmbedder(make_embedder(settings.embed_model, data_dir))
    return Engine(data_dir, knowledge_dir, embedder, fusion=settings.fusion,
                  library_dir=library_dir)


def make_embedder(setting: str, data_dir: Path) -> Embedder:
    """The bundled pair (all-MiniLM-L6-v2 and bge-small-en-v1.5 int8, both on onnxruntime, no torch in the
    process) read as one model; a local sentence-transformers folder runs on sentence-transformers, whatever
    its pooling."""
    folder, model_id = resolve_model_path(setting)
    if setting in ("", BUNDLED_MODEL):
        # The two run at the same time (index/retrieval/joint.py), so each gets half the cores.
        threads = max(1, min(4, os.cpu_count() or 1) // 2)
        return JointEmbedder([OnnxEmbedder(folder, model_id, model_cache_dir(data_dir), threads=threads),
                              BgeEmbedder(threads=threads)])
    return SentenceEmbedder(setting)


class Engine:
    def __init__(self, data_dir: Path, knowledge_dir: Path, embedder: Embedder,
                 fusion: FusionSettings | None = None,
                 library_dir: Path | None = None) -> None:
        self.knowledge_dir = knowledge_dir
        # The team's own documents (uploads, coach answers) live apart from the shipped library, so an
        # upgrade of the shipped one never touches them.
        self.library_dir = library_dir or data_dir / "library"
        self.store = IndexStore(data_dir)
        self.embedder = embedder
        self.fusion = fusion
        self.owner = IndexOwner()

    @property
    def index(self) -> SearchIndex:
        return self.owner.current

    def load(self, build_if_missing: bool = True, progress: ProgressFn | None = None) -> SearchIndex:
        """Load the current index; build it first when there is none (or it is unusable)."""
        try:
            index = self.store.load(self.embedder, self.fusion)
        except IndexLoadError:
            if not build_if_missing:
                raise
            self.build(progress=progress, built_by="start-up")
            index = self.store.load(self.embedder, self.fusion)
        self.owner.swap(index)
        return index

    def build(self, progress: ProgressFn | None = None, built_by: str | None = None,
              before_switch: Callable[[Path], None] | None = None) -> BuildReport:
        """Build from the knowledge folder and the team library; raises `LibraryError` listing every bad file.
        `before_switch` gets the new index folder before `CURRENT` points to it, and can stop the switch."""
        library = load_library([self.knowledge_dir, self.library_dir])
        library.raise_for_errors()
        return self.store.build(library.documents, self.embedder, self.fusion,
                                progress=progress, built_by=built_by, before_switch=before_switch)

    def reindex(self, progress: ProgressFn | None = None, built_by: str | None = None,
                prepare: Callable[[SearchIndex], None] | None = None) -> BuildReport:
        """Rebuild and swap the new index in; on any failure the old index keeps serving. `prepare` runs on the
        new index before the swap (warming what answers derive from it), so no question meets it cold.

        `CURRENT` on disk moves only once the new index loaded and was prepared: a change whose rebuild fails
        (and is rolled back by the caller) does not come back at the next start."""
        ready: list[SearchIndex] = []

        def load_and_prepare(folder: Path) -> None:
            index = load_folder(folder, self.embedder, self.fusion)
            if prepare is not None:
                prepare(index)
            ready.append(index)

        report = self.build(progress=progress, built_by=built_by, before_switch=load_and_prepare)
        self.owner.swap(ready[0])
        return report

    @property
    def reindexing(self) -> bool:
        return self.store.building

    def search(self, text: str, k: int = 5, guild_id: int | None = None) -> list[Hit]:
        return self.index.scoped(guild_id).search(text, k)

    def documents(self, kind: Kind | None = None, guild_id: int | None = None) -> list[Document]:
        """The documents a question asked in server `guild_id` may cite (None: the shipped ones)."""
        docs = self.index.scoped(guild_id).documents.values()
        return [d for d in docs if kind is None or d.kind == kind]
